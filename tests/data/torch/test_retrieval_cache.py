"""The retrieval cache: built from a retrieve_fn (fake and real), read back by RecordSource, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from prg.data.dataset import DatasetWriter, iter_records
from prg.data.schema import DatasetInfo
from prg.data.torch import RecordSource, RetrievalCacheError, build_retrieval_cache, cache_path, read_retrieval_cache
from tests.data.torch.conftest import FAKE_HITS, fake_retrieve


def test_layout_and_header(cached_dataset: Path) -> None:
    path = cache_path(cached_dataset)
    assert path == cached_dataset / "retrieval" / "default.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    header, entries = lines[0], lines[1:]
    assert header["prg_retrieval_cache"] == 1 and header["k"] == 3 and header["index"] == "fake"
    assert header["dataset"] == "tiny" and header["records"] == 3
    assert header["gold_recall"] == 1.0  # the gold clause EP-SAF-001 §4.2.1 is among the 3
    assert [e["id"] for e in entries] == ["r0", "r1", "r2"]
    assert entries[0]["documents"][1] == {
        "id": "EP-SAF-001 §4.2.1", "text": FAKE_HITS[1][1], "doc_id": "EP-SAF-001", "clause": "4.2.1",
    }  # fmt: skip
    assert entries[0]["documents"][2]["clause"] is None


def test_source_shows_what_retrieval_returned(cached_dataset: Path) -> None:
    src = RecordSource(cached_dataset)
    docs = src.get(0)["documents"]
    assert [(d.label, d.text) for d in docs] == FAKE_HITS  # the retriever's ranking, the wrong hit first
    assert [d.label for d in RecordSource(cached_dataset, k_docs=1).get(0)["documents"]] == ["CH-LAB-002 §3.1"]


def test_k_truncates_and_accepts_citation_objects(tiny_dataset: Path) -> None:
    def pipeline_like(q: str, img: np.ndarray, d: np.ndarray | None) -> tuple[list[SimpleNamespace], list[str]]:
        hits = [
            SimpleNamespace(id=f"DOC-{i} §1.{i}", text=f"t{i}", doc_id=f"DOC-{i}", clause=f"1.{i}") for i in range(5)
        ]
        return hits, ["voltage detector"]  # PRGPipeline.retrieve's (hits, tools seen)

    out = build_retrieval_cache(tiny_dataset, pipeline_like, k=2, out_path=tiny_dataset / "retrieval" / "k2.jsonl")
    cache = read_retrieval_cache(out)
    assert cache.header["k"] == 2 and cache.header["gold_recall"] == 0.0
    record = next(iter_records(tiny_dataset))
    assert [d["id"] for d in cache.documents(record)] == ["DOC-0 §1.0", "DOC-1 §1.1"]
    assert RecordSource(tiny_dataset, retrieval="k2").get(0)["documents"][1].label == "DOC-1 §1.1"
    with pytest.raises(TypeError, match="label, text"):
        build_retrieval_cache(tiny_dataset, lambda q, i, d: [42], k=2, progress=False)


def test_missing_cache_names_file_and_command(tiny_dataset: Path) -> None:
    with pytest.raises(RetrievalCacheError) as e:
        RecordSource(tiny_dataset)
    msg = str(e.value)
    assert str(tiny_dataset / "retrieval" / "default.jsonl") in msg
    assert "prg data retrieval-cache" in msg and "--index" in msg
    assert len(RecordSource(tiny_dataset, retrieval=None)) == 3  # no documents asked for: no cache needed


def test_record_missing_or_stale(cached_dataset: Path) -> None:
    path = cache_path(cached_dataset)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # drop r2
    with pytest.raises(RetrievalCacheError, match=r"no entry for record 'r2'.*rebuild"):
        RecordSource(cached_dataset)
    entry = json.loads(lines[1])
    entry["q"] = "000000000000"
    path.write_text("\n".join([lines[0], json.dumps(entry), *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(RetrievalCacheError, match="different instruction"):
        RecordSource(cached_dataset)
    path.write_text('{"not": "a cache"}\n', encoding="utf-8")
    with pytest.raises(RetrievalCacheError, match="not a version-1"):
        read_retrieval_cache(path)


DOCS = {
    "EP-SAF-001.md": "# EP-SAF-001 Safe isolation\n\n## 4 Testing\n\n4.2.1 Before touching a busbar, verify the "
    "absence of voltage with a tested voltage detector.\n\n4.3 Prove the detector on a known live source.\n",
    "CH-LAB-002.md": "# CH-LAB-002 Acids\n\n## 3 Carrying\n\n3.1 Carry acid bottles in a bottle carrier, never by "
    "the neck.\n\n3.2 Wear a face shield when decanting concentrated acids.\n",
}


def test_with_a_real_index(tiny_dataset: Path, tmp_path: Path) -> None:
    """The trainer's closure over PRGPipeline.retrieve on a hashing-embedder index."""
    from prg.pipeline import PRGPipeline
    from prg.retrieval.build import build_index
    from prg.retrieval.retriever import Retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder="hashing")
    pipe = PRGPipeline(model=None, retriever=Retriever.open(tmp_path / "index"))
    try:
        out = build_retrieval_cache(
            tiny_dataset, lambda q, img, d: pipe.retrieve(q, img, d, k=3), 3, index=str(tmp_path / "index")
        )
        expected = [(c.id, c.text) for c in pipe.retrieve(next(iter_records(tiny_dataset)).instruction, k=3)[0]]
    finally:
        pipe.close()
    cache = read_retrieval_cache(out)
    assert cache.header["index"] == str(tmp_path / "index")
    got = [(d.label, d.text) for d in RecordSource(tiny_dataset).get(0)["documents"]]
    assert got == expected and 1 <= len(got) <= 3
    assert any(label.startswith("EP-SAF-001") for label, _ in got)
    assert any(label.startswith("CH-LAB-002") for label, _ in got)  # the noise the model must learn to ignore

    # the command line the missing-cache error names builds the same cache
    from prg.data.torch.build_cache import main

    assert main([str(tiny_dataset), "--index", str(tmp_path / "index"), "-k", "3", "--name", "cli"]) == 0
    cli = read_retrieval_cache(cache_path(tiny_dataset, "cli"))
    assert cli.entries == cache.entries and cli.header["k"] == 3
    # and so does the prg command it names
    from typer.testing import CliRunner

    from prg.cli.main import app

    args = [
        "data",
        "retrieval-cache",
        str(tiny_dataset),
        "--index",
        str(tmp_path / "index"),
        "-k",
        "3",
        "--name",
        "prg",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert read_retrieval_cache(cache_path(tiny_dataset, "prg")).entries == cache.entries


def test_build_is_atomic(tiny_dataset: Path) -> None:
    calls = 0

    def failing(q: str, img: np.ndarray, d: np.ndarray | None) -> list[tuple[str, str]]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("index went away")
        return fake_retrieve(q, img, d)

    with pytest.raises(RuntimeError):
        build_retrieval_cache(tiny_dataset, failing, k=3, progress=False)
    assert not cache_path(tiny_dataset).exists()  # nothing half-written


def test_empty_dataset_and_bad_k(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "empty", DatasetInfo(name="empty")):
        pass
    path = build_retrieval_cache(tmp_path / "empty", fake_retrieve, k=1, progress=False)
    assert read_retrieval_cache(path).header["records"] == 0
    with pytest.raises(ValueError, match="k must be"):
        build_retrieval_cache(tmp_path / "empty", fake_retrieve, k=0)
