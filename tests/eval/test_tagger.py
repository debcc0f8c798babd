"""Scene tagger evaluation: what it counts, on a tagger whose output does not matter (random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prg.data.dataset import iter_records
from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.generate import SynthConfig, generate
from prg.eval.tagger import evaluate_tagger, gt_tool_masks, split_records
from prg.retrieval.image import OTHER, SceneTagger
from prg.retrieval.image_model import TaggerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(n=12, seed=1, size=160), workers=1, progress=False)
    return root


def test_ground_truth_readers(tiny: Path) -> None:
    recs = split_records(tiny, ["train", "test"])
    assert recs and {r.split for r in recs} <= {"train", "test"}
    assert [r.id for r in recs] == [r.id for r in iter_records(tiny) if r.split in ("train", "test")]
    for rec in recs:
        gts = gt_tool_masks(tiny, rec)
        annotated = [o for o in rec.objects if o.mask is not None and not o.category.startswith("clutter_")]
        assert [(c, n) for c, n, _ in gts] == [(o.category, o.name) for o in annotated]
        assert all(m.dtype == bool and m.any() for _, _, m in gts)


def test_counts_crops_lookalikes_and_unseen_labels(tiny: Path) -> None:
    recs = split_records(tiny, ["train"])
    gts = [g for r in recs for g in gt_tool_masks(tiny, r)]
    cats = sorted({c for c, _, _ in gts})
    torch.manual_seed(0)
    knows_all = SceneTagger(TaggerConfig(labels=[*cats, OTHER], crop=32), device="cpu")
    r = evaluate_tagger(knows_all, tiny, "train")
    assert r["n_images"] == len(recs) and r["n_crops"] == len(gts)
    assert r["gt_labels_unseen_in_training"] == 0
    n_la = sum(any(k in cats for k in CATALOGUE[c].lookalikes) for c, _, _ in gts if c in CATALOGUE)
    assert r["n_lookalike_crops"] == n_la
    assert r["proposal_recall_iou50"] >= 0.8  # proposals do not depend on the tagger
    for key in ("set_recall", "micro_precision", "micro_recall", "crop_accuracy", "lookalike_accuracy"):
        assert 0.0 <= r[key] <= 1.0, key

    knows_none = SceneTagger(TaggerConfig(labels=["not_a_tool", OTHER], crop=32), device="cpu")
    r = evaluate_tagger(knows_none, tiny, "train", limit=2)
    assert r["n_images"] == 2 and r["n_crops"] == 0 and r["micro_recall"] == 0.0
    assert r["gt_labels_unseen_in_training"] == sum(len({c for c, _, _ in gt_tool_masks(tiny, x)}) for x in recs[:2])
