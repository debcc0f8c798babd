"""PDF -> blocks for :mod:`prg.retrieval.chunking`: text lines with font hints, tables and figures, per page.

pdfplumber gives text lines (with fonts, so headings can be told from clauses), tables (``find_tables``) and image
boxes; figures are cropped from a pypdfium2 render of the page (no system dependencies) and saved as PNG. Reading
order is top-to-bottom per page: single-column regulation layouts; multi-column pages are not reordered.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prg.retrieval.chunking import Block, Figure, Table
from prg.retrieval.ingest_text import Line, _attach_table, lines_to_blocks

__all__ = ["MAX_PDF_PAGES", "PdfDoc", "parse_pdf"]

#: Pages beyond this are not read (with a warning): a bound on the time one file can take.
MAX_PDF_PAGES = 2000
_MIN_FIGURE_PT = 24.0  # images smaller than this (bullets, logos, rules) are not figures
_CAPTION_RE = re.compile(r"^(?:Figure|Fig\.)\s*\d+", re.IGNORECASE)
_RENDER_SCALE = 2.0  # 144 dpi crops: enough to read a figure, small enough to store many


@dataclass
class PdfDoc:
    blocks: list[Block]
    pages: int
    warnings: list[str] = field(default_factory=list)
    n_figures_saved: int = 0


@dataclass
class _Item:
    top: float
    kind: str  # "line" | "table" | "image"
    line: Line | None = None
    rows: list[list[str]] | None = None
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, top, x1, bottom (pdfplumber coordinates)
    caption: str = ""
    consumed: bool = False  # a caption line already used by a figure


def _page_items(page: Any, page_no: int) -> list[_Item]:
    tables = page.find_tables()
    boxes = [t.bbox for t in tables]

    def outside(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)

    items: list[_Item] = []
    last_bottom = None
    for tl in page.filter(outside).extract_text_lines(return_chars=True, strip=True):
        chars = tl["chars"]
        fonts = [str(c.get("fontname", "")) for c in chars if c["text"].strip()]
        size = max(Counter(round(float(c.get("size", 0)), 1) for c in chars).items(), key=lambda kv: kv[1])[0]
        gap = tl["top"] - last_bottom if last_bottom is not None else 99.0
        last_bottom = tl["bottom"]
        line = Line(tl["text"], page=page_no, bold=bool(fonts) and all("bold" in f.lower() for f in fonts),
                    italic=bool(fonts) and all(("italic" in f.lower() or "oblique" in f.lower()) for f in fonts),
                    size=size, new_para=gap > 0.6 * size)  # fmt: skip
        items.append(_Item(tl["top"], "line", line=line))
    for t in tables:
        rows = [[re.sub(r"\s+", " ", c or "").strip() for c in r] for r in t.extract()]
        rows = [r for r in rows if any(r)]
        if rows:
            items.append(_Item(t.bbox[1], "table", rows=rows, bbox=t.bbox))
    for im in page.images:
        if im["x1"] - im["x0"] >= _MIN_FIGURE_PT and im["bottom"] - im["top"] >= _MIN_FIGURE_PT:
            items.append(_Item(im["top"], "image", bbox=(im["x0"], im["top"], im["x1"], im["bottom"])))
    items.sort(key=lambda it: (it.top, it.kind != "line"))
    return items


def _find_caption(items: list[_Item], img: _Item, next_items: list[_Item] | None, page_h: float) -> str:
    """The nearest 'Figure N' line below the image, else above it, else atop the next page."""
    lines = [it for it in items if it.kind == "line" and not it.consumed and it.line is not None]
    below = [it for it in lines if it.top >= img.bbox[3] - 2 and _CAPTION_RE.match(it.line.text)]  # type: ignore[union-attr]
    above = [it for it in lines if it.top < img.bbox[1] and _CAPTION_RE.match(it.line.text)]  # type: ignore[union-attr]
    cands = sorted(below, key=lambda it: it.top - img.bbox[3])[:1] or sorted(above, key=lambda it: -it.top)[:1]
    if not cands and next_items and img.bbox[3] > 0.6 * page_h:
        first = next((it for it in next_items if it.kind == "line"), None)
        if first is not None and first.line is not None and _CAPTION_RE.match(first.line.text):
            cands = [first]
    if not cands:
        return ""
    cands[0].consumed = True
    return cands[0].line.text.strip() if cands[0].line else ""


def parse_pdf(path: Path, *, doc_id: str, figure_dir: Path | None, max_pages: int = MAX_PDF_PAGES) -> PdfDoc:
    """Read a PDF into blocks; figures are saved as ``figure_dir/<doc_id>_p<page>_fig<i>.png`` when given."""
    import pdfplumber

    warnings: list[str] = []
    with pdfplumber.open(str(path)) as pdf:
        n_pages = len(pdf.pages)
        if n_pages > max_pages:
            warnings.append(f"{path}: {n_pages} pages; only the first {max_pages} were read")
        pages = list(pdf.pages[:max_pages])
        heights = [float(p.height) for p in pages]
        per_page = [_page_items(p, i + 1) for i, p in enumerate(pages)]
        for p in pages:
            p.close()  # pdfplumber caches layout per page; free it as we go on long documents
    sizes = Counter(it.line.size for items in per_page for it in items if it.line and it.line.size and not it.line.bold)
    body = sizes.most_common(1)[0][0] if sizes else None

    # Captions first (they may sit on the next page), then the stream of lines/tables/figures in reading order.
    for i, items in enumerate(per_page):
        for it in items:
            if it.kind == "image":
                nxt = per_page[i + 1] if i + 1 < len(per_page) else None
                it.caption = _find_caption(items, it, nxt, heights[i])
    blocks: list[Block] = []
    pending: list[Line] = []
    fig_count = saved = 0
    renderer = _Renderer(path) if figure_dir is not None and any(it.kind == "image" for p in per_page for it in p) \
        else None  # fmt: skip
    first_line = True
    for i, items in enumerate(per_page):
        starts_page = True  # nothing of this page emitted yet
        for it in items:
            if it.kind == "line" and it.line is not None and not it.consumed:
                pending.append(it.line)
                starts_page = False
                continue
            if it.kind == "line":
                continue
            blocks += lines_to_blocks(pending, body_size=body, title_line=first_line)
            first_line = first_line and not pending
            pending = []
            prev = blocks[-1] if blocks else None
            if it.kind == "table" and it.rows and isinstance(prev, Table) and starts_page and \
                    len(prev.rows[0]) == len(it.rows[0]):  # fmt: skip
                # A table continued from the previous page: one table, repeated header row dropped.
                prev.rows += it.rows[1:] if it.rows[0] == prev.rows[0] else it.rows
            elif it.kind == "table" and it.rows:
                _attach_table(blocks, Table(it.rows, page=i + 1))
            elif it.kind == "image":
                fig_count += 1
                out = None
                if renderer is not None and figure_dir is not None:
                    out = f"{doc_id}_p{i + 1}_fig{fig_count}.png"
                    try:
                        renderer.crop(i, it.bbox).save(figure_dir / out)
                        saved += 1
                    except Exception as e:  # a figure that cannot be rendered must not lose the document
                        warnings.append(f"{path}: figure on page {i + 1} not saved ({type(e).__name__}: {e})")
                        out = None
                caption = it.caption or f"Figure on page {i + 1}"
                blocks.append(Figure(caption, out, page=i + 1, metadata={"bbox": list(it.bbox)}))
            starts_page = False
    blocks += lines_to_blocks(pending, body_size=body, title_line=first_line)
    if renderer is not None:
        renderer.close()
    return PdfDoc(blocks, n_pages, warnings, saved)


class _Renderer:
    """Renders pages with pypdfium2 (once per page) and crops image boxes from them."""

    def __init__(self, path: Path) -> None:
        import pypdfium2 as pdfium

        self.pdf = pdfium.PdfDocument(str(path))
        self.cache: dict[int, Any] = {}

    def crop(self, page_index: int, bbox: tuple[float, float, float, float]) -> Any:
        if page_index not in self.cache:
            self.cache = {page_index: self.pdf[page_index].render(scale=_RENDER_SCALE).to_pil()}
        s = _RENDER_SCALE
        x0, top, x1, bottom = bbox
        return self.cache[page_index].crop((int(x0 * s), int(top * s), round(x1 * s), round(bottom * s)))

    def close(self) -> None:
        self.cache.clear()
        self.pdf.close()
