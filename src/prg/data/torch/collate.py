"""Training items -> the batch ``PRGModel.forward`` takes, through the model's own processor.

The processor is the one saved with the checkpoint, so training sees the image geometry and the prompt that the
pipeline uses at inference. Use as a DataLoader ``collate_fn`` with ``functools.partial(collate, processor=p)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prg.data.torch.sources import TrainItem
from prg.grasp.rect import GraspRect
from prg.model.processor import ImageMeta, PRGProcessor
from prg.tokens import POSE_TOKEN

__all__ = ["collate"]


def collate(items: Sequence[TrainItem], processor: PRGProcessor, side: str = "right") -> dict[str, Any]:
    """Tokenise, pad and stack a batch of :class:`~prg.data.torch.sources.TrainItem`.

    Returns the tensors ``input_ids``, ``attention_mask``, ``labels`` (answer tokens only), ``segment_ids``
    ``[B x T]`` (padded on ``side``: ``"right"`` for training), ``pixel_values [B x 3 x s x s]`` (vision
    tower), ``sam_pixel_values [B x 3 x S x S]`` (F_enc) and the target grasps ``target_rects [N x R x 5]``
    (model pixels) with ``target_valid [N x R]``, one row per ``[POSE]`` token in (batch, position) order, the
    order of the model's ``pose_hidden`` (the model rasterises them into ``[N x 4 x S x S]`` maps on its device:
    :func:`prg.model.losses.batch_target_maps`); the list ``pose_categories`` (each ``[POSE]``'s target
    category, ``""`` when the item has none); and the lists ``ids`` and ``sources`` (per item, for diagnostics
    such as a NaN loss). Prompted-grasp items go to
    :func:`~prg.data.torch.prompts.collate_prompts`.
    """
    if not items:
        raise ValueError("collate needs at least one item")
    if "kinds" in items[0]:  # prompted-grasp items (stage 1): no language model input
        from prg.data.torch.prompts import collate_prompts

        if not all("kinds" in it for it in items):
            raise ValueError("a batch mixes prompted-grasp items with text items; give them separate runs")
        return collate_prompts(items, processor)
    built = [processor.tokenize(it["instruction"], it["documents"], it["answer"]) for it in items]
    batch: dict[str, Any] = dict(processor.pad(built, side=side))
    images = [it["image"] for it in items]
    batch["pixel_values"] = processor.vision_pixels(images)
    batch["sam_pixel_values"], metas = processor.encoder_pixels(images)
    pose_id = processor.tokenizer.convert_tokens_to_ids(POSE_TOKEN)
    rects: list[Sequence[GraspRect]] = []
    pose_metas: list[ImageMeta] = []
    for it, (ids, _), meta in zip(items, built, metas, strict=True):
        n = sum(1 for t in ids if t == pose_id)
        if n != len(it["pose_rects"]):
            raise ValueError(
                f"{it['id']} ({it['source']}): {n} {POSE_TOKEN} token(s) in the tokenised prompt but "
                f"{len(it['pose_rects'])} target grasp list(s)"
            )
        rects += it["pose_rects"]  # answer order = position order within the sample
        pose_metas += [meta] * n
    batch["target_rects"], batch["target_valid"] = processor.target_rects(rects, pose_metas)
    # the catalogue category per [POSE] ("" when unknown): stage 2's prompt distillation target
    batch["pose_categories"] = [c for it in items for c in it.get("pose_categories", [""] * len(it["pose_rects"]))]
    batch["ids"] = [it["id"] for it in items]
    batch["sources"] = [it["source"] for it in items]
    return batch
