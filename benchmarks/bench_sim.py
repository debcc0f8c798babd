"""Simulated grasp trials per second: annotated-grasp trials on a PRG-Synth dataset, 1..W worker processes.

    python benchmarks/bench_sim.py --dataset DS --n 4 --workers 1,2 --out bench_sim.json

Prints a table and writes JSON. Trials are MuJoCo physics only (no rendering); each runs ~3.7 s of simulated
time at the scene's 2 ms step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from prg.sim.evaluate import plan_trials, run_jobs
from prg.sim.trial import TrialConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--n", type=int, default=4, help="records")
    ap.add_argument("--workers", default="1,2", help="comma-separated process counts")
    ap.add_argument("--out", type=Path, default=Path("bench_sim.json"))
    a = ap.parse_args()
    jobs = plan_trials(a.dataset, ["annotated"], n=a.n)
    cfg = TrialConfig()
    rows = []
    for w in (int(x) for x in a.workers.split(",")):
        t0 = time.perf_counter()
        res = run_jobs(jobs, cfg, workers=w)
        dt = time.perf_counter() - t0
        rows.append({"workers": w, "trials": len(res), "seconds": dt, "trials_per_s": len(res) / dt,
                     "successes": sum(r.success for r in res)})  # fmt: skip
    info = {"cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(), "rows": rows}
    a.out.write_text(json.dumps(info, indent=2))
    print(f"| workers | trials | seconds | trials/s |  ({info['cpu_count']} CPUs)\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['trials']} | {r['seconds']:.1f} | {r['trials_per_s']:.2f} |")


if __name__ == "__main__":
    main()
