"""``prg demo``: the main job on the embedded default."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def demo(out: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Output folder.")) -> None:
    """Run the main job on built-in data and write pictures and a JSON result to OUT."""
    from prg.demo import run_demo

    res = run_demo(out)
    result = json.loads(res.result_json.read_text())
    console.print(f"dataset: {res.n_records} record(s) converted and validated in {escape(str(out / 'dataset'))}")
    console.print(f"grasp maps round trip: top-3 decoded grasps correct = {result['decoded_grasp_success']}")
    p = result["top_grasp_pose"]["pose"]["position"]
    console.print(f"top grasp as a 6-DoF pose (camera frame, m): x={p['x']:.3f} y={p['y']:.3f} z={p['z']:.3f}, "
                  f"opening {result['top_grasp_pose']['width']:.3f} m")  # fmt: skip
    console.print(f"wrote {escape(str(res.overlay))}, {escape(str(res.maps))}, {escape(str(res.result_json))}")
