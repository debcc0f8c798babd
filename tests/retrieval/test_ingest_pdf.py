"""PDF ingestion on a PDF written with fpdf2: headings, clauses over two pages, a table and a figure."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from PIL import Image

from prg.retrieval.ingest import ingest_path


def make_pdf(path: Path, image: Path, extra: str = "") -> None:
    """Title, "1 Scope" with 1.1-1.2, "2 Tools" with 2.1 (+ figure) on page 1, 2.2 and a table on page 2."""
    pdf = FPDF(format="A4")
    pdf.add_page()

    def head(text: str, size: float) -> None:
        pdf.set_font("Helvetica", "B", size)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    def para(text: str, style: str = "") -> None:
        pdf.set_font("Helvetica", style, 10)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT", markdown=True)
        pdf.ln(3)

    head("ME-LFT-002 Lifting equipment rules", 15)
    head("1 Scope", 12)
    para("**1.1** These rules apply to all lifting operations on site." + extra)
    para("**1.2** They apply to contractors as well.")
    head("2 Selection of lifting gear", 12)
    para("**2.1** A rated shackle shall be used to join a sling to the load (see Figure 1).")
    pdf.image(str(image), w=40)
    para("Figure 1: rated bow shackle with the working load limit stamped", "I")
    pdf.add_page()
    para("**2.2** Slings shall be inspected before each use and withdrawn when damaged.")
    pdf.set_font("Helvetica", "I", 10)
    pdf.multi_cell(0, 5, "Table 1: gear by load", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    with pdf.table(first_row_as_headings=True) as table:
        for row in (
            ("Item", "Load", "Gear"),
            ("2.3", "up to 1 t", "webbing sling"),
            ("2.4", "over 1 t", "chain sling"),
        ):
            r = table.row()
            for cell in row:
                r.cell(cell)
    pdf.output(str(path))


def _image(tmp_path: Path) -> Path:
    img = tmp_path / "shackle.png"
    Image.new("RGB", (120, 80), (30, 90, 200)).save(img)
    return img


def test_pdf_pages_tables_figures(tmp_path: Path) -> None:
    src = tmp_path / "docs" / "mechanical"
    src.mkdir(parents=True)
    make_pdf(src / "ME-LFT-002.pdf", _image(tmp_path))
    res = ingest_path(tmp_path / "docs", figure_dir=tmp_path / "figs")
    assert res.skipped == [] and res.warnings == []
    (doc,) = res.documents
    assert (doc.doc_id, doc.title, doc.industry, doc.pages) == ("ME-LFT-002", "Lifting equipment rules",
                                                                "mechanical", 2)  # fmt: skip
    text = {c.clause: c for c in res.chunks if c.kind == "text"}
    assert set(text) == {"1.1", "1.2", "2.1", "2.2"}
    assert (text["1.1"].page, text["2.2"].page) == (1, 2)
    assert text["1.2"].section == "1 Scope" and text["2.2"].section == "2 Selection of lifting gear"
    assert text["2.2"].citation() == "ME-LFT-002 §2.2 (p. 2)"
    assert all(c.metadata["format"] == "pdf" for c in res.chunks)
    tables = [c for c in res.chunks if c.kind == "table"]
    assert [(t.clause, t.page) for t in tables] == [("2.3", 2), ("2.4", 2)]
    assert tables[1].text.splitlines() == [
        "Table 1: gear by load",
        "Item | Load | Gear",
        "2.4 | over 1 t | chain sling",
    ]
    (fig,) = [c for c in res.chunks if c.kind == "figure"]
    assert fig.text == "Figure 1: rated bow shackle with the working load limit stamped"
    assert (fig.page, fig.clause) == (1, "2.1")
    assert fig.figure is not None and fig.figure.startswith("ME-LFT-002_")
    with Image.open(tmp_path / "figs" / fig.figure) as im:
        assert im.format == "PNG" and im.width > 50 and im.height > 30
        r, _, b = im.convert("RGB").getpixel((im.width // 2, im.height // 2))  # the blue image, not the page
        assert b > 150 and r < 100
    # the caption is the figure's text, not also a paragraph
    assert sum("bow shackle" in c.text for c in res.chunks) == 1


def test_pdf_ids_stable_and_text_sensitive(tmp_path: Path) -> None:
    img = _image(tmp_path)
    make_pdf(tmp_path / "a.pdf", img)
    first, second = ingest_path(tmp_path / "a.pdf"), ingest_path(tmp_path / "a.pdf")
    assert [c.id for c in first.chunks] == [c.id for c in second.chunks]
    make_pdf(tmp_path / "a.pdf", img, extra=" Also cranes.")
    changed = ingest_path(tmp_path / "a.pdf")
    before = {c.clause: c.id for c in first.chunks if c.kind == "text"}
    after = {c.clause: c.id for c in changed.chunks if c.kind == "text"}
    assert before["1.1"] != after["1.1"] and before["2.2"] == after["2.2"]
