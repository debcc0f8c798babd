"""The processor: one image geometry for both towers, the prompt as saved data, padding, labels and targets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prg.grasp.maps import GraspMaps, maps_to_rects
from prg.grasp.metrics import grasp_success
from prg.grasp.rect import GraspRect
from prg.model.checkpoint import CONFIG_NAME, from_pretrained, save_pretrained
from prg.model.grasp_head import maps_to_image
from prg.model.prg_model import build_tiny_prg_model
from prg.model.processor import (
    ProcessorConfig,
    PromptDocument,
    PromptTemplate,
    fit_images,
)
from prg.tokens import IGNORE_INDEX, Segment


@pytest.fixture(scope="module")
def model():
    return build_tiny_prg_model()


IMAGES = {
    "wide_rgb": np.random.default_rng(0).integers(0, 256, (120, 317, 3), dtype=np.uint8),
    "tall_grey": np.random.default_rng(1).integers(0, 256, (301, 97), dtype=np.uint8),
    "rgba": np.random.default_rng(2).integers(0, 256, (200, 150, 4), dtype=np.uint8),
    "pil_la": Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 90, 2), dtype=np.uint8), "LA"),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_rectangles_round_trip_within_half_a_pixel(model, name: str) -> None:
    processor = model.processor
    image = IMAGES[name]
    _, (meta,) = processor.encoder_pixels([image])
    h, w = meta.original
    rng = np.random.default_rng(7)
    for _ in range(20):
        rect = GraspRect(
            rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 60), rng.uniform(2, 30), rng.uniform(-3, 3)
        )
        back = meta.rect_to_image(meta.rect_to_model(rect))
        assert math.hypot(back.x - rect.x, back.y - rect.y) < 0.5
        assert abs(back.width - rect.width) < 0.5 and abs(back.height - rect.height) < 0.5
        assert back.angle == rect.angle


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_both_towers_share_the_geometry(model, name: str) -> None:
    processor = model.processor
    image = IMAGES[name]
    _, (enc,) = processor.encoder_pixels([image])
    _, (vis,) = fit_images([image], processor.vision)
    assert enc.original == vis.original
    # the same image lands in the same place of each square, up to each size's rounding
    ratio = enc.size / vis.size
    for a, b in zip(enc.resized, vis.resized, strict=True):
        assert abs(a - b * ratio) <= ratio
    # a pixel centre in the original maps to the same relative spot in both inputs
    for x, y in [(0.0, 0.0), (enc.original[1] - 1.0, enc.original[0] - 1.0), (10.5, 3.25)]:
        ue, ve = enc.point_to_model(x, y)
        uv, vv = vis.point_to_model(x, y)
        assert abs((ue + 0.5) / enc.size - (uv + 0.5) / vis.size) < 0.5 / vis.size + 1e-9
        assert abs((ve + 0.5) / enc.size - (vv + 0.5) / vis.size) < 0.5 / vis.size + 1e-9


def test_image_content_lands_top_left_and_padding_follows_the_tower(model) -> None:
    processor = model.processor
    white = np.full((30, 60, 3), 255, np.uint8)
    vis = processor.vision_pixels([white])[0]
    enc, (meta,) = processor.encoder_pixels([white])
    rh, rw = meta.resized
    assert torch.allclose(vis[:, : vis.shape[1] // 2 - 1], torch.tensor(1.0))  # 0.5/0.5 statistics: white = +1
    assert torch.allclose(vis[:, vis.shape[1] // 2 + 1 :], torch.tensor(-1.0))  # black padding
    assert (enc[0, :, rh:, :] == 0).all()  # SAM pads with the mean colour (0 after normalisation)
    assert (enc[0, :, :rh, :rw] > 0).all()


def test_target_maps_from_original_pixels(model) -> None:
    processor = model.processor
    image = IMAGES["wide_rgb"]
    _, (meta,) = processor.encoder_pixels([image])
    rect = GraspRect(150.0, 60.0, 60.0, 30.0, 0.4)
    targets = processor.target_maps([[rect]], [meta])
    assert targets.shape == (1, 4, model.map_size, model.map_size)
    back = maps_to_image(targets[0], meta)
    (decoded,) = maps_to_rects(GraspMaps.from_stack(back.numpy()), k=1, width_scale=model.config.width_scale)
    assert grasp_success(decoded, [rect])
    assert math.hypot(decoded.x - rect.x, decoded.y - rect.y) < 3.0
    with pytest.raises(ValueError, match="geometries"):
        processor.target_maps([[rect], [rect]], [meta])


def test_documents_are_labelled_by_their_citation(model) -> None:
    processor = model.processor
    doc = PromptDocument("EP-SAF-004 §4.2", "Verify the absence of voltage.")
    ids, seg = processor.tokenize("Which tool?", [doc, "A bare string."])
    text = model.tokenizer.decode([t for t, s in zip(ids, seg, strict=True) if s == Segment.DOCUMENT])
    assert "[EP-SAF-004 §4.2] Verify the absence of voltage." in text
    assert "[doc 2] A bare string." in text


def test_earlier_turns_come_before_the_instruction_and_are_cut_after_the_documents(model) -> None:
    from prg.model.processor import build_prompt
    from prg.tokens import POSE_TOKEN

    tok, n_img = model.tokenizer, model.processor.num_image_tokens
    pose_id = tok.convert_tokens_to_ids(POSE_TOKEN)
    history = [("Which tool first?", "The detector [POSE]."), ("And then?", "The earthing clamp [POSE].")]
    docs = [PromptDocument("EP-SAF-004 §4.2", "Verify the absence of voltage. " * 5)]
    ids, seg = build_prompt(tok, "Why that order?", docs, n_img, history=history)
    text = tok.decode(ids)
    assert text.index("Which tool first?") < text.index("And then?") < text.index("Why that order?")
    assert text.index("<image>") < text.index("Which tool first?")  # turns follow the image, as a chat does
    assert pose_id not in ids  # an earlier answer's [POSE] is text, not a pose position
    assert {s for t, s in zip(ids, seg, strict=True) if t not in (tok.convert_tokens_to_ids("<image>"),)} <= {
        int(Segment.INSTRUCTION),
        int(Segment.DOCUMENT),
    }
    whole = len(ids)
    doc_len = sum(1 for s in seg if s == Segment.DOCUMENT)
    # a budget that fits everything but the documents: the documents go, every turn stays
    ids2, seg2 = build_prompt(tok, "Why that order?", docs, n_img, history=history, max_length=whole - doc_len)
    assert Segment.DOCUMENT not in seg2 and "Which tool first?" in tok.decode(ids2)
    # a few tokens less: the oldest turn goes as well, the newest stays
    ids3, _ = build_prompt(tok, "Why that order?", docs, n_img, history=history, max_length=whole - doc_len - 3)
    assert "Which tool first?" not in tok.decode(ids3) and "And then?" in tok.decode(ids3)
    assert len(ids3) <= whole - doc_len - 3
    with pytest.raises(ValueError, match="does not fit"):
        build_prompt(tok, "Why that order?", docs, n_img, history=history, max_length=n_img)


def test_padding_sides_and_labels(model) -> None:
    processor = model.processor
    built = [processor.tokenize("Which tool?", ["Rule 1."], answer="The detector [POSE]."), processor.tokenize("Hi")]
    left = processor.pad(built, side="left")
    right = processor.pad(built, side="right")
    n0, n1 = len(built[0][0]), len(built[1][0])
    assert left["input_ids"].shape == right["input_ids"].shape == (2, max(n0, n1))
    assert left["attention_mask"][1, : n0 - n1].sum() == 0 and left["attention_mask"][1, n0 - n1 :].all()
    assert right["attention_mask"][1, :n1].all() and right["attention_mask"][1, n1:].sum() == 0
    assert torch.equal(left["input_ids"][1, n0 - n1 :], right["input_ids"][1, :n1])
    answer = right["labels"][0] != IGNORE_INDEX
    assert torch.equal(answer, right["segment_ids"][0].eq(int(Segment.ANSWER)) & right["attention_mask"][0].bool())
    assert right["labels"][0, answer][-1] == model.tokenizer.eos_token_id
    assert (right["labels"][1] == IGNORE_INDEX).all()  # no answer: nothing to learn
    with pytest.raises(ValueError, match="side"):
        processor.pad(built, side="middle")


def test_the_prompt_a_checkpoint_was_trained_with_is_the_one_it_is_served_with(tmp_path: Path) -> None:
    model = build_tiny_prg_model()
    model.config.processor = ProcessorConfig(
        template=PromptTemplate(system="Cite the rule.", document="<<{label}>> {text}\n"), resample="bicubic"
    ).to_dict()
    docs = [[PromptDocument("CH-LAB-002 §3", "Carry acids in a bottle carrier.")]]
    trained = model.encode_prompts(["Hand me what I need."], docs)
    save_pretrained(model, tmp_path / "ckpt")
    served = from_pretrained(tmp_path / "ckpt")
    assert served.config.processor == model.config.processor
    for a, b in zip(trained, served.encode_prompts(["Hand me what I need."], docs), strict=True):
        assert torch.equal(a, b)
    image = IMAGES["rgba"]
    assert torch.equal(model.processor.vision_pixels([image]), served.processor.vision_pixels([image]))


def test_old_checkpoints_load_with_the_old_defaults(tmp_path: Path) -> None:
    model = build_tiny_prg_model()
    save_pretrained(model, tmp_path / "ckpt")
    config_file = tmp_path / "ckpt" / CONFIG_NAME
    meta = json.loads(config_file.read_text())
    del meta["model"]["processor"]  # what checkpoints written before the processor look like
    config_file.write_text(json.dumps(meta))
    old = from_pretrained(tmp_path / "ckpt")
    assert old.config.processor == ProcessorConfig.legacy().to_dict()
    ids, seg = old.processor.tokenize("Which tool?", ["Rule 1."])
    text = old.tokenizer.decode([t for t, s in zip(ids, seg, strict=True) if s == Segment.DOCUMENT])
    assert text == "[doc 1] Rule 1.\n"
    assert old.processor.config.vision_resample == "bicubic"
    # the legacy vision input is the bicubic resize the first checkpoints were fed
    image = IMAGES["wide_rgb"]
    bicubic, _ = fit_images([image], old.processor.vision, "bicubic")
    assert torch.equal(old.processor.vision_pixels([image]), bicubic)


def test_bad_processor_settings_fail_early() -> None:
    with pytest.raises(ValueError, match="resample"):
        ProcessorConfig.from_dict({"resample": "nearest"})
    with pytest.raises(ValueError, match="unknown processor settings"):
        ProcessorConfig.from_dict({"templat": {}})
    with pytest.raises(ValueError, match="uint8"):
        fit_images([np.zeros((4, 4, 3), np.float32)], build_tiny_prg_model().vlm.geometry)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_an_image_at_the_tower_size_is_not_resampled(mode: str) -> None:
    """The shortcut for S x S inputs gives what the resize would (a same-size resize samples pixel centres)."""
    import torch.nn.functional as F

    from prg.model.processor import TowerGeometry

    rgb = np.random.default_rng(5).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    got, (meta,) = fit_images([rgb], TowerGeometry(48), mode)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    ref = F.interpolate(x, size=(48, 48), mode=mode, align_corners=False, antialias=True).clamp(0, 1)
    torch.testing.assert_close(got, (ref - 0.5) / 0.5, rtol=0, atol=1e-6)
    assert meta.resized == (48, 48)
