"""PRG checkpoints: bit-exact round trips (with and without AdaptiveMixture) and strict key checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from prg.model.adaptive_mixture import AdaptiveMixtureConfig, wrapped_modules
from prg.model.checkpoint import CheckpointError, from_pretrained, save_pretrained
from prg.model.prg_model import PRGModel, build_tiny_prg_model
from tests.model.test_prg_model import make_batch, pose_plan, random_images


def fake_training(model: PRGModel, seed: int = 1) -> None:
    """Move every trainable tensor away from the seeded base, as training would (so loading must matter)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=g))


Decoded = list[tuple[str, list[list[tuple[float, float, float, float, float | None]]]]]


def outputs(model: PRGModel) -> tuple[torch.Tensor, torch.Tensor, Decoded]:
    """(forward loss, head maps on the batch's pose states, predictions) for a fixed input."""
    model.eval()
    batch = make_batch(model)
    with torch.no_grad():
        loss = model(batch)["loss"]
        vlm_out = model.vlm(batch["input_ids"], batch["pixel_values"], batch["attention_mask"])
        maps = model.grasp_head(
            vlm_out.pose_hidden, model.image_encoder(batch["sam_pixel_values"]), vlm_out.pose_index[0]
        )
    instructions = ["Hammer?", "Which bottle is safe?"]
    proc = pose_plan(model, instructions, None, pose_steps=(0, 2), eos_step=4)
    preds = model.predict(random_images([(48, 80), (70, 40)]), instructions, logits_processor=proc)
    decoded: Decoded = [
        (p.answer_text, [[(r.x, r.y, r.width, r.angle, r.quality) for r in g] for g in p.grasps]) for p in preds
    ]
    return loss, maps, decoded


def assert_same(a: PRGModel, b: PRGModel) -> None:
    loss_a, maps_a, pred_a = outputs(a)
    loss_b, maps_b, pred_b = outputs(b)
    assert torch.equal(loss_a, loss_b)
    assert torch.equal(maps_a, maps_b)
    assert pred_a == pred_b
    assert sum(len(g) for _, grasps in pred_a for g in grasps) > 0  # some rectangles were compared


def test_round_trip_is_bit_exact_and_writes_no_pickle(tmp_path: Path) -> None:
    model = build_tiny_prg_model(seed=2)
    fake_training(model)
    save_pretrained(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "tokenizer"]
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert not any(k.startswith("image_encoder.") for k in keys)  # frozen F_enc comes from the base
    assert any(k.startswith("grasp_head.") for k in keys) and any(k.startswith("vlm.language_model.") for k in keys)
    loaded = from_pretrained(tmp_path)
    assert_same(model, loaded)
    # loading mattered: the bare base differs
    base = build_tiny_prg_model(seed=2)
    assert not torch.equal(outputs(base)[1], outputs(loaded)[1])


def test_round_trip_with_adaptive_mixture_saves_adapters_only_for_the_lm(tmp_path: Path) -> None:
    model = build_tiny_prg_model().apply_adaptive_mixture(AdaptiveMixtureConfig(n_experts=2, rank=2, top_k=1))
    fake_training(model)
    save_pretrained(model, tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    lm_keys = {k for k in keys if k.startswith("vlm.language_model.")}
    adapter_parts = (".lora_A", ".lora_B", ".router.", ".segment_embed.")
    rows = {k for k in lm_keys if k.endswith(".rows")}  # the [POSE]/<image> rows (token_rows.py): [2 x H] each
    assert rows == {"vlm.language_model.model.embed_tokens.rows", "vlm.language_model.lm_head.rows"}
    lm_keys -= rows
    assert lm_keys and all(any(part in k for part in adapter_parts) for k in lm_keys), sorted(lm_keys)
    assert not any(".base." in k for k in keys)  # frozen LM weights are not stored
    assert json.loads((tmp_path / "config.json").read_text())["model"]["adaptive_mixture"]["n_experts"] == 2
    loaded = from_pretrained(tmp_path)
    assert len(wrapped_modules(loaded.vlm.language_model)) == len(wrapped_modules(model.vlm.language_model))
    assert_same(model, loaded)


def test_full_save_round_trip(tmp_path: Path) -> None:
    model = build_tiny_prg_model().apply_adaptive_mixture()
    fake_training(model)
    save_pretrained(model, tmp_path, trainable_only=False)
    assert any(k.startswith("image_encoder.") for k in load_file(str(tmp_path / "model.safetensors")))
    assert_same(model, from_pretrained(tmp_path))


def test_missing_or_unexpected_tensor_is_a_clear_error(tmp_path: Path) -> None:
    model = build_tiny_prg_model()
    save_pretrained(model, tmp_path)
    path = tmp_path / "model.safetensors"
    tensors = load_file(str(path))
    dropped = "grasp_head.projection.net.0.weight"
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(path))
    with pytest.raises(CheckpointError, match=rf"missing keys \['{dropped}'\]"):
        from_pretrained(tmp_path)
    save_file({**tensors, "grasp_head.extra": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match=r"unexpected keys \['grasp_head.extra'\]"):
        from_pretrained(tmp_path)
    save_file({**tensors, dropped: torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        from_pretrained(tmp_path)


def test_tied_embeddings_are_saved_once(tmp_path: Path) -> None:
    model = build_tiny_prg_model()
    lm = model.vlm.language_model
    lm.config.tie_word_embeddings = True
    lm.tie_weights()
    emb = model.get_parameter("vlm.language_model.model.embed_tokens.weight")
    assert model.get_parameter("vlm.language_model.lm_head.weight") is emb
    fake_training(model)
    save_pretrained(model, tmp_path)  # safetensors would refuse two names on one storage
    stored = load_file(str(tmp_path / "model.safetensors"))
    copies = [k for k, v in stored.items() if v.shape == emb.shape and torch.equal(v, emb.detach())]
    assert copies == ["vlm.language_model.model.embed_tokens.weight"]


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import prg.model.checkpoint as ck

    first = build_tiny_prg_model()
    save_pretrained(first, tmp_path / "ckpt")
    second = build_tiny_prg_model(seed=3)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", full)
    with pytest.raises(OSError, match="No space"):
        save_pretrained(second, tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no staging folder left behind
    monkeypatch.undo()
    assert_same(first, from_pretrained(tmp_path / "ckpt"))
