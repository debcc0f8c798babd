"""Scene tagger: proposals without GT masks, canonical crops, training/saving/loading, evaluation, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from prg.data.dataset import iter_records, load_depth, load_image, load_mask
from prg.data.synth.generate import SynthConfig, generate
from prg.retrieval.image import (
    OTHER,
    SceneTagger,
    canonical_crop,
    evaluate_tagger,
    propose_objects,
    train_tagger,
)
from prg.retrieval.image_model import TaggerConfig

ALL_SPLITS = ("train", "val", "test", "zero_shot_task", "zero_shot_industry")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: this tiny net runs many times slower with two threads on a busy two-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(n=24, seed=1, size=192), workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def scenes(tiny: Path) -> list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
    """(rgb, depth, GT masks of annotated objects) for every record."""
    out = []
    for rec in iter_records(tiny):
        masks = [load_mask(tiny, o.mask) for o in rec.objects if o.mask is not None]
        depth = load_depth(tiny, rec)
        assert depth is not None
        out.append((load_image(tiny, rec), depth, masks))
    return out


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tagger")
    m = train_tagger(tiny, out, splits=ALL_SPLITS, epochs=30, batch_size=32, crop=32, seed=0, progress=False)
    m["dir"] = out
    return m


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


def _recovered(scenes: list[Any], use_depth: bool, holes: float = 0.0) -> float:
    rng = np.random.default_rng(0)
    hit = total = 0
    for rgb, depth, masks in scenes:
        d = depth.copy() if use_depth else None
        if d is not None and holes:
            d[rng.random(d.shape) < holes] = np.nan
            d[40:60, 40:60] = np.nan  # a solid hole too
        props = propose_objects(rgb, d)
        for m in masks:
            if m.sum() > 40:
                total += 1
                hit += any(_iou(m, p.mask) > 0.5 for p in props)
    assert total > 50
    return hit / total


def test_proposals_recover_objects_with_depth(scenes: list[Any]) -> None:
    assert _recovered(scenes, use_depth=True) >= 0.8


def test_depth_holes_do_not_break_proposals(scenes: list[Any]) -> None:
    assert _recovered(scenes, use_depth=True, holes=0.05) >= 0.8


def test_colour_fallback_without_depth(scenes: list[Any]) -> None:
    assert _recovered(scenes, use_depth=False) >= 0.6


def test_no_proposal_on_empty_table() -> None:
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal([180, 150, 120], 2, (120, 160, 3)), 0, 255).astype(np.uint8)
    vv, uu = np.mgrid[0:120, 0:160]
    depth = (0.7 + 0.0001 * uu + 0.00005 * vv).astype(np.float32)  # a slightly tilted table
    depth[rng.random(depth.shape) < 0.05] = np.nan
    assert propose_objects(rgb, depth) == []
    assert propose_objects(rgb, None) == []


def _box_scene(boxes: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((100, 140, 3), 150, np.uint8)
    depth = np.full((100, 140), 0.7, np.float32)
    for y0, y1, x0, x1 in boxes:
        depth[y0:y1, x0:x1] = 0.69
        rgb[y0:y1, x0:x1] = (200, 30, 30)
    return rgb, depth


def test_touching_objects_split_but_tool_with_thin_shaft_does_not() -> None:
    # two 30x30 objects joined by a 2-px bridge: two proposals
    rgb, depth = _box_scene([(20, 50, 20, 50), (34, 36, 50, 56), (20, 50, 56, 86)])
    assert len(propose_objects(rgb, depth)) == 2
    # a handle (40x12) with a 5-px shaft (40 long): one object
    rgb, depth = _box_scene([(40, 52, 20, 60), (44, 49, 60, 100)])
    assert len(propose_objects(rgb, depth)) == 1


def test_canonical_crop_ignores_orientation() -> None:
    yy, xx = np.mgrid[0:120, 0:120].astype(float)
    crops = []
    for angle in (0.0, 0.5, 2.0):
        c, s = np.cos(angle), np.sin(angle)
        a, b = (xx - 60) * c + (yy - 60) * s, -(xx - 60) * s + (yy - 60) * c
        mask = (np.abs(a) < 40) & (np.abs(b) < 8)
        rgb = np.zeros((120, 120, 3), np.uint8)
        rgb[mask & (a > 20)] = (255, 0, 0)  # a red end to check colour survives
        rgb[mask & (a <= 20)] = (0, 0, 255)
        crop, extra = canonical_crop(rgb, mask, 32)
        assert crop.shape == (4, 32, 32) and extra.shape == (2,)
        assert extra[0] > 3 * extra[1]  # long axis first
        crops.append(crop)
    ref = crops[0][3] > 0
    for crop in crops[1:]:
        m = crop[3] > 0
        assert max(_iou(ref, m), _iou(ref, m[::-1, ::-1])) > 0.8
        assert crop[0].max() > 200 and crop[2].max() > 200  # both colours kept


def test_training_overfits_the_train_set(tiny: Path, trained: dict[str, Any]) -> None:
    tagger: SceneTagger = trained["tagger"]
    untrained = SceneTagger(tagger.cfg, device="cpu")
    good = evaluate_tagger(tagger, tiny, "train", min_score=0.3)
    bad = evaluate_tagger(untrained, tiny, "train", min_score=0.3)
    chance = 1 / len(tagger.labels)
    assert good["crop_accuracy"] >= 0.7 > 5 * chance
    assert bad["crop_accuracy"] < 0.3
    assert good["micro_recall"] >= 0.5
    assert good["micro_recall"] > bad["micro_recall"] + 0.3
    assert OTHER in tagger.labels and trained["n_other"] > 0


def test_save_load_is_bit_exact(tiny: Path, trained: dict[str, Any], scenes: list[Any]) -> None:
    tagger: SceneTagger = trained["tagger"]
    loaded = SceneTagger.load(trained["dir"])
    assert loaded.cfg == tagger.cfg
    for rgb, depth, masks in scenes[:4]:
        assert np.array_equal(tagger.predict_crops(rgb, masks), loaded.predict_crops(rgb, masks))
        assert tagger.tag(rgb, depth, min_score=0.0) == loaded.tag(rgb, depth, min_score=0.0)
    tags = tagger.tag(scenes[0][0], scenes[0][1], min_score=0.0)
    assert tags and len({t.label for t in tags}) == len(tags)  # deduped by label
    assert all(t.label != OTHER and 0 <= t.score <= 1 for t in tags)
    assert sorted(p.name for p in Path(trained["dir"]).iterdir()) == ["config.json", "model.safetensors"]


def test_training_is_deterministic(tiny: Path) -> None:
    kw: dict[str, Any] = dict(splits=("train",), max_steps=3, batch_size=16, crop=32, seed=3, progress=False)
    a, b = train_tagger(tiny, **kw)["tagger"], train_tagger(tiny, **kw)["tagger"]
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert np.array_equal(va.numpy(), vb.numpy()), k


def test_load_missing_files_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        SceneTagger.load(tmp_path)


def test_bad_inputs(scenes: list[Any]) -> None:
    rgb, depth, _ = scenes[0]
    tagger = SceneTagger(TaggerConfig(labels=["a", "b"], crop=32), device="cpu")
    with pytest.raises(ValueError, match="RGB"):
        tagger.tag(rgb[..., 0])  # grey
    with pytest.raises(ValueError, match="depth"):
        tagger.tag(rgb, depth[:-1])
    with pytest.raises(ValueError, match="uint8"):
        propose_objects(rgb.astype(np.float32), depth)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)
    assert len(propose_objects(rgba, depth)) == len(propose_objects(rgb, depth))
