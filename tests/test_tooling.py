"""The repository stays lint-, format- and type-clean (the README's `make lint` / `make typecheck`)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check() -> None:
    res = _run("ruff", "check", "--output-format", "concise", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format() -> None:
    res = _run("ruff", "format", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_mypy() -> None:
    res = _run("mypy")
    assert res.returncode == 0, res.stdout + res.stderr
