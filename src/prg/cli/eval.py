"""``prg eval ...``: measure the parts of the system on a PRG dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Evaluate retrieval (and, with the model, grasping and answers).", no_args_is_help=True)
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
        t = Table(
            title=f"retrieval, mode={r.mode}, level={r.level} "
            f"({r.n_queries} queries, p50 {r.latency_ms_p50:.0f} ms/query)"
        )
        cols = [c for c in r.overall if c not in ("num_queries", "num_skipped")]
        t.add_column("group")
        for c in cols:
            t.add_column(c, justify="right")
        t.add_row("all", *[f"{r.overall[c]:.3f}" for c in cols])
        for name, group in (("split", r.by_split), ("industry", r.by_industry)):
            for g, vals in sorted(group.items()):
                t.add_row(f"{name}={g}", *[f"{vals[c]:.3f}" for c in cols])
        console.print(t)
