"""The joined model on the tiny preset: losses and gradient flow, and predict (answers + grasps per [POSE])."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from prg.grasp.rect import GraspRect
from prg.model.adaptive_mixture import AdaptiveMixtureConfig, balance_loss, wrapped_modules
from prg.model.losses import target_maps
from prg.model.prg_model import PRGModel, build_tiny_prg_model
from prg.model.processor import answer_labels, build_prompt

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_batch(model: PRGModel, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two samples, right-padded: sample 0 answers with two [POSE], sample 1 with one -> 3 target maps."""
    g = torch.Generator().manual_seed(seed)
    answers = ["Take the wrench [POSE] then the pliers [POSE]", "The hammer [POSE]"]
    built = [
        build_prompt(model.tokenizer, "Which tool?", ["Rule 1."], model.vlm.num_image_tokens, answer=a) for a in answers
    ]
    t = max(len(ids) for ids, _ in built)
    ids = torch.full((2, t), model.vlm.pad_token_id)
    mask = torch.zeros(2, t, dtype=torch.long)
    labels = torch.full((2, t), -100)
    segments = torch.zeros(2, t, dtype=torch.long)
    for i, (p, s) in enumerate(built):
        ids[i, : len(p)], mask[i, : len(p)] = torch.tensor(p), 1
        labels[i, : len(p)] = torch.tensor(answer_labels(p, s))
        segments[i, : len(p)] = torch.tensor(s)
    size = model.map_size
    rects = [[GraspRect(20, 30, 24, 8, 0.3)], [GraspRect(40, 20, 18, 6, -0.8)], [GraspRect(32, 32, 30, 10, 1.0)]]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "segment_ids": segments,
        "pixel_values": torch.randn(2, 3, model.vlm.image_size, model.vlm.image_size, generator=g),
        "sam_pixel_values": torch.randn(2, 3, size, size, generator=g),
        "target_maps": target_maps(rects, size, model.config.width_scale),
    }


def force_tokens(model: PRGModel, prompt_len: int, plan: dict[int, int]) -> Processor:
    """Logits processor: at generated step ``s`` make token ``plan[s]`` win for every sample."""

    def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        token = plan.get(ids.shape[1] - prompt_len)
        if token is None:
            return scores
        scores = scores.clone()
        scores[:, token] = scores.max() + 10.0
        return scores

    return proc


def pose_plan(
    model: PRGModel,
    instructions: list[str],
    documents: list[list[str]] | None,
    pose_steps: tuple[int, ...],
    eos_step: int,
) -> Processor:
    """Force ``[POSE]`` at ``pose_steps`` and eos at ``eos_step`` for a batch of these prompts."""
    prompt_len = model.encode_prompts(instructions, documents)[0].shape[1]
    plan = {s: model.vlm.pose_token_id for s in pose_steps}
    plan[eos_step] = model.vlm.eos_token_ids[0]
    return force_tokens(model, prompt_len, plan)


def random_images(sizes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


@pytest.fixture(scope="module")
def tiny() -> PRGModel:
    return build_tiny_prg_model(seed=0)


def test_build_is_deterministic_and_encoder_frozen() -> None:
    a, b = build_tiny_prg_model(seed=3), build_tiny_prg_model(seed=3)
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), na
    assert not any(p.requires_grad for p in a.image_encoder.parameters())
    c = build_tiny_prg_model(seed=4)
    gamma = "grasp_head.projection.net.0.weight"
    assert not torch.equal(c.get_parameter(gamma), a.get_parameter(gamma))


def test_forward_loss_and_gradients_reach_lm_gamma_decoder_not_encoder() -> None:
    model = build_tiny_prg_model()
    model.train()
    out = model(make_batch(model))
    assert out["grasp_loss"] > 0 and out["lm_loss"] > 0 and out["balance_loss"] == 0
    torch.testing.assert_close(out["loss"], out["lm_loss"] + out["grasp_loss"])
    assert set(out["components"]) == {"quality", "cos2", "sin2", "width"}
    out["loss"].backward()
    reached = [
        "vlm.language_model.model.layers.0.self_attn.q_proj.weight",
        "vlm.language_model.model.embed_tokens.weight",
        "vlm.projector.0.weight",
        "grasp_head.projection.net.0.weight",  # γ
        "grasp_head.decoder.mask_decoder.output_hypernetworks_mlps.1.layers.0.weight",  # F_dec, quality token
    ]
    for name in reached:
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.image_encoder.parameters())


def test_target_count_must_match_pose_count(tiny: PRGModel) -> None:
    batch = make_batch(tiny)
    batch["target_maps"] = batch["target_maps"][:2]
    with pytest.raises(ValueError, match="2 target maps for 3"):
        tiny(batch)


def test_forward_with_adaptive_mixture_trains_adapters_and_adds_balance() -> None:
    model = build_tiny_prg_model().apply_adaptive_mixture(AdaptiveMixtureConfig(n_experts=2, rank=2, top_k=1))
    assert model.config.adaptive_mixture is not None
    out = model(make_batch(model))
    lm = model.vlm.language_model
    bal = balance_loss(lm)
    assert bal > 0
    torch.testing.assert_close(out["loss"], out["lm_loss"] + out["grasp_loss"] + 0.01 * bal)
    out["loss"].backward()
    wrappers = wrapped_modules(lm)
    # lora_B starts at zero, so the first gradient reaches B (and the router through the balance loss), not A
    assert all(w.lora_B.grad is not None and w.lora_B.grad.abs().sum() > 0 for _, w in wrappers)
    assert all(w.router.weight.grad is not None and w.router.weight.grad.abs().sum() > 0 for _, w in wrappers)
    assert all(w.base.weight.grad is None for _, w in wrappers)
    assert model.get_parameter("vlm.language_model.model.embed_tokens.weight").grad is None
    assert model.get_parameter("grasp_head.projection.net.0.weight").grad is not None
    assert all(p.grad is None for p in model.image_encoder.parameters())


def test_predict_one_grasp_list_per_pose_inside_each_image(tiny: PRGModel) -> None:
    sizes = [(40, 90), (120, 50)]  # landscape and portrait, both different from the 64 px model input
    instructions = ["Give me the tool that measures the current.", "Hammer?"]
    documents = [["Rule 1: use the insulated one."], []]
    proc = pose_plan(tiny, instructions, documents, pose_steps=(1, 3), eos_step=5)
    preds = tiny.predict(random_images(sizes), instructions, documents, k=3, logits_processor=proc)
    assert len(preds) == 2
    n_rects = 0
    for pred, (h, w) in zip(preds, sizes, strict=True):
        assert pred.pose_count == 2 and len(pred.grasps) == 2
        assert pred.answer_text.count("[POSE]") == 2
        for rects in pred.grasps:
            assert len(rects) <= 3
            qualities = [float(r.quality or 0.0) for r in rects]
            assert qualities == sorted(qualities, reverse=True)
            for r in rects:
                assert 0 <= r.x <= w - 1 and 0 <= r.y <= h - 1, (r, (h, w))
            n_rects += len(rects)
    assert n_rects > 0  # the random head still has quality peaks: the bounds check above was exercised


def test_predict_without_pose_gives_no_grasps(tiny: PRGModel) -> None:
    def ban_pose(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        scores[:, tiny.vlm.pose_token_id] = -float("inf")
        return scores

    preds = tiny.predict(random_images([(30, 30)]), ["Hammer?"], max_new_tokens=4, logits_processor=ban_pose)
    assert preds[0].pose_count == 0 and preds[0].grasps == []
    assert "[POSE]" not in preds[0].answer_text


def test_predict_batch_mixes_pose_and_no_pose(tiny: PRGModel) -> None:
    instructions = ["Hammer?", "Which bottle is safe?"]
    prompt_len = tiny.encode_prompts(instructions)[0].shape[1]
    pose, eos = tiny.vlm.pose_token_id, tiny.vlm.eos_token_ids[0]

    def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = ids.shape[1] - prompt_len
        scores = scores.clone()
        scores[1, pose] = -float("inf")  # sample 1 never poses
        if step == 0:
            scores[0, pose] = scores.max() + 10.0
        if step == 2:
            scores[:, eos] = scores.max() + 10.0
        return scores

    preds = tiny.predict(random_images([(50, 70), (64, 64)]), instructions, logits_processor=proc)
    assert [p.pose_count for p in preds] == [1, 0]
    assert len(preds[0].grasps) == 1 and preds[1].grasps == []
