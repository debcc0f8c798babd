"""The rectangle metric: the field's standard grasp-success test (Cornell, Jacquard, GG-CNN, GR-ConvNet).

A predicted rectangle is a success when *some* ground-truth rectangle of the same object overlaps it with
IoU strictly greater than 0.25 **and** its grasp angle differs by strictly less than 30 degrees, angles taken
modulo pi (a parallel-jaw grasp at ``a`` and ``a + pi`` is the same grasp).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prg.grasp.rect import GraspRect, angle_diff

__all__ = ["MatchDetails", "grasp_success", "match_details", "rect_iou", "success_rate", "top_k_success"]

DEFAULT_IOU_THRESHOLD = 0.25
DEFAULT_ANGLE_THRESHOLD_DEG = 30.0


def rect_iou(a: GraspRect, b: GraspRect) -> float:
    """Exact intersection-over-union of two rotated rectangles (shapely polygons), in ``[0, 1]``."""
    pa, pb = a.polygon(), b.polygon()
    inter = pa.intersection(pb).area
    union = pa.area + pb.area - inter
    if union <= 0:
        return 0.0
    # Clamp away float noise (e.g. 1.0000000000000002 for identical polygons).
    return min(max(inter / union, 0.0), 1.0)


def _check_thresholds(iou_threshold: float, angle_threshold_deg: float) -> None:
    if not (math.isfinite(iou_threshold) and 0.0 <= iou_threshold < 1.0):
        raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
    if not (math.isfinite(angle_threshold_deg) and 0.0 < angle_threshold_deg <= 90.0):
        raise ValueError(f"angle_threshold_deg must be in (0, 90] degrees, got {angle_threshold_deg}")


@dataclass(frozen=True)
class MatchDetails:
    """How one prediction compares with a set of ground truths (for reports and debugging).

    Attributes:
        success: the rectangle metric's verdict.
        best_iou: highest IoU with any ground truth (0.0 when there are none).
        best_iou_angle_deg: angle difference (degrees, mod 180) to that highest-IoU ground truth;
            None if no gts.
        min_angle_deg: smallest angle difference to any ground truth, None if no gts.
        matched_index: index of the ground truth that makes it a success (the highest-IoU one among those that
            pass both tests), None if it fails.
    """

    success: bool
    best_iou: float
    best_iou_angle_deg: float | None
    min_angle_deg: float | None
    matched_index: int | None


def match_details(
    pred: GraspRect,
    gts: Sequence[GraspRect],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    angle_threshold_deg: float = DEFAULT_ANGLE_THRESHOLD_DEG,
) -> MatchDetails:
    """Compare one prediction with every ground truth; see :class:`MatchDetails`."""
    _check_thresholds(iou_threshold, angle_threshold_deg)
    if len(gts) == 0:
        return MatchDetails(False, 0.0, None, None, None)
    angle_limit = math.radians(angle_threshold_deg)
    ious = [rect_iou(pred, gt) for gt in gts]
    diffs = [angle_diff(pred.angle, gt.angle) for gt in gts]
    best = max(range(len(gts)), key=ious.__getitem__)
    passing = [i for i in range(len(gts)) if ious[i] > iou_threshold and diffs[i] < angle_limit]
    matched = max(passing, key=ious.__getitem__) if passing else None
    return MatchDetails(
        success=matched is not None,
        best_iou=ious[best],
        best_iou_angle_deg=math.degrees(diffs[best]),
        min_angle_deg=math.degrees(min(diffs)),
        matched_index=matched,
    )


def grasp_success(
    pred: GraspRect,
    gts: Sequence[GraspRect],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    angle_threshold_deg: float = DEFAULT_ANGLE_THRESHOLD_DEG,
) -> bool:
    """True iff some ground truth has IoU > ``iou_threshold`` and angle difference < ``angle_threshold_deg``.

    Both comparisons are strict, as in the Cornell/Jacquard evaluation code; no ground truths means failure.
    """
    _check_thresholds(iou_threshold, angle_threshold_deg)
    angle_limit = math.radians(angle_threshold_deg)
    # Angle first: it is cheap and rejects most pairs before the polygon intersection.
    return any(angle_diff(pred.angle, gt.angle) < angle_limit and rect_iou(pred, gt) > iou_threshold for gt in gts)


def top_k_success(
    preds: Sequence[GraspRect],
    gts: Sequence[GraspRect],
    k: int = 1,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    angle_threshold_deg: float = DEFAULT_ANGLE_THRESHOLD_DEG,
) -> bool:
    """True iff any of the first ``k`` predictions (ranked best first) is a success."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _check_thresholds(iou_threshold, angle_threshold_deg)
    return any(grasp_success(p, gts, iou_threshold, angle_threshold_deg) for p in preds[:k])


def success_rate(
    preds_per_sample: Sequence[Sequence[GraspRect]],
    gts_per_sample: Sequence[Sequence[GraspRect]],
    k: int = 1,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    angle_threshold_deg: float = DEFAULT_ANGLE_THRESHOLD_DEG,
) -> float:
    """Fraction of samples whose top-``k`` predictions succeed; a sample with no predictions fails.

    Args:
        preds_per_sample: per sample, the ranked predictions (best first).
        gts_per_sample: per sample, the ground-truth rectangles; same length as ``preds_per_sample``.
    """
    if len(preds_per_sample) != len(gts_per_sample):
        raise ValueError(
            f"got predictions for {len(preds_per_sample)} samples but ground truths for {len(gts_per_sample)}"
        )
    if len(preds_per_sample) == 0:
        raise ValueError("success_rate needs at least one sample")
    hits = sum(
        top_k_success(p, g, k, iou_threshold, angle_threshold_deg)
        for p, g in zip(preds_per_sample, gts_per_sample, strict=True)
    )
    return hits / len(preds_per_sample)
