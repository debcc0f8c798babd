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
    cmd = [sys.executable, "-m", "prg.cli.main", "demo", "--out", str(out), "--n", "4", "--embedder", "hashing",
           "--annotations-only"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert validate_dataset(out / "dataset").ok
    result = json.loads((out / "result.json").read_text())
    assert len(result["records"]) == 4
    for row in result["records"]:
        assert row["retrieved"] and all("§" in c for c in row["retrieved"])
        assert bool(row.get("grasps")) == bool(row["targets"])  # every target's annotated grasp decodes
        for g in row.get("grasps", []):
            assert g["decoded_matches_annotation"]  # the map decoder recovers the annotated grasp
            assert 0.3 < g["pose"]["pose"]["position"]["z"] < 1.0  # metres from the camera
        with Image.open(out / f"{row['id']}.png") as im:
            assert im.width == 448
    # run again: dataset and index are reused, not rebuilt
    before = (out / "dataset" / "records.jsonl").stat().st_mtime
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False).returncode == 0
    assert (out / "dataset" / "records.jsonl").stat().st_mtime == before
    # another --n makes the scenes again (a reused folder never shows another run's scenes)
    cmd[cmd.index("4")] = "3"
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False).returncode == 0
    assert len(json.loads((out / "result.json").read_text())["records"]) == 3
    info = json.loads((out / "dataset" / "dataset.json").read_text())["extra"]["config"]
    assert (info["n"], info["seed"]) == (3, 2)  # the demo's seed: one the shipped checkpoint was not trained on


@pytest.mark.integration
def test_demo_with_a_checkpoint_runs_the_whole_pipeline(tmp_path: Path) -> None:
    from prg.model.checkpoint import save_pretrained
    from prg.model.prg_model import build_tiny_prg_model

    model = build_tiny_prg_model()
    model.config.max_new_tokens = 4
    save_pretrained(model, tmp_path / "ckpt")
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "prg.cli.main", "demo", "--out", str(out), "--n", "2", "--embedder", "hashing",
           "--checkpoint", str(tmp_path / "ckpt")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "result.json").read_text())["records"]
    assert len(rows) == 2 and "model:" in proc.stdout
    for row in rows:
        pred = row["prediction"]
        assert pred["instruction"] == row["instruction"] and pred["image_size"] == [448, 448]
        assert [c["id"] for c in pred["retrieved"]] == row["retrieved"]
        # the prediction is scored against the annotation (prg.eval.model.score)
        sc = row["score"]
        assert len(sc["landed_on"]) == len(pred["grasps"])
        if not pred["grasps"] and row["targets"]:
            assert sc["on_target"] is False and sc["grasp_success"] is False
        with Image.open(out / f"{row['id']}.png") as im:
            assert im.width == 448 and im.height > 448
