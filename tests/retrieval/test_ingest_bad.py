"""Bad input never stops a folder ingest: each bad file is skipped or warned, the good ones are ingested."""

from __future__ import annotations

import os
from pathlib import Path

from fpdf import FPDF
from PIL import Image

from prg.retrieval.ingest import ingest_path
from prg.retrieval.ingest_pdf import parse_pdf


def _pdf(path: Path, pages: int = 1, encrypt: bool = False, noise_image: Path | None = None) -> None:
    pdf = FPDF()
    if encrypt:
        pdf.set_encryption(owner_password="owner", user_password="user")
    for p in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 5, f"{p + 1}.1 Clause on page {p + 1}.", new_x="LMARGIN", new_y="NEXT")
        if noise_image is not None:
            pdf.image(str(noise_image), w=60)
    pdf.output(str(path))


def test_bad_inputs_are_skipped_or_warned(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.md").write_text("# Good\n\n## 1 Scope\n\n1.1 Good text.\n", encoding="utf-8")
    _pdf(d / "good.pdf")
    _pdf(d / "encrypted.pdf", encrypt=True)
    (d / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog>>\ntruncated" + os.urandom(200))
    (d / "empty.md").write_bytes(b"")
    (d / "blank.txt").write_text("  \n\n \n", encoding="utf-8")
    (d / "junk.md").write_bytes(os.urandom(3000) + b"\x00" * 10)
    (d / "controls.txt").write_bytes(bytes(range(1, 9)) * 200)  # no NUL, but nothing but control bytes
    latin = "Überprüfung der Spannungsfreiheit: die Prüfung erfolgt zweipolig. " * 5
    (d / "latin1.txt").write_bytes(("Prüfregeln\n\n1 Geltung\n\n1.1 " + latin + "\n").encode("cp1252"))
    (d / "huge.txt").write_text("Huge\n\n" + "1.1 " + "All work shall stop. " * 3000, encoding="utf-8")
    noise = tmp_path / "noise.png"
    Image.frombytes("RGB", (160, 160), os.urandom(160 * 160 * 3)).save(noise)
    _pdf(d / "big.pdf", noise_image=noise)
    (d / "notes.docx").write_bytes(b"PK\x03\x04 not supported")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")

    res = ingest_path(d, max_bytes=40_000)
    skipped = {Path(p).name: reason for p, reason in res.skipped}
    assert set(skipped) == {"encrypted.pdf", "corrupt.pdf", "empty.md", "blank.txt", "junk.md", "controls.txt",
                            "big.pdf", "notes.docx", "broken.png"}  # fmt: skip
    assert skipped["encrypted.pdf"].startswith("encrypted PDF")
    assert skipped["corrupt.pdf"].startswith("unreadable PDF")
    assert skipped["empty.md"] == skipped["blank.txt"] == "empty file"
    assert skipped["junk.md"].startswith("binary") and skipped["controls.txt"].startswith("binary")
    assert "max_bytes" in skipped["big.pdf"]
    assert "unsupported" in skipped["notes.docx"] and "unreadable image" in skipped["broken.png"]

    assert sorted(Path(doc.source).name for doc in res.documents) == ["good.md", "good.pdf", "huge.txt", "latin1.txt"]
    assert any("latin1.txt" in w and "not UTF-8" in w for w in res.warnings)
    assert any("huge.txt" in w and "truncated" in w for w in res.warnings)
    latin_chunks = [c for c in res.chunks if c.doc_id == "latin1"]
    assert latin_chunks[0].clause == "1.1" and "Überprüfung der Spannungsfreiheit" in latin_chunks[0].text
    huge_text = "".join(c.text for c in res.chunks if c.doc_id == "huge")
    assert 30_000 < len(huge_text) <= 40_000
    assert {c.doc_id for c in res.chunks} == {"good", "huge", "latin1"}  # good.md and good.pdf share "good"


def test_pdf_page_limit_and_missing_path(tmp_path: Path) -> None:
    _pdf(tmp_path / "long.pdf", pages=3)
    doc = parse_pdf(tmp_path / "long.pdf", doc_id="long", figure_dir=None, max_pages=2)
    assert doc.pages == 3 and any("only the first 2" in w for w in doc.warnings)
    assert {getattr(b, "page", None) for b in doc.blocks} <= {1, 2}
    res = ingest_path(tmp_path / "nope")
    assert res.chunks == [] and res.skipped == [(str(tmp_path / "nope"), "no such file or folder")]
