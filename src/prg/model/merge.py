"""``prg merge``: fold a checkpoint's adapters into its base and write a standalone folder.

The seed's "merge LoRA weights" step, for both adapter kinds: PEFT LoRA merges exactly; AdaptiveMixture folds
its experts with their mean gates (an approximation, docs/adaptive_mixture.md). The logits of one probe prompt
are compared before and after the merge, so every merge reports what it changed; for AdaptiveMixture the same
probe calibrates the mean gates (its segments: one document, one instruction).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from prg.model.adaptive_mixture import calibrate, set_segments
from prg.model.checkpoint import from_pretrained, save_standalone
from prg.model.prg_model import PRGModel

__all__ = ["MergeReport", "merge_checkpoint", "probe_logits"]

PROBE_INSTRUCTION = "The breaker is off. Hand me what I need before I touch the busbar."
PROBE_DOCUMENT = "5.2 Before work on de-energised parts, verify the absence of voltage with a tested detector."


@dataclass
class MergeReport:
    adapters: str  # "adaptive_mixture" or "lora"
    out: Path
    max_abs: float  # probe logits, merged vs unmerged
    max_rel: float
    bytes_written: int


@torch.no_grad()
def probe_logits(model: PRGModel) -> torch.Tensor:
    """Logits ``[T x V]`` (fp32) of a fixed image-free probe prompt: instruction + one document."""
    input_ids, mask, segments = model.encode_prompts([PROBE_INSTRUCTION], [[PROBE_DOCUMENT]])
    keep = input_ids != model.vlm.image_token_id  # the probe carries no image
    ids = input_ids[keep].view(1, -1)
    device = next(model.parameters()).device

    if model.has_adapters:
        set_segments(model.vlm.language_model, segments[keep].view(1, -1).to(device))
    try:
        out = model.vlm(ids.to(device), None, mask[keep].view(1, -1).to(device))
    finally:
        if model.has_adapters:
            set_segments(model.vlm.language_model, None)
    return out.logits[0].float()


def merge_checkpoint(
    weights: str | Path,
    out: str | Path,
    base: dict[str, Any] | None = None,
    device: str = "cpu",
    force: bool = False,
) -> MergeReport:
    """Load ``weights`` (a PRG checkpoint with adapters) on its base, merge, write a standalone folder at ``out``.

    ``base`` overrides where the base weights live (``{"llava": ..., "sam": ...}`` for the paper preset). The
    folder is written next to ``out`` and renamed into place at the end, so an interrupted merge leaves nothing
    half-written; an existing non-empty ``out`` is kept unless ``force``.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty (pass --force to replace it)")
    model = from_pretrained(weights, map_location=device, base=base)
    model.eval()
    if model.has_adapters:
        kind = "adaptive_mixture"
    elif model.config.lora is not None:
        kind = "lora"
    else:
        raise ValueError(f"{weights} has no adapters to merge (neither AdaptiveMixture nor LoRA)")
    if kind == "adaptive_mixture":  # the mean gates come from the probe prompt (uniform 1/E would ignore routing)
        with calibrate(model.vlm.language_model):
            before = probe_logits(model)
    else:
        before = probe_logits(model)
    model.merge_adapters()
    after = probe_logits(model)
    diff = (before - after).abs()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_standalone(model, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return MergeReport(
        adapters=kind,
        out=out,
        max_abs=diff.max().item(),
        max_rel=(diff.max() / before.abs().max().clamp_min(1e-12)).item(),
        bytes_written=size,
    )
