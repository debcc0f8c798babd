"""Export a run's newest checkpoint as a shippable model folder (bf16 tensors, with how it was made).

    python -m prg.train.export RUN_DIR OUT_DIR [--dtype bfloat16]

``OUT_DIR`` is a plain PRG checkpoint (``prg.model.checkpoint``) plus ``training.json``: the run's config, its
last metrics, the data seed and the git commit, so a shipped model says what made it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

from prg.train.state import latest_checkpoint

__all__ = ["export_run"]


def _commit() -> str | None:
    """``$PRG_COMMIT`` when set (a copied tree whose ``.git`` is not the tree's: a lent GPU host got a stale HEAD);
    else ``git rev-parse HEAD``, with ``-dirty`` appended when tracked files differ from it (the HEAD alone would
    claim code the run did not have)."""
    override = os.environ.get("PRG_COMMIT", "").strip()
    if override:
        return override

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        head = git("rev-parse", "HEAD")
        dirty = bool(head) and bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (head + "-dirty" if dirty else head) or None


def export_run(
    run_dir: str | Path, out: str | Path, dtype: str = "bfloat16", extra: dict[str, Any] | None = None
) -> Path:
    """Write the newest checkpoint of ``run_dir`` to ``out`` with tensors stored as ``dtype``."""
    from prg.fsutil import atomic_write_text
    from prg.model.checkpoint import from_pretrained, save_pretrained

    run = Path(run_dir)
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise FileNotFoundError(f"{run} holds no complete checkpoint")
    model = from_pretrained(ckpt / "model")
    out = Path(out)
    save_pretrained(model, out, dtype=getattr(torch, dtype))
    trainer = json.loads((ckpt / "trainer.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    info = {
        "run": run.name,
        "checkpoint": ckpt.name,
        "step": trainer["step"],
        "metrics": trainer.get("metrics", {}),
        "data_seed": (config.get("data") or {}).get("seed"),
        "commit": _commit(),
        "dtype": dtype,
        "config": config,
        **(extra or {}),
    }
    atomic_write_text(out / "training.json", json.dumps(info, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--note", action="append", default=[], help="key=value recorded in training.json")
    args = ap.parse_args(argv)
    extra = dict(n.split("=", 1) for n in args.note)
    print(export_run(args.run_dir, args.out_dir, args.dtype, extra))


if __name__ == "__main__":
    main()
