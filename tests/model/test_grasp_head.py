"""Pose head (γ + F_dec), frozen F_enc wrapper, preprocessing geometry and the grasp-map loss, on tiny SAM configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import SamVisionConfig

from prg.grasp.maps import GraspMaps, maps_to_rects, rects_to_maps
from prg.grasp.metrics import grasp_success
from prg.grasp.rect import GraspRect, angle_diff
from prg.model.grasp_head import (
    GraspDecoder,
    GraspHead,
    ImageEncoder,
    PoseProjection,
    grasp_decoder_config,
    maps_to_image,
)
from prg.model.losses import grasp_map_loss, target_maps
from prg.model.prg_model import tiny_config
from prg.model.processor import ImageMeta, fit_images

S = 64  # encoder input / map size
D = 64  # prompt and image-embedding width (SAM uses 256; the decoder allows any multiple of 8)
LM_HIDDEN = 16


def tiny_encoder() -> ImageEncoder:
    return ImageEncoder(SamVisionConfig(**tiny_config().encoder))  # the tiny preset's F_enc: S = 64, D = 64


def tiny_head() -> GraspHead:
    return GraspHead(LM_HIDDEN, grasp_decoder_config(D, num_hidden_layers=1, num_attention_heads=2, mlp_dim=64), S)


def test_pose_projection_shape() -> None:
    gamma = PoseProjection(LM_HIDDEN, dropout=0.1)
    assert gamma(torch.randn(3, LM_HIDDEN)).shape == (3, 256)


def test_shapes_and_ranges_for_three_poses_over_two_images() -> None:
    torch.manual_seed(0)
    encoder, head = tiny_encoder(), tiny_head()
    embeddings = encoder(torch.randn(2, 3, S, S))
    assert embeddings.shape == (2, D, S // 8, S // 8)
    maps = head(torch.randn(3, LM_HIDDEN), embeddings, torch.tensor([0, 1, 1]))
    assert maps.shape == (3, 4, S, S)
    quality, cos2, sin2, width = maps.unbind(1)
    assert ((quality > 0) & (quality < 1)).all() and ((width > 0) & (width < 1)).all()
    assert (cos2.abs() < 1).all() and (sin2.abs() < 1).all()


def test_sam_sized_decoder_takes_256_wide_prompts() -> None:
    # SAM's mask-decoder width (256) with the default γ output, as the paper preset wires it.
    head = GraspHead(LM_HIDDEN, grasp_decoder_config(), image_size=64)
    with torch.no_grad():
        maps = head(torch.randn(2, LM_HIDDEN), torch.randn(1, 256, 4, 4), torch.tensor([0, 0]))
    assert maps.shape == (2, 4, 64, 64)


def test_image_index_routes_each_pose_to_its_image() -> None:
    torch.manual_seed(0)
    head = tiny_head().eval()
    embeddings = torch.randn(2, D, S // 8, S // 8)
    hidden = torch.randn(3, LM_HIDDEN)
    with torch.no_grad():
        together = head(hidden, embeddings, torch.tensor([1, 0, 1]))
        alone = head(hidden[1:2], embeddings[0:1], torch.tensor([0]))
        swapped = head(hidden[1:2], embeddings[1:2], torch.tensor([0]))
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[1:2], swapped, atol=1e-3)


def test_gradients_reach_gamma_and_decoder_but_not_the_frozen_encoder() -> None:
    torch.manual_seed(0)
    encoder, head = tiny_encoder(), tiny_head()
    encoder.train()  # a frozen encoder must stay in eval mode anyway
    assert not encoder.encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    pixel_values = torch.randn(2, 3, S, S, requires_grad=True)
    embeddings = encoder(pixel_values)
    maps = head(torch.randn(3, LM_HIDDEN), embeddings, torch.tensor([0, 1, 0]))
    target = target_maps([[GraspRect(30, 30, 24, 10, 0.3)]] * 3, S, width_scale=50)
    loss, _ = grasp_map_loss(maps, target)
    loss.backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert pixel_values.grad is None  # no graph through F_enc at all
    trainable = {n: p for n, p in head.named_parameters() if p.requires_grad}
    assert any(n.startswith("projection.") for n in trainable)
    assert any(n.startswith("decoder.mask_decoder.transformer.") for n in trainable)
    for name, p in trainable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_decoder_needs_four_output_tokens() -> None:
    config = grasp_decoder_config(D, 1, 2, 64)
    config.num_multimask_outputs = 3
    with pytest.raises(ValueError, match="num_multimask_outputs"):
        GraspDecoder(config, S)


def test_preprocess_rgba_and_grey_images() -> None:
    encoder = tiny_encoder()
    rgba = np.zeros((40, 100, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 7  # alpha must not leak into the pixels
    grey = np.full((90, 30), 128, dtype=np.uint8)
    pixels, metas = fit_images([rgba, grey], encoder.geometry)
    assert pixels.shape == (2, 3, S, S)
    assert metas[0] == ImageMeta(original=(40, 100), resized=(26, 64), size=S)
    assert metas[1].resized == (64, 21) and metas[1].padding == (0, 43)
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    std = torch.tensor([0.229, 0.224, 0.225]) * 255
    expected = (torch.tensor([200.0, 100.0, 50.0]) - mean) / std
    torch.testing.assert_close(pixels[0, :, 10, 30], expected, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(pixels[1, :, 30, 10], (128 - mean) / std, atol=1e-3, rtol=1e-4)
    assert (pixels[0, :, 26:, :] == 0).all() and (pixels[1, :, :, 21:] == 0).all()  # padding bottom/right
    assert encoder(pixels).shape == (2, D, S // 8, S // 8)
    with pytest.raises(ValueError):
        fit_images([np.zeros((10, 10, 3), dtype=np.float32)], encoder.geometry)


@pytest.mark.parametrize("shape", [(120, 200), (300, 90)])
def test_maps_round_trip_to_the_original_image(shape: tuple[int, int]) -> None:
    encoder = tiny_encoder()
    _, (meta,) = fit_images([np.zeros((*shape, 4), dtype=np.uint8)], encoder.geometry)
    h, w = shape
    original = GraspRect(w * 0.4, h * 0.55, 0.5 * min(h, w), 0.2 * min(h, w), math.radians(35))
    width_scale = 150.0
    model_maps = rects_to_maps([meta.rect_to_model(original)], (S, S), width_scale)
    back = maps_to_image(torch.from_numpy(model_maps.stack()), meta)
    assert back.shape == (4, h, w)
    (decoded,) = maps_to_rects(GraspMaps.from_stack(back.numpy()), k=1, width_scale=width_scale)
    assert math.hypot(decoded.x - original.x, decoded.y - original.y) < 2.0
    assert math.degrees(angle_diff(decoded.angle, original.angle)) < 5.0
    assert abs(decoded.width - original.width) < 0.1 * original.width
    assert meta.rect_to_image(meta.rect_to_model(original)).almost_equal(original)


def test_loss_components_and_logits_path() -> None:
    target = target_maps([[GraspRect(30, 30, 24, 10, 0.3)], []], S, width_scale=50)
    assert target.shape == (2, 4, S, S)
    np.testing.assert_array_equal(
        target[0].numpy(), rects_to_maps([GraspRect(30, 30, 24, 10, 0.3)], (S, S), 50).stack()
    )
    assert (target[1] == 0).all()  # a pose with no rectangle: all-background target
    perfect, parts = grasp_map_loss(target, target)
    assert set(parts) == {"quality", "cos2", "sin2", "width"}
    assert perfect.item() < 1e-4
    shifted, _ = grasp_map_loss(torch.roll(target, 5, dims=-1), target)
    assert shifted > perfect + 0.01
    logits = torch.randn(2, 4, S, S)
    from_logits, _ = grasp_map_loss(logits, target, logits=True)
    activated = torch.stack(
        [logits[:, 0].sigmoid(), logits[:, 1].tanh(), logits[:, 2].tanh(), logits[:, 3].sigmoid()], 1
    )
    from_maps, _ = grasp_map_loss(activated, target)
    torch.testing.assert_close(from_logits, from_maps, atol=1e-4, rtol=1e-4)
    mse, c = grasp_map_loss(activated, target, quality_loss="mse", weights=(2.0, 0.0, 0.0, 0.0))
    torch.testing.assert_close(mse, 2 * c["quality"])
    with pytest.raises(ValueError):
        grasp_map_loss(activated[:, :3], target[:, :3])


def test_angle_region_weight_adds_the_angle_error_inside_the_grasp_region() -> None:
    gt = GraspRect(30, 30, 24, 10, 0.3)
    target = target_maps([[gt]], S, width_scale=50)
    region = target[:, 0] > 0
    wrong = target.clone()
    wrong[:, 1][region], wrong[:, 2][region] = math.cos(2 * 1.2), math.sin(2 * 1.2)  # the angle off by 52 degrees
    plain, parts = grasp_map_loss(wrong, target)
    assert "cos2_region" not in parts
    weighted, parts = grasp_map_loss(wrong, target, angle_region_weight=2.0)
    assert {"cos2_region", "sin2_region"} <= set(parts)
    # the all-pixel means are diluted by the background (the region is ~3% of this map); the region means are not
    share = region.float().mean()
    torch.testing.assert_close(parts["cos2"], parts["cos2_region"] * share, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(weighted, plain + 2.0 * (parts["cos2_region"] + parts["sin2_region"]))
    assert parts["cos2_region"] > 10 * parts["cos2"]
    # a right angle costs nothing in either term, and a sample with no grasp adds no region term
    perfect, parts = grasp_map_loss(target, target, angle_region_weight=2.0)
    assert perfect.item() < 1e-4 and parts["sin2_region"].item() == 0.0
    empty = target_maps([[]], S, width_scale=50)
    loss, parts = grasp_map_loss(torch.zeros_like(empty), empty, angle_region_weight=1.0)
    assert parts["cos2_region"].item() == 0.0 and torch.isfinite(loss)


def test_prompt_grasp_hits_counts_decoded_rectangles_that_pass_the_metric() -> None:
    from prg.model.losses import pack_rects
    from prg.train.data import prompt_grasp_hits

    gt = GraspRect(30, 30, 24, 10, 0.3)
    maps = target_maps([[gt], [gt]], S, width_scale=50)
    maps[1, 1], maps[1, 2] = math.cos(2 * (0.3 + math.radians(45))), math.sin(2 * (0.3 + math.radians(45)))
    params, valid = pack_rects([[gt], [gt]])
    batch = {"target_rects": params, "target_valid": valid}
    assert prompt_grasp_hits(maps, batch, width_scale=50) == 1  # the second: right place, angle 45 degrees off
    assert prompt_grasp_hits(maps[:1], {"target_rects": params[:1], "target_valid": valid[:1] & False}, 50) == 0


def test_overfits_one_example_and_decodes_a_successful_grasp() -> None:
    torch.manual_seed(0)
    encoder, head = tiny_encoder(), tiny_head()
    with torch.no_grad():
        embeddings = encoder(torch.randn(1, 3, S, S))
    hidden, index = torch.randn(1, LM_HIDDEN), torch.tensor([0])
    gt = GraspRect(30, 34, 24, 10, math.radians(30))
    target = target_maps([[gt]], S, width_scale=50)
    optimiser = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = grasp_map_loss(head(hidden, embeddings, index, return_logits=True), target, logits=True)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        maps = head(hidden, embeddings, index)[0].numpy()
    decoded = maps_to_rects(GraspMaps.from_stack(maps), k=1, width_scale=50)
    assert decoded and grasp_success(decoded[0], [gt]), decoded


def test_device_rasteriser_equals_the_numpy_targets() -> None:
    """rasterise_rects (what training batches use) draws exactly what target_maps draws, overlaps included."""
    from prg.model.losses import pack_rects, rasterise_rects

    rng = np.random.default_rng(3)
    rects = [
        [
            GraspRect(*rng.uniform(-5, 101, 2), rng.uniform(4, 60), rng.uniform(2, 25), rng.uniform(-1.6, 1.6))
            for _ in range(int(rng.integers(0, 7)))
        ]
        for _ in range(30)
    ]
    params, valid = pack_rects(rects)
    assert params.shape[0] == 30 and valid.sum() == sum(len(r) for r in rects)
    fast = rasterise_rects(params, valid, 96, width_scale=80.0, chunk=7)
    torch.testing.assert_close(fast, target_maps(rects, 96, width_scale=80.0), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="N x R x 5"):
        rasterise_rects(params[..., :4], valid, 96)


def test_dice_term_penalises_a_quality_map_that_stays_near_zero() -> None:
    target = target_maps([[GraspRect(30, 30, 24, 10, 0.2)]], 64)
    quiet = target.clone()
    quiet[:, 0] = 0.01  # the failure of the first run: BCE small, no peak above the decoding threshold
    plain, _ = grasp_map_loss(quiet, target)
    with_dice, parts = grasp_map_loss(quiet, target, dice_weight=1.0)
    assert float(parts["dice"]) > 0.9 and float(with_dice - plain) == pytest.approx(float(parts["dice"]))
    _, perfect = grasp_map_loss(target, target, dice_weight=1.0)
    assert float(perfect["dice"]) < 0.01


def test_prompt_gate_starts_as_sams_decoder_and_then_makes_maps_depend_on_the_prompt() -> None:
    torch.manual_seed(0)
    plain = GraspDecoder(grasp_decoder_config(D, 1, 2, 64), S)
    gated = GraspDecoder(grasp_decoder_config(D, 1, 2, 64), S, prompt_gate=True)
    missing = gated.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["prompt_gate.bias", "prompt_gate.weight"]  # SAM weights load unchanged
    embeddings, prompt, index = torch.randn(1, D, 8, 8), torch.randn(2, D), torch.tensor([0, 0])
    with torch.no_grad():
        torch.testing.assert_close(gated(prompt, embeddings, index), plain(prompt, embeddings, index))
    # the zero-initialised gate still receives a gradient, and once it moves the dense path changes the maps
    gated(prompt, embeddings, index, return_logits=True)[:, 0].mean().backward()
    assert gated.prompt_gate is not None and gated.prompt_gate.weight.grad.abs().sum() > 0
    with torch.no_grad():
        gated.prompt_gate.weight.normal_(std=0.5)
        assert not torch.allclose(gated(prompt, embeddings, index), plain(prompt, embeddings, index), atol=1e-3)


def test_match_map_scores_cells_and_its_loss_rewards_the_target_cells() -> None:
    from prg.model.losses import match_loss

    torch.manual_seed(0)
    dec = GraspDecoder(grasp_decoder_config(D, 1, 2, 64), S, prompt_match=True)
    embeddings, prompt = torch.randn(2, D, 8, 8), torch.randn(3, D)
    maps, match = dec(prompt, embeddings, torch.tensor([0, 1, 1]), return_match=True)
    assert maps.shape == (3, 4, S, S) and match.shape == (3, 8, 8)
    torch.testing.assert_close(match[0], dec.match_logits(prompt[:1], embeddings[:1])[0])
    # the target's grasp region (64 px maps) covers the cells it touches on the 8 x 8 grid
    target = target_maps([[GraspRect(12, 12, 10, 4, 0.0)]], S, width_scale=50)
    cells = torch.zeros(1, 8, 8)
    cells[0, 1, 1] = 1.0  # the region around (12, 12) lies in cell (1, 1) of 8 px cells
    good, bad = 8 * (2 * cells - 1), 8 * (1 - 2 * cells)
    assert match_loss(good, target) < 0.1 < match_loss(torch.zeros(1, 8, 8), target) < match_loss(bad, target)
    with pytest.raises(ValueError, match="prompt_match"):
        GraspDecoder(grasp_decoder_config(D, 1, 2, 64), S)(prompt, embeddings, torch.tensor([0, 1, 1]),
                                                          return_match=True)  # fmt: skip
