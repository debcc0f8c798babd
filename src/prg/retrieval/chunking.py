"""Structure-aware chunking: a document as a stream of blocks -> :class:`~prg.retrieval.types.Chunk` objects.

Every format reader (Markdown, plain text, PDF) turns its file into the same small block language — headings,
paragraphs, tables, figures, each with an optional page — and :func:`chunk_blocks` does the rest, so the rules that
retrieval is scored on live in one place:

- each chunk starts at a numbered clause ("4.2.1 ...", "4.2.1. ...", "Clause 4.2.1 ...", "§4.2.1 ...") and runs
  until the next clause or heading; unnumbered paragraphs (NOTEs) stay with the clause they follow;
- a heading always ends the current chunk, so no chunk spans two sections and ``section`` is the heading path;
- a clause longer than ``chunk_chars`` is split at sentence boundaries: same clause, next ordinal;
- a table is its own chunk ("header | ..." + rows), or one chunk per row when rows are numbered clauses;
- a figure is its own chunk whose text is the caption, cited by the clause it belongs to.

Ids come from :func:`~prg.retrieval.types.chunk_id` with a locator of format, section, clause, kind and a short hash
of the text: re-ingesting an unchanged file gives the same ids, and an edited passage gets a new id, so an index
that already holds an id also holds its current vector (no re-embedding of unchanged chunks).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prg.retrieval.types import Chunk, ChunkKind, chunk_id

__all__ = ["Figure", "Heading", "Para", "Table", "chunk_blocks", "match_clause", "split_sentences"]

# "Clause 4.2" / "§ 4.2" / "§4" may carry a single number; a bare number needs a dot ("4.2.1") so that
# "3 workers shall ..." or a year is not taken for a clause.
_PREFIXED = re.compile(r"^(?:Clause|Cl\.)\s+(\d+(?:\.\d+)*)\.?(?=\s|$|[:,)])|^§\s*(\d+(?:\.\d+)*)\.?(?=\s|$|[:,)])")
_BARE = re.compile(r"^(\d+(?:\.\d+)+)\.?(?=\s|$)")
_HEADING_NUM = re.compile(r"^(?:Clause\s+|§\s*)?(\d+(?:\.\d+)*)\.?\s+\S")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9§])")
_FIGURE_REF = re.compile(r"\bFig(?:ure|\.)\s*(\d+)", re.IGNORECASE)


@dataclass
class Heading:
    level: int  # 1 = document title, 2 = top-level section ("4 Tools"), 3+ = sub-sections
    text: str
    page: int | None = None


@dataclass
class Para:
    text: str
    page: int | None = None
    emphasis: bool = False  # the whole paragraph is italic/emphasised (captions are)


@dataclass
class Table:
    rows: list[list[str]]  # rows[0] is the header
    caption: str = ""
    page: int | None = None


@dataclass
class Figure:
    caption: str
    path: str | None  # image path as the chunk should cite it (None when the image could not be saved)
    page: int | None = None
    metadata: dict[str, object] = field(default_factory=dict)


Block = Heading | Para | Table | Figure


def match_clause(text: str) -> str | None:
    """The clause number a paragraph starts with ("4.2.1"), or None."""
    text = text.lstrip()
    m = _PREFIXED.match(text)
    if m:
        return m.group(1) or m.group(2)
    m = _BARE.match(text)
    return m.group(1) if m else None


def heading_number(text: str) -> str | None:
    """The number a heading starts with ("4.2 Selection" -> "4.2"), or None."""
    m = _HEADING_NUM.match(text.strip())
    return m.group(1) if m else None


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Split ``text`` into pieces of at most ``max_chars``, at sentence ends where possible, else at spaces."""
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    cur = ""
    for sent in _SENTENCE_END.split(text):
        while len(sent) > max_chars:  # one sentence longer than a chunk: cut at the last space that fits
            cut = sent.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            head, sent = sent[:cut].rstrip(), sent[cut:].lstrip()
            if cur:
                pieces.append(cur)
                cur = ""
            pieces.append(head)
        if cur and len(cur) + 1 + len(sent) > max_chars:
            pieces.append(cur)
            cur = sent
        else:
            cur = f"{cur} {sent}" if cur else sent
    if cur:
        pieces.append(cur)
    return pieces


def _top(num: str | None) -> int | None:
    return int(num.split(".")[0]) if num else None


class _Chunker:
    """Walks the blocks once, keeping the heading path, the current clause and a text buffer."""

    def __init__(self, chunk_chars: int) -> None:
        self.chunk_chars = chunk_chars
        self.headings: list[tuple[int, str]] = []
        self.clause: str | None = None  # the clause the buffer belongs to
        self.clause_is_heading = True  # clause came from a heading number, not from a clause paragraph
        self.buf: list[str] = []
        self.buf_page: int | None = None
        self.out: list[Chunk] = []

    @property
    def section(self) -> str:
        return " > ".join(t for lvl, t in self.headings if lvl >= 2)

    def _section_top(self) -> int | None:
        for lvl, t in self.headings:
            if lvl >= 2:
                return _top(heading_number(t))
        return None

    _KEEP = object()  # "clause not given": use the current clause

    def emit(self, text: str, kind: ChunkKind, page: int | None, clause: str | object | None = _KEEP,
             figure: str | None = None, metadata: dict[str, Any] | None = None) -> None:  # fmt: skip
        cl = self.clause if clause is _Chunker._KEEP else clause
        self.out.append(Chunk(id="", doc_id="", text=text, kind=kind, section=self.section,
                              clause=cl if isinstance(cl, str) else None, page=page, figure=figure,
                              metadata=metadata or {}))  # fmt: skip

    def flush(self) -> None:
        if self.buf:
            for piece in split_sentences("\n".join(self.buf), self.chunk_chars):
                self.emit(piece, "text", self.buf_page)
        self.buf, self.buf_page = [], None

    def heading(self, b: Heading) -> None:
        self.flush()
        if b.level <= 1:
            return
        self.headings = [(lvl, t) for lvl, t in self.headings if lvl < b.level] + [(b.level, b.text)]
        self.clause, self.clause_is_heading = heading_number(b.text), True

    def para(self, b: Para) -> None:
        num = match_clause(b.text)
        top = self._section_top()
        # A number at a paragraph start is a clause only if it fits the section ("1.5 m ..." in section 4 is not);
        # top+1 tolerates a next-section heading that the reader failed to detect (PDF, plain text).
        if num is not None and (top is None or _top(num) in (top, top + 1)):
            self.flush()
            self.clause, self.clause_is_heading = num, False
        elif self.buf and sum(map(len, self.buf)) + len(b.text) > self.chunk_chars and self.clause_is_heading:
            self.flush()  # unnumbered prose: pack paragraphs up to chunk_chars
        if not self.buf:
            self.buf_page = b.page
        self.buf.append(b.text)

    def table(self, b: Table) -> None:
        self.flush()
        header, rows = b.rows[0], b.rows[1:]
        head = ([b.caption] if b.caption else []) + [" | ".join(header)]
        row_clauses = [match_clause(r[0]) if r else None for r in rows]
        if rows and all(row_clauses):
            for r, num in zip(rows, row_clauses, strict=True):  # numbered rows are clauses: one chunk each
                self.emit("\n".join([*head, " | ".join(r)]), "table", b.page, clause=num)
            return
        group: list[str] = []
        for r in rows or [[]]:
            line = " | ".join(r)
            if group and len("\n".join(head + group)) + len(line) > self.chunk_chars:
                self.emit("\n".join(head + group), "table", b.page, clause=self._table_clause(row_clauses))
                group = []
            group.append(line)
        self.emit("\n".join(head + group).rstrip(), "table", b.page, clause=self._table_clause(row_clauses))

    def _table_clause(self, row_clauses: Sequence[str | None]) -> str | None:
        return next((c for c in row_clauses if c), self.clause)

    def figure(self, b: Figure) -> None:
        self.emit(b.caption, "figure", b.page, figure=b.path, metadata=dict(b.metadata))


def _refine_figure_clauses(chunks: list[Chunk]) -> None:
    """A figure belongs to the clause that cites it ("see Figure 1"), which often comes after the image.

    The first citing clause in the same section wins; without one the figure keeps its enclosing clause.
    """
    for ch in chunks:
        m = _FIGURE_REF.match(ch.text) if ch.kind == "figure" else None
        if not m:
            continue
        for other in chunks:
            if (
                other.kind == "text"
                and other.section == ch.section
                and other.clause
                and any(r.group(1) == m.group(1) for r in _FIGURE_REF.finditer(other.text))
            ):
                ch.clause = other.clause
                break


def chunk_blocks(blocks: Iterable[Block], *, doc_id: str, title: str = "", industry: str = "", source: str = "",
                 fmt: str = "md", chunk_chars: int = 1200) -> list[Chunk]:  # fmt: skip
    """Turn one document's blocks into chunks with stable ids (see the module docstring for the rules)."""
    c = _Chunker(chunk_chars)
    for b in blocks:
        if isinstance(b, Heading):
            c.heading(b)
        elif isinstance(b, Para):
            c.para(b)
        elif isinstance(b, Table):
            if b.rows:
                c.table(b)
        else:
            c.figure(b)
    c.flush()
    _refine_figure_clauses(c.out)
    counts: dict[str, int] = {}
    for ch in c.out:
        ch.doc_id, ch.title, ch.industry, ch.source = doc_id, title, industry, source
        ch.metadata["format"] = fmt
        digest = hashlib.sha1(ch.text.encode()).hexdigest()[:10]
        locator = f"{fmt}|{ch.section}|{ch.clause or ''}|{ch.kind}|{ch.figure or ''}|{digest}"
        ch.id = chunk_id(doc_id, locator, counts.get(locator, 0))
        counts[locator] = counts.get(locator, 0) + 1
    return c.out
