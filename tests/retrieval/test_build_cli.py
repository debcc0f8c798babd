"""Index build/add/remove/query/stats through the CLI and the library, on a small corpus the test writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prg.cli.main import app
from prg.retrieval.build import build_index
from prg.retrieval.retriever import Retriever, expand_query

runner = CliRunner()

DOC_A = """# EP-SAF-001 Safety rules for switching

## 4 Tools for isolation work

**4.2.1** Before touching a busbar that has been switched off, the absence of voltage shall be verified with a
two-pole voltage detector. A continuity tester shall not be used.

**4.2.2** An isolator shall be secured in the open position with a personal lockout padlock.
"""
DOC_B = """# CH-SAF-002 Handling acids

## 3 Personal protective equipment

**3.1.1** When decanting concentrated acids, chemical-resistant nitrile gloves shall be worn; cotton gloves absorb
acid and must not be used.
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "electric_power").mkdir(parents=True)
    (root / "chemical").mkdir()
    (root / "electric_power" / "EP-SAF-001.md").write_text(DOC_A)
    (root / "chemical" / "CH-SAF-002.md").write_text(DOC_B)
    return root


def test_build_query_and_cite(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    res = runner.invoke(app, ["index", "build", str(corpus), "--out", str(idx), "--embedder", "hashing"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["index", "query", str(idx), "verify absence of voltage on the busbar", "--json"])
    assert res.exit_code == 0, res.output
    top = json.loads(res.output)["hits"][0]
    assert top["doc_id"] == "EP-SAF-001" and top["clause"] == "4.2.1" and top["citation"] == "EP-SAF-001 §4.2.1"
    res = runner.invoke(app, ["index", "query", str(idx), "acid gloves", "--industry", "electric_power", "--json"])
    assert {h["industry"] for h in json.loads(res.output)["hits"]} == {"electric_power"}
    stats = json.loads(runner.invoke(app, ["index", "stats", str(idx), "--json"]).output)
    assert stats["documents"] == 2 and stats["embedder"] == "hashing"


def test_rebuild_syncs_and_remove(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index([corpus], idx, embedder="hashing")
    (corpus / "chemical" / "CH-SAF-002.md").unlink()
    rep = build_index([corpus], idx, embedder="hashing")
    assert rep.removed_documents > 0
    r = Retriever.open(idx)
    try:
        assert {h.chunk.doc_id for h in r.search("acid gloves", k=10).hits} == {"EP-SAF-001"}
    finally:
        r.close()
    res = runner.invoke(app, ["index", "remove", str(idx), "EP-SAF-001"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["index", "remove", str(idx), "NOPE"])
    assert res.exit_code == 1 and "not in the index" in res.output


def test_skipped_files_set_exit_status_but_index_the_rest(corpus: Path, tmp_path: Path) -> None:
    (corpus / "junk.md").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    (corpus / "empty.txt").write_text("")
    idx = tmp_path / "idx"
    res = runner.invoke(app, ["index", "build", str(corpus), "--out", str(idx), "--embedder", "hashing"])
    assert res.exit_code == 3, res.output
    assert "skipped" in res.output
    stats = json.loads(runner.invoke(app, ["index", "stats", str(idx), "--json"]).output)
    assert stats["documents"] == 2


def test_add_to_existing_and_embedder_mismatch(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index([corpus / "electric_power"], idx, embedder="hashing")
    res = runner.invoke(app, ["index", "add", str(idx), str(corpus / "chemical")])
    assert res.exit_code == 0, res.output
    assert json.loads(runner.invoke(app, ["index", "stats", str(idx), "--json"]).output)["documents"] == 2
    with pytest.raises(ValueError, match="embedder"):
        build_index([corpus], idx, embedder="minilm")


def test_query_errors(tmp_path: Path) -> None:
    """As a user runs it (a subprocess): one line naming the folder, no traceback. More cases: test_cli_errors.py."""
    proc = subprocess.run(
        [sys.executable, "-m", "prg.cli.main", "index", "query", str(tmp_path), "x"],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "PRG_DEBUG": ""},
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"{tmp_path} is not a PRG index (no CURRENT file)" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_expand_query() -> None:
    assert expand_query("q", []) == "q"
    assert expand_query("q", ["a", "b", "a"]) == "q Equipment on the table: a, b."


def test_seen_tools_move_their_clauses_up(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index([corpus], idx, embedder="hashing")
    r = Retriever.open(idx)
    try:
        q = "I need to work on this panel safely"
        plain = r.search(q, k=10)
        seen = r.search(q, k=10, seen=["lockout padlock"])
        for mode in ("expand", "both"):
            r.use_seen = mode
            assert r.search(q, k=3, seen=["lockout padlock"]).hits
    finally:
        r.close()

    def rank(res: object) -> int:
        clauses = [h.chunk.clause for h in res.hits]  # type: ignore[attr-defined]
        return clauses.index("4.2.2") if "4.2.2" in clauses else 99

    assert rank(seen) < rank(plain)
    with pytest.raises(ValueError, match="use_seen"):
        Retriever(r.index, r.embedder, use_seen="nope")


def test_train_tagger_cli(tmp_path: Path) -> None:
    from prg.data.synth.generate import SynthConfig, generate

    ds = tmp_path / "ds"
    generate(ds, SynthConfig(n=8, seed=4, size=128), workers=1, progress=False)
    idx = tmp_path / "idx"
    res = runner.invoke(app, ["index", "train-tagger", "--dataset", str(ds), "--index", str(idx), "--epochs", "1"])
    assert res.exit_code == 0, res.output
    assert (idx / "tagger" / "model.safetensors").is_file() and (idx / "tagger" / "config.json").is_file()
    res = runner.invoke(app, ["index", "train-tagger", "--dataset", str(ds)])
    assert res.exit_code == 2 and "exactly one" in res.output
