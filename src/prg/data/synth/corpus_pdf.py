"""Render the corpus' own Markdown subset (headings, paragraphs, tables, figures) to PDF with fpdf2.

Only the subset that :mod:`prg.data.synth.corpus` writes is supported; fpdf2 has no Markdown-document renderer, so
this small block parser maps each block to fpdf2 calls. fpdf2 core fonts are latin-1, so text is sanitised first.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["markdown_to_pdf", "to_latin1"]

_REPLACE = {"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "≥": ">=", "≤": "<=", "→": "->", "Ω": "ohm",
            "…": "..."}  # fmt: skip
_SINGLE_STAR = re.compile(r"(?<!\*)\*(?!\*)")
_IMAGE_RE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")


def to_latin1(text: str) -> str:
    """Replace characters that the PDF core fonts cannot encode ('§' and '°' are latin-1 and stay)."""
    for a, b in _REPLACE.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def _plain(text: str) -> str:
    return to_latin1(text.replace("**", "").replace("*", ""))


def markdown_to_pdf(markdown: str, path: str | Path, base_dir: str | Path = ".") -> None:
    """Write ``markdown`` to a PDF at ``path``; image paths are resolved against ``base_dir``."""
    from fpdf import FPDF  # optional dependency: only needed when PDFs are written

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            pdf.set_font("Helvetica", "B", {1: 15, 2: 12}.get(level, 10.5))
            pdf.multi_cell(0, 7, _plain(line.lstrip("# ")), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif line.startswith("|"):
            rows = [line]
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            cells = [[_plain(c.strip()) for c in r.strip("|").split("|")] for r in rows if not r.startswith("|---")]
            pdf.set_font("Helvetica", size=8.5)
            with pdf.table(first_row_as_headings=True, line_height=5) as table:
                for r in cells:
                    row = table.row()
                    for c in r:
                        row.cell(c)
            pdf.ln(2)
        elif m := _IMAGE_RE.match(line):
            image = Path(base_dir) / m.group(2)
            if image.exists():
                pdf.image(str(image), w=45)
        else:
            bold = line.startswith("**")
            # fpdf2's markdown mode knows **bold** only; single-star emphasis is dropped.
            text = _SINGLE_STAR.sub("", line) if bold else line.replace("*", "")
            pdf.set_font("Helvetica", "I" if line.startswith("*") and not bold else "", 10)
            pdf.multi_cell(0, 5, to_latin1(text), new_x="LMARGIN", new_y="NEXT", markdown=bold)
            pdf.ln(1.5)
    pdf.output(str(path))
