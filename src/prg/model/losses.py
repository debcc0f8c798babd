"""Grasp-map loss (GG-CNN / GR-ConvNet style) and training targets from rectangles.

Choice: quality is a per-pixel "is this a good gripper centre" probability, so it gets binary cross-entropy
(``quality_loss="bce"``, default; GG-CNN's plain MSE is available as ``"mse"``). BCE keeps a useful gradient
where a sigmoid output is confidently wrong, which MSE on a sigmoid does not. cos2, sin2 and width are
regressions and get smooth L1 (``beta`` = 0.1, robust to the label noise at rectangle edges, as GR-ConvNet
uses). cos2 and sin2 are supervised on every pixel: their background 0 means "no angle" (prg.grasp.maps) and is
the middle of tanh's range. Width is supervised only inside the target's grasp region (quality > 0) by default:
the opening is read only at quality peaks, and a background target of 0 is the sigmoid's asymptote, which
drives the width logits into saturation until the region itself stops learning (seen in the overfit test).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from prg.grasp.maps import DEFAULT_WIDTH_SCALE, rects_to_maps
from prg.grasp.rect import GraspRect
from prg.model.grasp_head import activate_maps

__all__ = ["MAP_NAMES", "grasp_map_loss", "target_maps"]

MAP_NAMES = ("quality", "cos2", "sin2", "width")
_EPS = 1e-6


def grasp_map_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    quality_loss: str = "bce",
    beta: float = 0.1,
    logits: bool = False,
    width_in_grasp_only: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss between predicted and target maps, both ``[N x 4 x S x S]`` (quality, cos2, sin2, width).

    ``pred`` is the decoder's activated output (quality in (0, 1)), or with ``logits=True`` its pre-activation
    logits (``GraspHead(..., return_logits=True)``): prefer that for training, since BCE on logits keeps a
    gradient where the sigmoid saturates, while BCE on probabilities must clamp them. Returns the weighted sum
    of the four per-map means (a scalar) and the unweighted components keyed by :data:`MAP_NAMES`.
    With ``width_in_grasp_only`` (default) width is averaged over the target's grasp region only.
    """
    if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 4:
        raise ValueError(
            f"pred and target must both be [N x 4 x S x S], got {tuple(pred.shape)}, {tuple(target.shape)}"
        )
    if len(weights) != 4:
        raise ValueError(f"weights must have 4 entries (quality, cos2, sin2, width), got {len(weights)}")
    if quality_loss not in ("bce", "mse"):
        raise ValueError(f"quality_loss must be 'bce' or 'mse', got {quality_loss!r}")
    # float32: BCE's logs are unsafe in bf16 (and torch's binary_cross_entropy refuses to run under autocast).
    raw, target = pred.float(), target.to(device=pred.device, dtype=torch.float32)
    pred = activate_maps(raw) if logits else raw
    q, t = pred[:, 0], target[:, 0]
    if quality_loss == "mse":
        quality = F.mse_loss(q, t)
    elif logits:
        quality = F.binary_cross_entropy_with_logits(raw[:, 0], t)
    else:
        # Clamp before the log (not after): log(0) would give an infinite gradient and NaN weights.
        q = q.clamp(_EPS, 1.0 - _EPS)
        quality = -(t * torch.log(q) + (1 - t) * torch.log1p(-q)).mean()
    components = {"quality": quality}
    for i, name in enumerate(("cos2", "sin2"), start=1):
        components[name] = F.smooth_l1_loss(pred[:, i], target[:, i], beta=beta)
    width = F.smooth_l1_loss(pred[:, 3], target[:, 3], beta=beta, reduction="none")
    if width_in_grasp_only:
        region = (t > 0).float()
        # Mean over the grasp region; zero (with a graph) when a sample has no grasp at all.
        width = (width * region).sum() / region.sum().clamp(min=1.0)
    else:
        width = width.mean()
    components["width"] = width
    total = sum(w * components[name] for w, name in zip(weights, MAP_NAMES, strict=True))
    return torch.as_tensor(total), components


def target_maps(
    rects_per_pose: Sequence[Sequence[GraspRect]], size: int, width_scale: float = DEFAULT_WIDTH_SCALE
) -> torch.Tensor:
    """Rasterise each pose's rectangles (in model pixels, ``size x size``) -> targets ``[N x 4 x S x S]``."""
    stacks = [rects_to_maps(rects, (size, size), width_scale).stack() for rects in rects_per_pose]
    if not stacks:
        return torch.zeros(0, 4, size, size)
    return torch.from_numpy(np.stack(stacks))
