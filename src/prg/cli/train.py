"""``prg train``: one training run from a YAML recipe (``configs/train/*.yaml``), resumable."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)  # never wrap "file:line: message" lines


def train(
    config: Path = typer.Option(None, "--config", "-c", help="YAML recipe (configs/train/*.yaml)."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a key: --set steps=200 --set optim.lr=1e-4."),
    resume: Path = typer.Option(
        None, "--resume", help="Run folder to continue (its config.yaml is used unless --config is given)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a PRG model; checkpoints, metrics.jsonl and TensorBoard logs go to OUTPUT_DIR/NAME."""
    from prg.train.config import ConfigError, load_config
    from prg.train.trainer import Trainer

    if config is None and resume is None:
        raise typer.BadParameter("give --config FILE (or --resume RUN_DIR)")
    sets = list(overrides or [])
    if resume is not None:
        if not resume.is_dir():
            raise ConfigError(f"--resume: {resume} is not a run folder")
        if config is None:
            config = resume / "config.yaml"
        # the run folder is where the checkpoints are, whatever the config says
        sets += [f"output_dir={resume.parent}", f"name={resume.name}"]
    cfg = load_config(config, sets)
    _check_data(cfg)
    result = Trainer(cfg, resume=resume is not None, progress=not quiet).run()
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun / accelerate launch only the main process reports
        return
    last = f"{result.losses[-1]:.4f}" if result.losses else "-"
    console.print(
        f"trained {result.steps} step(s) into {escape(str(result.run_dir))}; last loss {last}; "
        f"checkpoint {escape(str(result.last_checkpoint))}",
        highlight=False,
    )


def _check_data(cfg: object) -> None:
    """Every dataset folder validates before any model is built (a bad record fails in seconds, not hours)."""
    from prg.data.validate import validate_dataset
    from prg.train.config import ConfigError, TrainConfig

    assert isinstance(cfg, TrainConfig)
    done: set[Path] = set()
    for i, src in enumerate(cfg.data.sources):
        if src.kind == "vqa":
            if not Path(src.path).exists():
                raise ConfigError(f"data.sources[{i}].path: {src.path} does not exist")
            continue
        folder = Path(src.path).resolve()
        if folder in done:  # one folder as several sources (records + scene Q&A): validated once
            continue
        done.add(folder)
        report = validate_dataset(src.path)
        if not report.ok:
            first = report.errors[0]
            raise ConfigError(
                f"data.sources[{i}]: {src.path} does not validate ({len(report.errors)} problem(s)); first: {first}"
            )
