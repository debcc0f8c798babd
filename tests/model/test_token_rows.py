"""The new tokens' rows train under adapters while the tables stay frozen; folding them back is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from prg.model.adaptive_mixture import AdaptiveMixtureConfig
from prg.model.checkpoint import from_pretrained, save_pretrained
from prg.model.prg_model import build_tiny_prg_model
from prg.model.token_rows import RowOverrideEmbedding, RowOverrideHead, fold_token_rows, train_token_rows


def tiny_lm(tied: bool) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=50, tie_word_embeddings=tied,
    )  # fmt: skip
    lm = LlamaForCausalLM(cfg).eval()
    lm.requires_grad_(False)  # as adapters leave it
    return lm


@pytest.mark.parametrize("tied", [False, True])
def test_rows_train_alone_and_fold_back_exactly(tied: bool) -> None:
    lm = tiny_lm(tied)
    ids = torch.tensor([[1, 7, 49, 3, 48]])
    before = lm(ids).logits
    params = train_token_rows(lm, [48, 49])
    assert isinstance(lm.get_input_embeddings(), RowOverrideEmbedding)
    assert isinstance(lm.get_output_embeddings(), RowOverrideHead)
    assert len(params) == (1 if tied else 2)  # a tied model keeps one row table for both ends
    torch.testing.assert_close(lm(ids).logits, before, rtol=1e-5, atol=1e-6)  # a fresh wrap: float rounding only
    trainable = [n for n, p in lm.named_parameters() if p.requires_grad]
    assert trainable == [n for n in trainable if n.endswith("rows")] and trainable
    loss = lm(ids, labels=ids).loss
    loss.backward()
    for p in params:
        assert p.grad is not None and p.grad.abs().sum() > 0
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p))
    trained = lm(ids).logits
    assert not torch.allclose(trained, before)
    # only the new ids' logits and the positions that read a new token change
    assert torch.equal(trained[0, 1, :48], before[0, 1, :48])
    fold_token_rows(lm)
    assert isinstance(lm.get_input_embeddings(), torch.nn.Embedding)
    assert isinstance(lm.get_output_embeddings(), torch.nn.Linear)
    torch.testing.assert_close(lm(ids).logits, trained, rtol=1e-6, atol=1e-6)
    assert not lm.get_input_embeddings().weight.requires_grad
    if tied:
        assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight


def test_adapters_train_the_pose_row_and_checkpoints_keep_it(tmp_path: Path) -> None:
    model = build_tiny_prg_model()
    model.apply_adaptive_mixture(AdaptiveMixtureConfig(n_experts=2, rank=2, top_k=1))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("embed_tokens.rows") for n in names) and any(n.endswith("lm_head.rows") for n in names)
    assert not model.vlm.language_model.get_input_embeddings().base.weight.requires_grad
    pose = model.vlm.pose_token_id
    with torch.no_grad():
        model.vlm.language_model.get_output_embeddings().rows.add_(0.5)
    save_pretrained(model, tmp_path / "ckpt")
    loaded = from_pretrained(tmp_path / "ckpt")
    a = model.vlm.language_model.get_output_embeddings().rows
    b = loaded.vlm.language_model.get_output_embeddings().rows
    assert torch.equal(a, b)
    ids = torch.tensor([[5, pose, 9]])
    torch.testing.assert_close(loaded.vlm(ids, None).logits, model.vlm(ids, None).logits)


def test_freeze_is_recorded_and_rebuilt(tmp_path: Path) -> None:
    model = build_tiny_prg_model()
    model.freeze(["vlm.vision_tower"])
    assert not any(p.requires_grad for p in model.vlm.vision_tower.parameters())
    assert model.config.freeze == ["vlm.vision_tower"]
    save_pretrained(model, tmp_path / "ckpt")
    loaded = from_pretrained(tmp_path / "ckpt")
    assert not any(p.requires_grad for p in loaded.vlm.vision_tower.parameters())
    with pytest.raises(ValueError, match="no module"):
        model.freeze(["vlm.nowhere"])
