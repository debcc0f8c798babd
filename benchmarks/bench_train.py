"""Training step speed: AdaptiveMixture against the PEFT LoRA baseline at an equal trainable budget, side by side.

    python benchmarks/bench_train.py --preset small --batch 2 --tokens 256 --steps 3 \
        --out benchmarks/results/train_step_cpu.json
    python benchmarks/bench_train.py --preset small --batch 32 --tokens 400 --device cuda   # on a GPU (bf16 autocast)
    python benchmarks/bench_train.py --preset paper --random-weights --batch 4 --tokens 1962 --device cuda \
        --out benchmarks/results/train_step_paper_h200.json       # the seed's architecture, random bf16 weights

One synthetic batch (random token ids around the image slots, one ``[POSE]`` per sample, random grasp targets) goes
through ``PRGModel.forward``, backward and an AdamW step, as in ``prg train``. Reported per adapter: median seconds
per step, tokens/s, trainable parameters, and (on CUDA) peak memory; the ratio AdaptiveMixture / LoRA is the
figure (issue goal: <= 1.25). ``--profile`` prints the top operators of one step per adapter. On CUDA, MFU is
tokens/s x 4 N / peak bf16 FLOP/s (``--peak-tflops``, 989 for an H100/H200 SXM, dense): with the base frozen a
token costs 2N FLOPs forward and 2N for the activation gradients (N = the language model's parameters).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from prg.model.adaptive_mixture import AdaptiveMixtureConfig, lora_baseline_config, trainable_parameters
from prg.model.prg_model import PRGModel, build_prg_model, preset_config
from prg.tokens import Segment


def make_batch(model: PRGModel, batch: int, tokens: int, device: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    vlm = model.vlm
    n_img = vlm.num_image_tokens
    text = tokens - n_img
    if text < 8:
        raise SystemExit(f"--tokens must exceed the {n_img} image tokens by at least 8")
    vocab = int(vlm.language_model.config.vocab_size)
    special = {vlm.image_token_id, vlm.pose_token_id, vlm.pad_token_id, *vlm.eos_token_ids}
    ids = torch.randint(3, vocab, (batch, tokens), generator=g)
    for t in special:
        ids[ids == t] = 5
    ids[:, 4 : 4 + n_img] = vlm.image_token_id
    ids[:, -3] = vlm.pose_token_id
    labels = torch.full_like(ids, -100)
    answer = slice(tokens - text // 4, tokens)  # the last quarter of the text is the answer
    labels[:, answer] = ids[:, answer]
    segments = torch.full_like(ids, int(Segment.DOCUMENT))
    segments[:, 4 : 4 + n_img] = int(Segment.IMAGE)
    segments[:, answer] = int(Segment.ANSWER)
    s = model.map_size
    vs = vlm.image_size
    maps = torch.zeros(batch, 4, s, s)
    maps[:, 0, s // 3 : s // 2, s // 3 : s // 2] = 1.0
    out = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "segment_ids": segments,
        "pixel_values": torch.randn(batch, 3, vs, vs, generator=g),
        "sam_pixel_values": torch.randn(batch, 3, s, s, generator=g),
        "target_maps": maps,
    }
    return {k: v.to(device) for k, v in out.items()}


def run(adapter: str, args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"random_weights": True} if args.random_weights else {}
    config = preset_config(args.preset, **kwargs)
    if args.device.startswith("cuda") and args.preset == "paper":
        config.dtype = "bfloat16"
    model = build_prg_model(config, device=args.device)
    am = AdaptiveMixtureConfig(n_experts=4, rank=8, top_k=2)
    if adapter == "adaptive_mixture":
        model.apply_adaptive_mixture(am)
    else:
        base = lora_baseline_config(model.vlm.language_model, am)
        model.apply_lora(
            {"r": base.r, "lora_alpha": base.lora_alpha, "target_modules": sorted(base.target_modules or [])}
        )
    if args.grad_ckpt:
        model.vlm.language_model.gradient_checkpointing_enable()
    model.to(args.device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    batch = make_batch(model, args.batch, args.tokens, args.device)
    cuda = args.device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with amp:
            loss = model(batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    row: dict[str, Any] = {
        "adapter": adapter,
        "trainable_parameters": trainable_parameters(model)[0],
        "s_per_step_p50": statistics.median(times),
        "tokens_per_s": args.batch * args.tokens / statistics.median(times),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }
    n_lm = sum(p.numel() for p in model.vlm.language_model.parameters() if not p.requires_grad)  # the frozen base
    row["lm_parameters"] = n_lm
    row["mfu"] = row["tokens_per_s"] * 4 * n_lm / (args.peak_tflops * 1e12) if cuda else None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            step()
        key = "cuda_time_total" if cuda else "cpu_time_total"
        print(f"--- {adapter}\n" + prof.key_averages().table(sort_by=key, row_limit=15))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--random-weights", action="store_true", help="paper preset: the architecture, no files")
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing in the language model")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/train_step.json"))
    args = ap.parse_args()
    rows = [run(a, args) for a in ("adaptive_mixture", "lora")]
    ratio = rows[0]["s_per_step_p50"] / rows[1]["s_per_step_p50"]
    result = {
        "device": torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "python benchmarks/bench_train.py "
        + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
            for k, v in vars(args).items()
            if k not in ("out", "profile") and v is not False
        ),
        "preset": args.preset,
        "batch": args.batch,
        "tokens": args.tokens,
        "runs": rows,
        "am_over_lora": ratio,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'adapter':<18}{'trainable':>12}{'s/step':>9}{'tokens/s':>10}{'MFU':>7}{'peak GiB':>9}")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        print(
            f"{r['adapter']:<18}{r['trainable_parameters']:>12,}{r['s_per_step_p50']:>9.3f}{r['tokens_per_s']:>10.0f}"
            f"{mfu:>7}{peak:>9}"
        )
    print(f"AdaptiveMixture / LoRA time per step: {ratio:.2f}x   (wrote {args.out})")


if __name__ == "__main__":
    main()
