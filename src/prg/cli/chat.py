"""``prg chat``: a terminal conversation about a workspace image (the loop and the printing; the state is
:class:`prg.serve.chat.ChatSession`)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape


def chat(
    image: Path = typer.Option(None, "--image", "-i", help="Workspace image to start with (or /image PATH later)."),
    depth: Path = typer.Option(None, "--depth", help="Aligned depth: 16-bit PNG (mm), TIFF or NPY (metres)."),
    intrinsics: str = typer.Option(
        None, "--intrinsics", help='Camera intrinsics: a JSON file or string, {"fx","fy","cx","cy"} or {"K": 3x3}.'
    ),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="PRG checkpoint folder (default: the shipped)."),
    index: Path = typer.Option(None, "--index", help="Document index folder (prg index build)."),
    docs: Path = typer.Option(None, "--docs", help="Documents folder: indexed once and cached (~/.cache/prg)."),
    no_docs: bool = typer.Option(False, "--no-docs", help="Answer without documents (no retrieval)."),
    overlay: Path = typer.Option(
        Path("chat-overlay.png"),
        "--overlay",
        help="Where each turn's grasps are drawn ('{turn}' in the name: one file per turn).",
    ),
    no_overlay: bool = typer.Option(False, "--no-overlay", help="Draw no overlay file."),
    k_docs: int | None = typer.Option(
        None, "--k-docs", min=0, help="Retrieved clauses shown to the model (default: as many as it was trained with)."
    ),
    k_grasps: int = typer.Option(3, "--k-grasps", min=1, help="Grasps kept per [POSE], best first."),
    embedder: str = typer.Option("minilm", help="Embedder for --docs and /docs: minilm (default) or hashing."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Talk to PRG about a workspace image: ask, see the retrieved rules and the answer as it is written, get the
    grasps (listed, and drawn to the overlay file); follow-up questions keep the conversation.

    Without --index, --docs or --no-docs the documents are the demo's regulations, made in the user cache
    (~/.cache/prg/demo, or $PRG_CACHE_DIR/demo) on first use, which takes about a minute.
    Commands: /image PATH, /depth PATH, /intrinsics JSON, /docs FOLDER, /reset, /save [PATH], /help, /quit.
    Reads questions line by line from stdin when it is not a terminal (then: no prompt, no colours).
    """
    from prg.pipeline import PRGPipeline, default_checkpoint, index_for_docs
    from prg.serve.chat import ChatSession

    if sum((index is not None, docs is not None, no_docs)) > 1:
        raise typer.BadParameter("give one of --index, --docs and --no-docs")
    interactive = sys.stdin.isatty()
    out = Console(soft_wrap=True, highlight=False, emoji=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False, emoji=False)
    ckpt = checkpoint if checkpoint is not None else default_checkpoint()
    # the command line's own files are checked before the model loads: a typo costs no waiting
    session = ChatSession(pipeline=PRGPipeline(model=None), overlay=None if no_overlay else overlay, k_docs=k_docs)
    if image is not None:
        session.set_image(image)
    if depth is not None:
        session.set_depth(depth)
    if intrinsics is not None:
        session.set_intrinsics(intrinsics)
    label = "none"
    if docs is not None:
        index, label = index_for_docs(docs, embedder=embedder), str(docs)
    elif index is not None:
        label = str(index)
    elif not no_docs:
        from prg.demo import prepare_demo_data

        err.print("documents: the demo's regulations (made in the user cache the first time: about a minute)")
        ds, index = prepare_demo_data(progress=interactive)
        label = f"demo regulations ({index}); demo scenes in {ds / 'images'}"
    settings: dict[str, Any] = {"k_grasps": k_grasps} if k_docs is None else {"k_grasps": k_grasps, "k_docs": k_docs}
    session.pipeline = PRGPipeline.from_pretrained(ckpt, index=index, device=device, **settings)
    session.embedder, session.documents, session.checkpoint = embedder, label, str(ckpt)
    try:
        if interactive:
            out.print(f"PRG chat: checkpoint {escape(str(ckpt))}; documents: {escape(label)}", style="bold")
            out.print("ask about the image; /help lists the commands, /quit (or Ctrl-D) ends", style="dim")
            if session.image is None:
                out.print("no image yet: /image PATH", style="dim")
        _loop(session, out, err, interactive)
    finally:
        session.close()


def _loop(session: Any, out: Console, err: Console, interactive: bool) -> None:
    from prg.pipeline import PRGInputError
    from prg.serve.chat import one_line

    if interactive:
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401  (line editing and history for input())
    while not session.quit_requested:
        try:
            line = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, end of the piped input, Ctrl-C at the prompt: done
            if interactive:
                out.print()
            return
        line = line.strip()
        if not line:
            continue
        if not interactive:
            out.print(f"> {escape(one_line(line))}")  # the question beside its answer, in a log
        if line.startswith("/"):
            try:
                out.print(escape(session.command(line)))
            except (PRGInputError, OSError) as e:
                _error(out, err, e)
            except KeyboardInterrupt:  # e.g. during a long /docs indexing: back to the prompt
                out.print("(stopped)")
            continue
        _turn(session, line, out, err)


def _turn(session: Any, line: str, out: Console, err: Console) -> None:
    """Ask one question and print it as it comes; any error ends the turn, not the session."""
    from prg.serve.chat import TurnStopped, one_line, printable

    started = False
    try:
        for ev in session.ask(line):
            if ev.kind == "retrieved":
                ids = ", ".join(one_line(c.id) for c in ev.documents) or "nothing"
                out.print(f"retrieved: {escape(ids)}", style="dim")
                if session.documents_kept < 1.0:
                    out.print(
                        f"  (the earlier turns leave room for {session.documents_kept:.0%} of these documents' text"
                        " in the prompt: /reset starts afresh)",
                        style="dim",
                    )
                out.file.flush()  # now, not with the first word: a piped reader sees the turn start
            elif ev.kind == "token":
                if not started:
                    started = True  # first: a Ctrl-C during the print below still ends the line
                    out.print("[bold]answer:[/bold] ", end="")
                out.print(printable(ev.text), end="", markup=False)
                out.file.flush()
            elif ev.kind == "result":
                if not started:
                    out.print(f"[bold]answer:[/bold] {escape(printable(ev.result.answer)) or '(empty)'}", end="")
                out.print()
                print_result(out, ev.result)
                turn = session.turns[-1]
                if turn.overlay is not None:
                    out.print(f"  overlay: {escape(turn.overlay)}")
    except (KeyboardInterrupt, TurnStopped):
        out.print("\n(stopped: this turn is not kept)" if started else "(stopped)")
    except Exception as e:  # a bad image, a prompt too long, a model error: report it, keep the conversation
        if started:
            out.print()
        if os.environ.get("PRG_DEBUG"):
            raise
        _error(out, err, e)


def _error(out: Console, err: Console, e: BaseException) -> None:
    from prg.pipeline import PRGInputError

    out.file.flush()  # keep the order of stdout and stderr on a terminal
    from prg.serve.chat import printable

    text = str(e) if isinstance(e, (PRGInputError, OSError)) else f"{type(e).__name__}: {e}"
    err.print(f"[red]error:[/red] {escape(printable(text))}")


def print_result(out: Console, res: Any) -> None:
    """A result's citations, grasps, poses and time, as ``prg predict`` prints them (the answer aside)."""
    from prg.serve.chat import format_grasp, one_line

    for c in res.citations:
        page = f" (p. {c.page})" if c.page else ""
        out.print(f"  cites [cyan]{escape(one_line(c.id))}[/cyan]{page}: {escape(one_line(c.text)[:200])}")
    for u in res.unresolved_citations:
        out.print(f"  [red]cites {escape(one_line(u))}, which was not retrieved[/red]")
    if not res.citations and res.retrieved:
        out.print("  (cites nothing it retrieved)")
    if res.seen_tools:
        out.print(f"  seen on the table: {escape(one_line(', '.join(res.seen_tools)))}")
    if not res.grasps:
        out.print("  no grasp (the answer has no [POSE])")
    for i, grasps in enumerate(res.grasps, start=1):
        if not grasps:
            out.print(f"  [POSE] {i}: no grasp scored above the decoder's threshold")
        for j, g in enumerate(grasps, start=1):
            out.print(f"  {format_grasp(i, j, g)}", markup=False)
        pose = res.poses[i - 1] if i - 1 < len(res.poses) else None
        if pose is not None:
            p, q = pose.pose["position"], pose.pose["orientation"]
            out.print(
                f"  pose {i}: position ({p['x']:.3f}, {p['y']:.3f}, {p['z']:.3f}) m, orientation "
                f"({q['x']:.3f}, {q['y']:.3f}, {q['z']:.3f}, {q['w']:.3f}), opening {pose.width * 1000:.0f} mm"
            )
    out.print(f"  time: {res.timings_ms.get('total', 0.0):.0f} ms", style="dim")
