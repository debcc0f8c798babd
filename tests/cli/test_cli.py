"""The command line, called as a user calls it (a subprocess) where tracebacks matter, else through CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from prg import __version__
from prg.cli.main import app

runner = CliRunner()


def run_prg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prg.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_validate_ok_and_json(tiny_dataset: Path) -> None:
    res = runner.invoke(app, ["data", "validate", str(tiny_dataset)])
    assert res.exit_code == 0, res.output
    assert "3 record(s)" in res.output
    res = runner.invoke(app, ["data", "validate", str(tiny_dataset), "--json"])
    assert json.loads(res.output)["ok"] is True


def test_validate_fails_with_file_and_line(tiny_dataset: Path) -> None:
    with open(tiny_dataset / "records.jsonl", "a") as f:
        f.write("{oops\n")
    proc = run_prg("data", "validate", str(tiny_dataset))
    assert proc.returncode == 1
    assert "records.jsonl:4" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_show_writes_overlay(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "overlay.png"
    res = runner.invoke(app, ["data", "show", str(tiny_dataset), "--id", "r1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.width == 64 and im.height > 48  # the caption band is below the image
        region = np.asarray(im.convert("RGB"))[15:25, 14:26]
    # the target's mask is blended over the (pure red) object: most of its pixels change colour
    assert (region != (255, 0, 0)).any(axis=-1).mean() > 0.6


def test_show_unknown_id(tiny_dataset: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "show", str(tiny_dataset), "--id", "nope", "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "no record" in res.output


def test_errors_are_one_line_not_tracebacks(tmp_path: Path) -> None:
    proc = run_prg("data", "show", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png"))
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_prg("data", "convert", "--format", "nonsense", str(tmp_path), str(tmp_path / "out"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    proc = run_prg("data", "convert", str(tmp_path))  # usage error from the argument parser
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
