"""Bad input to ``prg data synth | sheet | validate``, run as a user runs it (a subprocess, through ``main()``):
a clear message, a non-zero exit status, and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_prg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prg.cli.main", *args], capture_output=True, text=True, timeout=120, check=False
    )


def assert_fails(proc: subprocess.CompletedProcess[str], *expected: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    for e in expected:
        assert e in text, f"{e!r} not in:\n{text}"


@pytest.mark.parametrize("n", ["0", "-3"])
def test_synth_refuses_a_non_positive_count(tmp_path: Path, n: str) -> None:
    proc = run_prg("data", "synth", "--out", str(tmp_path / "ds"), "--n", n)
    assert_fails(proc, "Invalid value for '--n'", "greater than or equal to 1")
    assert not (tmp_path / "ds").exists()


def test_synth_refuses_an_output_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "taken.txt"
    f.write_text("mine")
    proc = run_prg("data", "synth", "--out", str(f), "--n", "1")
    assert_fails(proc, "error:", "is a file, not a folder")
    assert f.read_text() == "mine"


def test_sheet_of_a_missing_folder(tmp_path: Path) -> None:
    proc = run_prg("data", "sheet", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s.png"))
    assert_fails(proc, "error:", "nowhere: not a folder")
    assert not (tmp_path / "s.png").exists()


def test_sheet_of_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    proc = run_prg("data", "sheet", str(tmp_path / "plain"), "--out", str(tmp_path / "s.png"))
    assert_fails(proc, "error:", "dataset.json: missing", "not a PRG dataset folder")


def test_validate_with_an_unknown_format(tiny_dataset: Path) -> None:
    proc = run_prg("data", "validate", "--format", "coco", str(tiny_dataset))
    assert_fails(proc, "error: unknown --format 'coco'; choose from: prg, cornell, jacquard, reasongrasp")
