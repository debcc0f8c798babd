"""Training of the scene tagger (:class:`~prg.retrieval.image.SceneTagger`) on a PRG dataset's object masks.

Crops come from ground-truth masks (:func:`prg.eval.tagger.gt_tool_masks`, the same ground truth evaluation
uses), plus proposals that overlap no annotated object as :data:`~prg.retrieval.image.OTHER`. The class list and
display names are taken from the training data and saved in the tagger's ``config.json``.
Design and limits: ``docs/retrieval_image.md``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prg.data.dataset import load_depth, load_image
from prg.data.schema import PRGRecord
from prg.eval.tagger import gt_tool_masks, split_records
from prg.retrieval.image import OTHER, SceneTagger, canonical_crop, propose_objects
from prg.retrieval.image_model import TaggerConfig, TaggerNet

__all__ = ["train_tagger"]


def _collect(root: Path, recs: list[PRGRecord], size: int) -> tuple[np.ndarray, np.ndarray, list[str], Counter[str]]:
    """Crops ``[N x 4 x S x S]``, size features ``[N x 2]`` and labels: GT-mask crops of every object, plus
    proposals that overlap no annotated object (clutter, junk) as :data:`OTHER`, so the tagger learns to ignore
    them."""
    crops: list[np.ndarray] = []
    extra: list[np.ndarray] = []
    labels: list[str] = []
    names: Counter[str] = Counter()

    def _add(crop_extra: tuple[np.ndarray, np.ndarray], label: str) -> None:
        crops.append(crop_extra[0])
        extra.append(crop_extra[1])
        labels.append(label)

    for rec in recs:
        rgb = load_image(root, rec)
        gts = gt_tool_masks(root, rec)
        for cat, name, m in gts:
            if m.sum() < 10:
                continue
            _add(canonical_crop(rgb, m, size), cat)
            names[f"{cat}\x1f{name}"] += 1
        any_gt = np.zeros(rgb.shape[:2], dtype=bool)
        for _, _, m in gts:
            any_gt |= m
        for r in propose_objects(rgb, load_depth(root, rec)):
            if (r.mask & any_gt).sum() < 0.1 * r.mask.sum():
                _add(canonical_crop(rgb, r.mask, size), OTHER)
    return np.stack(crops), np.stack(extra), labels, names


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 180° turns (the principal axis has no sign), mirror, brightness and per-channel colour gain."""
    b = x.shape[0]
    turn = torch.rand(b, generator=gen) < 0.5
    x = torch.where(turn[:, None, None, None], x.flip(2, 3), x)
    mirror = torch.rand(b, generator=gen) < 0.5
    x = torch.where(mirror[:, None, None, None], x.flip(2), x)
    gain = (0.85 + 0.3 * torch.rand(b, 1, 1, 1, generator=gen)) * (0.95 + 0.1 * torch.rand(b, 3, 1, 1, generator=gen))
    return torch.cat([(x[:, :3] * gain).clamp(0, 1), x[:, 3:]], dim=1)


def train_tagger(
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    splits: Sequence[str] = ("train",),
    epochs: int = 15,
    seed: int = 0,
    progress: bool = True,
    batch_size: int = 128,
    lr: float = 3e-3,
    crop: int = 64,
    max_steps: int | None = None,
    device: str | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Train a :class:`SceneTagger` on GT-mask crops of ``splits``; save it to ``out_dir`` if given.

    Returns metrics (training size, final loss and accuracy, seconds) and, under ``"tagger"``, the tagger itself.
    Deterministic for a seed on CPU. ``threads`` caps torch's CPU threads while training (None = leave as is):
    for a net this small one thread is as fast as two on an idle machine and many times faster on a busy one.
    """
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(dataset_dir, out_dir, splits, epochs, seed, progress, batch_size, lr, crop, max_steps, device)
    finally:
        torch.set_num_threads(old_threads)


def _train(
    dataset_dir: str | Path,
    out_dir: str | Path | None,
    splits: Sequence[str],
    epochs: int,
    seed: int,
    progress: bool,
    batch_size: int,
    lr: float,
    crop: int,
    max_steps: int | None,
    device: str | None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    root = Path(dataset_dir)
    recs = split_records(root, splits)
    if not recs:
        raise ValueError(f"{root}: no records in splits {list(splits)}")
    crops, extra, labels, name_counts = _collect(root, recs, crop)
    vocab = sorted(set(labels))
    names: dict[str, str] = {}
    for key, _ in name_counts.most_common():  # the most common name per category
        cat, name = key.split("\x1f")
        names.setdefault(cat, name)
    cfg = TaggerConfig(labels=vocab, names=names, crop=crop)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net = TaggerNet(cfg).to(dev)
    y = torch.tensor([vocab.index(lbl) for lbl in labels])
    x_all, e_all = torch.from_numpy(crops), torch.from_numpy(extra) * 4.0
    n = len(y)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    total = min(epochs * steps_per_epoch, max_steps) if max_steps else epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total, 1), pct_start=0.15)
    lossf = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    step, losses, correct, seen = 0, [], 0, 0
    net.train()
    while step < total:
        perm = torch.randperm(n, generator=gen)
        correct = seen = 0
        for i in range(0, n, batch_size):
            if step >= total:
                break
            idx = perm[i : i + batch_size]
            xb = _augment(x_all[idx].float() / 255.0, gen).to(dev)
            logits = net(xb, e_all[idx].to(dev))
            loss = lossf(logits, y[idx].to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1).cpu() == y[idx]).sum())
            seen += len(idx)
        if progress:
            print(
                f"epoch {step / steps_per_epoch:5.1f}  loss {np.mean(losses[-steps_per_epoch:]):.3f}  "
                f"acc {correct / max(seen, 1):.3f}",
                flush=True,
            )
    tagger = SceneTagger(cfg, net.eval(), dev)
    if out_dir is not None:
        tagger.save(out_dir)
    return {
        "n_records": len(recs),
        "n_crops": n,
        "n_other": labels.count(OTHER),
        "n_labels": len(vocab),
        "steps": step,
        "final_loss": float(np.mean(losses[-steps_per_epoch:])) if losses else float("nan"),
        "train_batch_acc": correct / max(seen, 1),
        "seconds": time.perf_counter() - t0,
        "tagger": tagger,
    }
