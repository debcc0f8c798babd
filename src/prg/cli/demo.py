"""``prg demo``: the main job on the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    from prg.demo import TOP_K, run_demo
    from prg.pipeline import SHIPPED_CHECKPOINT

    if annotations_only:
        checkpoint = None
    elif checkpoint is None and (SHIPPED_CHECKPOINT / "config.json").is_file():
        checkpoint = SHIPPED_CHECKPOINT
    res = run_demo(out, n=n, embedder=embedder, checkpoint=checkpoint)
    console.print(
        f"✓ / ✗: a clause stating the instruction's rule is / is not among the top {TOP_K} retrieved; "
        "'rule:' names that clause and its rank (else the top hit)",
        highlight=False,
    )
    for r in res.records:
        _print_record(r)
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
        f"the instruction's rule is among the top {TOP_K} clauses for {found}/{len(res.records)} instructions; "
        f"pictures and result.json in {escape(str(out))}",
        highlight=False,
    )


def _print_record(r: dict[str, Any]) -> None:
    """One scene: the mark and the clause it is about (the one the picture quotes), the target, the model's answer."""
    from prg.viz import shorten

    mark = "[green]✓[/green]" if r["gold_in_top5"] else "[red]✗[/red]"
    console.print(f"{mark} {escape(r['id'])}: {escape(r['instruction'])}", highlight=False)
    if r.get("rule_rank") is not None:
        rule = f"{r['rule_clause']} (rank {r['rule_rank']} of {len(r['retrieved'])})"
    elif r["retrieved"]:
        rule = f"not in the top {len(r['retrieved'])}; top hit {r['retrieved'][0]}"
    else:
        rule = "nothing retrieved"
    target = ", ".join(r["targets"]) or "not on the table"
    console.print(f"    rule: {escape(rule)}   target: {escape(target)}", highlight=False)
    if "prediction" in r:
        p = r["prediction"]
        cited = ", ".join(c["id"] for c in p["citations"]) or "nothing"
        console.print(
            f"    model: {escape(shorten(p['answer'], 120))}   cites: {escape(cited)}   grasps: {len(p['grasps'])}",
            highlight=False,
        )
