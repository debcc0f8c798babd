"""PRG model checkpoints: ``config.json`` + ``model.safetensors`` + ``tokenizer/``. JSON and safetensors only.

A checkpoint is a *delta on a base*: the base is rebuilt from ``config.json`` (preset name + seed, through
:func:`prg.model.prg_model.build_prg_model`), then the stored tensors are copied over it. By default only the
trainable tensors are stored (every ``requires_grad`` parameter) plus the persistent buffers of the model, so
frozen weights (F_enc, an LM frozen by AdaptiveMixture) come from the base. For the tiny preset that means every
trainable parameter; the rebuilt base is exact because the builders are seeded. For pretrained presets the base
must be the same local weights; ``trainable_only=False`` stores everything and depends on the base only for the
architecture.

Tied or otherwise shared tensors: ``named_parameters()`` yields a tied parameter once (under its first name), and
any remaining tensors that share storage are cloned before writing, because safetensors refuses shared storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from prg.fsutil import fsync_dir, fsync_tree
from prg.model.prg_model import PRGModel, PRGModelConfig, build_prg_model

__all__ = [
    "CheckpointError",
    "from_pretrained",
    "read_checkpoint_config",
    "save_pretrained",
    "save_standalone",
    "state_to_save",
]

FORMAT = "prg-model/1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
LM_DIR = "language_model"
LM_PREFIX = "vlm.language_model."


class CheckpointError(ValueError):
    """A checkpoint folder does not match the model its config describes."""


def state_to_save(model: PRGModel, trainable_only: bool = True) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint holds, keyed by ``model.state_dict`` names (detached, not yet de-aliased)."""
    trained = tuple(f"{prefix}." for prefix in model.config.trained)  # frozen now, trained in an earlier stage
    out = {
        n: p.detach()
        for n, p in model.named_parameters()
        if p.requires_grad or not trainable_only or n.startswith(trained)
    }
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    # Persistent buffers are not parameters and some are random (e.g. positional tables): keep them too.
    for name, tensor in model.state_dict().items():
        if name not in params:
            out[name] = tensor.detach()
    return out


def _unshare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous copies where tensors share storage (safetensors refuses that); others are left as they are."""
    seen: set[tuple[torch.device, int]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        key = (t.device, t.untyped_storage().data_ptr())
        out[name] = t.clone().contiguous() if key in seen else t.contiguous()
        seen.add(key)
    return out


@contextlib.contextmanager
def _published(directory: Path, force: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder beside ``directory``; on success it is fsynced and renamed to ``directory``.

    Readers therefore see the old checkpoint or the complete new one, after a killed process and after a power
    cut; a failure leaves ``directory`` as it was. An existing ``directory`` is replaced only with ``force``
    (it is moved aside, the new one renamed in, then the old one removed).
    """
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise FileExistsError(f"{directory} exists and is not empty (pass force=True / --force to replace it)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent))
    try:
        yield staging
        fsync_tree(staging)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.replaced-{os.getpid()}")
            directory.rename(old)
        staging.rename(directory)
        fsync_dir(directory.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_pretrained(
    model: PRGModel,
    directory: str | Path,
    trainable_only: bool = True,
    force: bool = True,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``config.json`` (with the processor), ``model.safetensors`` and ``tokenizer/`` as ``directory``.

    The folder is written beside ``directory`` and renamed into place (see :func:`_published`); an existing
    checkpoint there is replaced unless ``force=False``. ``dtype`` stores floating tensors in that type (e.g.
    bfloat16 for a checkpoint that ships; loading casts them to the model's dtype). Returns ``directory``.
    """
    directory = Path(directory)
    tensors = _unshare(state_to_save(model, trainable_only))
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    with _published(directory, force) as stage:
        save_file({k: v.cpu() for k, v in tensors.items()}, str(stage / WEIGHTS_NAME), metadata={"format": FORMAT})
        model.tokenizer.save_pretrained(str(stage / TOKENIZER_DIR))
        _write_config(stage, model.config, {"trainable_only": trainable_only})
    return directory


def _write_config(directory: Path, config: PRGModelConfig, extra: dict[str, Any]) -> None:
    meta = {
        "format": FORMAT,
        "base": {"preset": config.preset, "seed": config.seed, "sam": config.sam, **config.base},
        **extra,
        "model": config.to_dict(),
    }
    (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")


def save_standalone(model: PRGModel, directory: str | Path, force: bool = False) -> Path:
    """Write a folder that loads with no base weights and no adapter code (``prg merge`` writes these).

    Layout: ``language_model/`` (the causal LM in the plain Hugging Face layout: ``AutoModelForCausalLM`` loads
    it on its own), ``tokenizer/``, ``model.safetensors`` (vision tower, projector, F_enc, γ and F_dec) and
    ``config.json`` (preset ``folder``: the architecture of the vision tower, F_enc and F_dec). Merge adapters
    first (:meth:`PRGModel.merge_adapters`). Published like :func:`save_pretrained`; a non-empty ``directory``
    is kept unless ``force``.
    """
    from prg.model.towers import vision_tower_spec

    if model.has_adapters or model.config.lora is not None:
        raise ValueError("merge the adapters first (PRGModel.merge_adapters): a standalone folder holds no adapters")
    directory = Path(directory)
    tensors = {k: v for k, v in state_to_save(model, trainable_only=False).items() if not k.startswith(LM_PREFIX)}
    config = model.config.copy()
    config.preset = "folder"
    config.base = {"vision": vision_tower_spec(model.vlm.vision_tower)}
    config.sam = None  # F_enc's weights are in model.safetensors
    with _published(directory, force) as stage:
        model.vlm.language_model.save_pretrained(str(stage / LM_DIR))
        model.tokenizer.save_pretrained(str(stage / TOKENIZER_DIR))
        save_file(
            {k: v.cpu() for k, v in _unshare(tensors).items()}, str(stage / WEIGHTS_NAME), metadata={"format": FORMAT}
        )
        _write_config(stage, config, {"standalone": True, "trainable_only": False})
    return directory


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder, checked; a :class:`CheckpointError` says what is wrong."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a PRG model checkpoint: no such folder")
    config_file = directory / CONFIG_NAME
    if not config_file.is_file():
        raise CheckpointError(f"{directory} is not a PRG model checkpoint: {CONFIG_NAME} is missing")
    try:
        meta = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{config_file} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{directory} is not a PRG model checkpoint (format={found!r})")
    if not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{config_file} has no model config")
    if not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{directory} is not a complete PRG model checkpoint: {WEIGHTS_NAME} is missing")
    return meta


def from_pretrained(
    directory: str | Path, map_location: str | torch.device = "cpu", base: Mapping[str, Any] | None = None
) -> PRGModel:
    """Rebuild the base from ``config.json``, load the saved tokenizer and copy the stored tensors in.

    ``base`` overrides where the base weights live on this machine, e.g. ``{"llava": "/data/llava-1.5-7b-hf",
    "sam": "/data/sam_vit_h_4b8939.pth"}`` for the paper preset (the paths recorded at save time are the
    default). Strict: every tensor the config implies must be in the file and nothing else; a
    :class:`CheckpointError` names the missing and unexpected keys (and any shape mismatch).
    """
    directory = Path(directory)
    meta = read_checkpoint_config(directory)
    config = PRGModelConfig.from_dict(meta["model"])
    standalone = bool(meta.get("standalone"))
    if standalone:
        config.base["path"] = str(directory)
    for key, value in (base or {}).items():
        if key == "sam":
            config.sam = None if value is None else str(value)
        else:
            config.base[key] = str(value) if isinstance(value, Path) else value
    model = build_prg_model(config, device=map_location)
    tokenizer = AutoTokenizer.from_pretrained(str(directory / TOKENIZER_DIR))
    if tokenizer.get_vocab() != model.tokenizer.get_vocab():
        raise CheckpointError("the saved tokenizer's vocabulary differs from the rebuilt base's")
    model.tokenizer = tokenizer  # the saved processor is the one the weights were trained with
    stored = load_file(str(directory / WEIGHTS_NAME), device=str(map_location))
    own = state_to_save(model, bool(meta["trainable_only"]))
    if standalone:  # the language model came whole from language_model/
        own = {k: v for k, v in own.items() if not k.startswith(LM_PREFIX)}
    missing, unexpected = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{directory / WEIGHTS_NAME} does not match the model in {CONFIG_NAME}: "
            f"missing keys {missing}, unexpected keys {unexpected}"
        )
    bad = [f"{k}: {tuple(stored[k].shape)} vs {tuple(t.shape)}" for k, t in own.items() if stored[k].shape != t.shape]
    if bad:
        raise CheckpointError(f"shape mismatch (stored vs model): {bad}")
    with torch.no_grad():
        for key, target in own.items():
            target.copy_(stored[key])
    return model
