"""The ``paper`` preset from tiny random LLaVA-HF and SAM checkpoints written to a temp dir (both SAM layouts).

The fixtures save real ``LlavaForConditionalGeneration`` and ``SamModel`` instances, so these tests check the
loading code against transformers' own classes: same logits as LLaVA, same image embeddings as SAM.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    SamConfig,
    SamMaskDecoderConfig,
    SamModel,
    SamPromptEncoderConfig,
    SamVisionConfig,
)

from prg.model.checkpoint import from_pretrained, save_pretrained
from prg.model.prg_model import PRGModel, build_prg_model, paper_config
from prg.model.processor import fit_images
from prg.model.tokenizer import IMAGE_TOKEN, tiny_tokenizer
from prg.model.weights.sam import infer_vision_config, load_sam
from tests.model.test_prg_model import pose_plan

TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
CLIP = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=32, patch_size=8
)
SAM_VISION = dict(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=2,
    image_size=64,
    patch_size=8,
    output_channels=32,
    mlp_dim=64,
    global_attn_indexes=[1],
    window_size=4,
)
DECODER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Spread every tensor (zero-initialised biases and norms too), so a wrongly mapped one changes outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LLaVA-HF folder: tiny Llama + CLIP, a tokenizer that knows <image> (as LLaVA's does), no [POSE]."""
    folder = tmp_path_factory.mktemp("llava")
    tokenizer = tiny_tokenizer()
    tokenizer.add_special_tokens({"extra_special_tokens": [IMAGE_TOKEN]})
    text = LlamaConfig(
        **TEXT,
        vocab_size=len(tokenizer) + 8,  # padded like llava-hf's 32064
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**CLIP),
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=16,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    _randomise(model, 1)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _sam_model() -> SamModel:
    config = SamConfig(
        vision_config=SamVisionConfig(**SAM_VISION, num_pos_feats=16, initializer_range=0.02),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=8),
        mask_decoder_config=SamMaskDecoderConfig(**DECODER),
    )
    torch.manual_seed(2)
    model = SamModel(config)
    _randomise(model, 3)
    return model.eval()


def to_original_layout(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SamModel names -> segment-anything's ``sam_vit_h_4b8939.pth`` names, written from that repository's module
    tree (ImageEncoderViT.blocks[i].norm1, neck = Sequential(conv, LayerNorm2d, conv, LayerNorm2d), ...)."""
    rules = [
        ("vision_encoder.patch_embed.projection.", "image_encoder.patch_embed.proj."),
        ("vision_encoder.pos_embed", "image_encoder.pos_embed"),
        ("vision_encoder.neck.conv1.", "image_encoder.neck.0."),
        ("vision_encoder.neck.layer_norm1.", "image_encoder.neck.1."),
        ("vision_encoder.neck.conv2.", "image_encoder.neck.2."),
        ("vision_encoder.neck.layer_norm2.", "image_encoder.neck.3."),
        ("vision_encoder.layers.", "image_encoder.blocks."),
        ("shared_image_embedding.positional_embedding", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"),
        ("mask_decoder.upscale_conv1.", "mask_decoder.output_upscaling.0."),
        ("mask_decoder.upscale_layer_norm.", "mask_decoder.output_upscaling.1."),
        ("mask_decoder.upscale_conv2.", "mask_decoder.output_upscaling.3."),
        ("mask_decoder.transformer.layer_norm_final_attn.", "mask_decoder.transformer.norm_final_attn."),
    ]
    out: dict[str, torch.Tensor] = {}
    for key, value in hf.items():
        new = key
        for a, b in rules:
            if new.startswith(a):
                new = b + new[len(a) :]
                break
        if new.startswith("image_encoder.blocks."):
            new = re.sub(r"\.layer_norm(\d)\.", r".norm\1.", new)
        if new.startswith("mask_decoder.transformer.layers."):
            new = re.sub(r"\.layer_norm(\d)\.", r".norm\1.", new)
        # SAM's MLP(num_layers=3).layers = [Linear, Linear, Linear]; transformers splits them proj_in/layers/proj_out
        new = re.sub(r"(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.proj_in\.", r"\1.layers.0.", new)
        new = re.sub(r"(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.layers\.0\.", r"\1.layers.1.", new)
        new = re.sub(r"(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.proj_out\.", r"\1.layers.2.", new)
        out[new] = value
    return out


@pytest.fixture(scope="module")
def sam_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[SamModel, Path, Path]:
    """The same random SAM as an HF folder and as an original-layout ``.pth``."""
    root = tmp_path_factory.mktemp("sam")
    sam = _sam_model()
    sam.save_pretrained(str(root / "hf"))
    original = to_original_layout({k: v.clone() for k, v in sam.state_dict().items()})
    torch.save(original, root / "sam_vit_tiny.pth")
    return sam, root / "hf", root / "sam_vit_tiny.pth"


def paper_model(llava: Path, sam: Path) -> PRGModel:
    config = paper_config(llava=str(llava), sam=str(sam), dtype="float32")
    config.decoder = dict(DECODER)
    return build_prg_model(config)


def test_original_layout_is_read_with_inferred_config(sam_files: tuple[SamModel, Path, Path]) -> None:
    sam, _, pth = sam_files
    weights = load_sam(pth)
    expected = {k: v for k, v in SAM_VISION.items()}
    assert {k: weights.vision_config[k] for k in expected} == expected
    own = {k.removeprefix("vision_encoder."): v for k, v in sam.state_dict().items() if k.startswith("vision_encoder")}
    assert set(weights.encoder) == set(own)
    assert all(torch.equal(weights.encoder[k], own[k]) for k in own)
    assert infer_vision_config(own)["global_attn_indexes"] == [1]


@pytest.mark.parametrize("layout", ["hf", "original"])
def test_paper_preset_matches_llava_and_sam(
    layout: str, llava_dir: Path, sam_files: tuple[SamModel, Path, Path]
) -> None:
    sam, hf_dir, pth = sam_files
    model = paper_model(llava_dir, hf_dir if layout == "hf" else pth)
    llava = LlavaForConditionalGeneration.from_pretrained(str(llava_dir)).eval()
    vlm = model.vlm
    assert vlm.num_image_tokens == 16 and vlm.image_size == 32  # from CLIP's config: (32 / 8)^2
    # The composed VLM gives LLaVA's own logits for a prompt with an image.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pixels, _ = fit_images([image], vlm.geometry)
    ids = torch.tensor([[1, 5, *([vlm.image_token_id] * 16), 9, 12, 30]])
    with torch.no_grad():
        ours = vlm(ids, pixels).logits
        theirs = llava(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # F_enc is SAM's encoder: same image embeddings as SamModel.
    sam_pixels, _ = fit_images([image], model.image_encoder.geometry)
    with torch.no_grad():
        torch.testing.assert_close(
            model.image_encoder(sam_pixels), sam.get_image_embeddings(sam_pixels), rtol=1e-5, atol=1e-5
        )
    # F_dec starts from SAM's mask decoder; the fifth map token is a copy of SAM's last one.
    dec, sam_dec = model.grasp_head.decoder, sam.mask_decoder
    assert torch.equal(
        dec.mask_decoder.transformer.layers[1].mlp.lin1.weight, sam_dec.transformer.layers[1].mlp.lin1.weight
    )
    assert torch.equal(dec.mask_decoder.mask_tokens.weight[:4], sam_dec.mask_tokens.weight)
    assert torch.equal(dec.mask_decoder.mask_tokens.weight[4], sam_dec.mask_tokens.weight[3])
    assert torch.equal(dec.shared_image_embedding.positional_embedding, sam.shared_image_embedding.positional_embedding)
    assert torch.equal(dec.no_mask_embed.weight, sam.prompt_encoder.no_mask_embed.weight)
    # [POSE] was added to LLaVA's tokenizer as a real token; <image> kept LLaVA's id.
    assert model.tokenizer.convert_tokens_to_ids("[POSE]") == vlm.pose_token_id
    assert vlm.image_token_id == llava.config.image_token_id


def test_paper_preset_predicts_grasps_and_round_trips(
    llava_dir: Path, sam_files: tuple[SamModel, Path, Path], tmp_path: Path
) -> None:
    _, _, pth = sam_files
    model = paper_model(llava_dir, pth)
    instructions = ["Hand me the detector."]
    proc = pose_plan(model, instructions, None, pose_steps=(1,), eos_step=3)
    images = [np.random.default_rng(1).integers(0, 256, (50, 90, 4), dtype=np.uint8)]  # RGBA, not square
    pred = model.predict(images, instructions, logits_processor=proc)[0]
    assert pred.pose_count == 1 and len(pred.grasps[0]) >= 1
    assert all(0 <= r.x < 90 and 0 <= r.y < 50 for r in pred.grasps[0])
    # checkpoint: trainable parts only, base = the two local paths; loading elsewhere overrides them
    save_pretrained(model, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["base"]["llava"] == str(llava_dir) and meta["base"]["sam"] == str(pth)
    loaded = from_pretrained(tmp_path / "ckpt", base={"llava": llava_dir, "sam": pth})
    again = loaded.predict(images, instructions, logits_processor=proc)[0]
    assert again.answer_text == pred.answer_text
    assert [(r.x, r.y, r.angle) for r in again.grasps[0]] == [(r.x, r.y, r.angle) for r in pred.grasps[0]]


def test_missing_weights_name_the_file_to_provide(tmp_path: Path, llava_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sam_vit_h_4b8939\.pth"):
        paper_config(llava=str(llava_dir))
    with pytest.raises(FileNotFoundError, match=r"llava-1\.5-7b"):
        build_prg_model(paper_config(llava=str(tmp_path / "nowhere"), sam=str(tmp_path / "sam.pth")))
    with pytest.raises(FileNotFoundError, match=r"sam_vit_h_4b8939\.pth"):
        build_prg_model(paper_config(llava=str(llava_dir), sam=str(tmp_path / "sam.pth")))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_sam(junk)


def test_random_paper_architecture_needs_no_files() -> None:
    config = paper_config(random_weights=True, dtype="float32", text_config=TEXT, vision_config=CLIP)
    config.encoder, config.decoder = dict(SAM_VISION), dict(DECODER)
    model = build_prg_model(config)
    assert model.vlm.num_image_tokens == 16
    assert model.vlm.language_model.config.num_hidden_layers == 2
    assert not any(p.requires_grad for p in model.image_encoder.parameters())
    # CLIP stays frozen as in LLaVA/LISA fine-tuning (it used to train: ~300M parameters of the 7B run)
    assert "vlm.vision_tower" in model.config.freeze
    assert not any(p.requires_grad for p in model.vlm.vision_tower.parameters())
    assert any(p.requires_grad for p in model.vlm.projector.parameters())
    model.apply_adaptive_mixture()
    assert not any(p.requires_grad for p in model.vlm.vision_tower.parameters())
