"""Per-record grasp metrics of a pipeline result: target recognition, grasp success, abstention, format.

* **target recognition**: the top-1 grasp of the i-th ``[POSE]`` has its centre inside the mask of the i-th target
  (for two-step records, in order); a record with no target is recognised when the answer has no ``[POSE]``;
* **grasp success**: the rectangle metric (IoU > 0.25, angle within 30°) of that top-1 grasp against the target's
  annotated grasps;
* **format**: the number of ``[POSE]`` equals the number of targets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GraspScore", "score_record"]


@dataclass
class GraspScore:
    record_id: str
    n_targets: int
    n_poses: int
    recognised: bool  # every target's top-1 centre in its mask (or a correct abstention)
    grasp_success: bool  # every target's top-1 grasp passes the rectangle metric (False for abstentions)
    format_ok: bool
    abstention: bool  # the record has no target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_record(root: str | Path, record: Any, result: Any) -> GraspScore:
    """Score one ``PRGResult`` against its PRG record (dataset folder ``root`` holds the masks)."""
    from prg.data.dataset import load_mask
    from prg.grasp.metrics import grasp_success

    targets = record.target_objects()
    tops = result.top_grasps()
    format_ok = len(tops) == len(targets)
    if not targets:
        return GraspScore(record.id, 0, len(tops), len(tops) == 0, False, format_ok, True)
    hits, successes = [], []
    for i, obj in enumerate(targets):
        rect = tops[i] if i < len(tops) else None
        if rect is None:
            hits.append(False)
            successes.append(False)
            continue
        inside = False
        if obj.mask is not None:
            mask = load_mask(root, obj.mask)
            x, y = round(rect.x), round(rect.y)
            inside = bool(0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and mask[y, x])
        hits.append(inside)
        successes.append(bool(obj.grasps) and grasp_success(rect, [g.to_rect() for g in obj.grasps]))
    return GraspScore(record.id, len(targets), len(tops), all(hits), all(successes), format_ok, False)


def summarise(scores: list[GraspScore]) -> dict[str, float]:
    """Rates over records: target recognition, grasp success (records with targets), format, abstention."""
    if not scores:
        return {}
    with_targets = [s for s in scores if not s.abstention]
    out = {
        "target_recognition": float(np.mean([s.recognised for s in scores])),
        "format_ok": float(np.mean([s.format_ok for s in scores])),
        "n": float(len(scores)),
    }
    if with_targets:
        out["grasp_success"] = float(np.mean([s.grasp_success for s in with_targets]))
    absent = [s for s in scores if s.abstention]
    if absent:
        out["abstention_correct"] = float(np.mean([s.recognised for s in absent]))
    return out
