"""The joined PRG model: VLM (+ optional AdaptiveMixture) -> [POSE] hidden states -> γ + F_dec, with frozen F_enc.

```
images ──processor.vision_pixels──► pixel_values [B x 3 x s x s] ──► VLM ──► [POSE] hidden [N x H]
       └─processor.encoder_pixels─► sam_pixel_values [B x 3 x S x S] ──► F_enc (frozen) ──► [B x D x S/p x S/p]
[POSE] hidden + image embeddings[image index] ──► GraspHead (γ + F_dec) ──► maps [N x 4 x S x S]
maps ──maps_to_image──► [4 x H_i x W_i] ──decode_maps (= maps_to_rects)──► GraspRects in original pixels
```

``PRGModel.forward`` owns the training loss; ``PRGModel.predict`` owns generation and grasp decoding. The network
parts stay in vlm.py / grasp_head.py; this file only wires them (and never does file I/O: see checkpoint.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase, SamVisionConfig

from prg.grasp.maps import DEFAULT_WIDTH_SCALE
from prg.grasp.rect import GraspRect
from prg.model.adaptive_mixture import (
    AdaptiveMixtureConfig,
    apply_adaptive_mixture,
    balance_loss,
    merge_adaptive_mixture,
    set_segments,
    wrapped_modules,
)
from prg.model.grasp_head import GraspHead, ImageEncoder, PromptTable, grasp_decoder_config, maps_to_image
from prg.model.losses import batch_target_maps, grasp_map_loss, match_loss
from prg.model.map_decode import decode_maps
from prg.model.presets import build_preset
from prg.model.processor import PRGProcessor, ProcessorConfig, PromptDocument
from prg.model.token_rows import fold_token_rows, train_token_rows
from prg.model.vlm import LogitsProcessor, PRGVisionLanguageModel

__all__ = [
    "PRGModel",
    "PRGModelConfig",
    "Prediction",
    "build_prg_model",
    "build_tiny_prg_model",
    "paper_config",
    "preset_config",
    "small_config",
    "tiny_config",
]


@dataclass
class PRGModelConfig:
    """Everything needed to rebuild a PRG model's architecture (and, with ``seed``, its random base weights).

    ``encoder`` holds ``SamVisionConfig`` keyword arguments, ``decoder`` those of :func:`grasp_decoder_config`;
    plain dicts so the config is JSON as it stands. ``adaptive_mixture`` is set by
    :meth:`PRGModel.apply_adaptive_mixture` (an ``AdaptiveMixtureConfig`` as a dict), None without adapters.
    """

    preset: str = "tiny"
    seed: int = 0
    encoder: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    projection_hidden: int | None = None
    width_scale: float = DEFAULT_WIDTH_SCALE  # must equal the one target_maps used for training targets
    max_new_tokens: int = 32
    max_prompt_length: int | None = None
    grasp_loss_weight: float = 1.0
    adaptive_mixture: dict[str, Any] | None = None
    lora: dict[str, Any] | None = None  # peft.LoraConfig keyword arguments: the PEFT LoRA baseline
    base: dict[str, Any] = field(default_factory=dict)  # extra preset arguments (local paths, random_weights)
    sam: str | None = None  # SAM checkpoint (original .pth or HF folder): F_enc's weights and F_dec's init
    dtype: str = "float32"  # torch dtype name of the whole model ("bfloat16" on GPUs)
    decode: str = "dynamic"  # KV cache of generation: dynamic, static or compiled (vlm.generate)
    compile_encoder: bool = False  # torch.compile F_enc (on a GPU: minutes of compiling, then a faster encoder)
    processor: dict[str, Any] = field(default_factory=lambda: ProcessorConfig().to_dict())  # prompt + geometry
    token_rows: bool = True  # with adapters: the [POSE]/<image> embedding and output rows train (token_rows.py)
    freeze: list[str] = field(default_factory=list)  # module prefixes frozen at build, e.g. "vlm.vision_tower"
    train_encoder: bool = False  # F_enc trains (the small recipe's stage 1, where no pretrained F_enc exists)
    trained: list[str] = field(default_factory=list)  # frozen now, trained in an earlier stage: checkpoints keep them
    dice_weight: float = 0.0  # soft Dice on the quality map, added to its BCE (losses.grasp_map_loss)
    angle_region_weight: float = 0.0  # cos2/sin2 loss also averaged over the grasp region (losses.grasp_map_loss)
    prompt_vocab: list[str] = field(default_factory=list)  # categories of the stage-1 prompt table (PromptTable)
    prompt_distill_weight: float = 0.0  # pull γ([POSE]) towards the target category's prompt row (stage 2)
    prompt_gate: bool = False  # F_dec's dense prompt path: image features gated by the prompt (GraspDecoder)
    prompt_match: bool = False  # F_dec's match map: prompt . projected image features per cell (GraspDecoder)
    match_weight: float = 0.0  # BCE + Dice of the match map against the target's grasp cells (with prompt_match)

    @property
    def torch_dtype(self) -> torch.dtype:
        dtype = getattr(torch, self.dtype, None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must name a floating torch dtype, got {self.dtype!r}")
        return dtype

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PRGModelConfig:
        """From :meth:`to_dict`'s output. A config saved before the processor existed gets the legacy processor
        (``[doc i]`` labels, bicubic VLM resize): the settings its weights were used with."""
        d = dict(data)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        if "processor" not in d:
            d["processor"] = ProcessorConfig.legacy().to_dict()
        d.setdefault("token_rows", False)  # configs saved before token_rows existed had no such rows
        ProcessorConfig.from_dict(d["processor"])  # fail early on a bad processor entry
        return cls(**copy.deepcopy(d))

    def copy(self) -> PRGModelConfig:
        return PRGModelConfig.from_dict(self.to_dict())


ConfigBuilder = Callable[..., PRGModelConfig]
MODEL_PRESETS: dict[str, ConfigBuilder] = {}
"""Whole-model presets by name (``tiny``, ``small``, ``paper``): each gives the :class:`PRGModelConfig` that
:func:`build_prg_model` turns into a model. The VLM part of each is built by the same-named builder in
:mod:`prg.model.presets`."""


def register_config(name: str) -> Callable[[ConfigBuilder], ConfigBuilder]:
    def wrap(fn: ConfigBuilder) -> ConfigBuilder:
        if name in MODEL_PRESETS:
            raise ValueError(f"model preset {name!r} registered twice")
        MODEL_PRESETS[name] = fn
        return fn

    return wrap


def preset_config(name: str, **kwargs: Any) -> PRGModelConfig:
    """The config of the named whole-model preset (``kwargs`` go to its builder, e.g. ``seed``)."""
    if name not in MODEL_PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[name](**kwargs)


@register_config("tiny")
def tiny_config(seed: int = 0) -> PRGModelConfig:
    """The ``tiny`` preset with a 64 px, 2-layer SAM-architecture encoder and a 1-layer, 64-wide decoder."""
    encoder = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=64,
        patch_size=8,
        output_channels=64,
        mlp_dim=64,
        global_attn_indexes=[1],
        window_size=4,
        initializer_range=0.02,  # SAM's default 1e-10 makes random features almost constant
    )
    decoder = dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, mlp_dim=64)
    return PRGModelConfig(preset="tiny", seed=seed, encoder=encoder, decoder=decoder)


@register_config("small")
def small_config(seed: int = 0) -> PRGModelConfig:
    """The ``small`` preset (SmolLM2-135M + 49-token vision tower) with a small SAM-architecture F_enc for CPUs:
    448 px input (PRG-Synth's scene size), 16 px patches, 4 layers of width 256 (2 windowed, 2 global), 128-wide
    image embeddings, and a 2-layer decoder of that width. Random F_enc/F_dec until trained on PRG-Synth."""
    encoder = dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        image_size=448,
        patch_size=16,
        output_channels=128,
        mlp_dim=1024,
        global_attn_indexes=[1, 3],
        window_size=7,
        initializer_range=0.02,
    )
    decoder = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, mlp_dim=512)
    return PRGModelConfig(preset="small", seed=seed, encoder=encoder, decoder=decoder, max_new_tokens=64)


SAM_DECODER = dict(hidden_size=256, num_hidden_layers=2, num_attention_heads=8, mlp_dim=2048)
"""SAM's mask-decoder sizes (every SAM variant): F_dec of the ``paper`` preset."""


@register_config("paper")
def paper_config(
    llava: str | None = None,
    sam: str | None = None,
    random_weights: bool = False,
    dtype: str = "bfloat16",
    seed: int = 0,
    **base: Any,
) -> PRGModelConfig:
    """The seed's model: LLaVA-1.5-7B (local HF folder ``llava``) + SAM ViT-H (``sam``: ``sam_vit_h_4b8939.pth``
    or an HF SAM folder) + γ + SAM-initialised grasp decoder. ``random_weights=True``: same architecture, random
    weights, no files (GPU speed runs). ``base`` passes on to the preset (e.g. ``text_config`` in tests)."""
    from prg.model.weights.sam import SAM_VIT_H

    if not random_weights:
        missing = [name for name, value in (("llava", llava), ("sam", sam)) if value is None]
        if missing:
            raise FileNotFoundError(
                f"the paper preset needs local weights for {missing}: llava=/path/to/llava-1.5-7b-hf (HF layout) "
                "and sam=/path/to/sam_vit_h_4b8939.pth (or an HF SAM folder); nothing is downloaded"
            )
    preset_args: dict[str, Any] = {"random_weights": random_weights, **base}
    if llava is not None:
        preset_args["llava"] = str(llava)
    return PRGModelConfig(
        preset="paper",
        seed=seed,
        encoder=dict(SAM_VIT_H),
        decoder=dict(SAM_DECODER),
        base=preset_args,
        sam=None if sam is None else str(sam),
        dtype=dtype,
        max_new_tokens=64,
        freeze=["vlm.vision_tower"],  # CLIP stays frozen, as in LLaVA's and LISA's fine-tuning
    )


@dataclass
class Prediction:
    """One sample's answer: the generated text (special tokens such as ``[POSE]`` kept, eos and pads cut) and
    one list of rectangles (original-image pixels, best first) per generated ``[POSE]``."""

    answer_text: str
    grasps: list[list[GraspRect]]
    pose_count: int


class PRGModel(nn.Module):
    """VLM + frozen F_enc + grasp head; ``forward`` gives the training losses, ``predict`` answers and grasps."""

    def __init__(
        self,
        vlm: PRGVisionLanguageModel,
        image_encoder: ImageEncoder,
        grasp_head: GraspHead,
        tokenizer: PreTrainedTokenizerBase,
        config: PRGModelConfig,
        prompt_table: PromptTable | None = None,
    ) -> None:
        super().__init__()
        if grasp_head.decoder.image_size != image_encoder.image_size:
            raise ValueError("the grasp decoder's map size must equal the image encoder's input size")
        self.vlm = vlm
        self.image_encoder = image_encoder
        self.grasp_head = grasp_head
        self.prompt_table = prompt_table  # stage-1 prompts (categories, points); unused at inference
        self.tokenizer = tokenizer  # a reference, not a module: saved by checkpoint.save_pretrained
        self.config = config
        self._compiled_encoder: Any = None

    @property
    def processor(self) -> PRGProcessor:
        """Images, prompts, batches and grasp targets exactly as this model was (or will be) trained with."""
        return PRGProcessor(
            self.tokenizer,
            ProcessorConfig.from_dict(self.config.processor),
            self.vlm.geometry,
            self.image_encoder.geometry,
            self.vlm.num_image_tokens,
            max_prompt_length=self.config.max_prompt_length,
            width_scale=self.config.width_scale,
        )

    @property
    def map_size(self) -> int:
        """``S``: side of the encoder input and of the grasp maps (targets are ``[N x 4 x S x S]``)."""
        return self.image_encoder.image_size

    @property
    def has_adapters(self) -> bool:
        return bool(wrapped_modules(self.vlm.language_model))

    def apply_adaptive_mixture(self, cfg: AdaptiveMixtureConfig | None = None) -> PRGModel:
        """Wrap the language model's target linears (freezing the rest of the LM) and record ``cfg`` in the config.

        The vision tower, projector and grasp head stay trainable; F_enc stays frozen.
        """
        cfg = cfg or AdaptiveMixtureConfig()
        apply_adaptive_mixture(self.vlm.language_model, cfg)
        self.config.adaptive_mixture = asdict(cfg)
        self._train_token_rows()
        return self

    def _train_token_rows(self) -> None:
        if self.config.token_rows:
            train_token_rows(self.vlm.language_model, [self.vlm.pose_token_id, self.vlm.image_token_id])

    def freeze(self, prefixes: Sequence[str], trained: bool = False) -> PRGModel:
        """Freeze every parameter under these module paths (e.g. ``vlm.vision_tower``) and record it in the config,
        so a rebuilt model (and its checkpoint's key set) has the same trainable parameters. ``trained``: the
        weights differ from the base (an earlier stage trained them), so checkpoints keep storing them."""
        modules = dict(self.named_modules())
        for prefix in prefixes:
            if prefix not in modules:
                raise ValueError(f"no module {prefix!r} to freeze; e.g. vlm.vision_tower, vlm.projector, grasp_head")
            if prefix == "image_encoder":
                self.freeze_encoder()
                continue
            modules[prefix].requires_grad_(False)
            if prefix not in self.config.freeze:
                self.config.freeze.append(prefix)
            if trained and prefix not in self.config.trained:
                self.config.trained.append(prefix)
        return self

    def unfreeze(self, prefixes: Sequence[str]) -> PRGModel:
        """Make module paths that an earlier stage froze trainable again (and drop them from ``config.freeze``)."""
        modules = dict(self.named_modules())
        for prefix in prefixes:
            if prefix not in modules or prefix == "image_encoder":
                raise ValueError(f"no module {prefix!r} to unfreeze; e.g. vlm.vision_tower, vlm.projector")
            modules[prefix].requires_grad_(True)
            self.config.freeze = [f for f in self.config.freeze if f != prefix]
        return self

    def unfreeze_encoder(self) -> PRGModel:
        """Let F_enc train again (a later stage-1 run that starts from a checkpoint whose F_enc was frozen)."""
        self.config.train_encoder = True
        self.image_encoder.frozen = False
        self.image_encoder.encoder.requires_grad_(True)
        self.image_encoder.train(self.training)
        return self

    def freeze_encoder(self) -> PRGModel:
        """Freeze F_enc after a stage that trained it (its weights stay in every checkpoint)."""
        if self.config.train_encoder:
            self.config.train_encoder = False
            if "image_encoder" not in self.config.trained:
                self.config.trained.append("image_encoder")
        self.image_encoder.frozen = True
        self.image_encoder.encoder.requires_grad_(False)
        self.image_encoder.train(self.training)
        return self

    def apply_lora(self, lora: Mapping[str, Any]) -> PRGModel:
        """The PEFT LoRA baseline on the language model (``peft.LoraConfig`` keyword arguments; the LM is frozen)."""
        from peft import LoraConfig, get_peft_model

        if self.has_adapters or self.config.lora is not None:
            raise ValueError("the model already has adapters")
        cfg = dict(lora)
        if "target_modules" in cfg:
            cfg["target_modules"] = list(cfg["target_modules"])
        # a PeftModel forwards the PreTrainedModel API the VLM uses (embeddings, forward, config)
        self.vlm.language_model = cast(PreTrainedModel, get_peft_model(self.vlm.language_model, LoraConfig(**cfg)))
        self.config.lora = cfg
        self._train_token_rows()
        return self

    def merge_adapters(self) -> PRGModel:
        """Fold the adapters into the language model's weights (in place); the model then has no adapter code.

        LoRA merges exactly (PEFT ``merge_and_unload``); AdaptiveMixture folds the experts with their calibrated
        (or uniform) mean gates, an approximation measured in docs/adaptive_mixture.md.
        """
        if self.has_adapters:
            merge_adaptive_mixture(self.vlm.language_model)
            self.config.adaptive_mixture = None
        elif self.config.lora is not None:
            peft_model = cast(Any, self.vlm.language_model)
            self.vlm.language_model = cast(PreTrainedModel, peft_model.merge_and_unload())
            self.config.lora = None
        else:
            raise ValueError("the model has no adapters to merge")
        fold_token_rows(self.vlm.language_model)  # the trained [POSE]/<image> rows go into the tables (exact)
        self.config.token_rows = False
        return self

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Teacher-forced training step.

        ``batch``: ``input_ids``, ``attention_mask``, ``labels`` ``[B x T]``; ``pixel_values [B x 3 x s x s]``
        (VLM); ``sam_pixel_values [B x 3 x S x S]`` (F_enc); ``target_maps [N x 4 x S x S]`` (or ``target_rects`` /
        ``target_valid``, rasterised here), one per ``[POSE]`` input token in (batch, position) order; optional
        ``segment_ids [B x T]`` (AdaptiveMixture's router).
        Returns ``loss = lm + w_grasp * grasp + w_balance * balance`` (balance only with adapters), the three
        parts, and ``components`` (the unweighted per-map grasp losses, detached).
        """
        if "prompt_kind" in batch:
            return self._prompt_forward(batch)
        lm = self.vlm.language_model
        adapters = self.has_adapters
        if adapters:
            set_segments(lm, batch.get("segment_ids"))
        out = self.vlm(batch["input_ids"], batch["pixel_values"], batch.get("attention_mask"), batch.get("labels"))
        targets = batch_target_maps(batch, self.map_size, self.config.width_scale)
        n = out.pose_hidden.shape[0]
        if targets.shape[0] != n:
            raise ValueError(f"{targets.shape[0]} target maps for {n} [POSE] tokens in the batch")
        zero = out.logits.new_zeros(())
        lm_loss = out.loss if out.loss is not None else zero
        components: dict[str, torch.Tensor] = {}
        grasp_loss = zero
        if n:
            # F_enc is frozen: its features are constants (ImageEncoder already disables its graph).
            embeddings = self.image_encoder(batch["sam_pixel_values"])
            prompts = self.grasp_head.projection(out.pose_hidden)
            grasp_loss, parts = self._grasp_loss(prompts, embeddings, out.pose_index[0], targets)
            distill = self._distill_loss(prompts, batch.get("pose_categories"))
            if distill is not None:
                parts["distill"] = distill
                grasp_loss = grasp_loss + self.config.prompt_distill_weight * distill
            components = {k: v.detach() for k, v in parts.items()}
        bal = zero
        w_bal = 0.0
        if adapters:
            bal = balance_loss(lm)
            w_bal = wrapped_modules(lm)[0][1].cfg.balance_loss_weight
        loss = lm_loss + self.config.grasp_loss_weight * grasp_loss + w_bal * bal
        terms = {"lm_loss": lm_loss, "grasp_loss": grasp_loss, "balance_loss": bal}
        return {"loss": loss, **terms, "components": components}

    def _grasp_loss(
        self, prompts: torch.Tensor, embeddings: torch.Tensor, image_index: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """F_dec's map loss for these prompts, plus ``match_weight`` x the match-map loss where F_dec has one."""
        decoder = self.grasp_head.decoder
        dice, angle = self.config.dice_weight, self.config.angle_region_weight
        if decoder.match_proj is None or not self.config.match_weight:
            logits = decoder(prompts, embeddings, image_index, return_logits=True)
            return grasp_map_loss(logits, targets, logits=True, dice_weight=dice, angle_region_weight=angle)
        logits, match = decoder(prompts, embeddings, image_index, return_logits=True, return_match=True)
        loss, parts = grasp_map_loss(logits, targets, logits=True, dice_weight=dice, angle_region_weight=angle)
        parts["match"] = match_loss(match, targets)
        return loss + self.config.match_weight * parts["match"], parts

    def _distill_loss(self, prompts: torch.Tensor, categories: Any) -> torch.Tensor | None:
        """Mean squared distance of γ's outputs to their target's category row (rows fixed), relative to the
        rows' mean square; None without a prompt table, a weight, or a known category in the batch."""
        table = self.prompt_table
        if table is None or not self.config.prompt_distill_weight or categories is None:
            return None
        idx = [table.index.get(c, -1) if c else -1 for c in categories]
        keep = [i for i, c in enumerate(idx) if c >= 0]
        if len(idx) != prompts.shape[0] or not keep:
            return None
        rows = table.categories.weight.detach()
        target = rows[torch.tensor([idx[i] for i in keep], device=rows.device)]
        pred = prompts[torch.tensor(keep, device=prompts.device)].to(target.dtype)
        return ((pred - target) ** 2).mean() / (rows**2).mean().clamp(min=1e-6)

    def _prompt_forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Stage-1 pre-training step of F_enc + F_dec with :class:`PromptTable` prompts (no language model).

        ``batch``: ``sam_pixel_values [B x 3 x S x S]``, ``prompt_kind``, ``prompt_category``,
        ``prompt_image_index`` ``[N]``, ``prompt_points [N x 2]`` (model pixels), targets as in :meth:`forward`.
        """
        if self.prompt_table is None:
            raise ValueError("a prompt batch needs a model with a prompt table (config.prompt_vocab)")
        decoder = self.grasp_head.decoder
        embeddings = self.image_encoder(batch["sam_pixel_values"])
        prompts = self.prompt_table(batch["prompt_kind"], batch["prompt_category"], batch["prompt_points"], decoder)
        targets = batch_target_maps(batch, self.map_size, self.config.width_scale)
        grasp_loss, parts = self._grasp_loss(prompts, embeddings, batch["prompt_image_index"], targets)
        zero = grasp_loss.new_zeros(())
        return {"loss": self.config.grasp_loss_weight * grasp_loss, "lm_loss": zero, "grasp_loss": grasp_loss,
                "balance_loss": zero, "components": {k: v.detach() for k, v in parts.items()}}  # fmt: skip

    def encode_prompts(
        self,
        instructions: Sequence[str],
        documents: Sequence[Sequence[str | PromptDocument]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Build and LEFT-pad prompts with the processor -> ``input_ids``, ``attention_mask``, ``segment_ids``."""
        batch = self.processor.encode_prompts(instructions, documents, side="left")
        return batch["input_ids"], batch["attention_mask"], batch["segment_ids"]

    @torch.no_grad()
    def predict(
        self,
        images: Sequence[np.ndarray],
        instructions: Sequence[str],
        documents: Sequence[Sequence[str | PromptDocument]] | None = None,
        max_new_tokens: int | None = None,
        k: int = 3,
        logits_processor: LogitsProcessor | None = None,
        timings: dict[str, float] | None = None,
        on_token: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
        histories: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> list[Prediction]:
        """Answer each (image ``[H_i x W_i x 3]`` uint8, instruction, documents) and decode up to ``k`` grasps
        per generated ``[POSE]``, in the original image's pixels. Runs in eval mode (restored afterwards).
        Documents are :class:`PromptDocument` (labelled by their citation, so answers can cite them) or bare
        strings (labelled by position).

        ``timings``: if given, filled with seconds per stage (``prompt``, ``generate``, ``encoder``,
        ``grasp_head``, ``decode_maps``); the device is synchronised between stages, which costs a little.
        ``on_token``: streaming hook, see :meth:`PRGVisionLanguageModel.generate`. ``histories``: per sample the
        conversation's earlier ``(instruction, answer)`` turns (:func:`prg.model.processor.build_prompt`).
        """
        if len(images) != len(instructions):
            raise ValueError(f"{len(images)} images for {len(instructions)} instructions")
        if not images:
            return []
        was_training = self.training
        self.eval()
        try:
            return self._predict(
                images, instructions, documents, max_new_tokens, k, logits_processor, timings, on_token, histories
            )
        finally:
            self.train(was_training)

    def _encoder(self) -> Any:
        if not self.config.compile_encoder:
            return self.image_encoder
        if self._compiled_encoder is None:
            self._compiled_encoder = torch.compile(self.image_encoder)
        return self._compiled_encoder

    def _predict(
        self,
        images: Sequence[np.ndarray],
        instructions: Sequence[str],
        documents: Sequence[Sequence[str | PromptDocument]] | None,
        max_new_tokens: int | None,
        k: int,
        logits_processor: LogitsProcessor | None,
        timings: dict[str, float] | None,
        on_token: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
        histories: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> list[Prediction]:
        device = next(self.parameters()).device
        clock = _StageClock(timings, device)
        processor = self.processor
        batch = processor.encode_prompts(instructions, documents, side="left", histories=histories)
        input_ids, mask, segments = (batch[n].to(device) for n in ("input_ids", "attention_mask", "segment_ids"))
        pixel_values = processor.vision_pixels(list(images), device=device)
        clock.stage("prompt")
        lm = self.vlm.language_model
        adapters = self.has_adapters
        if adapters:
            set_segments(lm, segments)
        try:
            gen = self.vlm.generate(
                input_ids,
                pixel_values,
                mask,
                max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                logits_processor=logits_processor,
                decode=self.config.decode,
                on_token=on_token,
            )
        finally:
            if adapters:
                set_segments(lm, None)
        clock.stage("generate")
        answers = [self._decode_answer(seq) for seq in gen.sequences]
        counts = [h.shape[0] for h in gen.pose_hidden]
        grasps: list[list[list[GraspRect]]] = [[] for _ in images]
        if sum(counts):
            # F_enc runs only once a [POSE] exists. Starting it earlier (on a side stream next to the LM, or queued
            # before it) was measured no faster on an H100: both are compute-bound (benchmarks/README.md).
            sam_pixels, metas = processor.encoder_pixels(list(images), device=device)
            embeddings = self._encoder()(sam_pixels.to(device))  # once per image, shared by its poses
            clock.stage("encoder")
            hidden = torch.cat([h for h in gen.pose_hidden if h.shape[0]])
            image_index = torch.repeat_interleave(
                torch.arange(len(counts), device=device), torch.tensor(counts, device=device)
            )
            maps = self.grasp_head(hidden, embeddings, image_index)  # [N x 4 x S x S]
            originals = [maps_to_image(m, metas[i]).float() for m, i in zip(maps, image_index.tolist(), strict=True)]
            clock.stage("grasp_head")
            for m, i in zip(originals, image_index.tolist(), strict=True):
                rects = decode_maps(m, k=k, width_scale=self.config.width_scale)  # blur + peak search on the device
                grasps[i].append(rects)
            clock.stage("decode_maps")
        return [Prediction(a, g, c) for a, g, c in zip(answers, grasps, counts, strict=True)]

    def _decode_answer(self, sequence: torch.Tensor) -> str:
        """Generated ids -> text up to (not including) the first eos, pads dropped, ``[POSE]`` kept."""
        ids = sequence.tolist()
        for j, t in enumerate(ids):
            if t in self.vlm.eos_token_ids:
                ids = ids[:j]
                break
        ids = [t for t in ids if t != self.vlm.pad_token_id]
        return str(self.tokenizer.decode(ids, skip_special_tokens=False)).strip()


class _StageClock:
    """Seconds per stage into ``timings`` (synchronising the device at each mark); a no-op when None."""

    def __init__(self, timings: dict[str, float] | None, device: torch.device) -> None:
        self.timings = timings
        self.cuda = device.type == "cuda"
        self.device = device
        self.last = time.perf_counter()

    def stage(self, name: str) -> None:
        if self.timings is None:
            return
        if self.cuda:
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def build_prg_model(config: PRGModelConfig, device: torch.device | str | None = None) -> PRGModel:
    """Build the VLM from ``config.preset`` and F_enc + head from their configs, all seeded by ``config.seed``.

    Deterministic for a given config (the caller's RNG state is left untouched), so a checkpoint that stores
    only trainable tensors can rebuild the frozen rest from the config alone. ``config`` is not changed: the
    model holds a copy. File reads: the preset's local weights (``config.base``: LLaVA folder, the packaged
    SmolLM2 GGUF) and, with ``config.sam`` set, that SAM checkpoint, whose architecture then replaces
    ``config.encoder`` in the model's copy and whose mask decoder initialises F_dec. Modules are built directly
    on ``device`` in ``config.dtype``.
    """
    from prg.model.towers import default_dtype

    config = config.copy()
    dtype = config.torch_dtype
    with torch.random.fork_rng(devices=[]):
        vlm, tokenizer = build_preset(config.preset, seed=config.seed, dtype=dtype, device=device, **config.base)
        torch.manual_seed(config.seed + 1)
        sam = None
        if config.sam is not None:
            from prg.model.weights.sam import load_sam

            sam = load_sam(config.sam)
            config.encoder = dict(sam.vision_config)
        elif config.preset == "paper" and not config.base.get("random_weights"):
            raise FileNotFoundError(
                "the paper preset needs SAM weights: set sam=/path/to/sam_vit_h_4b8939.pth (or an HF SAM folder)"
            )
        with torch.device(device or "cpu"), default_dtype(dtype):
            encoder = ImageEncoder(SamVisionConfig(**config.encoder), frozen=not config.train_encoder)
            head = GraspHead(
                vlm.hidden_size,
                grasp_decoder_config(**config.decoder),
                encoder.image_size,
                projection_hidden=config.projection_hidden,
                prompt_gate=config.prompt_gate,
                prompt_match=config.prompt_match,
            )
        if sam is not None:
            from prg.model.weights.sam import init_decoder_from_sam

            result = encoder.encoder.load_state_dict(sam.encoder, strict=False)
            if result.missing_keys or result.unexpected_keys:
                raise ValueError(
                    f"{sam.source} does not fit a SAM image encoder: missing {result.missing_keys[:5]}, "
                    f"unexpected {result.unexpected_keys[:5]}"
                )
            init_decoder_from_sam(head.decoder, sam.decoder)
        table = None
        if config.prompt_vocab:
            with torch.device(device or "cpu"), default_dtype(dtype):
                table = PromptTable(config.prompt_vocab, head.decoder.hidden_size)
        model = PRGModel(vlm, encoder, head, tokenizer, config, table)
        model.to(device=device or "cpu", dtype=dtype)
        frozen, config.freeze = list(config.freeze), []
        model.freeze(frozen)
        if config.adaptive_mixture is not None:
            model.apply_adaptive_mixture(AdaptiveMixtureConfig(**config.adaptive_mixture))
        if config.lora is not None:
            lora, config.lora = config.lora, None
            model.apply_lora(lora)
    return model


def build_tiny_prg_model(seed: int = 0) -> PRGModel:
    """Random tiny PRG model (CPU, fp32, about a second): the one every model test uses."""
    return build_prg_model(tiny_config(seed))
