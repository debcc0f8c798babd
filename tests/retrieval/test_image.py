"""Scene tagger inference: proposals without GT masks, canonical crops, saving/loading, bad input.

Training is tested in ``tests/train/test_tagger.py``, evaluation in ``tests/eval/test_tagger.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from prg.data.dataset import iter_records, load_depth, load_image, load_mask
from prg.data.synth.generate import SynthConfig, generate
from prg.retrieval.image import OTHER, SceneTagger, canonical_crop, propose_objects
from prg.retrieval.image_model import TaggerConfig, TaggerNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def _random_tagger(labels: list[str]) -> SceneTagger:
    torch.manual_seed(0)  # random weights, the same every run
    return SceneTagger(TaggerConfig(labels=labels, names={"a": "tool a"}, crop=32), device="cpu")


def test_save_load_is_bit_exact(tmp_path: Path, scenes: list[Any]) -> None:
    tagger = _random_tagger(["a", "b", "c", OTHER])
    tagger.save(tmp_path)
    loaded = SceneTagger.load(tmp_path)
    assert loaded.cfg == tagger.cfg
    for rgb, depth, masks in scenes[:4]:
        assert np.array_equal(tagger.predict_crops(rgb, masks), loaded.predict_crops(rgb, masks))
        assert tagger.tag(rgb, depth, min_score=0.0) == loaded.tag(rgb, depth, min_score=0.0)
    tags = [t for rgb, depth, _ in scenes[:4] for t in tagger.tag(rgb, depth, min_score=0.0)]
    assert tags and all(t.label != OTHER and 0 <= t.score <= 1 for t in tags)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    # the class list travels with the weights, so loading needs no catalogue
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert saved["labels"] == ["a", "b", "c", OTHER] and saved["names"] == {"a": "tool a"}


def test_loads_a_folder_in_the_first_saved_format(tmp_path: Path) -> None:
    """A folder written literally as the first tagger release wrote it (labels already in config.json)."""
    legacy = {
        "labels": ["pliers", OTHER],
        "names": {"pliers": "insulated pliers"},
        "crop": 32,
        "channels": [16, 32, 64, 128],
        "n_extra": 2,
    }
    (tmp_path / "config.json").write_text(json.dumps(legacy, indent=2) + "\n", encoding="utf-8")
    cfg = TaggerConfig(labels=["pliers", OTHER], crop=32)
    save_file({k: v.contiguous() for k, v in TaggerNet(cfg).state_dict().items()}, str(tmp_path / "model.safetensors"))
    loaded = SceneTagger.load(tmp_path, device="cpu")
    assert loaded.labels == ["pliers", OTHER]
    assert loaded.cfg.names == {"pliers": "insulated pliers"} and loaded.cfg.crop == 32


def test_loading_needs_nothing_from_prg_data(tmp_path: Path) -> None:
    _random_tagger(["a", OTHER]).save(tmp_path)
    code = (
        "import sys\n"
        "from prg.retrieval.image import SceneTagger\n"
        f"SceneTagger.load({str(tmp_path)!r}, device='cpu')\n"
        "print(sorted(m for m in sys.modules if m.startswith('prg.data')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
