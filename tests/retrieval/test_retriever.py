"""Retriever: one hit per clause (Markdown and PDF copies of a document), still k hits when more exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fpdf import FPDF

from prg.retrieval.build import build_index, embed_chunks, open_embedder
from prg.retrieval.index import DocumentIndex
from prg.retrieval.retriever import Retriever
from prg.retrieval.types import Chunk

CLAUSES = {
    "4.1": "Before touching a busbar the absence of voltage shall be verified with a two-pole voltage detector.",
    "4.2": "An isolator shall be secured in the open position with a personal lockout padlock.",
    "4.3": "A continuity tester shall not be used to prove that a busbar is dead.",
}


def write_copies(folder: Path) -> None:
    """EP-SAF-001 as Markdown and as a PDF with the same title, section and clauses."""
    folder.mkdir(parents=True)
    md = "# EP-SAF-001 Switching rules\n\n## 4 Isolation\n\n" + "".join(f"{n} {t}\n\n" for n, t in CLAUSES.items())
    (folder / "EP-SAF-001.md").write_text(md)
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 7, "EP-SAF-001 Switching rules", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 7, "4 Isolation", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for n, t in CLAUSES.items():
        pdf.multi_cell(0, 5, f"{n} {t}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.output(str(folder / "EP-SAF-001.pdf"))


def test_markdown_and_pdf_copies_give_each_clause_once(tmp_path: Path) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    write_copies(docs)
    build_index([docs], idx, embedder="hashing")
    with DocumentIndex.open(idx) as index:
        both = {(c["clause"], c["format"]) for c in _rows(index)}
    assert {("4.1", "md"), ("4.1", "pdf")} <= both  # the index holds both copies of each clause
    r = Retriever.open(idx)
    try:
        hits = r.search("verify absence of voltage on the busbar with a voltage detector", k=3).hits
    finally:
        r.close()
    keys = [(h.chunk.doc_id, h.chunk.clause) for h in hits]
    assert len(keys) == 3 and len(set(keys)) == 3, keys
    assert keys[0] == ("EP-SAF-001", "4.1") and [h.rank for h in hits] == [1, 2, 3]


def _rows(index: DocumentIndex) -> list[dict[str, str]]:
    return [{"clause": c.clause or "", "format": c.metadata.get("format", "")} for c in index.store.iter_chunks()]


def test_over_fetch_returns_k_clauses_behind_many_copies(tmp_path: Path) -> None:
    """60 copies of one clause outrank everything else: the first candidate window holds one clause only."""
    emb = open_embedder("hashing")
    text = "wear nitrile gloves when decanting acids"
    chunks = [Chunk(id=f"copy{i:02d}", doc_id="CH-1", text=text, clause="3.1") for i in range(60)]
    chunks += [Chunk(id=f"other{i}", doc_id="CH-1", text=f"{t} gloves", clause=f"5.{i}")
               for i, t in enumerate(["cotton", "butyl", "leather", "latex", "neoprene", "vinyl"])]  # fmt: skip
    with DocumentIndex.create(tmp_path / "ix", dim=emb.dim, embedder_name="hashing") as index:
        index.add(chunks, embed_chunks(emb, chunks))
    r = Retriever.open(tmp_path / "ix")
    try:
        hits = r.search(text, k=5).hits
        everything = r.search(text, k=50).hits
    finally:
        r.close()
    assert hits[0].chunk.clause == "3.1"
    assert len(hits) == 5 and len({h.chunk.clause for h in hits}) == 5
    assert len(everything) == 7  # fewer than k exist: all of them, once each
    assert np.all(np.diff([h.score for h in everything]) <= 1e-9)
