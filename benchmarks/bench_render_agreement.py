"""How closely the raster backend agrees with MuJoCo: per-object mask IoU and interior depth error, same scenes.

Scenes are sampled from the catalogue as in ``bench_render.py`` (one required tool, 3-8 objects, clutter). Every
placed object (tools and clutter) is compared by its instance mask; depth is compared inside the eroded
intersection of the two masks, where MuJoCo's tessellation leaves millimetres (silhouette pixels differ by
centimetres where an edge falls on either side of a pixel centre). Small objects cover few pixels, so their IoU
moves in steep steps: the JSON reports the distribution for objects of at least ``--min-pixels`` and for all.
Prints a table and writes JSON.

    .venv/bin/python benchmarks/bench_render_agreement.py --scenes 40 --size 448
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import binary_erosion

from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.render import import_mujoco, render_scene
from prg.data.synth.scene import SceneSamplingError, sample_scene

OBJECTS = [k for k in CATALOGUE if not k.startswith("clutter_")]
CLUTTER = [k for k in CATALOGUE if k.startswith("clutter_")]


def compare_scene(seed: int, size: int) -> list[dict[str, float | int | str]]:
    """One row per placed object: mask IoU, raster mask pixels, interior depth error (median, p95) in metres."""
    rng = np.random.default_rng(seed)
    required = [OBJECTS[int(rng.integers(len(OBJECTS)))]]
    try:
        spec = sample_scene(rng, CATALOGUE, required, int(rng.integers(3, 9)), OBJECTS, CLUTTER, size, seed=seed)
    except SceneSamplingError:
        return []
    ras, mj = render_scene(spec, CATALOGUE, "raster"), render_scene(spec, CATALOGUE, "mujoco")
    rows: list[dict[str, float | int | str]] = []
    for o in [*spec.objects, *spec.clutter]:
        a, b = ras.instances == o.instance_id, mj.instances == o.instance_id
        union = int((a | b).sum())
        if union == 0:  # fully hidden under another object in both renderings
            continue
        inner = binary_erosion(a & b)
        err = np.abs(ras.depth[inner] - mj.depth[inner]) if inner.any() else np.zeros(1)
        rows.append(
            {
                "seed": seed,
                "type": o.type_key,
                "pixels": int(a.sum()),
                "iou": float((a & b).sum() / union),
                "depth_err_median_m": float(np.median(err)),
                "depth_err_p95_m": float(np.percentile(err, 95)),
            }
        )
    return rows


def summary(rows: list[dict[str, float | int | str]]) -> dict[str, float | int]:
    iou = np.array([float(r["iou"]) for r in rows])
    p95 = np.array([float(r["depth_err_p95_m"]) for r in rows])
    return {
        "objects": len(rows),
        "iou_min": float(iou.min()),
        "iou_p5": float(np.percentile(iou, 5)),
        "iou_median": float(np.median(iou)),
        "share_iou_ge_0.98": float((iou >= 0.98).mean()),
        "depth_err_p95_m_max": float(p95.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--min-pixels", type=int, default=200, help="objects at least this large in the raster")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/render_agreement.json"))
    args = parser.parse_args()

    import_mujoco()
    rows = [r for seed in range(args.scenes) for r in compare_scene(seed, args.size)]
    large = [r for r in rows if int(r["pixels"]) >= args.min_pixels]
    result: dict[str, Any] = {
        "meta": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "mujoco_gl": os.environ.get("MUJOCO_GL"),
            "scenes": args.scenes,
            "image_size": args.size,
            "min_pixels": args.min_pixels,
        },
        "all": summary(rows),
        "large": summary(large),
        "worst": sorted(rows, key=lambda r: float(r["iou"]))[:10],
    }
    print(f"{'objects':>20s} | {'n':>4s} | {'IoU min':>7s} | {'IoU p5':>6s} | {'median':>6s} | {'>= 0.98':>7s}")
    for name in ("all", "large"):
        s = result[name]
        label = name if name == "all" else f">= {args.min_pixels} px"
        print(
            f"{label:>20s} | {s['objects']:4d} | {s['iou_min']:7.3f} | {s['iou_p5']:6.3f} | {s['iou_median']:6.3f}"
            f" | {s['share_iou_ge_0.98']:7.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
