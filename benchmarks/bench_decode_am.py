"""AdaptiveMixture at generation time: operands rebuilt every call vs cached (``cache_inference_operands``).

    .venv/bin/python benchmarks/bench_decode_am.py --out benchmarks/results/decode_am_cpu.json

The shipped small checkpoint answers the demo scenes through the pipeline (retrieval, generation, grasps), once
per setting and scene, the two settings alternating scene by scene so that drifting load on the machine hits both
alike. Without autograd each AdaptiveMixture layer can reuse ``concat(A, W_x)``, the scaled B matrix and the
segment-logit table instead of rebuilding them from the parameters in every forward (120 wrapped layers, one
token per decoding step). The answers must be identical; the table gives per-request time, generation time and
milliseconds per generated token for each, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped small checkpoint")
    ap.add_argument("--rounds", type=int, default=2, help="passes over the demo scenes per setting")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from prg.data.dataset import iter_records, load_image
    from prg.demo import prepare_demo_data
    from prg.model.adaptive_mixture import AdaptiveMixtureLinear
    from prg.pipeline import PRGPipeline, default_checkpoint

    ds, index = prepare_demo_data(progress=False)
    ckpt = args.checkpoint or default_checkpoint()
    pipe = PRGPipeline.from_pretrained(ckpt, index)
    tok = pipe.model.processor.tokenizer
    records = list(iter_records(ds))
    images = [load_image(ds, r) for r in records]
    if not pipe.model.has_adapters:
        raise SystemExit(f"{ckpt} carries no AdaptiveMixture adapters: nothing to compare")
    pipe(images[0], records[0].instruction)  # warm-up (allocations, first retrieval)

    settings = {"rebuilt": False, "cached": True}
    rows: dict[str, dict[str, list[float]]] = {k: {"total": [], "generate": [], "per_token": []} for k in settings}
    answers: dict[str, list[str]] = {k: [] for k in settings}
    for _ in range(args.rounds):
        for img, rec in zip(images, records, strict=True):
            for name, flag in settings.items():
                AdaptiveMixtureLinear.cache_inference_operands = flag
                t0 = time.perf_counter()
                res = pipe(img, rec.instruction)
                rows[name]["total"].append(time.perf_counter() - t0)
                gen = res.timings_ms["model_generate"] / 1000
                rows[name]["generate"].append(gen)
                rows[name]["per_token"].append(1000 * gen / max(1, len(tok(res.answer)["input_ids"])))
                answers[name].append(res.answer)
    AdaptiveMixtureLinear.cache_inference_operands = True
    same = answers["rebuilt"] == answers["cached"]
    out: dict[str, Any] = {
        "benchmark": "bench_decode_am",
        "command": "python benchmarks/bench_decode_am.py" + (f" --rounds {args.rounds}" if args.rounds != 2 else ""),
        "checkpoint": str(ckpt),
        "scenes": len(records),
        "requests_per_setting": len(records) * args.rounds,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "same_answers": same,
        "settings": {
            name: {f"{k}_p50": statistics.median(v) for k, v in r.items()} | {"total_mean": statistics.mean(r["total"])}
            for name, r in rows.items()
        },
    }
    a, b = out["settings"]["rebuilt"], out["settings"]["cached"]
    out["speedup"] = {k: a[f"{k}_p50"] / b[f"{k}_p50"] for k in ("total", "generate", "per_token")}
    print(f"{'setting':10s} {'request p50 s':>14s} {'generate p50 s':>15s} {'ms/token p50':>13s}")
    for name, s in out["settings"].items():
        print(f"{name:10s} {s['total_p50']:14.2f} {s['generate_p50']:15.2f} {s['per_token_p50']:13.1f}")
    sp = out["speedup"]
    print(f"{'ratio':10s} {sp['total']:13.2f}x {sp['generate']:14.2f}x {sp['per_token']:12.2f}x   same answers: {same}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.out}")
    if not same:
        raise SystemExit("the two settings gave different answers")


if __name__ == "__main__":
    main()
