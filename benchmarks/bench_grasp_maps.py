"""What the grasp-map encoding costs under the rectangle metric: Cornell-shaped rectangles -> maps -> rectangles.

The four maps (quality, cos 2θ, sin 2θ, width) carry no jaw size: ``maps_to_rects`` gives every rectangle the
height ``jaw_ratio x width`` (0.5, as in GG-CNN). Cornell's annotated jaws vary independently of the opening, so
a perfect map predictor is still capped below 100 % by the round trip alone. This script draws rectangles with a
Cornell-like size distribution (opening uniform in [20, 80] px, jaw uniform in [10, 40] px, any angle; drawn, not
Cornell's own annotations), places them apart (a 5 x 4 grid of cells on a 640 x 480 image, so none overlaps),
encodes them with ``rects_to_maps``, decodes with ``maps_to_rects`` (defaults) and checks each decoded rectangle
nearest an annotation against that annotation with the rectangle metric (IoU > 0.25, angle < 30°). It also
checks the same decoded rectangle with the annotated jaw size put back, which isolates the cost of the missing
jaw size from centre, angle and opening errors. Prints a table and writes JSON.

    .venv/bin/python benchmarks/bench_grasp_maps.py --images 50 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from prg.grasp import GraspRect, grasp_success, maps_to_rects, rects_to_maps

SHAPE = (480, 640)  # Cornell's image size, (H, W)
GRID = (4, 5)  # rows x columns of cells, one rectangle per cell
RATIO_BINS = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, math.inf)  # jaw / opening


def draw_rects(rng: np.random.Generator, width: tuple[float, float], height: tuple[float, float]) -> list[GraspRect]:
    """One rectangle per grid cell, centre jittered inside the cell; cells (128 x 120 px) hold any drawn size."""
    rows, cols = GRID
    ch, cw = SHAPE[0] / rows, SHAPE[1] / cols
    rects = []
    for r in range(rows):
        for c in range(cols):
            x = (c + 0.5) * cw + rng.uniform(-8, 8)
            y = (r + 0.5) * ch + rng.uniform(-8, 8)
            rects.append(
                GraspRect(x, y, rng.uniform(*width), rng.uniform(*height), rng.uniform(-math.pi / 2, math.pi / 2))
            )
    return rects


def round_trip(rects: list[GraspRect]) -> list[dict[str, float | bool]]:
    """Per annotation: its jaw/opening ratio, whether the nearest decoded rectangle passes the metric as decoded
    and with the annotated jaw size put back."""
    decoded = maps_to_rects(rects_to_maps(rects, SHAPE), k=len(rects) + 5)
    rows = []
    for gt in rects:
        if not decoded:
            rows.append({"ratio": gt.height / gt.width, "pass": False, "pass_true_jaw": False})
            continue
        match = min(decoded, key=lambda d: math.hypot(d.x - gt.x, d.y - gt.y))
        rows.append(
            {
                "ratio": gt.height / gt.width,
                "pass": grasp_success(match, [gt]),
                "pass_true_jaw": grasp_success(dataclasses.replace(match, height=gt.height), [gt]),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="images of 20 rectangles each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, nargs=2, default=(20.0, 80.0), help="opening range, px")
    parser.add_argument("--height", type=float, nargs=2, default=(10.0, 40.0), help="jaw range, px")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/grasp_maps.json"))
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows = [row for _ in range(args.images) for row in round_trip(draw_rects(rng, args.width, args.height))]
    elapsed = time.perf_counter() - start
    ratio = np.array([float(r["ratio"]) for r in rows])
    ok = np.array([bool(r["pass"]) for r in rows])
    ok_jaw = np.array([bool(r["pass_true_jaw"]) for r in rows])
    bins = []
    for lo, hi in itertools.pairwise(RATIO_BINS):
        sel = (ratio >= lo) & (ratio < hi)
        if sel.any():
            bins.append(
                {
                    "ratio_from": lo,
                    "ratio_to": hi if math.isfinite(hi) else None,
                    "rects": int(sel.sum()),
                    "pass_rate": float(ok[sel].mean()),
                }
            )
    result = {
        "meta": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "seed": args.seed,
            "images": args.images,
            "image_shape_hw": list(SHAPE),
            "opening_px": list(args.width),
            "jaw_px": list(args.height),
            "jaw_ratio": 0.5,
            "seconds": elapsed,
        },
        "rects": len(rows),
        "pass_rate": float(ok.mean()),
        "pass_rate_true_jaw": float(ok_jaw.mean()),
        "by_jaw_over_opening": bins,
    }
    print(f"{len(rows)} rectangles: pass rate {ok.mean():.3f} as decoded, {ok_jaw.mean():.3f} with the true jaw size")
    print(f"{'jaw / opening':>14s} | {'rects':>5s} | pass rate")
    for b in bins:
        to = "inf" if b["ratio_to"] is None else f"{b['ratio_to']:.3f}"
        print(f"{b['ratio_from']:6.3f}-{to:<7s} | {b['rects']:5d} | {b['pass_rate']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
