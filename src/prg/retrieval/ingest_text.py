"""Markdown and plain text -> blocks for :mod:`prg.retrieval.chunking`; decoding of text files of any encoding.

Markdown is parsed with markdown-it-py (CommonMark + tables) rather than by hand. Plain text has no markup, so its
headings are found by a small heuristic shared with the PDF reader (:func:`lines_to_blocks`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prg.retrieval.chunking import Block, Figure, Heading, Para, Table, heading_number, match_clause

__all__ = ["Line", "MarkdownDoc", "decode_text", "lines_to_blocks", "looks_binary", "parse_markdown", "parse_text"]

#: An id at the start of a title line: "EP-SAF-004 Safety rules" (letters/digits joined by '-' or '_').
DOC_ID_RE = re.compile(r"^([A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)+)\b\s*[-:–]?\s*(.*)$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n(?:---|\.\.\.)\s*(?:\n|\Z)", re.DOTALL)
_NORMATIVE = re.compile(r"\b(?:shall|must|should|may not)\b", re.IGNORECASE)
_FIGURE_CAPTION = re.compile(r"^(?:Figure|Fig\.)\s*\d+", re.IGNORECASE)


def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text: NUL bytes, or many control characters (sampled from the start)."""
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM has NULs but is text
        return False
    if b"\x00" in sample:
        return True
    ctrl = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return bool(sample) and ctrl / len(sample) > 0.1


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode bytes as UTF-8, else with charset-normalizer's best guess; returns (text, warning or None)."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return data.decode("utf-8", errors="replace"), "not valid UTF-8 and no encoding detected; bad bytes replaced"
    return str(best), f"not UTF-8; decoded as {best.encoding}"


@dataclass
class MarkdownDoc:
    blocks: list[Block]
    doc_id: str | None  # from front matter or the first heading, if given
    title: str
    meta: dict[str, str]
    images: list[str]  # image paths as written in the document


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    meta = {}
    for line in m.group(1).splitlines():  # flat "key: value" only; nested YAML is not metadata we use
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[m.end() :]


def _inline(token: Any) -> tuple[str, list[tuple[str, str]], bool]:
    """Plain text of an inline token, the images in it (alt, src), and whether it is all emphasis."""
    parts: list[str] = []
    images: list[tuple[str, str]] = []
    for c in token.children or []:
        if c.type in ("text", "code_inline", "html_inline"):
            parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif c.type == "image":
            images.append((c.content, str(c.attrs.get("src", ""))))
    kids = [c for c in token.children or [] if not (c.type == "text" and not c.content)]
    emphasis = bool(kids) and kids[0].type == "em_open" and kids[-1].type == "em_close"
    return re.sub(r"\s+", " ", "".join(parts)).strip(), images, emphasis


def _attach_table(blocks: list[Block], table: Table) -> None:
    """A short emphasised or "Table N" paragraph just before a table is its caption, not a passage."""
    prev = blocks[-1] if blocks else None
    if (isinstance(prev, Para) and len(prev.text) < 150 and match_clause(prev.text) is None
            and (prev.emphasis or prev.text.lower().startswith("table"))):  # fmt: skip
        table.caption = prev.text
        blocks.pop()
    blocks.append(table)


def humanise(stem: str) -> str:
    """'EP-SAF-004_fig1' -> 'EP SAF 004 fig1' (a caption of last resort)."""
    return re.sub(r"[_\-\s]+", " ", stem).strip()


def parse_markdown(text: str) -> MarkdownDoc:
    """Markdown -> blocks; level-1 heading = title (an id at its start becomes the doc id)."""
    from markdown_it import MarkdownIt

    meta, body = _front_matter(text)
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    blocks: list[Block] = []
    images: list[str] = []
    doc_id = meta.get("doc_id") or meta.get("id")
    title = meta.get("title", "")
    last_caption = None
    # Documents that use '#' for their sections (several h1s) get every heading one level down, so that the
    # first h1 stays the title and '# 4 Tools' / '## 4.2 ...' nest like '## 4 Tools' / '### 4.2 ...'.
    shift = int(sum(t.type == "heading_open" and t.tag == "h1" for t in tokens) > 1)
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "heading_open":
            htext, _, _ = _inline(tokens[i + 1])
            level = int(t.tag[1:])
            first = not any(isinstance(b, Heading) for b in blocks)
            if level == 1 and first and heading_number(htext) is None:  # "# EP-SAF-004 Title": the title line
                m = DOC_ID_RE.match(htext)
                if m:
                    doc_id = doc_id or m.group(1)
                    htext = m.group(2) or htext
                title = title or htext
            else:
                level += shift
            blocks.append(Heading(level, htext))
            i += 3
            continue
        if t.type == "table_open":
            rows: list[list[str]] = []
            while tokens[i].type != "table_close":
                if tokens[i].type == "tr_open":
                    rows.append([])
                elif tokens[i].type == "inline":
                    rows[-1].append(_inline(tokens[i])[0])
                i += 1
            _attach_table(blocks, Table(rows))
        elif t.type == "inline":  # paragraphs, list items, table-less text
            ptext, imgs, emphasis = _inline(t)
            for alt, src in imgs:
                images.append(src)
                caption = alt or humanise(Path(src).stem)
                blocks.append(Figure(caption, src))
                last_caption = caption
            if imgs and ptext == "":
                pass
            elif last_caption and ptext in (last_caption, f"{last_caption}."):
                last_caption = None  # the caption repeated under the image is not a passage of its own
            elif ptext:
                if imgs and _FIGURE_CAPTION.match(ptext) and isinstance(blocks[-1], Figure):
                    blocks[-1].caption = ptext
                else:
                    blocks.append(Para(ptext, emphasis=emphasis))
                last_caption = None
        elif t.type in ("fence", "code_block") and t.content.strip():
            blocks.append(Para(t.content.strip()))
        i += 1
    return MarkdownDoc(blocks, doc_id, title, meta, images)


@dataclass
class Line:
    """One line of plain text or of a PDF page, with what the PDF knows about its font."""

    text: str
    page: int | None = None
    bold: bool | None = None  # all characters bold (None: unknown, plain text)
    italic: bool = False
    size: float | None = None
    new_para: bool = False  # a blank line (text) or a vertical gap (PDF) precedes it
    alone: bool = False  # plain text: blank lines (or the file's ends) on both sides


def _is_heading(line: Line, body_size: float | None) -> int:
    """Heading level (2 = "4 ...", 3 = "4.2 ...") or 0 if the line is not a heading."""
    text = line.text.strip()
    num = heading_number(text)
    if len(text) > 100 or (text.endswith((".", ";", ",", ":")) and line.bold is None):
        return 0
    if line.bold is not None:  # PDF: a heading is a short all-bold line, numbered or in a larger font
        larger = body_size is not None and line.size is not None and line.size > body_size + 0.5
        if not (line.bold and (num or larger)):
            return 0
    elif not num or len(text) > 80 or not line.alone or _NORMATIVE.search(text):
        return 0  # plain text: a heading is a short numbered line on its own, without "shall"/"must"
    return num.count(".") + 2 if num else 2


def lines_to_blocks(lines: list[Line], *, body_size: float | None = None, title_line: bool = True) -> list[Block]:
    """Group lines into headings and paragraphs: a paragraph also ends where a clause or 'NOTE' starts."""
    blocks: list[Block] = []
    cur: list[Line] = []

    def flush() -> None:
        if cur:
            blocks.append(Para(" ".join(x.text.strip() for x in cur), page=cur[0].page,
                               emphasis=all(x.italic for x in cur)))  # fmt: skip
            cur.clear()

    for n, line in enumerate(lines):
        text = line.text.strip()
        if not text:
            flush()
            continue
        if n == 0 and title_line and heading_number(text) is None and len(text) < 150:
            blocks.append(Heading(1, text, line.page))
            continue
        level = _is_heading(line, body_size)
        if level:
            flush()
            blocks.append(Heading(level, text, line.page))
            continue
        if line.new_para or match_clause(text) or text.startswith(("NOTE", "Note:")) or _FIGURE_CAPTION.match(text):
            flush()
        cur.append(line)
    flush()
    return blocks


def parse_text(text: str) -> list[Block]:
    """Plain text -> blocks: first line = title, numbered short lines after a blank line = headings."""
    raw = text.splitlines()
    lines: list[Line] = []
    for i, r in enumerate(raw):
        if r.strip():
            before = i == 0 or not raw[i - 1].strip()
            after = i + 1 == len(raw) or not raw[i + 1].strip()
            lines.append(Line(r, new_para=before, alone=before and after))
    # Pipe tables in text files ("a | b" lines) are left as paragraphs: plain text has no reliable table syntax.
    return lines_to_blocks(lines)
