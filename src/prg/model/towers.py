"""Vision-tower architectures beyond the tiny one (CLIP read the LLaVA way) and their JSON specs.

A spec (``vision_tower_spec``) is how a standalone checkpoint records its tower's architecture; the weights come
from the checkpoint's tensors. The tiny tower lives in :mod:`prg.model.vlm`; loading pretrained weights lives in
:mod:`prg.model.weights`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, PreTrainedModel
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from prg.model.vlm import TinyVisionConfig, TinyVisionTower

__all__ = ["LlavaVisionTower", "default_dtype", "vision_tower_from_spec", "vision_tower_spec"]


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Build modules in ``dtype`` (restores the previous default afterwards)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


class LlavaVisionTower(nn.Module):
    """A CLIP vision model read the LLaVA way: hidden states of ``feature_layer`` (an int or a list, concatenated),
    without the CLS token under the ``"default"`` strategy. ``[B x 3 x S x S] -> [B x n x D]``."""

    def __init__(
        self,
        vision_model: PreTrainedModel,
        feature_layer: int | Sequence[int] = -2,
        strategy: str = "default",
        image_mean: Sequence[float] = OPENAI_CLIP_MEAN,
        image_std: Sequence[float] = OPENAI_CLIP_STD,
    ) -> None:
        super().__init__()
        if strategy not in ("default", "full"):
            raise ValueError(f"vision_feature_select_strategy must be 'default' or 'full', got {strategy!r}")
        self.vision_model = vision_model
        config = vision_model.config
        self.feature_layer: int | list[int] = feature_layer if isinstance(feature_layer, int) else list(feature_layer)
        self.strategy = strategy
        self.image_size = int(config.image_size)
        layers = 1 if isinstance(self.feature_layer, int) else len(self.feature_layer)
        self.num_image_tokens = (self.image_size // int(config.patch_size)) ** 2 + (strategy == "full")
        self.hidden_size = int(config.hidden_size) * layers
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        self.pad = "mean"  # LLaVA-1.5 pads images to a square with the mean colour

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.vision_model.parameters()).dtype
        out = self.vision_model(pixel_values.to(dtype), output_hidden_states=True)
        layers = [self.feature_layer] if isinstance(self.feature_layer, int) else self.feature_layer
        states = [out.hidden_states[i] for i in layers]
        if self.strategy == "default":
            states = [s[:, 1:] for s in states]
        return torch.cat(states, dim=-1)


def vision_tower_spec(tower: nn.Module) -> dict[str, Any]:
    """A JSON description from which :func:`vision_tower_from_spec` rebuilds the tower's architecture."""
    if isinstance(tower, TinyVisionTower):
        return {"kind": "tiny", **asdict(tower.config)}
    if isinstance(tower, LlavaVisionTower):
        return {
            "kind": "llava_clip",
            "config": tower.vision_model.config.to_dict(),
            "feature_layer": tower.feature_layer,
            "strategy": tower.strategy,
            "image_mean": list(tower.image_mean),
            "image_std": list(tower.image_std),
        }
    raise TypeError(f"no spec for vision tower {type(tower).__name__}")


def vision_tower_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Random-initialised tower of the architecture ``spec`` describes (weights are loaded afterwards)."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "tiny":
        return TinyVisionTower(TinyVisionConfig(**spec))
    if kind == "llava_clip":
        config = CLIPVisionConfig(**{k: v for k, v in spec["config"].items() if k not in ("model_type",)})
        return LlavaVisionTower(
            CLIPVisionModel(config), spec["feature_layer"], spec["strategy"], spec["image_mean"], spec["image_std"]
        )
    raise ValueError(f"unknown vision tower kind {kind!r}")
