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
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", "-c", help="PRG checkpoint that answers and grasps (default: the shipped one)."
    ),
    annotations_only: bool = typer.Option(
        False, "--annotations-only", help="No model: draw the target's annotated grasps."
    ),
) -> None:
    """Make scenes, index the regulations, answer each instruction with the trained model, draw its grasps."""
    from prg.demo import run_demo
    from prg.pipeline import SHIPPED_CHECKPOINT

    if annotations_only:
        checkpoint = None
    elif checkpoint is None and (SHIPPED_CHECKPOINT / "config.json").is_file():
        checkpoint = SHIPPED_CHECKPOINT
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
    scored = [r["score"] for r in res.records if "score" in r]
    if scored:
        on = sum(bool(s["on_target"]) for s in scored)
        ok = sum(bool(s["grasp_success"]) for s in scored)
        console.print(
            f"model ({escape(str(checkpoint))}): top-1 grasp on the target tool in {on}/{len(scored)} scenes, "
            f"passing the rectangle metric in {ok}/{len(scored)} (PRG-Synth, synthetic)",
            highlight=False,
        )
    found = sum(r["gold_in_top5"] for r in res.records)
    console.print(
        f"the instruction's rule is among the top 5 clauses for {found}/{len(res.records)} instructions; "
        f"pictures and result.json in {escape(str(out))}"
    )
