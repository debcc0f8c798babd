"""``prg data ...``: convert, validate and look at datasets."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prg.cli.help import HelpGroup

app = typer.Typer(help="Convert, validate and visualise PRG dataset folders.", no_args_is_help=True, cls=HelpGroup)
console = Console(soft_wrap=True)  # never wrap "file:line: message" lines
err = Console(stderr=True, soft_wrap=True)

_FORMAT_HELP = "Source layout: cornell, jacquard or reasongrasp (see docs/readers.md)."


@app.command()
def convert(
    src: Path = typer.Argument(..., help="Folder of the source dataset."),
    dst: Path = typer.Argument(..., help="Output PRG dataset folder."),
    fmt: str = typer.Option(..., "--format", "-f", help=_FORMAT_HELP),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset in DST."),
    val_fraction: float = typer.Option(0.0, min=0.0, max=0.5, help="Share of items put in the val split."),
    test_fraction: float = typer.Option(0.0, min=0.0, max=0.5, help="Share of items put in the test split."),
) -> None:
    """Convert a Cornell, Jacquard or reason-grasp folder into a PRG dataset; bad items are skipped and counted."""
    from prg.data.readers import convert as run_convert

    report = run_convert(fmt, src, dst, overwrite=overwrite, val_fraction=val_fraction, test_fraction=test_fraction)
    for w in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False)
    console.print(
        f"converted {report.n_records} record(s) into {escape(str(dst))}; skipped {report.n_skipped} item(s)"
        + (f" with {len(report.warnings)} warning(s)" if report.warnings else ""),
        highlight=False,
    )
    if report.n_records == 0:
        err.print("[red]error:[/red] nothing was converted")
        raise typer.Exit(1)


@app.command()
def validate(
    root: Path = typer.Argument(..., help="A PRG dataset folder (or a source folder with --format)."),
    fmt: str = typer.Option("prg", "--format", "-f", help="prg (default), or a source layout to check raw files."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report every problem with file and line; exit status 1 when there is any error."""
    from prg.data.readers import known_formats

    if fmt not in ("prg", *known_formats()):
        err.print(f"[red]error:[/red] unknown --format {escape(repr(fmt))}; choose from: "
                  f"{', '.join(('prg', *known_formats()))}", highlight=False)  # fmt: skip
        raise typer.Exit(2)
    if fmt != "prg":
        _validate_source(root, fmt, as_json)
        return
    from prg.data.validate import validate_dataset

    rep = validate_dataset(root)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "root": rep.root,
                    "ok": rep.ok,
                    "records": rep.n_records,
                    "splits": dict(rep.splits),
                    "industries": dict(rep.industries),
                    "problems": [p.__dict__ for p in rep.problems],
                },
                indent=2,
            )
        )
    else:
        for p in rep.problems:
            (err if p.severity == "error" else console).print(escape(str(p)), highlight=False)
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(rep.splits.items())) or "none"
        status = "[green]ok[/green]" if rep.ok else f"[red]{len(rep.errors)} error(s)[/red]"
        console.print(f"{escape(str(root))}: {rep.n_records} record(s) (splits: {summary}) — {status}")
    if not rep.ok:
        raise typer.Exit(1)


def _validate_source(root: Path, fmt: str, as_json: bool) -> None:
    """Check a raw source folder by converting it into a throw-away folder and listing what would be skipped."""
    from prg.data.readers import convert as run_convert

    with tempfile.TemporaryDirectory() as tmp:
        report = run_convert(fmt, root, Path(tmp) / "out", progress=False)
    if as_json:
        typer.echo(json.dumps({"root": str(root), "format": fmt, "ok": not report.warnings,
                               "records": report.n_records, "skipped": report.n_skipped,
                               "problems": report.warnings}, indent=2))  # fmt: skip
    else:
        for w in report.warnings:
            err.print(escape(w), highlight=False)
        console.print(f"{escape(str(root))} ({fmt}): {report.n_records} usable item(s), {report.n_skipped} skipped, "
                      f"{len(report.warnings)} problem(s)", highlight=False)  # fmt: skip
    if report.warnings or report.n_records == 0:
        raise typer.Exit(1)


@app.command()
def show(
    root: Path = typer.Argument(..., help="A PRG dataset folder."),
    record_id: str = typer.Option(None, "--id", help="Record id (default: the first record)."),
    out: Path = typer.Option(Path("overlay.png"), "--out", "-o", help="Where to write the PNG."),
    no_text: bool = typer.Option(False, "--no-text", help="Leave out the instruction/answer caption."),
) -> None:
    """Draw one record's masks and grasps (targets in colour, others grey) with its instruction and answer."""
    from prg.data.dataset import iter_records, read_info
    from prg.viz import record_overlay

    read_info(root)  # "not a folder" / "dataset.json missing" say more than a missing records file
    rec = None
    for r in iter_records(root):
        if record_id is None or r.id == record_id:
            rec = r
            break
    if rec is None:
        err.print(f"[red]error:[/red] no record with id {escape(repr(record_id))} in {escape(str(root))}")
        raise typer.Exit(1)
    img = record_overlay(root, rec, show_text=not no_text)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    console.print(f"wrote {escape(str(out))} ({rec.id})", highlight=False)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset folder (created; resumed if interrupted)."),
    n: int = typer.Option(200, "--n", min=1, help="Number of scenes/records."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same dataset."),
    industries: list[str] = typer.Option(
        None, "--industries", help="Industries to include (repeat the option); default: all four."
    ),
    size: int = typer.Option(448, "--size", min=64, max=2048, help="Image side in pixels."),
    zero_shot_industry: str = typer.Option(
        "home_appliance", "--zero-shot-industry", help="Industry held out entirely ('none' to hold out none)."
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0 = one per CPU core)."),
    backend: str = typer.Option("auto", "--backend", help="Renderer: auto, raster or mujoco."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing PRG-Synth dataset in OUT."),
) -> None:
    """Generate PRG-Synth: scenes, depth, masks, grasps, implicit instructions, cited answers and the corpus."""
    from prg.data.schema import INDUSTRIES
    from prg.data.synth.generate import SynthConfig, generate

    cfg = SynthConfig(
        n=n,
        seed=seed,
        industries=tuple(industries) if industries else INDUSTRIES,
        size=size,
        zero_shot_industry=None if zero_shot_industry.lower() == "none" else zero_shot_industry,
        backend=backend,
    )
    rep = generate(out, cfg, workers=workers or None, overwrite=overwrite)
    splits = ", ".join(f"{k}: {v}" for k, v in sorted(rep.splits.items()))
    resumed = f" ({rep.n_resumed} resumed)" if rep.n_resumed else ""
    console.print(
        f"wrote {rep.n_records} record(s){resumed} to {escape(str(out))} in {rep.seconds:.1f} s — {splits}",
        highlight=False,
    )


@app.command()
def sheet(
    root: Path = typer.Argument(..., help="A PRG dataset folder."),
    out: Path = typer.Option(Path("contact_sheet.png"), "--out", "-o", help="Where to write the PNG."),
    n: int = typer.Option(16, "--n", min=1, max=64, help="How many records."),
    cols: int = typer.Option(4, "--cols", min=1, help="Columns."),
    cell: int = typer.Option(320, "--cell", min=64, help="Cell size in pixels."),
) -> None:
    """A contact sheet of the first N records' overlays (grasps on targets, instruction and answer)."""
    from itertools import islice

    from prg.data.dataset import iter_records, read_info
    from prg.viz import contact_sheet, record_overlay

    read_info(root)  # "not a folder" / "dataset.json missing" say more than a missing records file
    images = [record_overlay(root, r) for r in islice(iter_records(root), n)]
    if not images:
        err.print(f"[red]error:[/red] {escape(str(root))} holds no records")
        raise typer.Exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(images, cols=cols, cell=cell).save(out)
    console.print(f"wrote {escape(str(out))} ({len(images)} records)", highlight=False)


@app.command()
def compose(
    objects: str = typer.Option(
        None, "--objects", help='Tools on the table, comma-separated names or aliases: "voltage detector,pH meter".'
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Output dataset folder (one record)."),
    seed: int = typer.Option(0, "--seed", help="Layout, lighting and wording seed: the same seed, the same bytes."),
    size: int = typer.Option(448, "--size", help="Image side in pixels (64-2048)."),
    corpus_seed: int = typer.Option(0, "--corpus-seed", help="Seed of the corpus the answer cites (synth --seed)."),
    backend: str = typer.Option("auto", "--backend", help="Renderer: auto, raster or mujoco."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset in OUT."),
    list_tools: bool = typer.Option(False, "--list", help="Print the catalogue's tool names and aliases, then stop."),
) -> None:
    """One PRG-Synth scene with exactly these tools: image, depth, masks, grasps, MJCF, instruction and answer."""
    from prg.data.dataset import DatasetError
    from prg.data.synth.compose import ComposeError, compose_scene

    if list_tools:
        from prg.data.schema import INDUSTRIES
        from prg.data.synth.catalogue import types_for_industry

        for ind in INDUSTRIES:
            console.print(f"{ind}:", highlight=False)
            for t in types_for_industry(ind):
                aliases = f" ({', '.join(t.aliases)})" if t.aliases else ""
                console.print(f"  {escape(t.name)}{escape(aliases)}", highlight=False)
        return
    if objects is None or out is None:
        err.print("[red]error:[/red] --objects and --out are required (--list shows the tools)", highlight=False)
        raise typer.Exit(2)
    try:
        rec = compose_scene(objects, seed, size, out=out, overwrite=overwrite, corpus_seed=corpus_seed,
                            backend=backend)  # fmt: skip
    except (ComposeError, DatasetError) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(1) from None
    target = ", ".join(rec.object(t).name for t in rec.targets)
    rule = rec.meta.get("rule") or "none"
    console.print(f"wrote {escape(str(out))} ({rec.id}, {len(rec.objects)} object(s), rule {rule}, target: {target})",
                  highlight=False)  # fmt: skip
    console.print(f"instruction: {escape(rec.instruction)}", highlight=False)


@app.command("retrieval-cache")
def retrieval_cache(
    dataset: Path = typer.Argument(..., help="PRG dataset folder."),
    index: Path = typer.Option(..., "--index", help="Document index folder (prg index build)."),
    k: int = typer.Option(5, "-k", min=1, help="Chunks per record (the prompts' k_docs)."),
    name: str = typer.Option("default", "--name", help="Cache name: DATASET/retrieval/NAME.jsonl."),
    text_only: bool = typer.Option(False, "--text-only", help="Ignore the index's scene tagger."),
) -> None:
    """Retrieve once for every record and cache it beside the dataset: training prompts hold what the real
    retriever returns (docs/training_data.md)."""
    from prg.data.torch.build_cache import main as build

    args = [str(dataset), "--index", str(index), "-k", str(k), "--name", name] + (["--text-only"] if text_only else [])
    build(args)
