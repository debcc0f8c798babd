"""The pose head: γ (PoseProjection) + the grasp decoder F_dec, and the frozen image encoder F_enc.

Data flow (shapes for one batch; ``S`` = encoder input size, ``s = S / patch``, ``D`` = prompt width, 256 in SAM):

```
images (any size)  --PRGProcessor.encoder_pixels-->  pixel_values [B x 3 x S x S], metas (scale, padding)
pixel_values       --ImageEncoder (frozen)----->  image_embeddings [B x D x s x s]    (computed once per image)
[POSE] hidden h [N x H] --PoseProjection γ----->  pose embedding [N x D]
(pose embedding, image_embeddings[image_index]) --GraspDecoder--> maps [N x 4 x S x S]
maps[i] --maps_to_image(maps[i], metas[image_index[i]])--> [4 x H_i x W_i] (quality, cos2, sin2, width)
```

The decoder is transformers' ``SamMaskDecoder`` with ``num_multimask_outputs = 4``: its four "multimask" tokens
are the four grasp maps, so each map is SAM's hypernetwork product of a token with the upscaled image embedding.
Map encodings follow :mod:`prg.grasp.maps` (see docs/grasp_head.md).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import SamMaskDecoderConfig, SamVisionConfig
from transformers.models.sam.modeling_sam import SamMaskDecoder, SamPositionalEmbedding, SamVisionEncoder
from transformers.utils.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from prg.model.processor import ImageMeta, TowerGeometry

__all__ = [
    "GraspDecoder",
    "GraspHead",
    "ImageEncoder",
    "ImageMeta",
    "PoseProjection",
    "PromptTable",
    "activate_maps",
    "grasp_decoder_config",
    "maps_to_image",
]

NUM_MAPS = 4  # quality, cos2, sin2, width (prg.grasp.maps order)


class PoseProjection(nn.Module):
    """γ: the ``[POSE]`` token's last hidden state -> the decoder's prompt embedding.

    ``[N x lm_hidden] -> [N x out]`` via Linear -> ReLU -> (Dropout) -> Linear.
    """

    def __init__(self, lm_hidden: int, hidden: int | None = None, out: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = lm_hidden if hidden is None else hidden
        self.net = nn.Sequential(nn.Linear(lm_hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out))

    def forward(self, pose_hidden: torch.Tensor) -> torch.Tensor:
        """``[N x lm_hidden] -> [N x out]`` (input cast to the projection's dtype, e.g. fp32 LM -> bf16 head)."""
        return self.net(pose_hidden.to(next(self.parameters()).dtype))


# --------------------------------------------------------------------------------------------------------------
# F_enc: image preprocessing, geometry back to the original image, and the frozen SAM vision encoder.


def maps_to_image(maps: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
    """Crop the padding off ``[4 x S x S]`` model-space maps and resize them to the original ``[4 x H x W]``.

    The width channel is rescaled so it stays "opening / width_scale" in *original* pixels: decode the result
    with the same ``width_scale`` as the targets. (It may then exceed 1 when the image was shrunk.)
    """
    if maps.ndim != 3 or maps.shape[0] != NUM_MAPS or maps.shape[1:] != (meta.size, meta.size):
        raise ValueError(f"expected maps [4 x {meta.size} x {meta.size}], got {tuple(maps.shape)}")
    h, w = meta.resized
    cropped = maps[None, :, :h, :w].float()
    out = F.interpolate(cropped, size=meta.original, mode="bilinear", align_corners=False)[0]
    sy, sx = meta.scale
    width = out[3] / math.sqrt(sx * sy)
    return torch.cat([out[:3], width[None]], dim=0)


class ImageEncoder(nn.Module):
    """F_enc: a SAM-architecture vision encoder (transformers' ``SamVisionEncoder``), frozen by default.

    ``forward(pixel_values [B x 3 x S x S]) -> image_embeddings [B x output_channels x s x s]``.
    """

    def __init__(self, config: SamVisionConfig, frozen: bool = True) -> None:
        super().__init__()
        if not isinstance(config.image_size, int):
            raise ValueError("ImageEncoder expects a square input: SamVisionConfig.image_size must be an int")
        self.encoder = SamVisionEncoder(config)
        self.image_size: int = config.image_size
        self.frozen = frozen
        # SAM's normalisation (the ImageNet statistics, in 0..255 units as SamImageProcessor applies them).
        # Plain numbers, not buffers: a bf16 model would round buffers (123.675 -> 123.5).
        self.pixel_mean = tuple(255.0 * m for m in IMAGENET_DEFAULT_MEAN)
        self.pixel_std = tuple(255.0 * s for s in IMAGENET_DEFAULT_STD)
        if frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> ImageEncoder:
        """Like ``nn.Module.train``, but a frozen encoder stays in eval mode (no dropout, fixed features)."""
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B x 3 x S x S]`` normalised pixels -> ``[B x C x s x s]`` image embeddings."""
        dtype = next(self.encoder.parameters()).dtype
        # A frozen encoder's features are constants: no graph saves memory (they are cached per image anyway).
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.encoder(pixel_values.to(dtype)).last_hidden_state

    @property
    def geometry(self) -> TowerGeometry:
        """F_enc's input: ``S x S``, SAM's (ImageNet) statistics, padded with the mean colour as SAM pads."""
        mean = tuple(m / 255.0 for m in self.pixel_mean)
        std = tuple(v / 255.0 for v in self.pixel_std)
        return TowerGeometry(self.image_size, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), "mean")


# --------------------------------------------------------------------------------------------------------------
# F_dec: SAM's mask decoder with the pose embedding as its sparse prompt.


def activate_maps(logits: torch.Tensor) -> torch.Tensor:
    """Decoder logits ``[N x 4 x S x S]`` -> maps: quality and width via sigmoid (both live in [0, 1]),
    cos2 and sin2 via tanh (in [-1, 1]; their target background is 0, the "no angle" of prg.grasp.maps)."""
    quality, cos2, sin2, width = logits.unbind(dim=1)
    return torch.stack([quality.sigmoid(), cos2.tanh(), sin2.tanh(), width.sigmoid()], dim=1)


def grasp_decoder_config(
    hidden_size: int = 256, num_hidden_layers: int = 2, num_attention_heads: int = 8, mlp_dim: int = 2048
) -> SamMaskDecoderConfig:
    """A ``SamMaskDecoderConfig`` for :class:`GraspDecoder` (SAM's defaults, but four output maps)."""
    return SamMaskDecoderConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        mlp_dim=mlp_dim,
        num_multimask_outputs=NUM_MAPS,
    )


class GraspDecoder(nn.Module):
    """F_dec: ``(prompt [N x D], image_embeddings [B x D x s x s], image_index [N]) -> maps [N x 4 x S x S]``.

    Module names mirror ``SamModel`` (``shared_image_embedding``, ``no_mask_embed``, ``mask_decoder``) so a
    weight converter can map SAM checkpoints onto it (``mask_tokens`` has one row more than SAM's).
    """

    def __init__(
        self,
        config: SamMaskDecoderConfig,
        image_size: int,
        pos_scale: float = 1.0,
        prompt_gate: bool = False,
        prompt_match: bool = False,
    ) -> None:
        super().__init__()
        if config.num_multimask_outputs != NUM_MAPS:
            raise ValueError(f"GraspDecoder needs num_multimask_outputs={NUM_MAPS} (one token per grasp map)")
        if config.hidden_size % 8:
            raise ValueError("SamMaskDecoder needs hidden_size divisible by 8 (it upscales to hidden_size // 8)")
        if getattr(config, "_attn_implementation", None) is None:
            config._attn_implementation = "sdpa"  # what SamModel would set; the standalone default is eager
        self.hidden_size: int = config.hidden_size
        self.image_size = image_size
        # SamPositionalEmbedding reads only these two fields; scale 1.0 is SAM's original random-Fourier
        # scale (transformers derives it from the vision width, which only matters before loading weights).
        pe_config = SimpleNamespace(num_pos_feats=config.hidden_size // 2, scale=pos_scale)
        self.shared_image_embedding = SamPositionalEmbedding(pe_config)
        self.no_mask_embed = nn.Embedding(1, config.hidden_size)  # SAM's dense prompt when no mask is given
        self.mask_decoder = SamMaskDecoder(config)
        # Output token 0 (SAM's single-mask token) and the IoU head are computed but never used for a loss:
        # freezing them keeps distributed training from tripping over parameters without gradients.
        self.mask_decoder.output_hypernetworks_mlps[0].requires_grad_(False)
        self.mask_decoder.iou_prediction_head.requires_grad_(False)
        # Optional dense path for the prompt (not in SAM): the dense prompt becomes
        # ``no_mask_embed + image_embeddings * gate(prompt)``, a per-channel gating of the image features by the
        # prompt, so a map can score "how well does this place match the prompt" as a bilinear form of the two.
        # SAM reaches the image only through token-to-image attention (a DETR-style query), which learns slowly
        # from scratch: on the small recipe's stage 1 the category prompts then hit other objects as often as
        # their own. Zero-initialised, it starts as exactly SAM's decoder (pretrained SAM weights unchanged).
        self.prompt_gate: nn.Linear | None = None
        if prompt_gate:
            self.prompt_gate = nn.Linear(config.hidden_size, config.hidden_size)
            nn.init.zeros_(self.prompt_gate.weight)
            nn.init.zeros_(self.prompt_gate.bias)
        # Optional match map (not in SAM, LSeg-style): ``match[n, y, x] = <match_proj(image_embeddings[:, y, x]),
        # prompt[n]> / sqrt(D)``, a logit of "the prompted object is here" on the embedding grid. It can be
        # supervised directly (:meth:`match_logits`, ``PRGModelConfig.match_weight``), a dense and fast signal
        # for F_enc and the prompts, and enters the dense prompt as ``sigmoid(match) * match_embed``
        # (match_embed starts at zero: SAM's decoder again until it learns to use the map).
        self.match_proj: nn.Linear | None = None
        self.match_embed: nn.Parameter | None = None
        if prompt_match:
            self.match_proj = nn.Linear(config.hidden_size, config.hidden_size)
            self.match_embed = nn.Parameter(torch.zeros(config.hidden_size))

    def match_logits(self, prompt: torch.Tensor, image_embeddings: torch.Tensor) -> torch.Tensor:
        """``prompt [N x D]``, per-prompt ``image_embeddings [N x D x s x s]`` -> match logits ``[N x s x s]``."""
        if self.match_proj is None:
            raise ValueError("this decoder has no match map (prompt_match=False)")
        img = self.match_proj(image_embeddings.permute(0, 2, 3, 1))  # [N x s x s x D]
        return (img * prompt[:, None, None, :].to(img.dtype)).sum(-1) / math.sqrt(self.hidden_size)

    def image_positional_embeddings(self, height: int, width: int) -> torch.Tensor:
        """Dense positional encoding of the ``height x width`` embedding grid: ``[1 x D x height x width]``."""
        weight = self.shared_image_embedding.positional_embedding
        ys = (torch.arange(height, device=weight.device, dtype=weight.dtype) + 0.5) / height
        xs = (torch.arange(width, device=weight.device, dtype=weight.dtype) + 0.5) / width
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [h x w x 2] as (x, y) in [0, 1]
        return self.shared_image_embedding(grid).permute(2, 0, 1)[None]

    def forward(
        self,
        prompt: torch.Tensor,
        image_embeddings: torch.Tensor,
        image_index: torch.Tensor,
        return_logits: bool = False,
        return_match: bool = False,
    ) -> Any:
        """``prompt [N x D]``, ``image_embeddings [B x D x s x s]``, ``image_index [N]`` (long, into B) ->
        ``[N x 4 x S x S]`` maps as :func:`activate_maps` gives them, or their pre-activation logits
        (``return_logits``: for a numerically stable loss, see ``grasp_map_loss(..., logits=True)``).
        ``return_match`` (a decoder with ``prompt_match``): ``(maps, match logits [N x s x s])``.
        """
        n, d = prompt.shape
        if image_embeddings.ndim != 4 or image_embeddings.shape[1] != d or d != self.hidden_size:
            raise ValueError(
                f"prompt [N x {self.hidden_size}] and image_embeddings [B x {self.hidden_size} x s x s] expected, "
                f"got {tuple(prompt.shape)} and {tuple(image_embeddings.shape)}"
            )
        if image_index.shape != (n,):
            raise ValueError(f"image_index must have shape [{n}], got {tuple(image_index.shape)}")
        _, _, h, w = image_embeddings.shape
        dtype = self.no_mask_embed.weight.dtype
        # One decoder "batch" element per pose: SAM's mask decoder repeats images per prompt anyway.
        per_pose = image_embeddings[image_index.long()].to(dtype)  # [N x D x s x s]
        dense = self.no_mask_embed.weight.view(1, d, 1, 1).expand(n, d, h, w)
        if self.prompt_gate is not None:
            dense = dense + per_pose * self.prompt_gate(prompt.to(dtype)).view(n, d, 1, 1)
        match = None
        if self.match_proj is not None and self.match_embed is not None:
            match = self.match_logits(prompt.to(dtype), per_pose)
            dense = dense + match.sigmoid()[:, None] * self.match_embed.view(1, d, 1, 1)
        elif return_match:
            raise ValueError("return_match needs a decoder built with prompt_match=True")
        pos = self.image_positional_embeddings(h, w).expand(n, d, h, w)
        sparse = prompt.to(dtype).view(n, 1, 1, d)  # [N x point_batch 1 x tokens 1 x D]
        logits, _ = self.mask_decoder(
            image_embeddings=per_pose,
            image_positional_embeddings=pos,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,  # the four multimask tokens = the four grasp maps
        )  # [N x 1 x 4 x 4s x 4s]
        logits = F.interpolate(
            logits[:, 0], size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )
        out = logits if return_logits else activate_maps(logits)
        return (out, match) if return_match else out


class GraspHead(nn.Module):
    """γ + F_dec: ``(pose_hidden [N x H], image_embeddings [B x D x s x s], image_index [N]) -> [N x 4 x S x S]``.

    F_enc stays outside: its features are computed once per image and cached across ``[POSE]`` tokens.
    """

    def __init__(
        self,
        lm_hidden: int,
        decoder_config: SamMaskDecoderConfig,
        image_size: int,
        projection_hidden: int | None = None,
        dropout: float = 0.0,
        prompt_gate: bool = False,
        prompt_match: bool = False,
    ) -> None:
        super().__init__()
        self.projection = PoseProjection(lm_hidden, projection_hidden, decoder_config.hidden_size, dropout)
        self.decoder = GraspDecoder(decoder_config, image_size, prompt_gate=prompt_gate, prompt_match=prompt_match)

    def forward(
        self,
        pose_hidden: torch.Tensor,
        image_embeddings: torch.Tensor,
        image_index: torch.Tensor,
        return_logits: bool = False,
    ) -> torch.Tensor:
        """See the class docstring; maps (or logits) as :meth:`GraspDecoder.forward` returns them."""
        return self.decoder(self.projection(pose_hidden), image_embeddings, image_index, return_logits)


class PromptTable(nn.Module):
    """Prompts for pre-training F_enc + F_dec without the language model (the small recipe's stage 1).

    SAM is pre-trained with point prompts; PRG adds *category* prompts, one learned embedding per catalogue
    category (``vocab``), because what F_dec receives at inference, γ of the ``[POSE]`` state, names a tool
    rather than a place. ``forward(kind [N], category [N], points [N x 2]) -> prompts [N x D]``:

    * ``kind == 0``: the category's embedding row;
    * ``kind == 1``: a point ``(u, v)`` in model pixels, encoded as SAM's prompt encoder does (the decoder's
      random-Fourier position encoding of the normalised point plus a learned point-type embedding).

    Not used at inference; stage 2 uses the rows as targets that γ's output is pulled towards (distillation).
    """

    def __init__(self, vocab: list[str], hidden_size: int) -> None:
        super().__init__()
        if not vocab:
            raise ValueError("PromptTable needs at least one category")
        self.vocab = list(vocab)
        self.index = {name: i for i, name in enumerate(self.vocab)}
        self.categories = nn.Embedding(len(self.vocab), hidden_size)
        self.point = nn.Embedding(1, hidden_size)
        nn.init.normal_(self.categories.weight, std=1.0)

    def forward(
        self, kind: torch.Tensor, category: torch.Tensor, points: torch.Tensor, decoder: GraspDecoder
    ) -> torch.Tensor:
        size = decoder.image_size
        pe = decoder.shared_image_embedding
        dtype = self.categories.weight.dtype
        coords = ((points.to(dtype) + 0.5) / size).clamp(0.0, 1.0)  # [N x 2] as (x, y) in [0, 1]
        point = pe(coords[:, None, :])[:, 0] + self.point.weight  # [N x D]
        cat = self.categories(category.clamp(min=0).long())
        return torch.where((kind == 0)[:, None], cat, point.to(cat.dtype))
