"""SAM weights from local files: the original ``sam_vit_h_4b8939.pth`` layout or a Hugging Face SAM folder.

Both become transformers' ``SamModel`` names; :func:`load_sam` then splits them into what PRG uses:

- ``encoder``: the vision encoder's tensors (``SamVisionEncoder`` names) for F_enc, with the ``SamVisionConfig``
  keyword arguments that describe it (read from ``config.json``, or inferred from tensor shapes for the original
  layout, which has no config);
- ``decoder``: SAM's mask decoder, its random-Fourier positional matrix and its "no mask" embedding, named as
  :class:`prg.model.grasp_head.GraspDecoder` names them, to initialise F_dec the way LISA-style models do.

Nothing is unpickled beyond tensors: ``.pth`` files go through ``torch.load(weights_only=True)``.
The key mapping is written here rather than imported: transformers ships its SAM converter only as a script
outside the installed package, and the table below is short.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

__all__ = ["SAM_VIT_H", "SamWeights", "infer_vision_config", "load_sam", "original_to_hf"]

SAM_VIT_H: dict[str, Any] = dict(
    hidden_size=1280,
    num_hidden_layers=32,
    num_attention_heads=16,
    image_size=1024,
    patch_size=16,
    output_channels=256,
    mlp_dim=5120,
    global_attn_indexes=[7, 15, 23, 31],
    window_size=14,
)
"""``SamVisionConfig`` keyword arguments of SAM ViT-H (``sam_vit_h_4b8939.pth``)."""

# original segment-anything name (regex) -> transformers SamModel name
_ORIGINAL_TO_HF: list[tuple[str, str]] = [
    (r"^image_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"^image_encoder\.pos_embed$", "vision_encoder.pos_embed"),
    (r"^image_encoder\.blocks\.(\d+)\.norm(\d)\.", r"vision_encoder.layers.\1.layer_norm\2."),
    (r"^image_encoder\.blocks\.(\d+)\.(attn|mlp)\.", r"vision_encoder.layers.\1.\2."),
    (r"^image_encoder\.neck\.0\.", "vision_encoder.neck.conv1."),
    (r"^image_encoder\.neck\.1\.", "vision_encoder.neck.layer_norm1."),
    (r"^image_encoder\.neck\.2\.", "vision_encoder.neck.conv2."),
    (r"^image_encoder\.neck\.3\.", "vision_encoder.neck.layer_norm2."),
    (r"^mask_decoder\.transformer\.layers\.(\d+)\.norm(\d)\.", r"mask_decoder.transformer.layers.\1.layer_norm\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    (r"^mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.layers\.0\.", r"mask_decoder.\1.proj_in."),
    (r"^mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.layers\.1\.", r"mask_decoder.\1.layers.0."),
    (r"^mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.layers\.2\.", r"mask_decoder.\1.proj_out."),
    (r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$", "shared_image_embedding.positional_embedding"),
]

_VISION_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "image_size",
    "patch_size",
    "output_channels",
    "mlp_dim",
    "global_attn_indexes",
    "window_size",
    "qkv_bias",
    "layer_norm_eps",
    "use_rel_pos",
    "use_abs_pos",
)


@dataclass
class SamWeights:
    """What PRG takes from a SAM checkpoint (see the module docstring)."""

    vision_config: dict[str, Any]
    encoder: dict[str, torch.Tensor]
    decoder: dict[str, torch.Tensor]
    source: str


def original_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an original segment-anything state dict to ``SamModel`` names (unmatched keys keep their name)."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        new = key
        for pattern, repl in _ORIGINAL_TO_HF:
            new, n = re.subn(pattern, repl, new)
            if n:
                break
        out[new] = tensor
    return out


def infer_vision_config(encoder: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``SamVisionConfig`` keyword arguments from the shapes of a ``SamVisionEncoder`` state dict.

    The original checkpoints carry no config: width and patch come from the patch embedding, the grid from the
    absolute position table, heads from the relative-position tables' head dimension, and the global-attention
    layers are those whose relative-position table spans the whole grid rather than one window.
    """
    try:
        proj = encoder["patch_embed.projection.weight"]  # [hidden x 3 x p x p]
        pos = encoder["pos_embed"]  # [1 x g x g x hidden]
        conv1 = encoder["neck.conv1.weight"]  # [out x hidden x 1 x 1]
    except KeyError as e:
        raise ValueError(f"not a SAM image encoder: tensor {e} is missing") from None
    hidden, patch, grid = proj.shape[0], proj.shape[-1], pos.shape[1]
    layers = sorted({int(m.group(1)) for k in encoder if (m := re.match(r"layers\.(\d+)\.", k))})
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"SAM image encoder layers are not numbered 0..n-1: {layers[:5]}...")
    rel = [encoder.get(f"layers.{i}.attn.rel_pos_h") for i in layers]
    head_dim = rel[0].shape[1] if rel[0] is not None else None
    global_layers = [i for i, r in zip(layers, rel, strict=True) if r is not None and r.shape[0] == 2 * grid - 1]
    windowed = [r for r in rel if r is not None and r.shape[0] != 2 * grid - 1]
    config: dict[str, Any] = dict(
        hidden_size=hidden,
        num_hidden_layers=len(layers),
        num_attention_heads=hidden // head_dim if head_dim else 16,
        image_size=grid * patch,
        patch_size=patch,
        output_channels=conv1.shape[0],
        mlp_dim=encoder["layers.0.mlp.lin1.weight"].shape[0],
        global_attn_indexes=global_layers,
        window_size=(windowed[0].shape[0] + 1) // 2 if windowed else 0,
        qkv_bias="layers.0.attn.qkv.bias" in encoder,
        use_rel_pos=head_dim is not None,
    )
    return config


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a truncated download, a pickle with objects, not a checkpoint at all
        raise ValueError(f"cannot read {path} as a SAM checkpoint: {type(e).__name__}: {e}") from None
    for wrapper in ("model", "state_dict"):  # some re-saves nest the weights
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat state dict of tensors")
    return state


def _read_folder(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} is not a Hugging Face SAM folder: config.json is missing")
    config = json.loads(config_file.read_text())
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise FileNotFoundError(f"{folder} holds no model.safetensors (PRG reads SAM folders in safetensors only)")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(str(folder / name)))
    return state, dict(config.get("vision_config") or {})


def load_sam(path: str | Path) -> SamWeights:
    """Read SAM weights from ``path``: an original checkpoint file (``.pth``/``.pt``/``.bin``/``.safetensors``,
    e.g. ``sam_vit_h_4b8939.pth``) or a Hugging Face SAM folder (``config.json`` + safetensors)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"SAM weights not found at {path}: provide the original sam_vit_h_4b8939.pth or a Hugging Face SAM "
            "folder (nothing is downloaded)"
        )
    if path.is_dir():
        state, vision = _read_folder(path)
    else:
        raw = _read_tensors(path)
        state = original_to_hf(raw) if any(k.startswith("image_encoder.") for k in raw) else raw
        vision = {}
    encoder = {k.removeprefix("vision_encoder."): v for k, v in state.items() if k.startswith("vision_encoder.")}
    if not encoder:
        raise ValueError(f"{path} holds no SAM image encoder (no image_encoder.* or vision_encoder.* tensors)")
    inferred = infer_vision_config(encoder)
    config = {k: vision[k] for k in _VISION_KEYS if k in vision} if vision else inferred
    for key in ("hidden_size", "num_hidden_layers", "image_size", "patch_size"):
        if config.get(key, inferred[key]) != inferred[key]:
            raise ValueError(f"{path}: config.json says {key}={config[key]} but the tensors say {inferred[key]}")
    decoder = {k: v for k, v in state.items() if k.startswith("mask_decoder.")}
    for src, dst in (
        ("shared_image_embedding.positional_embedding", "shared_image_embedding.positional_embedding"),
        ("prompt_encoder.no_mask_embed.weight", "no_mask_embed.weight"),
    ):
        if src in state:
            decoder[dst] = state[src]
    return SamWeights(vision_config=config, encoder=encoder, decoder=decoder, source=str(path))


def init_decoder_from_sam(decoder: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Copy SAM's mask-decoder tensors into a :class:`~prg.model.grasp_head.GraspDecoder`; returns what stayed.

    The grasp decoder has one output token (and hypernetwork MLP) more than SAM: the extra one starts as a copy
    of SAM's last multimask token, so every grasp map starts from a trained mask token. Tensors whose shape
    differs otherwise (the unused IoU head's output layer) keep their random initialisation and are returned.
    """
    own = decoder.state_dict()
    kept: list[str] = []
    pattern = re.compile(r"mask_decoder\.output_hypernetworks_mlps\.(\d+)\.")
    sam_mlps = [int(m.group(1)) for k in weights if (m := pattern.match(k))]
    with torch.no_grad():
        for name, target in own.items():
            source = weights.get(name)
            extra = re.match(r"mask_decoder\.output_hypernetworks_mlps\.(\d+)\.(.*)$", name)
            if source is None and extra is not None and sam_mlps:
                source = weights.get(f"mask_decoder.output_hypernetworks_mlps.{max(sam_mlps)}.{extra.group(2)}")
            if name == "mask_decoder.mask_tokens.weight" and source is not None and source.shape[0] < target.shape[0]:
                n = source.shape[0]
                target[:n].copy_(source)
                target[n:].copy_(source[-1:].expand(target.shape[0] - n, -1))
                continue
            if source is None or source.shape != target.shape:
                kept.append(name)
                continue
            target.copy_(source)
    return kept
