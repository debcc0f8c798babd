"""``prg demo`` refuses bad arguments in one line, before it spends minutes making data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run_main


def call(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    code, out, err = run_main(args, capsys, monkeypatch)
    return code, out + err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--embedder", "nope"], "unknown text embedder 'nope'"),
        (["--checkpoint", "{tmp}"], "is not a PRG model checkpoint"),
        (["--n", "0"], "Invalid value for '--n'"),
    ],
)
def test_bad_arguments(tmp_path: Path, capsys, monkeypatch, extra: list[str], message: str) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--embedder", "hashing", *[str(tmp_path) if a == "{tmp}" else a for a in extra]]
    code, text = call(args, capsys, monkeypatch)
    assert code != 0 and message in text and "Traceback" not in text
    assert not out.exists()  # nothing was generated


def test_out_that_is_a_file(tmp_path: Path, capsys, monkeypatch) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    code, text = call(["demo", "--out", str(f), "--embedder", "hashing"], capsys, monkeypatch)
    assert code == 1 and "is a file, not a folder" in text and "Traceback" not in text
