"""Scene tagger quality on a PRG dataset, and the ground truth it is measured (and trained) against.

The tagger itself (proposals, crops, inference) is :mod:`prg.retrieval.image`; training is
:mod:`prg.train.tagger`, which reads its ground truth through :func:`gt_tool_masks` and :func:`split_records`
here, so both judge the same objects. Benchmark: ``benchmarks/bench_tagger.py``; design: ``docs/retrieval_image.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from prg.data.dataset import iter_records, load_depth, load_image, load_mask
from prg.data.schema import PRGRecord
from prg.data.synth.catalogue import CATALOGUE
from prg.retrieval.image import SceneTagger, propose_objects

__all__ = ["evaluate_tagger", "gt_tool_masks", "split_records"]


def gt_tool_masks(root: Path, rec: PRGRecord) -> list[tuple[str, str, np.ndarray]]:
    """(category, name, mask ``[H x W]`` bool) of the record's annotated objects with a mask; clutter_* is skipped."""
    return [
        (o.category, o.name, load_mask(root, o.mask))
        for o in rec.objects
        if o.mask is not None and not o.category.startswith("clutter_")
    ]


def split_records(root: Path, splits: Iterable[str]) -> list[PRGRecord]:
    """The records of ``root`` whose split is one of ``splits``, in file order."""
    wanted = set(splits)
    return [r for r in iter_records(root) if r.split in wanted]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


def evaluate_tagger(
    tagger: SceneTagger, dataset_dir: str | Path, split: str, min_score: float = 0.5, limit: int | None = None
) -> dict[str, Any]:
    """Measure ``tagger`` on one split.

    * tag sets (from proposals, the realistic path): per-image mean precision and recall of the predicted label
      set against the GT categories (clutter_* excluded), and micro totals;
    * crops on GT masks: top-1 accuracy, and look-alike accuracy = argmax restricted to the true label and its
      catalogue look-alikes (chance 0.5 for a pair);
    * proposals: share of GT objects matched with IoU > 0.5, merges (a proposal holding most of >= 2 objects).
    """
    root = Path(dataset_dir)
    recs = split_records(root, [split])[:limit]
    labels = tagger.labels
    index = {lbl: i for i, lbl in enumerate(labels)}
    precs, recs_, tp, n_pred, n_gt = [], [], 0, 0, 0
    crop_ok = crop_n = la_ok = la_n = 0
    matched = gt_objs = merges = n_props = unseen = 0
    for rec in recs:
        rgb, depth = load_image(root, rec), load_depth(root, rec)
        gts = gt_tool_masks(root, rec)
        gt_set = {c for c, _, _ in gts}
        unseen += len(gt_set - set(labels))
        props = propose_objects(rgb, depth)
        pred = {t.label for t in tagger.tag_regions(rgb, props, min_score)}
        hits = len(pred & gt_set)
        tp, n_pred, n_gt = tp + hits, n_pred + len(pred), n_gt + len(gt_set)
        if pred:
            precs.append(hits / len(pred))
        if gt_set:
            recs_.append(hits / len(gt_set))
        probs = tagger.predict_crops(rgb, [m for _, _, m in gts])
        for (cat, _, _), p in zip(gts, probs, strict=True):
            if cat not in index:
                continue
            crop_n += 1
            crop_ok += int(p.argmax()) == index[cat]
            rivals = [index[k] for k in (CATALOGUE[cat].lookalikes if cat in CATALOGUE else ()) if k in index]
            if rivals:
                la_n += 1
                la_ok += all(p[index[cat]] > p[r] for r in rivals)
        n_props += len(props)
        for _, _, m in gts:
            gt_objs += 1
            matched += any(_iou(m, r.mask) > 0.5 for r in props)
        for r in props:
            merges += int(sum((m & r.mask).sum() > 0.5 * m.sum() for _, _, m in gts if m.any()) >= 2)
    return {
        "split": split,
        "n_images": len(recs),
        "set_precision": float(np.mean(precs)) if precs else float("nan"),
        "set_recall": float(np.mean(recs_)) if recs_ else float("nan"),
        "micro_precision": tp / max(n_pred, 1),
        "micro_recall": tp / max(n_gt, 1),
        "tags_per_image": n_pred / max(len(recs), 1),
        "gt_labels_unseen_in_training": unseen,
        "crop_accuracy": crop_ok / max(crop_n, 1),
        "n_crops": crop_n,
        "lookalike_accuracy": la_ok / max(la_n, 1),
        "n_lookalike_crops": la_n,
        "proposal_recall_iou50": matched / max(gt_objs, 1),
        "proposals_per_image": n_props / max(len(recs), 1),
        "merged_proposals": merges,
    }
