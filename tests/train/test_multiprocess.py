"""Two CPU processes (torchrun, gloo) at the same global batch as one process give the same losses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prg.model.checkpoint import from_pretrained
from tests.train.test_trainer import TINY, data, losses, overrides  # noqa: F401  (data is a fixture)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun is not installed")  # fmt: skip
def test_two_processes_equal_one_with_accumulation(data, tmp_path) -> None:  # noqa: F811
    sets = overrides(data, tmp_path, "steps=3", "batch_size=1", "save_every=0", "eval_every=0",
                     "data.val_records=0", "data.augment=false")  # fmt: skip
    args = ["-m", "prg.cli.main", "train", "--config", str(TINY), "--quiet", *[f"--set={s}" for s in sets]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, *args, "--set=name=one", "--set=grad_accum=2"], capture_output=True,
                         text=True, timeout=600, env=env, check=False)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    two = subprocess.run([torchrun, "--nproc_per_node", "2", *args, "--set=name=two", "--set=grad_accum=1"],
                         capture_output=True, text=True, timeout=600, env=env, check=False)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-5), (step, a, b)
    rows = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rows if "loss" in r]) == 3  # logged once, by the main process
    model = from_pretrained(tmp_path / "two" / "step-000003" / "model")  # the 2-process checkpoint, one process
    assert model.has_adapters
