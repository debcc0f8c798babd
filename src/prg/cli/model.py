"""``prg merge``: adapters folded into the base, written as a standalone model folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)  # never wrap "file:line: message" lines


def merge(
    weights: Path = typer.Option(..., "--weights", "-w", help="PRG checkpoint folder with adapters (LoRA or AM)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the standalone merged model."),
    base: Path = typer.Option(
        None, "--base", help="Base LLaVA-HF folder (paper preset); default: the path recorded in the checkpoint."
    ),
    sam: Path = typer.Option(None, "--sam", help="SAM checkpoint (paper preset); default: the recorded path."),
    device: str = typer.Option("cpu", "--device", help="Where to merge: cpu, cuda, cuda:1, ..."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
) -> None:
    """Merge a checkpoint's adapters into its base; the result loads with no adapter code and no base weights."""
    from prg.model.checkpoint import from_pretrained, save_standalone
    from prg.model.merge import merge_in_place

    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"{out} exists and is not empty (pass --force to replace it)")
    overrides: dict[str, str] = {}
    if base is not None:
        overrides["llava"] = str(base)
    if sam is not None:
        overrides["sam"] = str(sam)
    model = from_pretrained(weights, map_location=device, base=overrides or None)
    report = merge_in_place(model)
    save_standalone(model, out, force=force)  # written beside --out, renamed into place when complete
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    exact = "exact" if report.adapters == "lora" else "approximate (mean expert gates)"
    console.print(
        f"merged {report.adapters} ({exact}) into {escape(str(out))}: "
        f"{size / 1e6:.1f} MB; probe logits changed by max {report.max_abs:.3g} "
        f"({report.max_rel:.3g} of the largest logit)",
        highlight=False,
    )
