"""Bad input to `prg index ...` and `prg eval retrieval`: one clear line on stderr, non-zero exit, nothing written.

Runs the real entry point (``prg.cli.main.main``, which turns exceptions into ``error: Type: message``) in
process; ``test_build_cli.py`` runs one case as a subprocess too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from prg.cli.main import main
from prg.retrieval.build import build_index, open_embedder
from prg.retrieval.index import DocumentIndex

DOC = "# EP-SAF-001 Switching\n\n## 4 Isolation\n\n4.1 An isolator shall be locked open with a personal padlock.\n"


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def prg(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``prg(*args)`` -> exit status and stderr of ``prg ARGS``; fails on a traceback."""
    monkeypatch.delenv("PRG_DEBUG", raising=False)

    def run(*args: str | Path) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["prg", *map(str, args)])
        with pytest.raises(SystemExit) as e:
            main()
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err
        return int(e.value.code or 0), out.err

    return run


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "EP-SAF-001.md").write_text(DOC)
    return d


@pytest.fixture
def index(docs: Path, tmp_path: Path) -> Path:
    out = tmp_path / "idx"
    build_index([docs], out, embedder="hashing")
    return out


def test_build_of_a_folder_with_nothing_to_ingest(prg: Run, tmp_path: Path, index: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = prg("index", "build", empty, "--out", tmp_path / "new", "--embedder", "hashing")
    assert code == 4 and "no ingestible documents" in err and "no index was written" in err
    assert not (tmp_path / "new").exists()
    (empty / "junk.md").write_bytes(b"\x00\x01binary\x00" * 50)  # only a file that cannot be ingested
    code, err = prg("index", "build", str(empty), "--out", str(index), "--embedder", "hashing")
    assert code == 4 and "skipped" in err and "left as it was" in err
    with DocumentIndex.open(index) as idx:  # a rebuild from nothing does not prune the index empty
        assert set(idx.documents()) == {"EP-SAF-001"}
    code, err = prg("index", "add", str(index), str(empty))
    assert code == 4 and "no ingestible documents" in err


def test_build_from_a_missing_folder_creates_nothing(prg: Run, tmp_path: Path) -> None:
    code, err = prg("index", "build", tmp_path / "nope", "--out", tmp_path / "new", "--embedder", "hashing")
    assert code == 1 and "no such document file or folder" in err and str(tmp_path / "nope") in err
    assert not (tmp_path / "new").exists()


def test_build_refuses_a_folder_that_is_not_an_index(prg: Run, tmp_path: Path, docs: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"not mine to overwrite")
    code, err = prg("index", "build", str(docs), "--out", str(out), "--embedder", "hashing")
    assert code == 1 and "is not empty and is not a PRG index" in err and "holiday.jpg" in err
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]
    code, err = prg("index", "build", str(docs), "--out", str(out / "holiday.jpg"))
    assert code == 1 and "is a file" in err
    (out / "holiday.jpg").unlink()  # an empty folder is fine
    code, _ = prg("index", "build", str(docs), "--out", str(out), "--embedder", "hashing")
    assert code == 0 and (out / "CURRENT").is_file()


@pytest.mark.parametrize(
    "command",
    [
        ["index", "query", "{p}", "padlock"],
        ["index", "stats", "{p}"],
        ["index", "add", "{p}", "{docs}"],
        ["index", "remove", "{p}", "EP-SAF-001"],
    ],
)
def test_commands_on_a_folder_that_is_not_an_index(prg: Run, tmp_path: Path, docs: Path, command: list[str]) -> None:
    for folder, why in ((docs, "no CURRENT file"), (tmp_path / "missing", "no such folder")):
        args = [a.format(p=folder, docs=docs) for a in command]
        code, err = prg(*args)
        assert code == 1 and f"{folder} is not a PRG index ({why})" in err, err
        assert len(err.strip().splitlines()) <= 2  # the error, and the PRG_DEBUG hint
    assert not (docs / "CURRENT").exists()


def test_query_an_empty_index(prg: Run, tmp_path: Path) -> None:
    root = tmp_path / "empty_idx"
    DocumentIndex.create(root, dim=open_embedder("hashing").dim, embedder_name="hashing").close()
    code, err = prg("index", "query", str(root), "padlock")
    assert code == 1 and "is empty" in err


def test_eval_retrieval_bad_input(prg: Run, tmp_path: Path, index: Path, docs: Path) -> None:
    code, err = prg("eval", "retrieval", "--dataset", str(tmp_path / "nods"), "--index", str(index))
    assert code == 1 and f"dataset folder {tmp_path / 'nods'} does not exist" in err
    code, err = prg("eval", "retrieval", "--dataset", str(docs), "--index", str(index))
    assert code == 1 and "is not a PRG dataset (no records.jsonl)" in err
    code, err = prg("eval", "retrieval", "--dataset", str(docs), "--index", str(tmp_path / "x"))
    assert code == 1 and f"{tmp_path / 'x'} is not a PRG index (no such folder)" in err
