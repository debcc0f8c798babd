"""DocumentIndex: add/reopen/search, replacement, crash safety and snapshot isolation for readers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

import prg.retrieval.index as index_mod
from prg.retrieval.index import DocumentIndex
from prg.retrieval.types import Chunk, Hit

DIM = 8
RNG = np.random.default_rng(0)


def doc(doc_id: str, texts: Sequence[str], industry: str = "chemical") -> tuple[list[Chunk], np.ndarray]:
    """Chunks of one document with random unit vectors."""
    chunks = [Chunk(id=f"{doc_id}-{i}", doc_id=doc_id, text=t, industry=industry) for i, t in enumerate(texts)]
    vecs = RNG.standard_normal((len(chunks), DIM)).astype(np.float32)
    return chunks, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def ids(hits: Sequence[Hit]) -> list[str]:
    return [h.chunk.id for h in hits]


@pytest.fixture(params=["lancedb", "qdrant"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_add_reopen_search(tmp_path: Path, backend: str) -> None:
    a, va = doc("A", ["wear nitrile gloves with solvents", "ventilate the room"])
    b, vb = doc("B", ["lockout tagout the breaker", "test for absence of voltage"], industry="electric")
    idx = DocumentIndex.create(tmp_path / "ix", DIM, backend=backend, embedder_name="test-embedder")
    idx.add(a, va)
    idx.add(b, vb)
    idx.close()

    with DocumentIndex.open(tmp_path / "ix") as idx:
        assert ids(idx.search_dense(vb[1], 1)) == ["B-1"]
        assert ids(idx.search_lexical("breaker lockout", 3)) == ["B-0"]
        assert ids(idx.search_dense(vb[1], 5, {"industry": "chemical"})) and all(
            h.chunk.doc_id == "A" for h in idx.search_dense(vb[1], 5, {"industry": "chemical"})
        )
        fused = idx.hybrid("absence of voltage", vb[1], k=2)
        assert fused[0].chunk.id == "B-1" and fused[0].source == "fused"  # first in both rankings
        st = idx.stats()
        assert st["chunks"] == 4 and st["documents"] == 2
        assert st["industries"] == {"chemical": 2, "electric": 2}
        assert st["backend"] == backend and st["embedder"] == "test-embedder"
        assert st["bytes_on_disk"] > 0 and st["bytes_per_chunk"] > 0
        assert set(idx.documents()) == {"A", "B"} and len(idx.documents()["A"]["sha256"]) == 64


def test_readding_a_document_replaces_its_chunks(tmp_path: Path, backend: str) -> None:
    idx = DocumentIndex.create(tmp_path / "ix", DIM, backend=backend)
    a, va = doc("A", ["old clause one", "old clause two", "old clause three"])
    idx.add(a, va)
    sha_old = idx.documents()["A"]["sha256"]
    a2, va2 = doc("A", ["new clause"])
    idx.add(a2, va2)
    assert idx.store.count() == 1
    assert idx.search_lexical("old", 5) == []
    assert ids(idx.search_lexical("new", 5)) == ["A-0"]
    assert idx.get(["A-0"])[0].text == "new clause"
    assert idx.documents()["A"]["chunk_ids"] == ["A-0"] and idx.documents()["A"]["sha256"] != sha_old
    assert idx.remove(["A"]) == 1
    assert idx.stats()["chunks"] == 0 and idx.store.count() == 0
    idx.close()


def test_hybrid_reranker_hook(tmp_path: Path) -> None:
    idx = DocumentIndex.create(tmp_path / "ix", DIM)
    a, va = doc("A", ["gloves", "goggles", "helmet"])
    idx.add(a, va)
    calls = []

    def reverse(query: str, hits: Sequence[Hit]) -> list[Hit]:
        calls.append(query)
        return list(reversed(hits))

    plain = idx.hybrid("goggles", va[0], k=3)
    reranked = idx.hybrid("goggles", va[0], k=3, reranker=reverse)
    assert calls == ["goggles"] and ids(reranked) == ids(plain)[::-1]


def test_crash_before_publish_keeps_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ix"
    idx = DocumentIndex.create(root, DIM)
    a, va = doc("A", ["nitrile gloves"])
    idx.add(a, va)
    real_replace = os.replace

    def crash_on_current(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "CURRENT":
            raise KeyboardInterrupt("killed before the CURRENT swap")
        real_replace(src, dst)

    monkeypatch.setattr(index_mod.os, "replace", crash_on_current)
    b, vb = doc("B", ["crashed write about respirators"])
    with pytest.raises(KeyboardInterrupt):
        idx.add(b, vb)
    monkeypatch.setattr(index_mod.os, "replace", real_replace)
    assert idx.store.count() == 1 and set(idx.documents()) == {"A"}  # the failed writer reads the old index too

    # the vector store already holds B's rows and the new snapshot folder exists, but CURRENT was not moved.
    old = DocumentIndex.open(root)
    assert old.stats()["chunks"] == 1 and set(old.documents()) == {"A"}
    assert old.store.count() == 1 and old.search_lexical("respirators", 5) == []
    assert ids(old.search_dense(vb[0], 5)) == ["A-0"]
    # the next writer starts from the published state: the crashed rows do not come back.
    c, vc = doc("C", ["goggles"])
    old.add(c, vc)
    fresh = DocumentIndex.open(root)
    assert sorted(ids(fresh.search_dense(vc[0], 5))) == ["A-0", "C-0"]
    assert set(fresh.documents()) == {"A", "C"}
    assert len(list((root / "snapshots").iterdir())) <= 2  # old and crashed snapshot folders were cleaned


def test_reader_keeps_its_snapshot_while_another_writes(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    writer = DocumentIndex.create(root, DIM)
    a, va = doc("A", ["alpha gloves", "alpha goggles"])
    writer.add(a, va)

    reader = DocumentIndex.open(root)
    other_writer = DocumentIndex.open(root)
    b, vb = doc("B", ["beta gloves"])
    other_writer.add(b, vb)
    a2, va2 = doc("A", ["alpha replaced"])
    other_writer.add(a2, va2)
    other_writer.add(*doc("C", ["gamma"]))  # a third write: the reader's snapshot folder is cleaned up

    # the first reader still sees exactly the old index, in every part
    assert reader.store.count() == 2 and reader.stats()["chunks"] == 2
    assert sorted(ids(reader.search_dense(vb[0], 10))) == ["A-0", "A-1"]
    assert ids(reader.search_lexical("gloves", 10)) == ["A-0"]
    assert reader.get(["A-1"])[0].text == "alpha goggles"
    assert set(reader.documents()) == {"A"}
    # a newly opened reader sees the new one
    new = DocumentIndex.open(root)
    assert new.store.count() == 3 and set(new.documents()) == {"A", "B", "C"}
    assert sorted(ids(new.search_lexical("gloves", 10))) == ["B-0"]
    assert new.get(["A-1"]) == []
    # and the stale instance, asked to write, moves onto the latest snapshot first (no lost updates)
    reader.remove(["C"])
    assert set(DocumentIndex.open(root).documents()) == {"A", "B"}


def test_create_refuses_existing_index(tmp_path: Path) -> None:
    DocumentIndex.create(tmp_path / "ix", DIM).close()
    with pytest.raises(FileExistsError):
        DocumentIndex.create(tmp_path / "ix", DIM)


def test_compact_keeps_the_index_searchable(tmp_path: Path) -> None:
    idx = DocumentIndex.create(tmp_path / "ix", DIM)
    a, va = doc("A", ["one", "two"])
    idx.add(a, va)
    idx.add(*doc("A", ["three"]))
    idx.add(*doc("B", ["four"]))
    with pytest.warns(UserWarning, match="removes every version"):  # lancedb's warning for age 0
        idx.compact(older_than=timedelta(0))
    again = DocumentIndex.open(tmp_path / "ix")
    assert again.store.count() == 2 and sorted(ids(again.search_lexical("three four", 5))) == ["A-0", "B-0"]
    assert again.stats()["snapshot"] == idx.stats()["snapshot"]
