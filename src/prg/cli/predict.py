"""``prg predict``: one request (or a JSONL file of them) through the pipeline; text, JSON and an overlay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)  # never wrap "file:line: message" lines
err = Console(stderr=True, soft_wrap=True)


def predict(
    image: Path = typer.Option(None, "--image", "-i", help="Workspace image (PNG, JPEG, ...)."),
    instruction: str = typer.Option(None, "--instruction", "-t", help="What the user asks for."),
    depth: Path = typer.Option(None, "--depth", help="Aligned depth: 16-bit PNG (mm), TIFF or NPY (metres)."),
    intrinsics: str = typer.Option(
        None, "--intrinsics", help='Camera intrinsics: a JSON file or string, {"fx","fy","cx","cy"} or {"K": 3x3}.'
    ),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="PRG checkpoint folder (default: the shipped)."),
    index: Path = typer.Option(None, "--index", help="Document index folder (prg index build)."),
    docs: Path = typer.Option(None, "--docs", help="Documents folder: indexed once and cached (~/.cache/prg)."),
    requests: Path = typer.Option(
        None, "--requests", help="JSONL, one request per line: image, instruction, optional depth, intrinsics."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (one line per request)."),
    overlay: Path = typer.Option(None, "--overlay", help="Write the image with the grasps and the answer here."),
    k_docs: int | None = typer.Option(
        None, "--k-docs", min=0, help="Retrieved clauses shown to the model (default: as many as it was trained with)."
    ),
    k_grasps: int = typer.Option(3, "--k-grasps", min=1, help="Grasps kept per [POSE], best first."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Requests per batched generation (--requests)."),
    embedder: str = typer.Option("minilm", help="Embedder for --docs: minilm (default) or hashing."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Answer an instruction about a workspace image: cited answer, grasps in pixels, 6-DoF poses with depth."""
    from prg.pipeline import PRGInputError, PRGPipeline, default_checkpoint, index_for_docs

    if index is not None and docs is not None:
        raise typer.BadParameter("give --index or --docs, not both")
    if requests is None and (image is None or instruction is None):
        raise typer.BadParameter("give --image and --instruction, or --requests FILE.jsonl")
    if requests is not None and (image is not None or instruction is not None):
        raise typer.BadParameter("--requests replaces --image/--instruction; give one or the other")
    batch = _read_requests(requests) if requests is not None else [_request(image, instruction, depth, intrinsics)]
    if docs is not None:
        index = index_for_docs(docs, embedder=embedder)
    ckpt = checkpoint if checkpoint is not None else default_checkpoint()
    settings: dict[str, int] = {"k_grasps": k_grasps} if k_docs is None else {"k_grasps": k_grasps, "k_docs": k_docs}
    pipe = PRGPipeline.from_pretrained(ckpt, index=index, device=device, **settings)
    try:
        results = []
        for start in range(0, len(batch), batch_size):
            try:
                results += pipe.batch(batch[start : start + batch_size])
            except PRGInputError as e:
                raise PRGInputError(f"{requests}: {e}" if requests is not None else str(e)) from None
    finally:
        pipe.close()
    for res in results:
        if as_json or requests is not None:
            typer.echo(res.model_dump_json())
        else:
            _print(res)
    if overlay is not None:
        from prg.viz import result_overlay

        overlay.parent.mkdir(parents=True, exist_ok=True)
        result_overlay(batch[0].image, results[0]).save(overlay)
        if not as_json and requests is None:
            console.print(f"overlay: {escape(str(overlay))}", highlight=False)


def _request(image: Path, instruction: str, depth: Path | None, intrinsics: Any) -> Any:
    from prg.pipeline import PRGRequest, read_depth, read_image, read_intrinsics

    intr = None
    if intrinsics is not None:
        intr = read_intrinsics(intrinsics) if isinstance(intrinsics, str) else read_intrinsics(json.dumps(intrinsics))
    return PRGRequest(read_image(image), instruction, read_depth(depth) if depth is not None else None, intr)


def _read_requests(path: Path) -> list[Any]:
    from prg.pipeline import PRGInputError

    if not path.is_file():
        raise PRGInputError(f"{path}: no such requests file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise PRGInputError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or "image" not in obj or "instruction" not in obj:
            raise PRGInputError(f"{path}:{n}: a request needs 'image' and 'instruction'")
        try:
            img = _relative(path.parent, obj["image"])
            depth = _relative(path.parent, obj.get("depth"))
            out.append(_request(img, str(obj["instruction"]), depth, obj.get("intrinsics")))
        except PRGInputError as e:
            raise PRGInputError(f"{path}:{n}: {e}") from None
    if not out:
        raise PRGInputError(f"{path}: no requests in the file")
    return out


def _relative(base: Path, p: Any) -> Any:
    """A path from a requests file: absolute, or relative to the file's folder."""
    return None if p is None else (Path(p) if Path(p).is_absolute() else base / str(p))


def _print(res: Any) -> None:
    from prg.viz import shorten

    console.print(f"[bold]answer:[/bold] {escape(res.answer)}", highlight=False)
    for c in res.citations:
        page = f" (p. {c.page})" if c.page else ""
        console.print(f"  cites [cyan]{escape(c.id)}[/cyan]{page}: {escape(shorten(c.text, 200))}", highlight=False)
    for u in res.unresolved_citations:
        console.print(f"  [red]cites {escape(u)}, which was not retrieved[/red]", highlight=False)
    if not res.citations and res.retrieved:
        console.print(f"  (cites nothing; retrieved: {escape(', '.join(c.id for c in res.retrieved))})")
    if res.seen_tools:
        console.print(f"  seen on the table: {escape(', '.join(res.seen_tools))}", highlight=False)
    if not res.grasps:
        console.print("  no grasp (the answer has no [POSE])")
    for i, grasps in enumerate(res.grasps, start=1):
        if not grasps:
            console.print(f"  [POSE] {i}: no grasp scored above the decoder's threshold")
        for j, g in enumerate(grasps, start=1):
            console.print(
                f"  grasp {i}.{j}: x={g.x:.1f} y={g.y:.1f} width={g.width:.1f} height={g.height:.1f} "
                f"angle={g.angle:.3f} rad score={g.score:.3f}",
                highlight=False,
            )
        pose = res.poses[i - 1] if i - 1 < len(res.poses) else None
        if pose is not None:
            p, q = pose.pose["position"], pose.pose["orientation"]
            console.print(
                f"  pose {i}: position ({p['x']:.3f}, {p['y']:.3f}, {p['z']:.3f}) m, orientation "
                f"({q['x']:.3f}, {q['y']:.3f}, {q['z']:.3f}, {q['w']:.3f}), opening {pose.width * 1000:.0f} mm",
                highlight=False,
            )
    console.print(f"  time: {res.timings_ms.get('total', 0.0):.0f} ms", style="dim")
