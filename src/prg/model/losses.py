"""Grasp-map loss (GG-CNN / GR-ConvNet style) and training targets from rectangles.

Choice: quality is a per-pixel "is this a good gripper centre" probability, so it gets binary cross-entropy
(``quality_loss="bce"``, default; GG-CNN's plain MSE is available as ``"mse"``). BCE keeps a useful gradient
where a sigmoid output is confidently wrong, which MSE on a sigmoid does not. cos2, sin2 and width are
regressions and get smooth L1 (``beta`` = 0.1, robust to the label noise at rectangle edges, as GR-ConvNet
uses). cos2 and sin2 are supervised on every pixel: their background 0 means "no angle" (prg.grasp.maps) and is
the middle of tanh's range. That mean is over all pixels, of which the grasp region is about 1%, so the angle
where it is read (at quality peaks, inside the region) gets a hundredth of the gradient: ``angle_region_weight``
adds the mean over the region itself (the shipped fourth run, without it, missed the rectangle metric on 17 of 73
on-target val poses by the angle alone, 30-77 degrees off, with IoU up to 0.6).

Width is supervised only inside the target's grasp region (quality > 0) by default:
the opening is read only at quality peaks, and a background target of 0 is the sigmoid's asymptote, which
drives the width logits into saturation until the region itself stops learning (seen in the overfit test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prg.grasp.maps import DEFAULT_WIDTH_SCALE, _check_width_scale, rects_to_maps
from prg.grasp.rect import GraspRect
from prg.model.grasp_head import activate_maps

__all__ = [
    "MAP_NAMES",
    "batch_target_maps",
    "grasp_map_loss",
    "match_loss",
    "pack_rects",
    "rasterise_rects",
    "target_maps",
]

MAP_NAMES = ("quality", "cos2", "sin2", "width")
_EPS = 1e-6


def match_loss(match: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice of F_dec's match logits ``[N x s x s]`` against the cells of the embedding grid that hold
    any of the target's grasp region (``target [N x 4 x S x S]``, quality > 0, max-pooled to ``s x s``)."""
    if match.ndim != 3 or target.ndim != 4 or match.shape[0] != target.shape[0]:
        raise ValueError(f"match [N x s x s] and target [N x 4 x S x S] expected, got {tuple(match.shape)}, "
                         f"{tuple(target.shape)}")  # fmt: skip
    logits = match.float()
    cells = F.adaptive_max_pool2d((target[:, :1] > 0).float(), logits.shape[1:])[:, 0]
    bce = F.binary_cross_entropy_with_logits(logits, cells)
    p = logits.sigmoid().flatten(1)
    t = cells.flatten(1)
    dice = 1.0 - (2.0 * (p * t).sum(1) + 1.0) / (p.sum(1) + t.sum(1) + 1.0)
    return bce + dice.mean()


def grasp_map_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    quality_loss: str = "bce",
    beta: float = 0.1,
    logits: bool = False,
    width_in_grasp_only: bool = True,
    dice_weight: float = 0.0,
    angle_region_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss between predicted and target maps, both ``[N x 4 x S x S]`` (quality, cos2, sin2, width).

    ``pred`` is the decoder's activated output (quality in (0, 1)), or with ``logits=True`` its pre-activation
    logits (``GraspHead(..., return_logits=True)``): prefer that for training, since BCE on logits keeps a
    gradient where the sigmoid saturates, while BCE on probabilities must clamp them. Returns the weighted sum
    of the four per-map means (a scalar) and the unweighted components keyed by :data:`MAP_NAMES`.
    With ``width_in_grasp_only`` (default) width is averaged over the target's grasp region only.

    ``dice_weight`` adds a soft Dice loss on quality (component ``dice``, averaged over poses). The grasp region
    covers about 1% of the map, so mean BCE alone is small when quality is near zero everywhere: the first
    PRG-Synth run peaked below the decoding threshold (max quality 0.03-0.4 on val scenes, no grasp decoded).
    Dice is normalised by the region's size, as LISA adds it to BCE for its masks.

    ``angle_region_weight`` adds that weight x the cos2 and sin2 losses averaged over the grasp region only
    (components ``cos2_region``, ``sin2_region``) to the all-pixel means, which stay.
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
    region = (t > 0).float()
    n_region = region.sum().clamp(min=1.0)  # region means are zero (with a graph) when no sample has a grasp
    angle_region = []
    for i, name in enumerate(("cos2", "sin2"), start=1):
        per_pixel = F.smooth_l1_loss(pred[:, i], target[:, i], beta=beta, reduction="none")
        components[name] = per_pixel.mean()
        if angle_region_weight:
            components[f"{name}_region"] = (per_pixel * region).sum() / n_region
            angle_region.append(components[f"{name}_region"])
    width = F.smooth_l1_loss(pred[:, 3], target[:, 3], beta=beta, reduction="none")
    components["width"] = (width * region).sum() / n_region if width_in_grasp_only else width.mean()
    total = sum(w * components[name] for w, name in zip(weights, MAP_NAMES, strict=True))
    if angle_region:  # each region term weighted like its all-pixel map
        total = total + angle_region_weight * (weights[1] * angle_region[0] + weights[2] * angle_region[1])
    if dice_weight:
        qf, tf = pred[:, 0].flatten(1), t.flatten(1)
        dice = 1.0 - (2.0 * (qf * tf).sum(1) + 1.0) / (qf.sum(1) + tf.sum(1) + 1.0)
        components["dice"] = dice.mean()
        total = total + dice_weight * components["dice"]
    return torch.as_tensor(total), components


def target_maps(
    rects_per_pose: Sequence[Sequence[GraspRect]], size: int, width_scale: float = DEFAULT_WIDTH_SCALE
) -> torch.Tensor:
    """Rasterise each pose's rectangles (in model pixels, ``size x size``) -> targets ``[N x 4 x S x S]``."""
    stacks = [rects_to_maps(rects, (size, size), width_scale).stack() for rects in rects_per_pose]
    if not stacks:
        return torch.zeros(0, 4, size, size)
    return torch.from_numpy(np.stack(stacks))


def pack_rects(rects_per_pose: Sequence[Sequence[GraspRect]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rectangles (model pixels), one list per pose -> ``params [N x R x 5]`` (x, y, width, height, angle) and
    ``valid [N x R]`` (bool), padded to the longest list: what :func:`rasterise_rects` draws on the device."""
    n = len(rects_per_pose)
    r = max((len(rs) for rs in rects_per_pose), default=0)
    params = torch.zeros(n, max(r, 1), 5)
    valid = torch.zeros(n, max(r, 1), dtype=torch.bool)
    for i, rs in enumerate(rects_per_pose):
        for j, g in enumerate(rs):
            params[i, j] = torch.tensor([g.x, g.y, g.width, g.height, g.angle])
            valid[i, j] = True
    return params, valid


def rasterise_rects(
    params: torch.Tensor, valid: torch.Tensor, size: int, width_scale: float = DEFAULT_WIDTH_SCALE, chunk: int = 64
) -> torch.Tensor:
    """:func:`target_maps` on the device: ``params [N x R x 5]``, ``valid [N x R]`` -> ``[N x 4 x S x S]``.

    Written here because no library rasterises batches of rotated rectangles on a GPU. A pixel belongs to a
    rectangle's compact third (GG-CNN) when its centre lies inside it, the rule :func:`rects_to_maps` uses
    through scikit-image's polygon; later rectangles win where they overlap, as there. Training batches then
    carry a few numbers per grasp instead of four full-resolution maps per pose (stage 1 of the small recipe
    moved 0.6 GB of maps per 32 scenes through its data loader, the bottleneck of the first H200 run).
    """
    if params.ndim != 3 or params.shape[-1] != 5 or valid.shape != params.shape[:2]:
        raise ValueError(
            f"params must be [N x R x 5] and valid [N x R], got {tuple(params.shape)}, {tuple(valid.shape)}"
        )
    _check_width_scale(width_scale)
    out = []
    coords = torch.arange(size, device=params.device, dtype=torch.float32)
    ys, xs = coords.view(1, 1, size, 1), coords.view(1, 1, 1, size)
    for start in range(0, params.shape[0], chunk):
        p, v = params[start : start + chunk].float(), valid[start : start + chunk]
        x, y, w, h, a = (p[..., k, None, None] for k in range(5))  # [n x R x 1 x 1]
        ca, sa = torch.cos(a), torch.sin(a)
        dx, dy = xs - x, ys - y
        along = dx * ca - dy * sa  # the grasp axis is (cos a, -sin a) in (x, y) pixels (prg.grasp.rect)
        across = dx * sa + dy * ca
        inside = (along.abs() <= w / 6) & (across.abs() <= h / 2) & v[..., None, None]  # [n x R x S x S]
        order = torch.arange(1, p.shape[1] + 1, device=p.device, dtype=torch.int32).view(1, -1, 1, 1)
        last = torch.where(inside, order, 0).amax(dim=1)  # 1-based index of the last rectangle covering a pixel
        pick = (last - 1).clamp(min=0).long()[:, None]  # [n x 1 x S x S]
        hit = (last > 0).float()

        def per_pixel(values: torch.Tensor, pick: torch.Tensor = pick) -> torch.Tensor:
            full = values[..., None, None].expand(-1, -1, size, size)
            return full.gather(1, pick)[:, 0]

        quality = hit
        cos2 = per_pixel(torch.cos(2 * p[..., 4])) * hit
        sin2 = per_pixel(torch.sin(2 * p[..., 4])) * hit
        width = per_pixel((p[..., 2] / width_scale).clamp(max=1.0)) * hit
        out.append(torch.stack([quality, cos2, sin2, width], dim=1))
    if not out:
        return torch.zeros(0, 4, size, size, device=params.device)
    return torch.cat(out)


def batch_target_maps(batch: Any, size: int, width_scale: float = DEFAULT_WIDTH_SCALE) -> torch.Tensor:
    """A training batch's ``[N x 4 x S x S]`` targets: its ``target_maps``, or its ``target_rects`` /
    ``target_valid`` rasterised where they are (the collators send rectangles): :func:`rasterise_rects` on a GPU,
    :func:`target_maps` on the CPU (the same pixels, tested)."""
    if "target_maps" in batch:
        return batch["target_maps"]
    params, valid = batch["target_rects"], batch["target_valid"]
    if params.device.type == "cpu":  # numpy's polygon fill is faster there than the dense test (bench_collate.py)
        rects = [
            [GraspRect(*(float(v) for v in row)) for row, ok in zip(p, m, strict=True) if ok]
            for p, m in zip(params.tolist(), valid.tolist(), strict=True)
        ]
        return target_maps(rects, size, width_scale)
    return rasterise_rects(params, valid, size, width_scale)
