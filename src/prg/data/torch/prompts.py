"""Prompted grasp items: the small recipe's stage 1, which pre-trains F_enc + F_dec without the language model.

SAM learns its encoder and decoder from prompted masks; PRG-Synth has no pretrained small SAM, so stage 1 does the
same with grasps. Every annotated object of a scene becomes one prompt and its grasps the target maps:

* a **category prompt** (the object's catalogue category, an index into the model's prompt table), what γ of a
  ``[POSE]`` state will stand for in stage 2, so F_enc learns to tell the tools apart;
* a **point prompt** (a point on the object, the centre of one of its annotated grasps, jittered), SAM's
  class-agnostic prompt, so F_enc also learns where objects are.

With ``absent_prompts`` an item also prompts categories of the vocabulary that no object of the scene has, with
no grasp (all-background targets): F_dec learns to answer "not here", so that a ``[POSE]`` standing for a tool
missing from the scene can decode no grasp (abstention) instead of the nearest look-alike's.

An item is one scene with all its graspable objects (``max_prompts`` at most); images are augmented with the same
exact transforms as the reasoning records (:mod:`prg.data.torch.augment`). :func:`collate_prompts` turns items
into the batch ``PRGModel.forward`` recognises by its ``prompt_kind`` key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch

from prg.data.dataset import iter_records, load_image, read_info
from prg.data.schema import PRGRecord
from prg.data.torch.augment import AugmentConfig, augment_item, item_rng
from prg.grasp.rect import GraspRect
from prg.model.processor import ImageMeta, PRGProcessor

__all__ = ["PromptItem", "PromptSource", "category_vocab", "collate_prompts"]

CATEGORY, POINT = 0, 1


class PromptItem(TypedDict):
    """One scene with its prompts: ``kinds[i]`` (0 category, 1 point), ``categories[i]`` (vocabulary index, -1
    for points), ``points[i]`` (x, y) in ``image`` pixels, ``pose_rects[i]`` the object's grasps."""

    id: str
    source: str
    image: np.ndarray
    kinds: list[int]
    categories: list[int]
    points: list[tuple[float, float]]
    pose_rects: list[list[GraspRect]]


def _records(roots: Sequence[Path], splits: Iterable[str] | None) -> list[tuple[int, PRGRecord]]:
    wanted = None if splits is None else set(splits)
    return [(i, r) for i, root in enumerate(roots) for r in iter_records(root) if wanted is None or r.split in wanted]


def category_vocab(roots: Sequence[str | Path], splits: Iterable[str] | None = ("train",)) -> list[str]:
    """The sorted catalogue categories of the graspable objects in these folders' records (the prompt table)."""
    records = _records([Path(r) for r in roots], splits)
    return sorted({o.category for _, r in records for o in r.objects if o.grasps})


class PromptSource:
    """Prompted-grasp items from PRG dataset folders (see the module docstring).

    Args:
        roots: dataset folders; ``splits``: which records (default train).
        vocab: the category vocabulary (the model's ``config.prompt_vocab``); categories outside it become
            point prompts.
        point_rate: share of prompts that are points (the rest are categories).
        max_prompts: at most this many objects per scene (drawn per item and epoch).
        absent_prompts: this many extra category prompts per scene for vocabulary categories absent from it,
            with no grasp (drawn per item and epoch; fewer when the vocabulary has fewer such categories).
    """

    def __init__(
        self,
        roots: str | Path | Sequence[str | Path],
        vocab: Sequence[str],
        *,
        name: str = "prompts",
        splits: Iterable[str] | None = ("train",),
        point_rate: float = 0.3,
        max_prompts: int = 8,
        point_jitter: float = 4.0,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        absent_prompts: int = 0,
    ) -> None:
        if absent_prompts < 0:
            raise ValueError(f"absent_prompts must be >= 0, got {absent_prompts}")
        self.absent_prompts = absent_prompts
        self.roots = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
        if not 0.0 <= point_rate <= 1.0:
            raise ValueError(f"point_rate must be in [0, 1], got {point_rate}")
        self.name = name
        self.index = {c: i for i, c in enumerate(vocab)}
        self.point_rate = point_rate
        self.max_prompts = max_prompts
        self.point_jitter = point_jitter
        self.augment = augment if augment is not None else AugmentConfig()
        self.seed = seed
        names = [read_info(r).name for r in self.roots]
        self.records = [(i, r) for i, r in _records(self.roots, splits) if any(o.grasps for o in r.objects)]
        self.ids = [f"{names[i]}/{r.id}" if len(self.roots) > 1 else r.id for i, r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def get(self, index: int, epoch: int = 0) -> PromptItem:
        root_i, record = self.records[index]
        rng = item_rng(self.seed, self.name, epoch, index)
        objects = [o for o in record.objects if o.grasps]
        order = rng.permutation(len(objects))[: self.max_prompts]
        chosen = [objects[int(i)] for i in order]
        kinds, cats, points, rects = [], [], [], []
        for o in chosen:
            cat = self.index.get(o.category, -1)
            point = cat < 0 or float(rng.uniform()) < self.point_rate
            g = o.grasps[int(rng.integers(len(o.grasps)))]
            jitter = rng.normal(0.0, self.point_jitter, size=2) if self.point_jitter else np.zeros(2)
            kinds.append(POINT if point else CATEGORY)
            cats.append(-1 if point else cat)
            points.append((float(g.x + jitter[0]), float(g.y + jitter[1])))
            rects.append([gr.to_rect() for gr in o.grasps])
        if self.absent_prompts:
            here = {o.category for o in record.objects}
            absent = sorted(i for c, i in self.index.items() if c not in here)
            for j in rng.permutation(len(absent))[: self.absent_prompts]:
                kinds.append(CATEGORY)
                cats.append(absent[int(j)])
                points.append((0.0, 0.0))  # unused by a category prompt
                rects.append([])
        image = load_image(self.roots[root_i], record)
        # the point travels with the transform as a tiny rectangle centred on it (exact, like the grasps)
        marks = [[GraspRect(x, y, 1.0, 1.0, 0.0)] for x, y in points]
        image, moved, _, _ = augment_item(image, rects + marks, self.augment, rng)
        n = len(rects)
        return PromptItem(
            id=self.ids[index],
            source=self.name,
            image=image,
            kinds=kinds,
            categories=cats,
            points=[(m[0].x, m[0].y) for m in moved[n:]],
            pose_rects=moved[:n],
        )

    def __getitem__(self, index: int) -> PromptItem:
        return self.get(index)


def collate_prompts(items: Sequence[Any], processor: PRGProcessor) -> dict[str, Any]:
    """Prompt items -> ``sam_pixel_values [B x 3 x S x S]``, ``prompt_kind``, ``prompt_category``,
    ``prompt_image_index`` ``[N]``, ``prompt_points [N x 2]`` (model pixels), the target grasps ``target_rects
    [N x R x 5]`` / ``target_valid [N x R]`` (see :func:`~prg.data.torch.collate.collate`),
    and the lists ``ids`` and ``sources``."""
    if not items:
        raise ValueError("collate_prompts needs at least one item")
    sam, metas = processor.encoder_pixels([it["image"] for it in items])
    rects: list[Sequence[GraspRect]] = []
    pose_metas: list[ImageMeta] = []
    kinds: list[int] = []
    cats: list[int] = []
    points: list[tuple[float, float]] = []
    index: list[int] = []
    for b, (it, meta) in enumerate(zip(items, metas, strict=True)):
        rects += it["pose_rects"]
        pose_metas += [meta] * len(it["pose_rects"])
        kinds += it["kinds"]
        cats += it["categories"]
        points += [meta.point_to_model(x, y) for x, y in it["points"]]
        index += [b] * len(it["pose_rects"])
    target_rects, target_valid = processor.target_rects(rects, pose_metas)
    return {
        "sam_pixel_values": sam,
        "prompt_kind": torch.tensor(kinds, dtype=torch.long),
        "prompt_category": torch.tensor(cats, dtype=torch.long),
        "prompt_points": torch.tensor(points, dtype=torch.float32).reshape(-1, 2),
        "prompt_image_index": torch.tensor(index, dtype=torch.long),
        "target_rects": target_rects,
        "target_valid": target_valid,
        "ids": [it["id"] for it in items],
        "sources": [it["source"] for it in items],
    }
