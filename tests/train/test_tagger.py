"""Scene tagger training: it learns the train set, its saved copy loads bit-exact, and it is deterministic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prg.data.dataset import iter_records, load_depth, load_image, load_mask
from prg.data.synth.generate import SynthConfig, generate
from prg.eval.tagger import evaluate_tagger, gt_tool_masks
from prg.retrieval.image import OTHER, SceneTagger
from prg.train.tagger import train_tagger

ALL_SPLITS = ("train", "val", "test", "zero_shot_task", "zero_shot_industry")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(n=24, seed=1, size=192), workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tagger")
    m = train_tagger(tiny, out, splits=ALL_SPLITS, epochs=30, batch_size=32, crop=32, seed=0, progress=False)
    m["dir"] = out
    return m


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


def test_trained_tagger_saves_its_labels_and_loads_bit_exact(tiny: Path, trained: dict[str, Any]) -> None:
    tagger: SceneTagger = trained["tagger"]
    loaded = SceneTagger.load(trained["dir"])
    assert loaded.cfg == tagger.cfg
    for rec in list(iter_records(tiny))[:4]:
        rgb, depth = load_image(tiny, rec), load_depth(tiny, rec)
        masks = [load_mask(tiny, o.mask) for o in rec.objects if o.mask is not None]
        assert np.array_equal(tagger.predict_crops(rgb, masks), loaded.predict_crops(rgb, masks))
        assert tagger.tag(rgb, depth, min_score=0.0) == loaded.tag(rgb, depth, min_score=0.0)
    # the class list is the categories seen in training (+ _other), saved in config.json with a name for each
    cats = {c for rec in iter_records(tiny) for c, _, _ in gt_tool_masks(tiny, rec)}
    saved = json.loads((Path(trained["dir"]) / "config.json").read_text(encoding="utf-8"))
    assert saved["labels"] == sorted(cats | {OTHER}) == tagger.labels
    assert set(saved["names"]) == cats
    assert sorted(p.name for p in Path(trained["dir"]).iterdir()) == ["config.json", "model.safetensors"]


def test_training_is_deterministic(tiny: Path) -> None:
    kw: dict[str, Any] = dict(splits=("train",), max_steps=3, batch_size=16, crop=32, seed=3, progress=False)
    a, b = train_tagger(tiny, **kw)["tagger"], train_tagger(tiny, **kw)["tagger"]
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert np.array_equal(va.numpy(), vb.numpy()), k


def test_no_records_in_splits_is_clear(tiny: Path) -> None:
    with pytest.raises(ValueError, match="no records"):
        train_tagger(tiny, splits=("nope",), progress=False)
