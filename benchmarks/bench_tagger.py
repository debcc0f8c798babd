"""Benchmark the scene tagger: train on a PRG-Synth folder's train split, evaluate on test and zero_shot_task.

    .venv/bin/prg data synth --out /tmp/synth_tag --n 1500 --seed 11 --size 448
    .venv/bin/python benchmarks/bench_tagger.py --dataset /tmp/synth_tag

Tag-set precision/recall come from proposals (no ground-truth masks: the realistic path); crop and look-alike
accuracy from ground-truth-mask crops (the classifier alone). Prints a table, writes JSON, saves the tagger.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from prg.eval.tagger import evaluate_tagger
from prg.retrieval.image import SceneTagger
from prg.train.tagger import train_tagger

COLUMNS = (
    ("set_precision", "set P"),
    ("set_recall", "set R"),
    ("micro_precision", "micro P"),
    ("micro_recall", "micro R"),
    ("crop_accuracy", "crop acc"),
    ("lookalike_accuracy", "look-alike acc"),
    ("proposal_recall_iou50", "prop R@.5"),
    ("merged_proposals", "merges"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, type=Path, help="PRG-Synth dataset folder")
    ap.add_argument("--out", type=Path, default=Path("outputs/tagger"), help="where to save the trained tagger")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tagger.json"))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-score", type=float, default=0.5)
    ap.add_argument("--splits", nargs="+", default=["test", "zero_shot_task"], help="splits to evaluate")
    args = ap.parse_args()

    train = train_tagger(args.dataset, args.out, epochs=args.epochs, seed=args.seed, progress=True)
    tagger: SceneTagger = train.pop("tagger")
    SceneTagger.load(args.out)  # the saved copy must load
    results = {}
    for split in args.splits:
        t0 = time.perf_counter()
        results[split] = evaluate_tagger(tagger, args.dataset, split, min_score=args.min_score)
        results[split]["seconds"] = time.perf_counter() - t0

    print(
        f"\ntrain: {train['n_records']} images, {train['n_crops']} crops ({train['n_other']} '_other'), "
        f"{train['n_labels']} labels, {train['steps']} steps, {train['seconds']:.0f} s"
    )
    print(f"{'split':<16}{'images':>7}" + "".join(f"{h:>16}" for _, h in COLUMNS))
    for split, r in results.items():
        cells = "".join(f"{r[k]:>16.3f}" if isinstance(r[k], float) else f"{r[k]:>16}" for k, _ in COLUMNS)
        print(f"{split:<16}{r['n_images']:>7}{cells}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset": str(args.dataset),
        "epochs": args.epochs,
        "seed": args.seed,
        "min_score": args.min_score,
        "device": tagger.device,
        "machine": platform.platform(),
        "train_threads": 1,
        "train": train,
        "eval": results,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}; tagger saved to {args.out}")


if __name__ == "__main__":
    main()
