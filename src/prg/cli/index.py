"""``prg index ...``: build, update, query and inspect a regulation document index."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prg.cli.help import HelpGroup

app = typer.Typer(help="Build, update, query and inspect document indexes.", no_args_is_help=True, cls=HelpGroup)
console = Console(soft_wrap=True)  # never wrap "file:line: message" lines
err = Console(stderr=True, soft_wrap=True)

#: exit status of build/add when the index was written but some input files were skipped
EXIT_SKIPPED = 3
#: exit status of build/add when no input file could be ingested (nothing was written)
EXIT_NOTHING = 4


def _fail(message: str, status: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(status)


def _report(rep: object, action: str) -> None:
    from prg.retrieval.build import BuildReport

    assert isinstance(rep, BuildReport)
    for path, reason in rep.skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(path)}: {escape(reason)}", highlight=False)
    for w in rep.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False)
    if rep.documents == 0:  # the warning above says so
        raise typer.Exit(EXIT_NOTHING)
    rate = rep.chunks / rep.seconds if rep.seconds else 0.0
    console.print(
        f"{action} {rep.documents} document(s), {rep.chunks} chunk(s) into {escape(rep.index)} in {rep.seconds:.1f} s "
        f"(ingest {rep.seconds_ingest:.1f} s, embed {rep.seconds_embed:.1f} s, index {rep.seconds_index:.1f} s; "
        f"{rate:.0f} chunks/s)"
        + (f"; removed {rep.removed_documents} stale chunk(s)" if rep.removed_documents else ""),
        highlight=False,
    )
    if rep.skipped:
        err.print(f"{len(rep.skipped)} file(s) skipped: exit status {EXIT_SKIPPED}")
        raise typer.Exit(EXIT_SKIPPED)


@app.command()
def build(
    docs: list[Path] = typer.Argument(..., help="Document files or folders (Markdown, text, PDF, images)."),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder (created, or synchronised if it exists)."),
    embedder: str = typer.Option("minilm", help="Text embedder: minilm (default) or hashing."),
    backend: str = typer.Option("lancedb", help="Vector store: lancedb (embedded) or qdrant."),
    industry: str = typer.Option(None, help="Industry of all documents (default: from folders / index.json)."),
) -> None:
    """Ingest and index documents; documents no longer under DOCS are removed. Exit 3 if files were skipped, 4 if
    no document could be ingested (then nothing is written)."""
    from prg.retrieval.build import build_index

    _report(build_index(docs, out, embedder=embedder, backend=backend, industry=industry), "indexed")


@app.command()
def add(
    index: Path = typer.Argument(..., help="Index folder."),
    docs: list[Path] = typer.Argument(..., help="Document files or folders to add or replace."),
    industry: str = typer.Option(None, help="Industry of these documents."),
) -> None:
    """Add documents to an index (a document already there is replaced). Exit 3 if files were skipped, 4 if no
    document could be ingested."""
    from prg.retrieval.build import add_documents

    _report(add_documents(docs, index, industry=industry), "added")


@app.command()
def remove(
    index: Path = typer.Argument(..., help="Index folder."),
    doc_ids: list[str] = typer.Argument(..., help="Document ids to remove."),
) -> None:
    """Remove documents by id."""
    from prg.retrieval.index import DocumentIndex

    with DocumentIndex.open(index) as idx:
        unknown = [d for d in doc_ids if d not in idx.documents()]
        if unknown:
            _fail(f"not in the index: {', '.join(unknown)}")
        n = idx.remove(doc_ids)
    console.print(f"removed {len(doc_ids)} document(s), {n} chunk(s)")


@app.command()
def query(
    index: Path = typer.Argument(..., help="Index folder."),
    text: str = typer.Argument(..., help="The instruction or question."),
    image: Path = typer.Option(None, "--image", help="Scene image: tools seen on it join the query."),
    depth: Path = typer.Option(None, "--depth", help="Depth image (16-bit PNG in mm, TIFF or NPY in m)."),
    k: int = typer.Option(5, "--k", min=1, max=100, help="How many chunks."),
    industry: str = typer.Option(None, "--industry", help="Only this industry's documents."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Retrieve the chunks that answer TEXT, with what an answer needs to cite them."""
    from prg.retrieval.retriever import Retriever

    rgb = dep = None
    if image is not None:
        rgb, dep = _load_scene(image, depth)
    retr = Retriever.open(index)
    try:
        if not retr.index.documents():
            _fail(f"the index {index} is empty (no documents): add some with `prg index add {index} DOCS`")
        if rgb is not None and retr.tagger is None:
            err.print("[yellow]note:[/yellow] this index has no scene tagger (prg index train-tagger); image ignored")
        res = retr.search(text, k=k, image=rgb, depth=dep, industry=industry)
    finally:
        retr.close()
    if as_json:
        typer.echo(json.dumps({
            "query": res.query, "seen": res.seen, "timings_ms": res.timings_ms,
            "hits": [{"rank": h.rank, "score": h.score, "citation": h.chunk.citation(), **h.chunk.to_dict()}
                     for h in res.hits],
        }, indent=2, ensure_ascii=False))  # fmt: skip
        return
    if res.seen:
        console.print(f"seen on the table: {escape(', '.join(res.seen))}", highlight=False)
    for h in res.hits:
        console.print(f"[bold]{h.rank}. {escape(h.chunk.citation())}[/bold]  [dim]{escape(h.chunk.section)}[/dim]")
        # the whole chunk, indented: a chunk is at most a clause (~1200 characters), and a cut one hides the rule
        console.print(textwrap.indent(escape(h.chunk.text), "   "), highlight=False)


def _load_scene(image: Path, depth: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    from PIL import Image

    with Image.open(image) as im:
        rgb = np.asarray(im.convert("RGB"))
    dep = None
    if depth is not None:
        from prg.data.dataset import load_depth
        from prg.data.schema import PRGRecord

        fake = PRGRecord(id="q", image=image.name, depth=str(depth.resolve()), instruction="q", answer="")
        dep = load_depth("/", fake)
    return rgb, dep


@app.command()
def stats(
    index: Path = typer.Argument(..., help="Index folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Chunks, documents, industries, size on disk, backend and embedder."""
    from prg.retrieval.index import DocumentIndex

    with DocumentIndex.open(index) as idx:
        s = idx.stats()
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    t = Table(show_header=False)
    for key, val in s.items():
        t.add_row(key, escape(json.dumps(val) if isinstance(val, dict) else str(val)))
    console.print(t)


@app.command("train-tagger")
def train_tagger_cmd(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="PRG dataset with object masks (e.g. PRG-Synth)."),
    index: Path = typer.Option(None, "--index", "-i", help="Save into INDEX/tagger, where queries find it."),
    out: Path = typer.Option(None, "--out", "-o", help="Or save into this folder."),
    epochs: int = typer.Option(15, min=1, help="Training epochs."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train the scene tagger that names the tools on the table, so image-aware queries can use them."""
    from prg.retrieval.retriever import TAGGER_DIR
    from prg.train.tagger import train_tagger

    if (index is None) == (out is None):
        err.print("[red]error:[/red] give exactly one of --index or --out")
        raise typer.Exit(2)
    target = index / TAGGER_DIR if index is not None else out
    metrics = train_tagger(dataset, target, epochs=epochs, seed=seed)
    shown = {k: v for k, v in metrics.items() if k != "tagger" and isinstance(v, int | float | str)}
    console.print(f"saved the tagger to {escape(str(target))}: {escape(json.dumps(shown))}", highlight=False)
