"""Prompted-grasp items (stage 1 of the small recipe): category and point prompts, exact augmentation, the batch,
and the model's prompt forward on the tiny preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prg.data.torch import AugmentConfig, RecordSource, collate
from prg.data.torch.prompts import CATEGORY, POINT, PromptSource, category_vocab, collate_prompts
from prg.grasp import GraspRect
from prg.model.losses import batch_target_maps
from prg.model.prg_model import build_prg_model, tiny_config

VOCAB = ["continuity_tester", "voltage_detector"]


@pytest.fixture
def model():
    config = tiny_config()
    config.prompt_vocab = list(VOCAB)
    config.train_encoder = True
    config.dice_weight = 1.0
    return build_prg_model(config)


def test_vocab_is_the_sorted_graspable_categories(tiny_dataset: Path) -> None:
    assert category_vocab([tiny_dataset]) == VOCAB
    assert category_vocab([tiny_dataset], splits=["val"]) == []


def test_items_prompt_every_object_and_points_follow_the_augmentation(tiny_dataset: Path) -> None:
    plain = PromptSource(tiny_dataset, VOCAB, point_rate=0.0, augment=AugmentConfig.none())
    item = plain.get(0)
    assert len(plain) == 3 and len(item["kinds"]) == 2 == len(item["pose_rects"])
    assert set(item["kinds"]) == {CATEGORY}
    # category prompts name each object's catalogue category
    by_cat = {VOCAB[c]: rects[0] for c, rects in zip(item["categories"], item["pose_rects"], strict=True)}
    assert by_cat["voltage_detector"].almost_equal(GraspRect(20, 20, 12, 5, 0.3))
    points = PromptSource(tiny_dataset, VOCAB, point_rate=1.0, point_jitter=0.0)
    seen = set()
    for epoch in range(10):
        it = points.get(0, epoch)
        assert set(it["kinds"]) == {POINT} and set(it["categories"]) == {-1}
        for (x, y), rects in zip(it["points"], it["pose_rects"], strict=True):
            # without jitter the point is the centre of the object's (only) grasp, wherever the transform moved it
            assert (x, y) == pytest.approx((rects[0].x, rects[0].y), abs=1e-6)
        seen.add(it["image"].shape)
    assert len(seen) == 2  # rotations by 90 degrees happened
    with pytest.raises(ValueError, match="point_rate"):
        PromptSource(tiny_dataset, VOCAB, point_rate=1.5)


def test_unknown_categories_become_point_prompts(tiny_dataset: Path) -> None:
    item = PromptSource(tiny_dataset, ["voltage_detector"], point_rate=0.0).get(0)
    assert sorted(item["kinds"]) == [CATEGORY, POINT] and sorted(item["categories"]) == [-1, 0]


def test_batch_and_prompt_forward_learn_the_prompted_object(tiny_dataset: Path, model) -> None:
    src = PromptSource(tiny_dataset, VOCAB, point_rate=0.5, augment=AugmentConfig.none())
    batch = collate([src.get(i) for i in range(3)], model.processor)
    assert batch["prompt_kind"].shape == (6,) and batch["prompt_points"].shape == (6, 2)
    assert batch["prompt_image_index"].tolist() == [0, 0, 1, 1, 2, 2]
    maps = batch_target_maps(batch, model.map_size)
    assert maps.shape == (6, 4, model.map_size, model.map_size) and bool((maps[:, 0].flatten(1).amax(1) == 1).all())
    torch.manual_seed(0)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(batch)
        assert float(out["lm_loss"]) == 0.0 and "dice" in out["components"]
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.7 * losses[0]
    # the language model takes no part in a prompt step
    assert all(p.grad is None for p in model.vlm.language_model.parameters())
    assert model.image_encoder.encoder.patch_embed.projection.weight.grad is not None


def test_prompt_batches_refuse_text_items_and_models_without_a_table(cached_dataset: Path) -> None:
    from prg.model.prg_model import build_tiny_prg_model

    plain = build_tiny_prg_model()
    prompt = PromptSource(cached_dataset, VOCAB).get(0)
    text = RecordSource(cached_dataset).get(0)
    with pytest.raises(ValueError, match="mixes prompted-grasp items with text items"):
        collate([prompt, text], plain.processor)
    with pytest.raises(ValueError, match="prompt table"):
        plain(collate_prompts([prompt], plain.processor))


def test_distillation_pulls_gamma_towards_the_category_row(cached_dataset: Path, model) -> None:
    batch = collate([RecordSource(cached_dataset).get(i) for i in range(2)], model.processor)
    assert batch["pose_categories"] == ["voltage_detector", "voltage_detector"]
    model.config.prompt_distill_weight = 1.0
    out = model(batch)
    assert float(out["components"]["distill"]) > 0
    out["loss"].backward()
    assert model.prompt_table.categories.weight.grad is None  # the rows are the fixed target
    assert model.grasp_head.projection.net[0].weight.grad is not None
    model.config.prompt_distill_weight = 0.0
    assert "distill" not in model(batch)["components"]


def test_absent_category_prompts_have_no_grasp_and_the_validator_scores_them(tiny_dataset: Path) -> None:
    from prg.train.config import load_config
    from prg.train.data import make_validator

    vocab = [*VOCAB, "torque_wrench"]  # no scene of the tiny dataset holds a torque wrench
    src = PromptSource(tiny_dataset, vocab, point_rate=0.0, absent_prompts=2, augment=AugmentConfig.none())
    item = src.get(0)
    assert len(item["kinds"]) == 3  # its two objects, and the one vocabulary category it lacks (not two)
    assert item["categories"][-1] == vocab.index("torque_wrench") and item["pose_rects"][-1] == []
    assert all(rects for rects in item["pose_rects"][:-1])
    config = tiny_config()
    config.prompt_vocab, config.train_encoder, config.dice_weight = vocab, True, 1.0
    model = build_prg_model(config)
    batch = collate_prompts([src.get(i) for i in range(3)], model.processor)
    maps = batch_target_maps(batch, model.map_size)
    assert bool((maps[2::3] == 0).all()) and bool((maps[0::3, 0].flatten(1).amax(1) == 1).all())
    assert torch.isfinite(model(batch)["loss"])
    with pytest.raises(ValueError, match="absent_prompts"):
        PromptSource(tiny_dataset, vocab, absent_prompts=-1)
    cfg = load_config(None, [f"data.sources=[{{path: '{tiny_dataset}', kind: grasp_prompt}}]",
                             "data.val_split=train", "data.absent_prompts=1", "batch_size=4"])  # fmt: skip
    metrics = make_validator(cfg)(model, 0)
    assert metrics["n_absent"] == 3 and 0.0 <= metrics["absent_quiet"] <= 1.0 and metrics["n"] == 6
