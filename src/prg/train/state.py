"""Training checkpoints: everything a run needs to continue exactly, as safetensors + JSON (never a pickle).

A run folder::

    runs/<name>/
      config.yaml            the resolved TrainConfig
      metrics.jsonl          one JSON object per logged step / validation
      tensorboard/           TensorBoard event files
      latest                 name of the newest complete checkpoint ("step-000040"), replaced atomically
      best                   name of the checkpoint with the best validation score
      step-000040/
        model/               prg.model.checkpoint.save_pretrained: trainable tensors, processor, tokenizer
        optimizer.safetensors + optimizer.json   the optimizer's tensors and the rest of its state
        trainer.json         step, scheduler, sampler position, RNG states (python, numpy), metrics
        rng.safetensors      torch CPU (and CUDA) generator states

A checkpoint folder is written beside its final name, fsynced and renamed into place, and only then does
``latest`` move to it (both through :mod:`prg.fsutil`), so a killed run or a power cut leaves the previous
checkpoint as ``latest``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prg.fsutil import atomic_write_text, fsync_dir, fsync_tree

__all__ = [
    "LATEST",
    "capture_rng",
    "latest_checkpoint",
    "load_optimizer",
    "prune_checkpoints",
    "publish_checkpoint",
    "restore_rng",
    "save_optimizer",
    "step_dir_name",
]

LATEST = "latest"
BEST = "best"


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


# -- optimizer ---------------------------------------------------------------------------------------------------
def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """``optimizer.state_dict()`` split into its tensors (safetensors) and everything else (JSON)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state_meta: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        meta: dict[str, Any] = {}
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
                meta[key] = {"tensor": True}
            else:
                meta[key] = {"value": value}
        state_meta[str(pid)] = meta
    save_file(tensors, str(folder / "optimizer.safetensors"))
    (folder / "optimizer.json").write_text(json.dumps({"state": state_meta, "param_groups": sd["param_groups"]}))


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    meta = json.loads((folder / "optimizer.json").read_text())
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for pid, entries in meta["state"].items():
        state[int(pid)] = {
            key: tensors[f"{pid}.{key}"] if e.get("tensor") else e["value"] for key, e in entries.items()
        }
    groups = meta["param_groups"]
    for g in groups:  # JSON turned tuples into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- random number generators -------------------------------------------------------------------------------------
def capture_rng() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON part, tensor part) of the python, numpy, torch CPU and CUDA generator states."""
    py = random.getstate()
    # the legacy global generator: code that still draws from np.random must resume exactly too
    np_state: Any = np.random.get_state()  # noqa: NPY002
    meta: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    return meta, tensors


def restore_rng(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    v, internal, gauss = meta["python"]
    random.setstate((v, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


# -- publishing ----------------------------------------------------------------------------------------------------
def publish_checkpoint(staging: Path, run_dir: Path, name: str, best: bool = False) -> Path:
    """fsync the finished ``staging`` folder, rename it to ``run_dir/name`` and point ``latest`` (and ``best``)
    at it. An existing folder of that name (a re-run of the same step) is replaced."""
    fsync_tree(staging)
    final = run_dir / name
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    fsync_dir(run_dir)
    atomic_write_text(run_dir / LATEST, name + "\n")
    if best:
        atomic_write_text(run_dir / BEST, name + "\n")
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None."""
    pointer = run_dir / LATEST
    if not pointer.is_file():
        return None
    folder = run_dir / pointer.read_text().strip()
    return folder if (folder / "trainer.json").is_file() else None


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Remove all but the newest ``keep_last`` checkpoints, never the ``latest`` or ``best`` one, and stale
    staging folders of killed runs."""
    keep = set()
    for pointer in (LATEST, BEST):
        p = run_dir / pointer
        if p.is_file():
            keep.add(p.read_text().strip())
    steps = sorted(p.name for p in run_dir.glob("step-*") if p.is_dir())
    keep.update(steps[-keep_last:] if keep_last > 0 else [])
    for name in steps:
        if name not in keep:
            shutil.rmtree(run_dir / name, ignore_errors=True)
    for stale in run_dir.glob(".staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
