"""The example in docs/training_data.md runs and its assertions hold."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "training_data.md"


@pytest.mark.slow
def test_doc_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    example = [b for b in blocks if "tempfile" in b]  # the others are fragments
    assert len(example) == 1
    monkeypatch.setattr(tempfile, "mkdtemp", lambda: str(tmp_path))  # its work folder: pytest's, cleaned up
    exec(compile(example[0], f"{DOC.name}[example]", "exec"), {})
    assert (tmp_path / "synth" / "retrieval" / "default.jsonl").is_file()
