"""The README's main job, run as a user runs it."""

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
    proc = subprocess.run(
        [sys.executable, "-m", "prg.cli.main", "demo", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert validate_dataset(out / "dataset").ok
    result = json.loads((out / "result.json").read_text())
    assert all(result["decoded_grasp_success"])  # decoded grasps pass the rectangle metric
    pos = result["top_grasp_pose"]["pose"]["position"]
    assert 0.6 < pos["z"] < 0.71  # the tool top is 0.68 m from the camera, the table 0.70 m
    for name in ("overlay.png", "maps.png"):
        with Image.open(out / name) as im:
            assert im.width >= 320
