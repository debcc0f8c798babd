"""``prg demo``: the main job on the embedded default."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)  # never wrap "file:line: message" lines


def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Output folder (reused if present)."),
    n: int = typer.Option(8, "--n", min=1, max=200, help="Number of scenes."),
    embedder: str = typer.Option("minilm", help="Text embedder for the index: minilm or hashing."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", "-c", help="PRG checkpoint: the model answers and grasps (default: annotations only)."
    ),
) -> None:
    """Make scenes, index the regulations, retrieve each instruction's rule, draw the grasp on the right tool."""
    from prg.demo import run_demo

    res = run_demo(out, n=n, embedder=embedder, checkpoint=checkpoint)
    for r in res.records:
        mark = "[green]✓[/green]" if r["gold_in_top5"] else "[red]✗[/red]"
        console.print(f"{mark} {escape(r['id'])}: {escape(r['instruction'])}", highlight=False)
        rule = r["retrieved"][0] if r["retrieved"] else "-"
        target = ", ".join(r["targets"]) or "not on the table"
        console.print(f"    rule: {escape(rule)}   target: {escape(target)}", highlight=False)
        if "prediction" in r:
            p = r["prediction"]
            cited = ", ".join(c["id"] for c in p["citations"]) or "nothing"
            console.print(
                f"    model: {escape(p['answer'][:120])}   cites: {escape(cited)}   grasps: {len(p['grasps'])}",
                highlight=False,
            )
    found = sum(r["gold_in_top5"] for r in res.records)
    console.print(
        f"the instruction's rule is among the top 5 clauses for {found}/{len(res.records)} instructions; "
        f"pictures and result.json in {escape(str(out))}"
    )
