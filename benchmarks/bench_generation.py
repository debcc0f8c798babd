"""Benchmark decoding on the ``small`` preset (SmolLM2-135M, fp32, CPU): KV-cached ``generate`` vs LISA-style.

    .venv/bin/python benchmarks/bench_generation.py            # 64 new tokens, ~150-token prompt, 1 thread

(a) ``PRGVisionLanguageModel.generate``: the prompt (image features included) goes through the LM once, then one
    token per step over the LM's KV cache. (b) LISA-style: every new token re-runs image encoder + full sequence
    through the model without ``past_key_values``. Both greedy, with HF's ``SuppressTokensLogitsProcessor``
    forbidding eos so all ``--new-tokens`` are produced; all runs must give the same tokens. (b) runs twice:
    with logits for the last position only (the ratio then measures the cache alone) and with logits at every
    position, as LISA's ``generate`` did (transformers 4.31 computed them all; 49k-word vocabulary here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from transformers import SuppressTokensLogitsProcessor

from prg.model.presets import build_preset
from prg.model.processor import build_prompt, fit_images
from prg.model.vlm import PRGVisionLanguageModel

DOCUMENT = (
    "EP-SAF-001 4.2.1: before any conductor of a de-energised cabinet is touched, the absence of voltage is "
    "verified on every phase with a voltage detector that was itself tested on a known live source. "
)


@torch.no_grad()
def uncached_decode(
    model: PRGVisionLanguageModel,
    input_ids: torch.Tensor,
    pixel_values: torch.Tensor,
    new_tokens: int,
    processor: SuppressTokensLogitsProcessor,
    full_logits: bool,
) -> torch.Tensor:
    """Greedy decode re-running the whole sequence each step; ``input_ids [1 x T]`` -> new ids ``[1 x new_tokens]``."""
    ids = input_ids
    for _ in range(new_tokens):
        out = model.language_model(
            inputs_embeds=model.embed(ids, pixel_values),  # image re-encoded too: nothing is kept between steps
            attention_mask=torch.ones_like(ids),
            use_cache=False,
            logits_to_keep=0 if full_logits else 1,
        )
        logits = processor(ids, out.logits[:, -1]).clone()
        logits[:, model.image_token_id] = -float("inf")  # as generate() does
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    return ids[:, input_ids.shape[1] :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=150, help="prompt length (documents cut to fit)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on the busy 2-core box)")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/generation_small_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    model, tokenizer = build_preset("small")
    build_s = time.perf_counter() - t0
    ids, _ = build_prompt(
        tokenizer,
        "The breaker is off. Hand me what I need before I touch the busbar.",
        [DOCUMENT * 10],
        model.num_image_tokens,
        max_length=args.prompt_tokens,
    )
    input_ids = torch.tensor([ids])
    rng = np.random.default_rng(0)
    pixel_values, _ = fit_images([rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)], model.geometry)
    processor = SuppressTokensLogitsProcessor(model.eos_token_ids)

    model.generate(input_ids, pixel_values, max_new_tokens=2, logits_processor=processor)  # warm-up
    t0 = time.perf_counter()
    cached = model.generate(input_ids, pixel_values, max_new_tokens=args.new_tokens, logits_processor=processor)
    cached_s = time.perf_counter() - t0
    rows = {"cached": cached_s}
    same = True
    for full in (False, True):
        t0 = time.perf_counter()
        uncached = uncached_decode(model, input_ids, pixel_values, args.new_tokens, processor, full)
        rows["uncached_full_logits" if full else "uncached_last_logits"] = time.perf_counter() - t0
        same &= torch.equal(cached.sequences, uncached)

    n = cached.sequences.shape[1]
    print(f"\nsmall preset, {input_ids.shape[1]} prompt tokens ({model.num_image_tokens} image), {n} new tokens")
    print(f"{'decode':<24}{'seconds':>10}{'tokens/s':>10}{'vs cached':>10}")
    for name, s in rows.items():
        print(f"{name:<24}{s:>10.2f}{n / s:>10.2f}{s / cached_s:>9.1f}x")
    print(f"same tokens in all runs: {same}")
    print("text:", repr(tokenizer.decode(cached.sequences[0])))

    result = {
        "preset": "small",
        "lm": "SmolLM2-135M-Instruct Q4_1 GGUF de-quantised to fp32",
        "prompt_tokens": int(input_ids.shape[1]),
        "image_tokens": model.num_image_tokens,
        "new_tokens": int(n),
        "seconds": rows,
        "tokens_per_s": {k: n / v for k, v in rows.items()},
        "speedup_vs_cached": {k: v / cached_s for k, v in rows.items() if k != "cached"},
        "same_tokens": same,
        "build_seconds": build_s,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
