"""A cheap CPU proxy of the small recipe's stage 1: F_dec's prompt paths compared on 224 px scenes.

    prg data synth --out /tmp/ds224 --n 2000 --seed 0 --size 224
    python benchmarks/stage1_proxy.py --ds /tmp/ds224 --variant base --steps 400 \\
        --out benchmarks/results/stage1_proxy_base.json      # then --variant gate, --variant match

The small preset's F_enc + F_dec + prompt table (the encoder's input shrunk to ``--size``), trained on the category
and point prompts of the dataset's train scenes (batch 16, AdamW lr 1e-3, warmup 30, cosine over ``--steps``); every
100 steps the category-prompt hit on the first 64 val scenes: the share of prompts whose quality peak lies within
``4 x size / 56`` model pixels of the prompted object's grasp region. One variant per run (they were run two at a
time, one thread each, on the 2-core CPU machine): ``base`` is SAM's decoder, ``gate`` adds the prompt gate,
``match`` the gate and the supervised match map (``docs/grasp_head.md`` has the table). ``grasp`` is the share of
those prompts whose top-1 decoded rectangle passes the rectangle metric against the object's own rectangles;
``--angle-region-weight`` sets ``ModelConfig.angle_region_weight`` (the cos2/sin2 loss over the grasp region).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from prg.data.torch.augment import AugmentConfig
from prg.data.torch.prompts import PromptSource, category_vocab, collate_prompts
from prg.model.losses import batch_target_maps
from prg.model.prg_model import build_prg_model, small_config
from prg.train.data import prompt_grasp_hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ds", default="/tmp/ds224")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--variant", choices=["base", "gate", "match"], default="base")
    ap.add_argument("--angle-region-weight", type=float, default=0.0, help="ModelConfig.angle_region_weight")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vocab = category_vocab([a.ds])
    cfg = small_config()
    cfg.encoder["image_size"] = a.size
    cfg.prompt_vocab, cfg.train_encoder, cfg.dice_weight, cfg.adaptive_mixture = vocab, True, 1.0, None
    cfg.freeze = ["vlm.language_model", "vlm.vision_tower", "vlm.projector", "grasp_head.projection"]
    cfg.prompt_gate = a.variant in ("gate", "match")
    cfg.prompt_match = a.variant == "match"
    cfg.match_weight = 1.0 if a.variant == "match" else 0.0
    cfg.angle_region_weight = a.angle_region_weight
    model = build_prg_model(cfg)
    dec = model.grasp_head.decoder
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01, betas=(0.9, 0.95))

    def lr_at(s: int) -> float:
        return min(1.0, (s + 1) / 30) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    src = PromptSource(a.ds, vocab, seed=0)
    val = PromptSource(a.ds, vocab, name="v", splits=["val"], point_rate=0.0, point_jitter=0.0,
                       augment=AugmentConfig.none())  # fmt: skip
    vitems = [val.get(j) for j in range(min(64, len(val)))]

    def hit_rate() -> tuple[float, float]:
        model.eval()
        hits = grasps = total = 0
        with torch.no_grad():
            for i in range(0, len(vitems), 16):
                b = collate_prompts(vitems[i : i + 16], model.processor)
                emb = model.image_encoder(b["sam_pixel_values"])
                pr = model.prompt_table(b["prompt_kind"], b["prompt_category"], b["prompt_points"], dec)
                maps = dec(pr, emb, b["prompt_image_index"]).float()
                q = maps[:, 0]
                grasps += prompt_grasp_hits(maps, b, model.config.width_scale)
                region = batch_target_maps(b, model.map_size, model.config.width_scale)[:, 0] > 0
                r = 4 * max(1, a.size // 56)
                near = F.max_pool2d(region[:, None].float(), 2 * r + 1, stride=1, padding=r)[:, 0] > 0
                peak = q.flatten(1).argmax(1)
                hits += int(near.flatten(1).gather(1, peak[:, None]).sum())
                total += len(peak)
        model.train()
        return hits / max(1, total), grasps / max(1, total)

    model.train()
    t0, epoch, pos = time.time(), 0, 0
    order = torch.randperm(len(src))
    rows = []
    for step in range(a.steps):
        if pos + a.bs > len(src):
            epoch, order, pos = epoch + 1, torch.randperm(len(src)), 0
        items = [src.get(int(i), epoch=epoch) for i in order[pos : pos + a.bs]]
        pos += a.bs
        batch = {k: v for k, v in collate_prompts(items, model.processor).items() if isinstance(v, torch.Tensor)}
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0:
            hit, grasp = hit_rate()
            rows.append(
                {"step": step + 1, "loss": loss.item(), "hit": hit, "grasp": grasp, "seconds": time.time() - t0}
            )
            print(
                f"step {step + 1}  loss {loss.item():.3f}  hit {hit:.3f}  grasp {grasp:.3f}  {time.time() - t0:.0f} s",
                flush=True,
            )
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"variant": a.variant, "args": vars(a) | {"out": str(a.out)}, "rows": rows},
                                    indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
