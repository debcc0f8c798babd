"""The checkpoint that ships in ``src/prg/weights/prg-small`` (issue P6), judged on the CPU on scenes it never saw.

PRG-Synth seed 2 (the demo's seed): the model was trained on seeds 0 and 1, so scenes, documents and instructions
are all new. The documents are the records' gold clauses (``docs="oracle"``), so the figure is the grasp head's
and the answer's, not the retriever's. Home-appliance records (an industry held out of training) are left out of
the assertion and reported in the message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prg.demo import DEMO_SEED
from prg.pipeline import SHIPPED_CHECKPOINT, PRGPipeline, default_checkpoint

TRAINED_INDUSTRIES_SPLITS = ["train", "val", "test", "zero_shot_task"]


def test_the_shipped_checkpoint_is_small_bf16_and_says_where_it_came_from() -> None:
    assert default_checkpoint() == SHIPPED_CHECKPOINT
    size = sum(p.stat().st_size for p in SHIPPED_CHECKPOINT.rglob("*") if p.is_file())
    assert size <= 40 * 2**20, f"{size / 2**20:.1f} MiB"
    info = json.loads((SHIPPED_CHECKPOINT / "training.json").read_text())
    assert info["dtype"] == "bfloat16" and info["commit"] and info["run"] == "prg-small-stage2"
    folders = {s["path"] for s in info["config"]["data"]["sources"]}
    assert len(folders) == 2  # PRG-Synth seed 0 and seed 1 (scripts/train_small.sh)


@pytest.mark.slow
def test_shipped_checkpoint_grasps_the_target_on_most_unseen_scenes(tmp_path: Path) -> None:
    from prg.data.dataset import iter_records
    from prg.data.synth.generate import SynthConfig, generate
    from prg.eval.model import evaluate_model, summarise_records

    ds = tmp_path / "ds"
    generate(ds, SynthConfig(n=20, seed=DEMO_SEED), progress=False)
    pipe = PRGPipeline.from_pretrained(SHIPPED_CHECKPOINT)
    try:
        splits = sorted({r.split for r in iter_records(ds)})  # every split: none of them was trained on
        run = evaluate_model(pipe, ds, splits=splits, docs="oracle", batch_size=8)
    finally:
        pipe.close()
    trained = [r for r in run.records if r.split in TRAINED_INDUSTRIES_SPLITS]
    held_out = [r for r in run.records if r.split == "zero_shot_industry"]
    s = summarise_records(trained, text=False)
    report = (f"{len(trained)} scenes of the trained industries: target recognition {s['target_recognition']:.2f}, "
              f"grasp success {s.get('grasp_success', float('nan')):.2f}; held-out industry: "
              f"{summarise_records(held_out, text=False).get('target_recognition', float('nan')):.2f} "
              f"on {len(held_out)}")  # fmt: skip
    print(report)
    assert len(trained) >= 12, report
    # measured with the fifth-run checkpoint: 0.80 and 0.73 (the fourth run's: 0.87 and 0.60)
    assert s["target_recognition"] > 0.7, report  # the top-1 grasp lands on the named tool in most scenes
    assert s["grasp_success"] > 0.6, report  # and passes the rectangle metric there


def test_prg_predict_answers_with_the_shipped_checkpoint_by_default(tmp_path: Path) -> None:
    import subprocess
    import sys

    from prg.data.dataset import iter_records
    from prg.data.synth.generate import SynthConfig, generate
    from prg.pipeline import _trained_k_docs

    assert _trained_k_docs(SHIPPED_CHECKPOINT) == 3  # the pipeline shows it as many documents as in training
    ds = tmp_path / "ds"
    generate(ds, SynthConfig(n=1, seed=DEMO_SEED), progress=False)
    (rec,) = iter_records(ds)
    cmd = [sys.executable, "-m", "prg.cli.main", "predict", "--image", str(ds / rec.image), "--instruction",
           rec.instruction, "--docs", str(ds / "documents"), "--embedder", "hashing", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    # the answer, not transformers' noise: no loading bar, no clean-up warning from the shipped tokenizer
    assert "Loading weights" not in proc.stderr and "clean_up_tokenization_spaces" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["retrieved"]) == 3 and "[POSE]" in result["answer"] and result["grasps"]
