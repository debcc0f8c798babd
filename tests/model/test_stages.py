"""Staged training: weights a stage trained stay in every later checkpoint, even once frozen (no silent reset)."""

from __future__ import annotations

from pathlib import Path

import torch

from prg.model.checkpoint import from_pretrained, save_pretrained
from prg.model.prg_model import build_prg_model, tiny_config


def test_an_encoder_trained_in_stage_1_survives_freezing_in_stage_2(tmp_path: Path) -> None:
    config = tiny_config()
    config.train_encoder = True
    stage1 = build_prg_model(config)
    assert all(p.requires_grad for p in stage1.image_encoder.parameters())
    with torch.no_grad():
        for p in stage1.image_encoder.parameters():
            p.add_(0.01)  # "training"
        for p in stage1.vlm.vision_tower.parameters():
            p.add_(0.01)
    save_pretrained(stage1, tmp_path / "stage1")
    stage2 = from_pretrained(tmp_path / "stage1")
    stage2.freeze_encoder().freeze(["vlm.vision_tower"], trained=True)
    assert not any(p.requires_grad for p in stage2.image_encoder.parameters())
    assert sorted(stage2.config.trained) == ["image_encoder", "vlm.vision_tower"]
    save_pretrained(stage2, tmp_path / "stage2")
    served = from_pretrained(tmp_path / "stage2")
    fresh = build_prg_model(tiny_config())
    for name, p in stage1.image_encoder.state_dict().items():
        assert torch.equal(served.image_encoder.state_dict()[name], p), name
    assert not torch.equal(next(iter(served.image_encoder.parameters())), next(iter(fresh.image_encoder.parameters())))
    for (name, p), q in zip(
        stage1.vlm.vision_tower.named_parameters(), served.vlm.vision_tower.parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    assert not any(p.requires_grad for p in served.image_encoder.parameters())
