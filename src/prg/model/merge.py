"""Merging adapters for deployment: fold them into the base and report what the probe logits did.

The seed's "merge LoRA weights" step, for both adapter kinds: PEFT LoRA merges exactly; AdaptiveMixture folds
its experts with their mean gates (an approximation, docs/adaptive_mixture.md). The logits of one probe prompt
are compared before and after the merge, so every merge reports what it changed; for AdaptiveMixture the same
probe calibrates the mean gates (its segments: one document, one instruction).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prg.model.adaptive_mixture import calibrate, set_segments
from prg.model.prg_model import PRGModel

__all__ = ["MergeReport", "merge_in_place", "probe_logits"]

PROBE_INSTRUCTION = "The breaker is off. Hand me what I need before I touch the busbar."
PROBE_DOCUMENT = "5.2 Before work on de-energised parts, verify the absence of voltage with a tested detector."


@dataclass
class MergeReport:
    adapters: str  # "adaptive_mixture" or "lora"
    max_abs: float  # probe logits, merged vs unmerged
    max_rel: float


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


def merge_in_place(model: PRGModel) -> MergeReport:
    """Fold ``model``'s adapters into its weights (in place) and measure the probe logits before and after.

    For AdaptiveMixture the probe also calibrates the mean gates (uniform 1/E would ignore routing). No file I/O:
    ``prg merge`` loads the checkpoint, calls this and writes the result with ``save_standalone``.
    """
    model.eval()
    if model.has_adapters:
        kind = "adaptive_mixture"
    elif model.config.lora is not None:
        kind = "lora"
    else:
        raise ValueError("the model has no adapters to merge (neither AdaptiveMixture nor LoRA)")
    if kind == "adaptive_mixture":
        with calibrate(model.vlm.language_model):
            before = probe_logits(model)
    else:
        before = probe_logits(model)
    model.merge_adapters()
    after = probe_logits(model)
    diff = (before - after).abs()
    return MergeReport(
        adapters=kind,
        max_abs=diff.max().item(),
        max_rel=(diff.max() / before.abs().max().clamp_min(1e-12)).item(),
    )
