"""The README's main job, run as a user runs it (with the fast embedder so the test stays short)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from prg.data.validate import validate_dataset


@pytest.mark.integration
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "prg.cli.main", "demo", "--out", str(out), "--n", "4", "--embedder", "hashing"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert validate_dataset(out / "dataset").ok
    result = json.loads((out / "result.json").read_text())
    assert len(result["records"]) == 4
    for row in result["records"]:
        assert row["retrieved"] and all("§" in c for c in row["retrieved"])
        for g in row.get("grasps", []):
            assert g["decoded_matches_annotation"]  # the map decoder recovers the annotated grasp
            assert 0.3 < g["pose"]["pose"]["position"]["z"] < 1.0  # metres from the camera
        with Image.open(out / f"{row['id']}.png") as im:
            assert im.width == 448
    # run again: dataset and index are reused, not rebuilt
    before = (out / "dataset" / "records.jsonl").stat().st_mtime
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False).returncode == 0
    assert (out / "dataset" / "records.jsonl").stat().st_mtime == before
