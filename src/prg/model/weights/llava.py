"""The ``paper`` preset's weights: LLaVA in the Hugging Face layout, and its architecture constants.

LLaVA-HF folders (``LlavaForConditionalGeneration``: ``config.json``, safetensors, tokenizer) are loaded with
transformers' own class, from local files only, and then taken apart without copying a tensor: the CLIP vision
model becomes :class:`LlavaVisionTower`, the projector's two linears move into the PRG projector (same
Linear-GELU-Linear shape), and the text model plus ``lm_head`` become a ``LlamaForCausalLM``. The PRG model then
runs them through its own code path (scattered image features, KV-cached generation, ``[POSE]`` capture) like any
other preset.

For speed runs the same architecture is built with random weights directly on the target device and dtype
(:func:`random_llava_parts`), so nothing of 7B parameters is ever initialised on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoTokenizer,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from prg.model.towers import LlavaVisionTower, default_dtype

__all__ = [
    "CLIP_VIT_L_336",
    "LLAVA_7B_TEXT",
    "LlavaParts",
    "load_llava",
    "random_llava_parts",
]

LLAVA_7B_TEXT: dict[str, Any] = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=32064,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
)
"""``LlamaConfig`` of LLaVA-1.5-7B's language model (Vicuna-7B v1.5; vocabulary padded to 32064 as in llava-hf)."""

CLIP_VIT_L_336: dict[str, Any] = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768,
)
"""``CLIPVisionConfig`` of LLaVA-1.5's vision tower (CLIP ViT-L/14 at 336 px: 24 x 24 = 576 image tokens)."""


class LlavaParts:
    """A LLaVA model taken apart: ``vision_tower``, ``language_model`` (causal LM), projector weights, tokenizer."""

    def __init__(
        self,
        vision_tower: LlavaVisionTower,
        language_model: PreTrainedModel,
        projector: dict[str, torch.Tensor] | None,
        tokenizer: PreTrainedTokenizerBase | None,
    ) -> None:
        self.vision_tower = vision_tower
        self.language_model = language_model
        self.projector = projector  # {"0.weight", "0.bias", "2.weight", "2.bias"} in nn.Sequential names, or None
        self.tokenizer = tokenizer


def _causal_lm(text_config: LlamaConfig, model: nn.Module, lm_head: nn.Module) -> PreTrainedModel:
    """A ``LlamaForCausalLM`` around an existing decoder and head (built on the meta device: no allocation)."""
    with torch.device("meta"):
        lm = LlamaForCausalLM(text_config)
    lm.model = model
    lm.lm_head = lm_head
    return lm


def load_llava(path: str | Path, dtype: torch.dtype = torch.float32) -> LlavaParts:
    """Load a local LLaVA-HF folder (``LlavaForConditionalGeneration`` layout) and take it apart.

    ``FileNotFoundError`` names what to provide when the folder or its files are missing; never downloads.
    """
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"LLaVA weights not found at {folder}: provide a local LLaVA-1.5-7B folder in the Hugging Face layout "
            "(config.json, model*.safetensors, tokenizer files; e.g. a copy of llava-hf/llava-1.5-7b-hf). "
            "Nothing is downloaded."
        )
    llava = LlavaForConditionalGeneration.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    config = llava.config
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    tower = LlavaVisionTower(
        llava.model.vision_tower, config.vision_feature_layer, config.vision_feature_select_strategy
    )
    projector = llava.model.multi_modal_projector
    if config.projector_hidden_act != "gelu" or projector.linear_1.bias is None:
        raise ValueError("PRG's projector is Linear(bias) -> GELU -> Linear(bias), as in LLaVA-1.5")
    weights = {
        "0.weight": projector.linear_1.weight,
        "0.bias": projector.linear_1.bias,
        "2.weight": projector.linear_2.weight,
        "2.bias": projector.linear_2.bias,
    }
    if not isinstance(config.text_config, LlamaConfig):
        raise ValueError(f"the paper preset expects a Llama-family LLaVA, got text model {config.text_config}")
    lm = _causal_lm(config.text_config, llava.model.language_model, llava.lm_head)
    return LlavaParts(tower, lm, {k: v.detach() for k, v in weights.items()}, tokenizer)


def random_llava_parts(
    dtype: torch.dtype,
    device: torch.device | str | None = None,
    text_config: dict[str, Any] | None = None,
    vision_config: dict[str, Any] | None = None,
    vocab_size: int | None = None,
) -> LlavaParts:
    """LLaVA-1.5-7B's architecture (or the given configs) with random weights, built on ``device`` in ``dtype``."""
    text = {**LLAVA_7B_TEXT, **(text_config or {})}
    if vocab_size is not None:
        text["vocab_size"] = max(int(text["vocab_size"]), vocab_size)
    vision = {**CLIP_VIT_L_336, **(vision_config or {})}
    with torch.device(device or "cpu"), default_dtype(dtype):
        lm = LlamaForCausalLM(LlamaConfig(**text))
        tower = LlavaVisionTower(CLIPVisionModel(CLIPVisionConfig(**vision)))
    return LlavaParts(tower, lm, None, None)
