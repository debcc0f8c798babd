"""PRG-Synth generation speed: whole records (scene, render, grasps, Q&A, PNG files), 1 and 2 processes.

The corpus is written once per dataset and is not counted; everything a record needs is. Prints a table and
writes JSON; compare the rows of one run (absolute numbers depend on the machine and its load).

    .venv/bin/python benchmarks/bench_synth.py --n 120 --size 448 --out benchmarks/results/synth.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from prg.data.synth.generate import SynthConfig, _Job, _map


def run(n: int, size: int, workers: int) -> dict[str, float]:
    cfg = SynthConfig(n=n, seed=0, size=size)
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("images", "depth", "masks", "scenes"):
            (Path(tmp) / sub).mkdir()
        if workers > 1:  # start the pool's processes before timing (spawn imports take about a second)
            list(_map(workers, [_Job(i, cfg, tmp) for i in range(workers)]))
        t0, c0 = time.perf_counter(), time.process_time()
        done = list(_map(workers, [_Job(i, cfg, tmp) for i in range(n)]))
        wall = time.perf_counter() - t0
    assert len(done) == n
    return {"workers": workers, "records": n, "size": size, "seconds": wall, "records_per_s": n / wall,
            "ms_per_record": 1000 * wall / n, "main_cpu_s": time.process_time() - c0,
            "load_avg_1min": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/synth.json"))
    a = ap.parse_args()
    rows = [run(a.n, a.size, w) for w in a.workers]
    base = rows[0]["records_per_s"]
    print(f"{'workers':>7} {'records':>7} {'size':>5} {'records/s':>10} {'ms/record':>10} {'vs first':>8}")
    for r in rows:
        print(f"{r['workers']:>7} {r['records']:>7} {r['size']:>5} {r['records_per_s']:>10.1f} "
              f"{r['ms_per_record']:>10.1f} {r['records_per_s'] / base:>7.2f}x")  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    a.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
