"""Retrieval quality on PRG-Synth: text-only vs image-aware (scene tagger) vs oracle scene names, side by side.

    .venv/bin/prg data synth --out /tmp/prg_eval --n 800 --seed 5
    .venv/bin/prg index build /tmp/prg_eval/documents --out /tmp/prg_eval_index
    .venv/bin/prg index train-tagger --dataset /tmp/prg_eval --index /tmp/prg_eval_index
    .venv/bin/python benchmarks/bench_retrieval.py --dataset /tmp/prg_eval --index /tmp/prg_eval_index

The tagger trains on the dataset's train split; scores are reported per split, so test and zero-shot numbers
come from scenes it never saw. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from prg.eval.retrieval import evaluate_retrieval
from prg.retrieval.retriever import Retriever


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--splits", nargs="+", default=["test", "zero_shot_task", "zero_shot_industry"])
    ap.add_argument("--modes", nargs="+", default=["text", "image", "oracle-seen"])
    ap.add_argument("--limit", type=int, default=None, help="at most this many records per split")
    ap.add_argument("--levels", nargs="+", default=["rule", "clause"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/retrieval.json"))
    a = ap.parse_args()
    r = Retriever.open(a.index)
    modes = [m for m in a.modes if m != "image" or r.tagger is not None]
    try:
        reps = {f"{m}/{lv}": evaluate_retrieval(a.dataset, r, splits=a.splits, mode=m, limit=a.limit, level=lv,
                                                progress=False)
                for lv in a.levels for m in modes}  # fmt: skip
    finally:
        r.close()
    print(
        f"{'split':>20} {'mode/level':>18} {'queries':>7} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}"
        f" {'R@5 vs text':>11}"
    )
    for split in a.splits:
        for m, rep in reps.items():
            text = reps.get(f"text/{rep.level}")
            base = text.by_split.get(split, {}).get("R@5") if text else None
            s = rep.by_split.get(split)
            if not s:
                continue
            ratio = f"{s['R@5'] / base:.2f}x" if base else "-"
            print(f"{split:>20} {m:>18} {int(s['num_queries']):>7} {s['R@1']:>6.3f} {s['R@5']:>6.3f} "
                  f"{s['R@10']:>6.3f} {s['MRR']:>6.3f} {ratio:>11}")  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"dataset": str(a.dataset), "index": str(a.index), "cpu_count": os.cpu_count(),
            "platform": platform.platform()}  # fmt: skip
    a.out.write_text(json.dumps({"meta": meta, "reports": {m: rep.to_json() for m, rep in reps.items()}}, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
