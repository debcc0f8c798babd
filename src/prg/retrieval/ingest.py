"""Ingest a file or a folder of regulation documents into chunks: Markdown, plain text, PDF and images.

``ingest_path`` never raises for a bad file: corrupt, encrypted, empty, binary or unknown files go to ``skipped``
with a reason; recoverable problems (an encoding guessed, a file truncated to ``max_bytes``) go to ``warnings``.
Metadata comes, in order of precedence, from the arguments, a PRG-Synth ``index.json`` in the folder, the document
itself (front matter, "# DOC-ID Title" first heading) and the path (file stem, industry folder name).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prg.retrieval.chunking import Block, Figure, Heading, chunk_blocks
from prg.retrieval.ingest_text import DOC_ID_RE, decode_text, humanise, looks_binary, parse_markdown, parse_text
from prg.retrieval.types import Chunk

__all__ = ["INDUSTRIES", "DocInfo", "IngestResult", "ingest_path"]

INDUSTRIES = ("electric_power", "chemical", "mechanical", "home_appliance")
TEXT_EXT = {".md": "md", ".markdown": "md", ".txt": "txt"}
IMAGE_EXT = {".png", ".jpg", ".jpeg"}
CAPTION_EXT = (".txt", ".caption")


@dataclass
class DocInfo:
    doc_id: str
    title: str
    source: str
    industry: str
    pages: int | None  # PDF page count; None for unpaged sources
    n_chunks: int
    sha256: str  # of the file's bytes: a changed file means its old chunks should be deleted first


@dataclass
class IngestResult:
    chunks: list[Chunk] = field(default_factory=list)
    documents: list[DocInfo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[str] = field(default_factory=list)


class _Skip(Exception):
    """A file that cannot be ingested; the message is the reason."""


def _load_index(folder: Path, recursive: bool) -> dict[Path, dict[str, Any]]:
    """PRG-Synth ``index.json`` ({"documents": [{doc_id, industry, title, files: [...]}]}) -> file -> entry."""
    out: dict[Path, dict[str, Any]] = {}
    found = folder.rglob("index.json") if recursive else [folder / "index.json", folder.parent / "index.json"]
    for index in sorted(p for p in found if p.is_file()):
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        docs = data.get("documents", data) if isinstance(data, dict) else data
        if not isinstance(docs, list):
            continue
        for d in docs:
            if isinstance(d, dict) and "doc_id" in d:
                for f in d.get("files", []):
                    out[(index.parent / f).resolve()] = d
    return out


def _industry_from_path(path: Path) -> str:
    return next((p.name for p in reversed(path.parents) if p.name in INDUSTRIES), "")


def _read_text(path: Path, max_bytes: int, warnings: list[str]) -> str:
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)
    if not data.strip():
        raise _Skip("empty file")
    if looks_binary(data):
        raise _Skip("binary content (NUL or control bytes) in a text file")
    if len(data) > max_bytes:
        data = data[:max_bytes]
        warnings.append(f"{path}: larger than max_bytes={max_bytes}; truncated to the first {max_bytes} bytes")
    text, warn = decode_text(data)
    if warn:
        warnings.append(f"{path}: {warn}")
    return text


def _copy_figure(src: Path, name: str, figure_dir: Path | None, warnings: list[str]) -> str | None:
    """Copy an image into figure_dir as ``name``; returns the path chunks cite (the source path without one)."""
    if not src.is_file():
        warnings.append(f"{src}: referenced figure not found")
        return None
    if figure_dir is None:
        return str(src)
    shutil.copyfile(src, figure_dir / name)
    return name


def _caption_for(image: Path) -> str:
    for ext in CAPTION_EXT:
        side = image.with_suffix(ext)
        if side.is_file():
            text, _ = decode_text(side.read_bytes()[:10_000])
            if text.strip():
                return " ".join(text.split())
    return humanise(image.stem)


def _title_from(blocks: list[Block], fallback: str) -> str:
    head = next((b for b in blocks if isinstance(b, Heading) and b.level == 1), None)
    if head is None:
        return fallback
    m = DOC_ID_RE.match(head.text)
    return (m.group(2) if m and m.group(2) else head.text).strip()


def _ingest_file(path: Path, fmt: str, meta: dict[str, Any], industry: str | None, figure_dir: Path | None,
                 max_bytes: int, chunk_chars: int, res: IngestResult, used_images: set[Path]) -> None:  # fmt: skip
    doc_id = str(meta.get("doc_id") or path.stem)
    ind = industry if industry is not None else str(meta.get("industry") or _industry_from_path(path))
    title = str(meta.get("title") or "")
    pages: int | None = None
    blocks: list[Block]
    if fmt == "pdf":
        from prg.retrieval.ingest_pdf import parse_pdf

        if path.stat().st_size > max_bytes:
            raise _Skip(f"PDF larger than max_bytes={max_bytes}")
        try:
            pdf = parse_pdf(path, doc_id=doc_id, figure_dir=figure_dir)
        except Exception as e:
            # pdfplumber wraps pdfminer's errors (PdfminerException(PDFPasswordIncorrect())): look inside too.
            inner = [e, *(a for a in e.args if isinstance(a, BaseException))]
            name = "/".join(type(x).__name__ for x in inner)
            if "Password" in name or "encrypt" in str(e).lower():
                raise _Skip(f"encrypted PDF ({name})") from e
            raise _Skip(f"unreadable PDF ({name}: {e})") from e
        blocks, pages = pdf.blocks, pdf.pages
        res.warnings += pdf.warnings
        if not blocks:
            raise _Skip("no extractable text or figures (scanned PDF without a text layer?)")
        title = title or _title_from(blocks, humanise(path.stem))
    else:
        text = _read_text(path, max_bytes, res.warnings)
        if fmt == "md":
            md = parse_markdown(text)
            if not meta.get("doc_id") and md.doc_id:
                doc_id = md.doc_id
            ind = ind or md.meta.get("industry", "")
            title = title or md.title or humanise(path.stem)
            blocks = md.blocks
            for b in blocks:  # figure paths are relative to the document; copy them next to the index
                if isinstance(b, Figure) and b.path and "://" not in b.path:
                    src = (path.parent / b.path).resolve()
                    used_images.add(src)
                    name = src.name if src.name.startswith(f"{doc_id}_") else f"{doc_id}_{src.name}"
                    b.path = _copy_figure(src, name, figure_dir, res.warnings)
        else:
            blocks = parse_text(text)
            title = title or _title_from(blocks, humanise(path.stem))
    chunks = chunk_blocks(blocks, doc_id=doc_id, title=title, industry=ind, source=str(path), fmt=fmt,
                          chunk_chars=chunk_chars)  # fmt: skip
    if not chunks:
        raise _Skip("no text to index")
    res.chunks += chunks
    res.documents.append(DocInfo(doc_id, title, str(path), ind, pages, len(chunks), _sha256(path)))


def _ingest_image(path: Path, meta: dict[str, Any], industry: str | None, figure_dir: Path | None,
                  max_bytes: int, res: IngestResult) -> None:  # fmt: skip
    size = path.stat().st_size
    if size == 0:
        raise _Skip("empty file")
    if size > max_bytes:
        raise _Skip(f"image larger than max_bytes={max_bytes}")
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()  # a truncated or fake image is skipped, not indexed as a figure
    except Exception as e:
        raise _Skip(f"unreadable image ({type(e).__name__})") from e
    doc_id = str(meta.get("doc_id") or path.stem)
    ind = industry if industry is not None else str(meta.get("industry") or _industry_from_path(path))
    caption = _caption_for(path)
    name = f"{doc_id}_{path.name}" if meta.get("doc_id") else path.name
    fig = _copy_figure(path, name, figure_dir, res.warnings)
    chunks = chunk_blocks([Figure(caption, fig)], doc_id=doc_id, title=caption, industry=ind, source=str(path),
                          fmt="image")  # fmt: skip
    res.chunks += chunks
    res.documents.append(DocInfo(doc_id, caption, str(path), ind, None, len(chunks), _sha256(path)))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest_path(path: str | Path, *, industry: str | None = None, figure_dir: str | Path | None = None,
                max_bytes: int = 50_000_000, chunk_chars: int = 1200) -> IngestResult:  # fmt: skip
    """Ingest a file or a folder (recursively, in sorted order) into chunks; never raises for a bad file.

    Documents (.md, .markdown, .txt, .pdf) are read first, then images (.png, .jpg, .jpeg) that no Markdown
    document referenced become one figure chunk each. A ``<stem>.txt``/``<stem>.caption`` beside an image is its
    caption, not a document. ``figure_dir`` receives every figure image as ``<doc_id>_<name>.png``.
    """
    root = Path(path)
    res = IngestResult()
    fig_dir = Path(figure_dir) if figure_dir is not None else None
    if fig_dir is not None:
        fig_dir.mkdir(parents=True, exist_ok=True)
    if not root.exists():
        res.skipped.append((str(root), "no such file or folder"))
        return res
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    index = _load_index(root, True) if root.is_dir() else _load_index(root.parent, False)
    if fig_dir is not None:  # do not re-ingest our own output when figure_dir lies inside the input folder
        files = [p for p in files if fig_dir.resolve() not in p.resolve().parents]
    used_images: set[Path] = set()
    images: list[Path] = []
    for p in files:
        ext = p.suffix.lower()
        if p.name == "index.json" and root.is_dir():
            continue
        if ext in IMAGE_EXT:
            images.append(p)
            continue
        if ext in CAPTION_EXT and any(p.with_suffix(e).is_file() for e in IMAGE_EXT):
            continue  # an image's caption sidecar
        fmt = TEXT_EXT.get(ext) or ("pdf" if ext == ".pdf" else None)
        if fmt is None:
            res.skipped.append((str(p), f"unsupported file type '{ext or p.name}'"))
            continue
        try:
            _ingest_file(p, fmt, index.get(p.resolve(), {}), industry, fig_dir, max_bytes, chunk_chars, res,
                         used_images)  # fmt: skip
        except _Skip as e:
            res.skipped.append((str(p), str(e)))
        except Exception as e:  # a reader bug on one odd file must not stop a folder ingest
            res.skipped.append((str(p), f"failed: {type(e).__name__}: {e}"))
    for p in images:
        if p.resolve() in used_images:
            continue  # a figure of an ingested document: already a figure chunk there
        try:
            _ingest_image(p, index.get(p.resolve(), {}), industry, fig_dir, max_bytes, res)
        except _Skip as e:
            res.skipped.append((str(p), str(e)))
        except Exception as e:
            res.skipped.append((str(p), f"failed: {type(e).__name__}: {e}"))
    return res
