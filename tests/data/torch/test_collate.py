"""collate: items of every source -> the batch PRGModel.forward takes (tiny model, finite loss), one target map
per [POSE] in (batch, position) order."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from prg.data.torch import AugmentConfig, MixtureDataset, RecordSource, TrainItem, collate
from prg.grasp import GraspRect
from prg.model.losses import batch_target_maps
from prg.model.prg_model import PRGModel, build_tiny_prg_model
from prg.tokens import IGNORE_INDEX, Segment


@pytest.fixture(scope="module")
def model() -> PRGModel:
    return build_tiny_prg_model()


def _item(answer: str, rects: list[list[GraspRect]], shape: tuple[int, int] = (48, 64), id: str = "x") -> TrainItem:
    return TrainItem(
        id=id,
        source="test",
        image=np.full((*shape, 3), 90, np.uint8),
        instruction="Hand me the tools.",
        documents=[],
        answer=answer,
        pose_rects=rects,
    )


def test_batch_runs_the_tiny_model(model: PRGModel, cached_dataset: Path) -> None:
    src = RecordSource(cached_dataset)
    items = [src.get(0), src.get(1, epoch=3), _item("It is not on the table.", [], shape=(30, 80), id="none")]
    batch = collate(items, model.processor)
    b, t = batch["input_ids"].shape
    assert b == 3 and all(batch[k].shape == (b, t) for k in ("attention_mask", "labels", "segment_ids"))
    s, big = model.processor.vision.size, model.processor.encoder.size
    assert batch["pixel_values"].shape == (3, 3, s, s) and batch["sam_pixel_values"].shape == (3, 3, big, big)
    pose_id = model.processor.tokenizer.convert_tokens_to_ids("[POSE]")
    n_pose = int((batch["input_ids"] == pose_id).sum())
    assert n_pose == 2 and batch_target_maps(batch, big).shape == (n_pose, 4, big, big)
    assert batch["ids"] == ["r0", "r1", "none"] and batch["sources"] == ["prg", "prg", "test"]
    # right padding: every row starts with real tokens; labels only on answer tokens
    assert bool(batch["attention_mask"][:, 0].all())
    answer = batch["segment_ids"] == int(Segment.ANSWER)
    assert bool(((batch["labels"] != IGNORE_INDEX) == (answer & batch["attention_mask"].bool())).all())
    # documents from the retrieval cache are in the prompt
    assert int((batch["segment_ids"][0] == int(Segment.DOCUMENT)).sum()) > 0
    out = model(batch)
    assert torch.isfinite(out["loss"]) and float(out["grasp_loss"].detach()) > 0


def test_two_poses_get_two_maps_in_order(model: PRGModel) -> None:
    first, second = GraspRect(12, 10, 10, 5, 0.0), GraspRect(50, 36, 10, 5, 1.0)
    one = _item("No grasp here.", [], id="a")
    two = _item("First the detector [POSE], then the clamp [POSE].", [[first], [second]], id="b")
    single = _item("Take this [POSE].", [[second]], id="c")
    batch = collate([one, two, single], model.processor)
    maps = batch_target_maps(batch, model.map_size)
    assert maps.shape[0] == 3
    meta = model.processor.encoder_meta(48, 64)

    def peak(m: torch.Tensor) -> tuple[float, float]:
        ys, xs = torch.nonzero(m[0] > 0, as_tuple=True)  # the quality map's grasp region
        return float(xs.float().mean()), float(ys.float().mean())

    # (batch, position) order: b's first [POSE], b's second, then c's
    for m, r in zip(maps, [first, second, second], strict=True):
        u, v = meta.point_to_model(r.x, r.y)
        assert peak(m) == pytest.approx((u, v), abs=1.0)
    assert torch.isfinite(model(batch)["loss"])


def test_mismatch_is_an_error(model: PRGModel) -> None:
    with pytest.raises(ValueError, match=r"bad \(test\): 1 \[POSE\] token\(s\).*0 target"):
        collate([_item("Take it [POSE].", [], id="bad")], model.processor)
    with pytest.raises(ValueError, match="at least one item"):
        collate([], model.processor)


def test_dataloader_end_to_end(model: PRGModel, cached_dataset: Path) -> None:
    data = MixtureDataset([RecordSource(cached_dataset, augment=AugmentConfig())])
    sampler = data.sampler([1.0], seed=0, num_samples=4)
    loader = DataLoader(data, batch_size=2, sampler=sampler, collate_fn=partial(collate, processor=model.processor))
    for batch in loader:
        assert batch["target_rects"].shape[0] == 2
        # after augmentation the target's grasp region still lies on its object (the red block) in F_enc's input
        for maps, pixels in zip(batch_target_maps(batch, model.map_size), batch["sam_pixel_values"], strict=True):
            region = maps[0] > 0
            red, green = pixels[0][region].mean(), pixels[1][region].mean()
            assert region.any() and float(red - green) > 2.0
        assert torch.isfinite(model(batch)["loss"])
