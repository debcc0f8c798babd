"""How far a merged AdaptiveMixture is from the unmerged one, over many seeds: the tolerance docs and tests quote.

The recipe of ``tests/model/test_adaptive_mixture.py::test_merge_error_within_documented_tolerance``: a tiny
random Llama (hidden 32, 2 layers, vocabulary 128, ``torch.manual_seed(0)``), the default
``AdaptiveMixtureConfig`` with random untrained routers and every ``B_e ~ N(0, 0.02)``, 4 x 24 random tokens with
random segment ids, calibrated on that same batch, then ``merge_adaptive_mixture``. Trial ``s`` seeds the
wrapping (``torch.manual_seed(s)``), the tokens and the segment ids with ``s``. Reported per trial: ``max_rel``
of the merged logits against the unmerged ones, and the error ratio = mean |merged - unmerged| / mean |base -
unmerged| (how much of the adapter's effect the merge loses; 1 = as bad as dropping the adapter). Prints a
summary and writes JSON.

    .venv/bin/python benchmarks/bench_merge_error.py --seeds 100
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from torch import nn

from prg.model import (
    AdaptiveMixtureConfig,
    apply_adaptive_mixture,
    calibrate,
    merge_adaptive_mixture,
    merge_error,
    set_segments,
    wrapped_modules,
)


def base_model() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
    )
    return transformers.LlamaForCausalLM(cfg).eval()


@torch.no_grad()
def trial(base: nn.Module, seed: int, b_std: float = 0.02) -> dict[str, float]:
    """One seed of the recipe in the module docstring: ``max_rel`` and the error ratio."""
    torch.manual_seed(seed)
    model = apply_adaptive_mixture(copy.deepcopy(base), AdaptiveMixtureConfig()).eval()
    for _, m in wrapped_modules(model):
        m.lora_B.normal_(0.0, b_std)
    ids = torch.randint(0, 128, (4, 24), generator=torch.Generator().manual_seed(seed))
    segs = torch.randint(0, 4, ids.shape, generator=torch.Generator().manual_seed(seed))
    set_segments(model, segs)
    with calibrate(model):
        model(input_ids=ids, use_cache=False)
    merged = merge_adaptive_mixture(copy.deepcopy(model))
    err = merge_error(model, merged, {"input_ids": ids})
    dropped = merge_error(model, base, {"input_ids": ids})  # the error of throwing the adapter away
    return {"seed": seed, "max_rel": err["max_rel"], "ratio": err["mean_abs"] / dropped["mean_abs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="trials 0 .. seeds-1")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/merge_error.json"))
    args = parser.parse_args()

    torch.set_num_threads(1)
    base = base_model()
    start = time.perf_counter()
    rows = [trial(base, s) for s in range(args.seeds)]
    elapsed = time.perf_counter() - start
    stats = {}
    for key in ("max_rel", "ratio"):
        v = np.array([r[key] for r in rows])
        stats[key] = {
            "min": float(v.min()),
            "p5": float(np.percentile(v, 5)),
            "median": float(np.median(v)),
            "p95": float(np.percentile(v, 95)),
            "max": float(v.max()),
        }
    stats["max_rel"]["above_0.4"] = sum(r["max_rel"] > 0.4 for r in rows)
    stats["ratio"]["above_0.8"] = sum(r["ratio"] > 0.8 for r in rows)
    result = {
        "meta": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "seconds": elapsed,
        },
        "seeds": args.seeds,
        "summary": stats,
        "trials": rows,
    }
    print(f"{args.seeds} seeds ({elapsed:.1f} s)   min    p5  median   p95   max")
    for key in ("max_rel", "ratio"):
        s = stats[key]
        print(f"{key:>22s} {s['min']:.3f} {s['p5']:.3f} {s['median']:.3f} {s['p95']:.3f} {s['max']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
