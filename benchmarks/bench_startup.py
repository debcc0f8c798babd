"""Start-up of the ``small`` preset: cold (no SmolLM2 cache: the GGUF path) vs warm (the cached safetensors folder).

    .venv/bin/python benchmarks/bench_startup.py               # 2 rounds of cold + warm, fresh subprocesses

Each round makes an empty ``$PRG_CACHE_DIR`` and runs ``build_prg_model(small_config())`` in a fresh Python
process twice: the first (cold) reads the GGUF (tokenizer conversion, Q4_1 de-quantisation), hashes it and writes
the cache; the second (warm) loads the cache. ``process`` is the whole subprocess as the parent saw it (interpreter
start, imports, build, exit), i.e. what a ``prg predict`` start costs before its first image; the child reports its
import and build times and, from wrapped ``smollm`` functions, the GGUF hash and cache-write parts of the build.
The warm run finds the freshly written safetensors in the page cache (as a second start does); a start after a
reboot reads the 540 MB from disk first. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import json, time
t0 = time.perf_counter()
import torch
from prg.model.prg_model import build_prg_model, small_config
from prg.model.weights import smollm
t1 = time.perf_counter()
parts = {"hash": 0.0, "write": 0.0, "gguf": 0.0}

def timed(name, fn):
    def run(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            parts[name] += time.perf_counter() - s
    return run

smollm.gguf_sha256 = timed("hash", smollm.gguf_sha256)
smollm.write_cache = timed("write", smollm.write_cache)
smollm._load_gguf = timed("gguf", smollm._load_gguf)
model = build_prg_model(small_config())
t2 = time.perf_counter()
print("RESULT " + json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "threads": torch.get_num_threads(),
                              **{k + "_s": v for k, v in parts.items()}}))
"""


def run_child(cache: Path) -> dict[str, Any]:
    env = {**os.environ, "PRG_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    [line] = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    return {"process_s": wall, **json.loads(line.removeprefix("RESULT "))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.json"))
    a = ap.parse_args()
    rows: list[dict[str, Any]] = []
    for r in range(a.rounds):
        with tempfile.TemporaryDirectory(prefix="prg_startup_") as tmp:
            for kind in ("cold", "warm"):
                row = {"round": r, "kind": kind, **run_child(Path(tmp))}
                rows.append(row)
                print(f"round {r} {kind}: {row['process_s']:.1f} s", flush=True)
    cols = ("process_s", "import_s", "build_s", "gguf_s", "hash_s", "write_s")
    summary = {
        kind: {c: statistics.median(x[c] for x in rows if x["kind"] == kind) for c in cols} for kind in ("cold", "warm")
    }
    print("\n| start (median) | process s | imports s | build s | of which GGUF load s | GGUF hash s | cache write s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind, m in summary.items():
        print(f"| {kind} | " + " | ".join(f"{m[c]:.2f}" for c in cols) + " |")
    speedup = summary["cold"]["process_s"] / summary["warm"]["process_s"]
    print(f"\nwarm start {speedup:.1f}x faster than cold ({a.rounds} rounds)")
    import torch
    import transformers

    result = {
        "command": "python benchmarks/bench_startup.py" + (f" --rounds {a.rounds}" if a.rounds != 2 else ""),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "rows": rows,
        "median": summary,
        "cold_over_warm": speedup,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
