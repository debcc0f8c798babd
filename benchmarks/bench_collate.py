"""Data-loader cost of training targets: full-size grasp maps built in the loader vs rectangles rasterised later.

    python benchmarks/bench_collate.py --dataset DS [--scenes 32] [--repeat 3] \
        --out benchmarks/results/collate.json

Stage 1 of the small recipe (``kind: grasp_prompt``) prompts every object of a scene, about 5.5 per PRG-Synth
scene, and each prompt's targets are four 448 x 448 maps. The first H200 run was bound by its data loader. Side by
side on the same items, per scene, single-threaded (one loader worker's view):

* ``maps``: ``collate_prompts`` plus ``processor.target_maps`` (what the collator did before);
* ``rects``: ``collate_prompts`` as it is now (rectangles packed, a few numbers per grasp);
* ``rasterise_rects (cpu)``: the dense on-device rasteriser run on the CPU (what a GPU runs, here for scale);
* ``batch_target_maps (cpu)``: what the model does with the rectangles when it trains on the CPU (numpy fill).

Also reported: the bytes of targets per batch either way.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from prg.data.torch.augment import AugmentConfig
from prg.data.torch.prompts import PromptSource, category_vocab, collate_prompts
from prg.model.losses import batch_target_maps, rasterise_rects
from prg.model.prg_model import build_prg_model, preset_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True, help="a PRG-Synth folder (prg data synth)")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--scenes", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/collate.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    processor = build_prg_model(preset_config(args.preset)).processor
    vocab = category_vocab([args.dataset])
    src = PromptSource(args.dataset, vocab, augment=AugmentConfig())
    items = [src.get(i) for i in range(min(args.scenes, len(src)))]
    n = len(items)

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    batch = collate_prompts(items, processor)
    size = processor.encoder.size
    poses = int(batch["prompt_kind"].shape[0])

    def with_maps() -> None:
        b = collate_prompts(items, processor)
        rects, metas = [r for it in items for r in it["pose_rects"]], []
        _, img_metas = processor.encoder_pixels([it["image"] for it in items])
        for it, m in zip(items, img_metas, strict=True):
            metas += [m] * len(it["pose_rects"])
        b["target_maps"] = processor.target_maps(rects, metas)

    rows = {
        "maps": timed(with_maps),
        "rects": timed(lambda: collate_prompts(items, processor)),
        "rasterise_rects (cpu)": timed(lambda: rasterise_rects(batch["target_rects"], batch["target_valid"], size)),
        "batch_target_maps (cpu)": timed(lambda: batch_target_maps(batch, size, processor.width_scale)),
    }
    result = {
        "device": f"cpu ({platform.processor() or platform.machine()}, 1 thread)",
        "torch": torch.__version__,
        "command": f"python benchmarks/bench_collate.py --dataset {args.dataset} --preset {args.preset} "
        f"--scenes {args.scenes} --repeat {args.repeat}",
        "scenes": n,
        "poses": poses,
        "map_size": size,
        "ms_per_scene": {k: 1000 * v / n for k, v in rows.items()},
        "target_bytes_per_batch": {
            "maps": poses * 4 * size * size * 4,
            "rects": batch["target_rects"].numel() * 4 + batch["target_valid"].numel(),
        },
        "maps_over_rects": rows["maps"] / rows["rects"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n} scenes, {poses} prompts, {size} px maps")
    print(f"{'collate':<26}{'ms/scene':>10}")
    for k, v in result["ms_per_scene"].items():
        print(f"{k:<26}{v:>10.1f}")
    tb = result["target_bytes_per_batch"]
    print(f"targets per batch: maps {tb['maps'] / 2**20:.0f} MiB, rects {tb['rects'] / 2**10:.1f} KiB")
    print(f"maps / rects: {result['maps_over_rects']:.1f}x   (wrote {args.out})")


if __name__ == "__main__":
    main()
