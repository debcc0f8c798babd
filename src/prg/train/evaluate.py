"""Score a trained checkpoint on several splits of a PRG dataset with the training validator (through the pipeline).

    python -m prg.train.evaluate CHECKPOINT --dataset DS [--splits val test zero_shot_task zero_shot_industry]
        [--n 128] [--batch-size 32] [--out metrics.json]

Per split: the loss, target recognition, grasp success, format and abstention rates on the first ``n`` records,
whose prompts hold the retrieval cache's documents (what the real retriever returned for each record, as in
training). This is the recipe's own check; the full evaluation with baselines and a report is ``prg eval``'s job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["evaluate_splits", "main"]

SPLITS = ("val", "test", "zero_shot_task", "zero_shot_industry")


def evaluate_splits(
    model: Any, dataset: str | Path, splits: tuple[str, ...] = SPLITS, n: int = 128, batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """``{split: metrics}`` (splits the dataset lacks are left out)."""
    from prg.train.config import load_config
    from prg.train.data import make_validator

    out: dict[str, dict[str, float]] = {}
    for split in splits:
        cfg = load_config(
            None,
            [f"data.sources=[{{path: '{dataset}', kind: prg}}]", f"data.val_split={split}",
             f"data.val_records={n}", f"batch_size={batch_size}"],
        )  # fmt: skip
        validate = make_validator(cfg)
        if validate is None:
            continue
        t = time.perf_counter()
        out[split] = {**validate(model, 0), "seconds": time.perf_counter() - t}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--splits", nargs="+", default=list(SPLITS))
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    from prg.model.checkpoint import from_pretrained

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = from_pretrained(args.checkpoint).to(device)
    result = evaluate_splits(model, args.dataset, tuple(args.splits), args.n, args.batch_size)
    if not result:
        print(f"error: {args.dataset} has none of the splits {args.splits}", file=sys.stderr)
        return 1
    print(f"{'split':<20}{'n':>5}{'target rec.':>12}{'grasp succ.':>12}{'format':>8}{'loss':>8}")
    for split, m in result.items():
        print(
            f"{split:<20}{m.get('n', 0):>5.0f}{m.get('target_recognition', 0):>12.3f}"
            f"{m.get('grasp_success', float('nan')):>12.3f}{m.get('format_ok', 0):>8.3f}{m.get('val_loss', 0):>8.3f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "splits": result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
