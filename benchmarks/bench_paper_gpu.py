"""GPU benchmark of the ``paper`` architecture (LLaVA-1.5-7B + SAM ViT-H, random weights, bf16).

    python benchmarks/bench_paper_gpu.py --out benchmarks/results/paper_gpu.json

Measures, in one run on one GPU:

1. **Memory bandwidth** of the device: a read-bound reduction over a 4 GiB tensor (and a copy, for reference).
2. **Time to first grasp**: ``PRGModel.predict`` from a 640 x 480 RGB image, an instruction and a retrieved context
   of ``--context`` tokens (1k by default) to ranked grasp rectangles in image pixels, with the answer's first
   token forced to ``[POSE]`` (random weights would never choose it). Includes preprocessing on the CPU, the CLIP
   tower, prefill, the [POSE] step, SAM ViT-H on the 1024 px image, γ + the decoder and map decoding.
   Reported per ``--decode`` mode, with a breakdown of the parts.
   Before a non-dynamic mode is timed, its greedy choices, logits and [POSE] hidden states are checked against
   dynamic decoding of the same tokens (``equivalence``; the run fails if they differ beyond bf16 tolerance).
3. **Decode speed**: tokens/s of the cached greedy loop (``generate``), as the time between producing token 1 and
   token N, against the memory-bandwidth floor measured in 1: every step must read all LM weights (but one row of
   the input embedding table) plus the KV cache so far, so ``floor = bytes / bandwidth`` and
   ``fraction = floor / measured time per token``.
4. **Peak GPU memory** (``torch.cuda.max_memory_allocated``) for the time-to-first-grasp request and overall.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from prg.model.prg_model import PRGModel, build_prg_model, paper_config
from prg.tokens import Segment

DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn: Any, repeat: int, warmup: int = 2) -> list[float]:
    """Wall-clock seconds of ``fn()`` (CUDA synchronised) over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeat):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


def bandwidth() -> dict[str, float]:
    """Achieved DRAM bandwidth in bytes/s: read-bound sum and copy over 4 GiB."""
    n = 2 * 1024**3 if DEVICE == "cuda" else 2**24  # bf16 elements: 4 GiB on the GPU
    src = torch.empty(n, dtype=torch.bfloat16, device=DEVICE).uniform_()
    dst = torch.empty_like(src)
    read = min(timed(lambda: src.sum(dtype=torch.float32), 10))
    copy = min(timed(lambda: dst.copy_(src), 10))
    return {"read_bytes_per_s": 2 * n / read, "copy_bytes_per_s": 2 * 2 * n / copy}


def force(token_id: int, steps: set[int], prompt_len: int, ban: list[int]) -> Any:
    """Logits processor: ``token_id`` wins at the given generated steps; ``ban`` ids never win.

    Device-side only (the banned ids are put on the device once): a host->device copy per step would make every
    step wait for the GPU and hide what the decode loop can do.
    """
    cache: dict[torch.device, torch.Tensor] = {}

    def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.device not in cache:  # (not setdefault: its default would be built, and copied, every step)
            cache[scores.device] = torch.tensor(ban, device=scores.device)
        banned = cache[scores.device]
        scores = scores.index_fill(1, banned, -float("inf"))
        if ids.shape[1] - prompt_len in steps:
            scores[:, token_id] = scores.max() + 10.0
        return scores

    return proc


def make_context(model: PRGModel, tokens: int) -> list[str]:
    """Retrieved clauses totalling about ``tokens`` document tokens in the prompt."""
    clause = (
        "EP-SAF-{i:03d} 4.2.{i}: before any conductor of a de-energised cabinet is touched, the absence of voltage "
        "is verified on every phase with a voltage detector that was itself tested on a known live source. "
    )
    docs: list[str] = []
    while True:
        docs.append(clause.format(i=len(docs)))
        _, _, seg = model.encode_prompts(["x"], [docs])
        if int((seg == int(Segment.DOCUMENT)).sum()) >= tokens:
            return docs


def kv_bytes(model: PRGModel, length: float) -> float:
    c = model.vlm.language_model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * length * 2  # K and V, bf16


POSE_REL_TOL = 0.05
"""Largest relative L2 error ``|h - h_dynamic| / |h_dynamic|`` of a [POSE] hidden state accepted between decode
modes in bf16 (8-bit mantissa, 32 layers of accumulated rounding); the measured value is reported beside it."""
LOGIT_TIE = 0.5
"""A step's greedy token may differ between modes only where dynamic decoding's top-2 logit margin is below this
(a near-tie that bf16 rounding decides); anywhere else a different token is a bug."""


def _recorder(plan: dict[int, int], prompt_len: int, ban: list[int], log: list[torch.Tensor]) -> Any:
    """Logits processor: records the raw scores of each step into ``log``, bans ``ban``, forces ``plan[step]``."""
    cache: dict[torch.device, torch.Tensor] = {}

    def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.device not in cache:
            cache[scores.device] = torch.tensor(ban, device=scores.device)
        log.append(scores[0].float().clone())
        scores = scores.index_fill(1, cache[scores.device], -float("inf"))
        token = plan.get(ids.shape[1] - prompt_len)
        if token is not None:
            scores[:, token] = scores.max() + 10.0
        return scores

    return proc


def equivalence(model: PRGModel, req: Request, decode: str, steps: int = 24) -> dict[str, Any]:
    """``decode`` mode against ``dynamic`` mode on one prompt; raises unless they agree within bf16 tolerance.

    1. Dynamic greedy decoding of ``steps`` tokens, [POSE] forced at steps 0, 7 and 15: the reference tokens.
    2. ``decode`` mode fed the same tokens (each step forced to the reference token), so both see one trajectory.
    3. At every step ``decode``'s own greedy choice must equal the reference token unless the reference's top-2
       margin is below ``LOGIT_TIE``; every [POSE] hidden state must be within ``POSE_REL_TOL``.
    """
    pixels = model.processor.vision_pixels([req.image]).to(DEVICE)
    eos = list(model.vlm.eos_token_ids)
    pose = model.vlm.pose_token_id
    forced = {0: pose, 7: pose, 15: pose}

    def run(mode: str, plan: dict[int, int], log: list[torch.Tensor]) -> Any:
        proc = _recorder(plan, req.prompt_len, eos, log)
        return model.vlm.generate(req.ids, pixels, req.mask, max_new_tokens=steps, logits_processor=proc, decode=mode)

    ref_log: list[torch.Tensor] = []
    ref = run("dynamic", forced, ref_log)
    tokens = ref.sequences[0].tolist()
    got_log: list[torch.Tensor] = []
    got = run(decode, dict(enumerate(tokens)), got_log)
    sync()
    ban = torch.tensor(eos, device=ref_log[0].device)
    ties, mismatches, max_dlogit = 0, [], 0.0
    for i, (a, b) in enumerate(zip(ref_log, got_log, strict=True)):
        if i in forced:
            continue
        a, b = a.index_fill(0, ban, -float("inf")), b.index_fill(0, ban, -float("inf"))
        top2 = a.topk(2).values
        margin = (top2[0] - top2[1]).item()
        finite = torch.isfinite(a)
        max_dlogit = max(max_dlogit, (a[finite] - b[finite]).abs().max().item())
        if int(b.argmax()) != tokens[i]:
            if margin < LOGIT_TIE:
                ties += 1
            else:
                mismatches.append({"step": i, "margin": margin})
    h_ref, h_got = ref.pose_hidden[0].float(), got.pose_hidden[0].float()
    rel = ((h_got - h_ref).norm(dim=-1) / h_ref.norm(dim=-1)).max().item() if h_ref.shape == h_got.shape else 1.0
    out = {"decode": decode, "steps": steps, "greedy_differs_at_near_ties": ties, "greedy_mismatches": mismatches,
           "max_abs_logit_diff": max_dlogit, "logit_tie": LOGIT_TIE, "poses": int(h_ref.shape[0]),
           "pose_rel_err_max": rel, "pose_rel_tol": POSE_REL_TOL}  # fmt: skip
    if mismatches or rel > POSE_REL_TOL or not torch.equal(ref.sequences, got.sequences):
        raise AssertionError(f"{decode} decoding differs from dynamic decoding: {out}")
    return out


@dataclass
class Request:
    image: np.ndarray
    instruction: str
    docs: list[str]
    ids: torch.Tensor  # [1 x T] on the device
    mask: torch.Tensor
    prompt_len: int


def run_mode(
    model: PRGModel, mode: str, req: Request, repeat: int, n: int, step_weight_bytes: int, peak_bw: float
) -> dict[str, Any]:
    """Time to first grasp (with breakdown), decode speed and peak memory for one mode.

    ``mode`` = a ``generate`` decode mode, optionally with ``+enc`` (F_enc compiled with ``torch.compile``).
    """
    decode, *flags = mode.split("+")
    model.config.decode = decode
    model.config.compile_encoder = "enc" in flags
    row: dict[str, Any] = {"mode": mode}
    if decode != "dynamic":  # checked before any time is reported for this mode
        row["equivalence"] = equivalence(model, req, decode)
    eos = list(model.vlm.eos_token_ids)
    pose = model.vlm.pose_token_id
    first_pose = force(pose, {0}, req.prompt_len, eos)

    def request() -> Any:
        return model.predict([req.image], [req.instruction], [req.docs], max_new_tokens=1, logits_processor=first_pose)

    t = time.perf_counter()
    preds = request()
    sync()
    row["first_call_s"] = time.perf_counter() - t  # includes compilation for "compiled"
    assert preds[0].pose_count == 1 and preds[0].grasps[0], "no grasp decoded"
    torch.cuda.reset_peak_memory_stats()
    ttfg = timed(request, repeat)
    row["ttfg_ms_p50"] = 1e3 * statistics.median(ttfg)
    row["ttfg_ms_min"] = 1e3 * min(ttfg)
    row["ttfg_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    stages: dict[str, float] = {}
    for _ in range(repeat):
        model.predict(
            [req.image], [req.instruction], [req.docs], max_new_tokens=1, logits_processor=first_pose, timings=stages
        )
    row["ttfg_stages_ms"] = {k: 1e3 * v / repeat for k, v in stages.items()}

    # breakdown: prefill (+ first token), SAM encoder
    pixels = model.processor.vision_pixels([req.image]).to(DEVICE)
    no_pose = force(pose, set(), req.prompt_len, [*eos, pose])

    def generate(tokens: int) -> Any:
        return model.vlm.generate(
            req.ids, pixels, req.mask, max_new_tokens=tokens, logits_processor=no_pose, decode=decode
        )

    prefill = timed(lambda: generate(1), repeat)
    sam_pixels = model.processor.encoder_pixels([req.image])[0].to(DEVICE)
    encoder = timed(lambda: model._encoder()(sam_pixels), repeat)
    row["prefill_ms_p50"] = 1e3 * statistics.median(prefill)
    row["sam_encoder_ms_p50"] = 1e3 * statistics.median(encoder)

    # decode throughput: n tokens vs 1 token, same prompt
    long = timed(lambda: generate(n), max(3, repeat // 3), warmup=1)
    per_token = (statistics.median(long) - statistics.median(prefill)) / (n - 1)
    floor = (step_weight_bytes + kv_bytes(model, req.prompt_len + n / 2)) / peak_bw
    row["decode_ms_per_token"] = 1e3 * per_token
    row["decode_tokens_per_s"] = 1 / per_token
    row["bandwidth_floor_ms_per_token"] = 1e3 * floor
    row["fraction_of_bandwidth_floor"] = floor / per_token
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--context", type=int, default=1000, help="retrieved-document tokens in the prompt")
    ap.add_argument("--new-tokens", type=int, default=128, help="tokens decoded for the throughput figure")
    ap.add_argument(
        "--modes",
        default="dynamic,compiled,compiled+enc",
        help="comma-separated modes: a generate decode mode (dynamic, static, compiled), optionally +enc "
        "(F_enc compiled too)",
    )
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/paper_gpu.json"))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script, measures nothing")
    args = ap.parse_args()
    global DEVICE
    if args.smoke:
        DEVICE = "cpu"
        torch.cuda.max_memory_allocated = lambda *a, **k: 0
        torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
        torch.cuda.get_device_name = lambda *a, **k: "cpu (smoke)"
    elif not torch.cuda.is_available():
        raise SystemExit("bench_paper_gpu.py needs a CUDA GPU (--smoke checks the script on the CPU)")
    torch.backends.cuda.matmul.allow_tf32 = True
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "python benchmarks/bench_paper_gpu.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    }
    import transformers

    result["transformers"] = transformers.__version__
    bw = bandwidth()
    if DEVICE == "cuda":
        torch.cuda.empty_cache()  # the 8 GiB of test tensors
    result["bandwidth"] = bw
    peak_bw = max(bw.values())

    t = time.perf_counter()
    if args.smoke:
        from prg.model.prg_model import tiny_config

        tiny_lm = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
        tiny_lm["num_key_value_heads"] = 4
        tiny_clip = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        config = paper_config(random_weights=True, dtype="float32", text_config=tiny_lm, vision_config=tiny_clip)
        config.encoder, config.decoder = tiny_config().encoder, tiny_config().decoder
    else:
        config = paper_config(random_weights=True, dtype="bfloat16")
    model = build_prg_model(config, device=DEVICE).eval()
    sync()
    result["build_s"] = time.perf_counter() - t
    lm = model.vlm.language_model
    lm_bytes = sum(p.numel() * p.element_size() for p in lm.parameters())
    embed = cast(torch.Tensor, lm.get_input_embeddings().weight)
    step_weight_bytes = lm_bytes - embed.numel() * embed.element_size()  # one row of the table is read per token
    result["parameters"] = {
        "language_model": sum(p.numel() for p in lm.parameters()),
        "vision_tower_projector": sum(p.numel() for p in model.vlm.vision_tower.parameters())
        + sum(p.numel() for p in model.vlm.projector.parameters()),
        "image_encoder": sum(p.numel() for p in model.image_encoder.parameters()),
        "grasp_head": sum(p.numel() for p in model.grasp_head.parameters()),
    }

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    instruction = "The breaker is off. Hand me what I need before I touch the busbar."
    docs = make_context(model, args.context)
    ids, mask, seg = model.encode_prompts([instruction], [docs])
    prompt_len = ids.shape[1]
    result["prompt"] = {
        "tokens": prompt_len,
        "image_tokens": int((seg == int(Segment.IMAGE)).sum()),
        "document_tokens": int((seg == int(Segment.DOCUMENT)).sum()),
    }
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    request = Request(image, instruction, docs, ids.to(DEVICE), mask.to(DEVICE), prompt_len)
    rows: list[dict[str, Any]] = []
    for mode in modes:
        row = run_mode(model, mode, request, args.repeat, args.new_tokens, step_weight_bytes, peak_bw)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result["runs"] = rows
    result["peak_gib_overall"] = torch.cuda.max_memory_allocated() / 2**30
    result["lm_weight_bytes_per_step"] = step_weight_bytes
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{result['device']}, torch {result['torch']}, transformers {result['transformers']}")
    print(f"bandwidth: read {bw['read_bytes_per_s'] / 1e12:.2f} TB/s, copy {bw['copy_bytes_per_s'] / 1e12:.2f} TB/s")
    print(f"prompt: {result['prompt']}")
    header = f"{'mode':<16}{'TTFG p50 ms':>12}{'prefill ms':>11}{'SAM ms':>8}{'tok/s':>8}"
    header += f"{'floor ms':>9}{'of floor':>9}{'peak GiB':>9}"
    print(header)
    for r in rows:
        print(
            f"{r['mode']:<16}{r['ttfg_ms_p50']:>12.1f}{r['prefill_ms_p50']:>11.1f}{r['sam_encoder_ms_p50']:>8.1f}"
            f"{r['decode_tokens_per_s']:>8.1f}{r['bandwidth_floor_ms_per_token']:>9.2f}"
            f"{r['fraction_of_bandwidth_floor']:>9.0%}{r['ttfg_peak_gib']:>9.1f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
