"""``prg eval ...``: measure the parts of the system on a PRG dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from prg.cli.help import HelpGroup

app = typer.Typer(
    help="Evaluate retrieval (and, with the model, grasping and answers).", no_args_is_help=True, cls=HelpGroup
)
console = Console(soft_wrap=True)  # never wrap "file:line: message" lines


@app.command()
def retrieval(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="PRG dataset folder (gold = referenced clauses)."),
    index: Path = typer.Option(..., "--index", "-i", help="Index folder built from the dataset's documents."),
    splits: list[str] = typer.Option(None, "--split", help="Splits to score (repeat; default: all)."),
    mode: str = typer.Option("text", "--mode", help="text, image (needs a tagger), oracle-seen, or all."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many records per split."),
    industry_filter: bool = typer.Option(False, help="Search only the record's industry."),
    level: str = typer.Option("rule", "--level", help="rule (any clause stating the rule counts) or clause."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the JSON report here."),
) -> None:
    """Recall@k, MRR and nDCG@k per split and per industry."""
    from prg.eval.retrieval import evaluate_retrieval
    from prg.retrieval.retriever import Retriever

    retr = Retriever.open(index)
    modes = ["text", "image", "oracle-seen"] if mode == "all" else [mode]
    if mode == "all" and retr.tagger is None:
        modes.remove("image")
    try:
        reports = [
            evaluate_retrieval(
                dataset,
                retr,
                splits=splits or None,
                mode=m,
                limit=limit,
                industry_filter=industry_filter,
                level=level,
                progress=not as_json,
            )
            for m in modes
        ]
    finally:
        retr.close()
    payload = {"dataset": str(dataset), "index": str(index), "reports": [r.to_json() for r in reports]}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2))
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    for r in reports:
        # a light box, so the group names fit whole in 80 columns; narrower, they fold, never end in "…" (which
        # made "split=zero_shot_industry" and "split=zero_shot_task" the same "split=zero_shot…")
        t = Table(
            title=f"retrieval, mode={r.mode}, level={r.level} "
            f"({r.n_queries} queries, p50 {r.latency_ms_p50:.0f} ms/query)",
            box=box.SIMPLE_HEAD,
            collapse_padding=True,
            pad_edge=False,
        )
        cols = [c for c in r.overall if c not in ("num_queries", "num_skipped")]
        t.add_column("group", overflow="fold")
        for c in cols:
            t.add_column(c, justify="right", no_wrap=True)
        t.add_row("all", *[f"{r.overall[c]:.3f}" for c in cols])
        for name, group in (("split", r.by_split), ("industry", r.by_industry)):
            for g, vals in sorted(group.items()):
                t.add_row(f"{name}={g}", *[f"{vals[c]:.3f}" for c in cols])
        console.print(t)


@app.command("model")
def model_(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="PRG checkpoint folder."),
    dataset: Path = typer.Option(..., "--dataset", "-d", help="PRG dataset folder (records with masks and grasps)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder: metrics.json, report.md, report.html."),
    index: Path = typer.Option(None, "--index", "-i", help="Document index (needed by --docs retrieved)."),
    splits: list[str] = typer.Option(None, "--split", help="Splits to score (repeat; default: all but train)."),
    docs: str = typer.Option(
        "retrieved",
        "--docs",
        help="retrieved (the index), cache (the dataset's retrieval cache, as in training), oracle (the gold "
        "clauses) or none (the no-retrieval ablation).",
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many records per split."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Requests per batched generation."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="modular: retrieve-then-detect without the language model (the checkpoint's stage-1 prompt table "
        "grounds the named tool); detector: a language-free grasp detector (F_dec with one fixed prompt).",
    ),
    sim_result: Path = typer.Option(
        None, "--sim", help="A prg eval sim result (its folder or sim.json): its table joins the report."
    ),
) -> None:
    """Target recognition, grasp success, text quality and citations per split and industry, in a report."""
    from prg.eval.model import DOCS_MODES
    from prg.pipeline import PRGPipeline

    if docs not in DOCS_MODES:
        raise typer.BadParameter(f"--docs must be one of {', '.join(DOCS_MODES)}, got {docs!r}")
    sim = _read_sim(sim_result) if sim_result is not None else None
    if baseline == "detector":
        docs = "none"  # the language-free detector reads nothing
    if docs == "retrieved" and index is None:
        raise typer.BadParameter("--docs retrieved needs --index (or use --docs cache / --docs none)")
    if baseline not in (None, "modular", "detector"):
        raise typer.BadParameter(f"--baseline must be modular or detector, got {baseline!r}")
    if baseline == "modular" and docs not in ("cache", "oracle"):
        raise typer.BadParameter("--baseline modular reads the documents in the request: use --docs cache or oracle")
    pipe: Any
    if baseline == "modular":
        from prg.eval.baselines import ModularBaseline, catalogue_names
        from prg.model.checkpoint import from_pretrained

        pipe = ModularBaseline(from_pretrained(checkpoint, map_location=device), catalogue_names(dataset))
    elif baseline == "detector":
        from prg.eval.baselines import DetectorBaseline
        from prg.model.checkpoint import from_pretrained

        pipe = DetectorBaseline(from_pretrained(checkpoint, map_location=device))
    else:
        pipe = PRGPipeline.from_pretrained(checkpoint, index=index if docs == "retrieved" else None, device=device)
    settings = {"checkpoint": str(checkpoint), "baseline": baseline}
    _score_and_report(pipe, dataset, splits or None, docs, limit, batch_size, out, settings,
                      f"{checkpoint} on {dataset}", sim)  # fmt: skip


def _read_sim(path: Path) -> dict[str, Any]:
    file = path / "sim.json" if path.is_dir() else path
    try:
        sim = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise typer.BadParameter(f"--sim {path}: not a prg eval sim result ({e})") from None
    if not isinstance(sim, dict) or "summary" not in sim:
        raise typer.BadParameter(f"--sim {path}: not a prg eval sim result (no summary)")
    return sim


def _score_and_report(
    pipe: Any,
    dataset: Path,
    splits: list[str] | None,
    docs: str,
    limit: int | None,
    batch_size: int,
    out: Path,
    settings: dict[str, Any],
    title: str,
    sim: dict[str, Any] | None = None,
) -> None:
    """``evaluate_model`` with a progress bar, the report written to ``out``, a summary table printed."""
    from rich.progress import Progress

    from prg.eval.model import evaluate_model
    from prg.eval.report import write_report

    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("evaluating", total=None)
            ev = evaluate_model(pipe, dataset, splits, docs=docs, limit=limit, batch_size=batch_size,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    finally:
        pipe.close()
    ev.settings.update(settings)
    paths = write_report(ev, out, sim=sim)
    t = Table(title=f"{title} (docs={docs}, {ev.seconds:.0f} s)")
    keys = {"target_recognition": "target", "grasp_success": "grasp", "format_ok": "format", "cites_rule": "cites",
            "hallucinated_any": "halluc.", "bleu4": "BLEU-4"}  # fmt: skip
    t.add_column("split", overflow="fold")
    t.add_column("n", justify="right")
    for name in keys.values():
        t.add_column(name, justify="right", overflow="fold")
    for s, m in ev.splits.items():
        t.add_row(s, f"{m['n']:.0f}", *[f"{m[k]:.3f}" if k in m else "n/a" for k in keys])
    console.print(t)
    typer.echo(f"wrote {paths['md']}, {paths['html']}, {paths['metrics']}")


@app.command("cases")
def cases(
    cases_file: Path = typer.Argument(..., help="CASES.jsonl: one case per line (docs/evaluation.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (and OUT/dataset, the cases' scenes)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="PRG checkpoint (default: the shipped one)."),
    index: Path = typer.Option(None, "--index", "-i", help="Document index the model retrieves from."),
    docs: str = typer.Option("retrieved", "--docs", help="retrieved (the index) or none (the no-retrieval ablation)."),
    size: int = typer.Option(448, "--size", help="Image side of the composed scenes, pixels."),
    corpus_seed: int = typer.Option(0, "--corpus-seed", help="PRG-Synth corpus the scenes' tools come from."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Requests per batched generation."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Your own cases (instruction, target tool, distractors, gold clause, reference answer): each scene composed
    from the catalogue, then scored with prg eval model's metrics."""
    from prg.eval.cases import CASES_SPLIT, CaseError, build_case_dataset, read_cases
    from prg.pipeline import PRGPipeline, default_checkpoint

    if docs not in ("retrieved", "none"):
        raise typer.BadParameter(f"--docs must be retrieved or none, got {docs!r}")
    if docs == "retrieved" and index is None:
        raise typer.BadParameter("--docs retrieved needs --index (the documents your gold clauses are in)")
    if index is not None and not index.is_dir():
        raise typer.BadParameter(f"--index {index}: no such folder")
    try:
        items = read_cases(cases_file)
        ckpt = checkpoint if checkpoint is not None else default_checkpoint()
        dataset = build_case_dataset(items, out / "dataset", size=size, corpus_seed=corpus_seed, overwrite=True)
    except CaseError as e:
        raise typer.BadParameter(str(e)) from None
    pipe = PRGPipeline.from_pretrained(ckpt, index=index if docs == "retrieved" else None, device=device)
    _score_and_report(pipe, dataset, [CASES_SPLIT], docs, None, batch_size, out,
                      {"checkpoint": str(ckpt), "cases": str(cases_file)}, f"{ckpt} on {cases_file}")  # fmt: skip


@app.command("sim")
def sim(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="PRG-Synth dataset folder (records with scenes/*.xml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder: sim.json, sim.md (and videos/)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="PRG checkpoint for the model's top-1."),
    index: Path = typer.Option(None, "--index", "-i", help="Document index for the model (default: no documents)."),
    splits: list[str] = typer.Option(None, "--split", help="Splits to run (repeat; default: all)."),
    n: int = typer.Option(None, "--n", min=1, help="At most this many records."),
    reference: str = typer.Option("annotated,random,model", "--reference", help="Methods, comma-separated."),
    n_random: int = typer.Option(1, "--n-random", min=1, help="Random grasps per target."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(1, "--workers", min=1, help="Trial processes."),
    max_opening: float = typer.Option(0.14, "--max-opening", min=0.01, help="Gripper opening, metres."),
    video: int = typer.Option(0, "--video", min=0, help="Write a GIF of the first K trials."),
) -> None:
    """Simulated lift success in MuJoCo: annotated grasps, random grasps and the model's top-1, Wilson 95% CIs."""
    from prg.sim.evaluate import evaluate_sim, markdown_table, write_sim_report
    from prg.sim.gripper import GripperConfig
    from prg.sim.trial import TrialConfig

    methods = [m.strip() for m in reference.split(",") if m.strip()]
    predictor = pipe = None
    if "model" in methods:
        from prg.pipeline import PRGPipeline, default_checkpoint

        pipe = PRGPipeline.from_pretrained(checkpoint or default_checkpoint(), index=index)

        def predictor(rec: Any, image: Any, depth: Any, intr: Any) -> list[Any]:
            return pipe(image, rec.instruction, depth, intr).top_grasps()

    cfg = TrialConfig(gripper=GripperConfig(max_opening_m=max_opening))
    try:
        ev = evaluate_sim(dataset, methods, predictor, splits or None, n, cfg, seed, n_random, workers)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    finally:
        if pipe is not None:
            pipe.close()
    ev.settings["checkpoint"] = str(checkpoint) if checkpoint else None
    paths = write_sim_report(ev, out)
    if video:
        from prg.sim.video import write_trial_videos

        paths.update(write_trial_videos(ev.trials[:video], cfg, out / "videos"))
    typer.echo(markdown_table(ev.summary))
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
