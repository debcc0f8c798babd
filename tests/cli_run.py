"""Run ``prg ARGS`` in the test process through the real entry point, its one-line error handling included."""

from __future__ import annotations

import sys

import pytest

from prg.cli.main import main


def run_main(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``prg ARGS`` (no subprocess: seconds saved per call)."""
    monkeypatch.setattr(sys, "argv", ["prg", *args])
    monkeypatch.delenv("PRG_DEBUG", raising=False)
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
