"""BM25 keyword search: exact terms rank first, filters, save/load without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prg.retrieval.lexical import LexicalIndex
from prg.retrieval.types import Chunk

TEXTS = [
    ("Apply lockout tagout before servicing the conveyor.", "manufacturing"),
    ("Wear nitrile gloves when handling the solvent.", "chemical"),
    ("The machine guard must be closed during operation.", "manufacturing"),
    ("Verify absence of voltage with a tested voltage detector.", "electric_power"),
    ("Store the solvent in a ventilated flammables cabinet.", "chemical"),
]


@pytest.fixture
def index() -> LexicalIndex:
    chunks = [Chunk(id=f"c{i}", doc_id=f"d{i % 2}", text=t, industry=ind, page=i) for i, (t, ind) in enumerate(TEXTS)]
    return LexicalIndex.build(chunks)


def test_exact_word_ranks_first(index: LexicalIndex) -> None:
    hits = index.search("Voltage DETECTOR", 3)
    assert hits[0].chunk.id == "c3"
    assert len(hits) == 1  # only chunks sharing a term are returned
    assert hits[0].source == "lexical" and hits[0].rank == 1 and hits[0].score > 0
    solvent = index.search("solvent", 5)
    assert {h.chunk.id for h in solvent} == {"c1", "c4"}
    assert [h.rank for h in solvent] == [1, 2]


def test_stopwords_and_unknown_words_find_nothing(index: LexicalIndex) -> None:
    assert index.search("the of with", 5) == []
    assert index.search("zeppelin", 5) == []
    assert LexicalIndex.build([]).search("solvent", 5) == []


def test_filters(index: LexicalIndex) -> None:
    assert [h.chunk.id for h in index.search("solvent", 5, {"industry": "chemical", "page": 4})] == ["c4"]
    assert index.search("solvent", 5, {"industry": "manufacturing"}) == []
    hits = index.search("the solvent conveyor guard", 5, {"industry": ["manufacturing", "electric_power"]})
    assert {h.chunk.id for h in hits} == {"c0", "c2"}
    with pytest.raises(ValueError):
        index.search("solvent", 5, {"body": "x"})


def test_save_load_round_trip(index: LexicalIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "lex")
    # every array bm25s wrote loads without pickle
    for f in (tmp_path / "lex").glob("*.npy"):
        np.load(f, allow_pickle=False)
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert len(loaded) == len(index)
    for q in ["solvent", "lockout conveyor", "voltage"]:
        a, b = index.search(q, 5), loaded.search(q, 5)
        assert [(h.chunk, h.score) for h in a] == [(h.chunk, pytest.approx(h.score)) for h in b]
    assert loaded.chunks() == index.chunks()
