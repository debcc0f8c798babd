"""The PRG-Synth corpus ingests cleanly and every clause that states a rule is a chunk (retrieval is scored on them)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from prg.data.synth.corpus import build_corpus, rule_citations, write_corpus
from prg.retrieval.ingest import INDUSTRIES, ingest_path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    docs = build_corpus(0)
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(docs, out)
    return out, docs


@pytest.mark.slow
def test_corpus_ingests_with_every_rule_clause(corpus: tuple[Path, list], tmp_path: Path) -> None:
    folder, docs = corpus
    res = ingest_path(folder, figure_dir=tmp_path / "figs")
    assert res.skipped == [] and res.warnings == []
    index = json.loads((folder / "index.json").read_text())["documents"]
    n_pdf = sum(f.endswith(".pdf") for d in index for f in d["files"])
    assert len(res.documents) == len(docs) + n_pdf
    assert {d.industry for d in res.documents} == set(INDUSTRIES)
    assert {(d.doc_id, d.title) for d in res.documents} == {(d.doc_id, d.title) for d in docs}

    wanted = {pair for pairs in rule_citations(docs).values() for pair in pairs}
    have = {(c.doc_id, c.clause) for c in res.chunks}
    assert wanted and wanted <= have
    # the same holds for the PDF rendering of each document that has one
    pdf_docs = {d.doc_id for d in res.documents if d.pages is not None}
    have_pdf = {(c.doc_id, c.clause) for c in res.chunks if c.metadata["format"] == "pdf"}
    assert {p for p in wanted if p[0] in pdf_docs} <= have_pdf
    # every clause of every document, rule or not, starts a chunk (Markdown)
    clauses = {(d.doc_id, c.number) for d in docs for c in d.clauses}
    assert clauses <= {(c.doc_id, c.clause) for c in res.chunks if c.metadata["format"] == "md"}

    assert len({c.id for c in res.chunks}) == len(res.chunks)
    kinds = Counter((c.kind, c.metadata["format"]) for c in res.chunks)
    n_figs = sum(len(d.figures) for d in docs)
    assert kinds["figure", "md"] == n_figs
    assert kinds["figure", "pdf"] == sum(len(d.figures) for d in docs if d.pdf)
    assert all((tmp_path / "figs" / c.figure).is_file() for c in res.chunks if c.kind == "figure" and c.figure)
    assert all(c.page is not None for c in res.chunks if c.metadata["format"] == "pdf")
