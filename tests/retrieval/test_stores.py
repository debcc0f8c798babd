"""One interface suite for every vector store backend (LanceDB embedded, Qdrant local mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from prg.retrieval.store import STORES, open_store
from prg.retrieval.store_lancedb import LanceDBStore, where_clause
from prg.retrieval.types import Chunk, VectorStore

DIM = 4
OpenFn = Callable[[], VectorStore]


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def make_chunks() -> tuple[list[Chunk], np.ndarray]:
    """Five chunks in two documents, each pointing near one axis (hand-made so cosine order is known)."""
    chunks = [
        Chunk(id="a1", doc_id="A", text="alpha one", industry="chemical", kind="text", page=1, metadata={"k": 1}),
        Chunk(id="a2", doc_id="A", text="alpha two", industry="chemical", kind="table", page=2, clause="4.2"),
        Chunk(id="b1", doc_id="B", text="beta one", industry="electric", kind="text", page=1),
        Chunk(id="b2", doc_id="B", text="beta two", industry="electric", kind="figure", page=3, figure="f.png"),
        Chunk(id="c1", doc_id="C's", text="quote doc", industry="o'brien", kind="text", page=5),
    ]
    vecs = np.stack([unit(1, 0, 0, 0), unit(1, 0.5, 0, 0), unit(0, 1, 0, 0), unit(0, 1, 0.3, 0), unit(0, 0, 0, 1)])
    return chunks, vecs


@pytest.fixture(params=["lancedb", "qdrant"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenFn]:
    """A function opening the backend's store at one folder (call again to reopen it)."""
    opened: list[VectorStore] = []

    def _open() -> VectorStore:
        for s in opened:  # Qdrant local mode locks its folder: close before reopening
            s.close()
        opened.clear()
        store = open_store(request.param, path=tmp_path / "store", dim=DIM)
        opened.append(store)
        return store

    yield _open
    for s in opened:
        s.close()


def test_registry_knows_both_backends() -> None:
    assert set(STORES) >= {"lancedb", "qdrant"}
    with pytest.raises(ValueError, match="unknown store backend"):
        open_store("nope", dim=2)


def test_upsert_get_count(opener: OpenFn) -> None:
    store = opener()
    assert isinstance(store, VectorStore)
    chunks, vecs = make_chunks()
    store.upsert(chunks, vecs)
    assert store.count() == 5
    got = store.get(["b2", "zzz", "a2"])
    assert [c.id for c in got] == ["b2", "a2"]
    assert got[0] == chunks[3]
    assert got[1].clause == "4.2" and got[1].kind == "table"
    assert store.get(["a1"])[0].metadata == {"k": 1}
    assert sorted(c.id for c in store.iter_chunks()) == ["a1", "a2", "b1", "b2", "c1"]


def test_upsert_replaces_by_id(opener: OpenFn) -> None:
    store = opener()
    chunks, vecs = make_chunks()
    store.upsert(chunks, vecs)
    new = Chunk(id="a1", doc_id="A", text="alpha one, revised", industry="chemical")
    store.upsert([new], unit(0, 0, 1, 0)[None])
    assert store.count() == 5
    assert store.get(["a1"])[0].text == "alpha one, revised"
    assert store.search(unit(0, 0, 1, 0), 1)[0].chunk.id == "a1"  # the vector was replaced too


def test_delete_documents(opener: OpenFn) -> None:
    store = opener()
    chunks, vecs = make_chunks()
    store.upsert(chunks, vecs)
    assert store.delete_documents(["A", "C's", "missing"]) == 3
    assert store.count() == 2
    assert store.get(["a1", "b1"]) == [chunks[2]]
    assert store.delete_documents(["A"]) == 0


def test_search_order_cosine(opener: OpenFn) -> None:
    store = opener()
    chunks, vecs = make_chunks()
    store.upsert(chunks, vecs)
    hits = store.search(unit(1, 0.1, 0, 0), 3)
    assert [h.chunk.id for h in hits] == ["a1", "a2", "b1"]
    assert [h.rank for h in hits] == [1, 2, 3]
    expected = vecs[:3] @ unit(1, 0.1, 0, 0)
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-4)
    # cosine ignores the query's length
    assert [h.chunk.id for h in store.search(5 * unit(0, 1, 0.3, 0), 2)] == ["b2", "b1"]


def test_filters(opener: OpenFn) -> None:
    store = opener()
    chunks, vecs = make_chunks()
    store.upsert(chunks, vecs)
    q = unit(1, 0, 0, 0)
    ids = lambda hits: [h.chunk.id for h in hits]  # noqa: E731
    assert set(ids(store.search(q, 10, {"industry": "electric"}))) == {"b1", "b2"}
    assert set(ids(store.search(q, 10, {"kind": ["table", "figure"]}))) == {"a2", "b2"}
    assert ids(store.search(q, 10, {"industry": "chemical", "page": 2})) == ["a2"]
    assert ids(store.search(q, 10, {"doc_id": "C's"})) == ["c1"]  # quotes in values are escaped
    assert ids(store.search(q, 10, {"industry": "o'brien", "kind": ["text"]})) == ["c1"]
    assert store.search(q, 10, {"doc_id": []}) == []
    with pytest.raises(ValueError, match="cannot filter"):
        store.search(q, 10, {"text; DROP TABLE": "x"})


def test_persistence(opener: OpenFn) -> None:
    store = opener()
    chunks, vecs = make_chunks()
    store.upsert(chunks, vecs)
    reopened = opener()
    assert reopened.count() == 5
    assert reopened.search(unit(0, 0, 0, 1), 1)[0].chunk.id == "c1"


def test_where_clause_escapes_and_quotes() -> None:
    assert where_clause({"doc_id": "x' OR '1'='1"}) == "`doc_id` = 'x'' OR ''1''=''1'"
    assert where_clause({"page": [1, 2], "kind": "text"}) == "`page` IN (1, 2) AND `kind` = 'text'"
    with pytest.raises(TypeError):
        where_clause({"page": 1.5})  # type: ignore[dict-item]


def test_lancedb_ann_index_and_exact_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, dim = 600, 16
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [Chunk(id=f"c{i}", doc_id=f"d{i // 10}", text="", industry="ab"[i % 2]) for i in range(n)]
    store = LanceDBStore(tmp_path / "db", dim, ann_threshold=500, nprobes=4)
    store.upsert(chunks[:400], vecs[:400])
    store.maintain()
    assert not store.has_ann_index()  # below the threshold: exact scan only
    store.upsert(chunks[400:], vecs[400:])
    store.maintain()
    assert store.has_ann_index() and store.stats()["ann_index"]
    q = vecs[123]
    exact = store.search_exact(q, 10)
    truth = np.argsort(-(vecs @ q))[:10]
    assert [h.chunk.id for h in exact] == [f"c{i}" for i in truth]
    ann = store.search(q, 10)
    assert ann[0].chunk.id == "c123"  # a stored vector finds itself through the index
    filtered = store.search(q, 5, {"industry": "a"})
    assert all(h.chunk.industry == "a" for h in filtered) and len(filtered) == 5
