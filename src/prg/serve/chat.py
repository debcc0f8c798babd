"""A conversation with PRG about one workspace image: the state behind ``prg chat``, usable without a terminal.

```
/image PATH ──► ChatSession (image, depth, intrinsics, documents, earlier turns)
question    ──► retrieve(question + the two before it)         the chunks the prompt holds  "retrieved"
            ──► PRGPipeline.batch(documents, history, streamer on a worker thread)        "token" ... "token"
            ──► PRGResult, kept as a Turn; its grasps drawn to the overlay file            "result"
```

Earlier turns go into the prompt as ``(instruction, answer)`` pairs; the processor cuts documents first, then the
oldest turns, when the prompt is too long (:func:`prg.model.processor.build_prompt`).

Why not :meth:`PRGPipeline.stream`: a chat must be able to stop a turn (Ctrl-C) while the model generates, and
``stream()`` offers no way to stop its worker thread, whose generation would then overlap the next turn's on the
same model. ``batch(streamers=...)`` is the pipeline's public streaming hook; a streamer that raises once asked to
stop ends generation at the next decoding step.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prg.pipeline import PRGInputError, PRGPipeline, PRGRequest, PRGResult, StreamEvent

__all__ = [
    "COMMANDS",
    "ChatSession",
    "Turn",
    "TurnStopped",
    "format_grasp",
    "one_line",
    "printable",
    "transcript_markdown",
]

COMMANDS: dict[str, str] = {
    "/image PATH": "use this workspace image (clears the depth, which belongs to the old image)",
    "/depth [PATH]": "aligned depth (16-bit PNG in mm, TIFF or NPY in metres) for 6-DoF poses; no PATH: none",
    "/intrinsics [JSON]": 'camera intrinsics, a JSON file or {"fx","fy","cx","cy"} / {"K": 3x3}; none: no poses',
    "/docs FOLDER": "answer from the documents in FOLDER (indexed once, then cached)",
    "/reset": "forget the earlier turns (the image and documents stay)",
    "/save [PATH]": "write the transcript with every result: JSON, or Markdown for a .md PATH",
    "/help": "this list",
    "/quit": "end the session (so do Ctrl-D and Ctrl-C at the prompt)",
}
DEFAULT_TRANSCRIPT = Path("chat-transcript.json")


class TurnStopped(Exception):
    """The turn was stopped (:meth:`ChatSession.cancel`, or the reader let go of :meth:`ChatSession.ask`)."""


@dataclass
class Turn:
    """One answered question: what was asked, about which image, what the retrieval query was, the result."""

    instruction: str
    answer: str
    result: PRGResult
    query: str  # the retrieval query (this question and the ones before it, newest first)
    image: str | None = None
    depth: str | None = None
    overlay: str | None = None  # the overlay file this turn wrote, if it had grasps to draw
    documents_kept: float = 1.0  # share of the documents' prompt tokens the earlier turns left room for


class _StoppableStreamer:
    """``TextIteratorStreamer`` (word by word, ``[POSE]`` kept) whose ``put`` raises :class:`TurnStopped` once
    ``stop`` is set: the exception leaves the model's per-step hook, so generation ends at the next step."""

    def __init__(self, tokenizer: Any, stop: threading.Event) -> None:
        from transformers import TextIteratorStreamer

        self.inner = TextIteratorStreamer(tokenizer, skip_special_tokens=False, timeout=None)
        self.stop = stop

    def put(self, value: Any) -> None:
        if self.stop.is_set():
            raise TurnStopped("stopped")
        self.inner.put(value)

    def end(self) -> None:
        self.inner.end()  # also after a stop: it wakes the reader

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)


@dataclass
class ChatSession:
    """The state of a conversation: the pipeline, the current image (+ depth, intrinsics), the turns so far.

    :meth:`ask` answers a question as a stream of :class:`StreamEvent` (``retrieved``, ``token``..., ``result``);
    :meth:`command` runs a ``/command`` line and returns what to tell the user. Bad input raises
    :class:`PRGInputError` and leaves the session as it was.
    """

    pipeline: PRGPipeline
    overlay: str | Path | None = "chat-overlay.png"  # "{turn}" in the name is replaced by the turn's number
    k_docs: int | None = None
    k_grasps: int | None = None
    embedder: str = "minilm"  # for /docs
    context_questions: int = 2  # earlier questions that join a question's retrieval query
    documents: str = "none"  # what the index holds, for the transcript
    checkpoint: str = ""
    image: np.ndarray | None = None
    image_path: str | None = None
    depth: np.ndarray | None = None
    depth_path: str | None = None
    intrinsics: Any = None
    turns: list[Turn] = field(default_factory=list)
    quit_requested: bool = False
    documents_kept: float = 1.0  # of the turn being answered (see documents_room)
    _stop: threading.Event | None = field(default=None, repr=False)
    _worker: threading.Thread | None = field(default=None, repr=False)

    # -- questions -----------------------------------------------------------------------------------------
    def history(self) -> list[tuple[str, str]]:
        """The earlier turns as the prompt shows them, oldest first."""
        return [(t.instruction, t.answer) for t in self.turns]

    def retrieval_query(self, instruction: str) -> str:
        """What a question retrieves with: itself, then up to :attr:`context_questions` earlier questions, newest
        first. A follow-up ("and after that?") names no rule of its own, and neither may the one before it; the
        answers are left out because the model's text (and ids it cites wrongly) would steer retrieval towards
        what it already said."""
        earlier = [t.instruction for t in self.turns[::-1][: self.context_questions]]
        return "\n".join([instruction, *earlier])

    def ask(self, text: str) -> Iterator[StreamEvent]:
        """Answer ``text`` about the current image: ``retrieved`` (the chunks the prompt holds), ``token`` events
        (the answer as it is generated, word by word; they join to ``result.answer``), then ``result``.

        The turn is kept (history, overlay) only once it completed. Closing the iterator early, or
        :meth:`cancel`, stops generation at the next step (the latter raises :class:`TurnStopped`).
        """
        if self.image is None:
            raise PRGInputError("no image yet: give one with /image PATH")
        self._wait_for_worker()
        history = self.history()
        req = PRGRequest(self.image, text, self.depth, self.intrinsics, history=history)
        rgb, instruction, depth, intrinsics = req.checked()  # before anything is yielded, as stream() does
        query = self.retrieval_query(instruction)
        t0 = time.perf_counter()
        docs, seen = self.pipeline.retrieve(query, rgb, depth, self.k_docs)
        t_retrieval = time.perf_counter() - t0
        self.documents_kept = self.documents_room(instruction, docs, history)
        yield StreamEvent("retrieved", documents=[c.model_copy() for c in docs])

        stop = threading.Event()
        streamer = _StoppableStreamer(self.pipeline.model.tokenizer, stop)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                one = PRGRequest(rgb, instruction, depth, intrinsics, docs, history)
                box["result"] = self.pipeline.batch([one], k_grasps=self.k_grasps, streamers=[streamer])[0]
            except BaseException as e:  # raised on the reader's thread below
                box["error"] = e

        worker = threading.Thread(target=work, name="prg-chat-turn", daemon=True)
        self._stop, self._worker = stop, worker
        worker.start()
        finished = False
        try:
            first = True
            for piece in streamer:
                if first:
                    piece = piece.lstrip()  # the result's answer is stripped
                if piece:
                    first = False
                    yield StreamEvent("token", text=piece)
            worker.join()
            finished = True
        finally:
            if not finished:  # the reader let go (closed us, Ctrl-C): stop the model before the next turn
                stop.set()
                worker.join()
        if "error" in box:
            raise box["error"]
        res: PRGResult = box["result"]
        timings = dict(res.timings_ms)  # batch() retrieved nothing itself: the retrieval above is this turn's
        timings["retrieval"] = round(1000 * t_retrieval, 3)
        timings["total"] = round(timings.get("total", 0.0) + 1000 * t_retrieval, 3)
        res = res.model_copy(update={"seen_tools": seen, "timings_ms": timings})
        turn = Turn(instruction, res.answer, res, query, self.image_path, self.depth_path)
        turn.documents_kept = self.documents_kept
        self.turns.append(turn)
        turn.overlay = self._write_overlay(res)
        yield StreamEvent("result", result=res)

    def documents_room(self, instruction: str, docs: list[Any], history: list[tuple[str, str]]) -> float:
        """The share of the documents' prompt tokens that fit beside ``history``: the processor cuts documents
        before earlier turns, so a long conversation crowds out the rules (1.0: nothing cut)."""
        if not docs or not history:
            return 1.0
        # a look into the model's processor from serve/: the pipeline knows what its prompt held and is the
        # right place to report a cut (PRGResult), until it does, the chat asks the processor the same question
        from prg.model.processor import PromptDocument
        from prg.tokens import Segment

        processor = self.pipeline.model.processor
        prompt_docs = [PromptDocument(c.id, c.text) for c in docs]

        def doc_tokens(h: list[tuple[str, str]]) -> int:
            _, segments = processor.tokenize(instruction, prompt_docs, history=h)
            return sum(s == Segment.DOCUMENT for s in segments)

        alone = doc_tokens([])
        return doc_tokens(history) / alone if alone else 1.0

    def cancel(self) -> None:
        """Stop the turn being generated (from another thread, e.g. a signal handler or a server)."""
        if self._stop is not None:
            self._stop.set()

    def _wait_for_worker(self) -> None:
        # a turn abandoned while its worker ran (a second Ctrl-C during the first's wait): one model, one turn
        if self._worker is not None and self._worker.is_alive():
            self.cancel()
            self._worker.join()

    def _write_overlay(self, res: PRGResult) -> str | None:
        if self.overlay is None or self.image is None or not any(res.grasps):
            return None
        from prg.viz import result_overlay

        path = Path(str(self.overlay).replace("{turn}", str(len(self.turns))))
        path.parent.mkdir(parents=True, exist_ok=True)
        result_overlay(self.image, res).save(path)
        return str(path)

    # -- commands ------------------------------------------------------------------------------------------
    def command(self, line: str) -> str:
        """Run one ``/command ARG`` line (:data:`COMMANDS`); returns the message for the user. The argument is
        the rest of the line (a path may hold spaces; quotes around it are dropped)."""
        name, _, arg = line.strip().partition(" ")
        arg = _unquote(arg.strip())
        name = name.lower()
        if name in ("/quit", "/exit", "/q"):
            self.quit_requested = True
            return "bye"
        if name == "/help":
            return "\n".join(f"  {c:<20} {h}" for c, h in COMMANDS.items()) + "\n  anything else is a question"
        if name == "/image":
            return self.set_image(_need(arg, "/image PATH"))
        if name == "/depth":
            return self.set_depth(arg or None)
        if name == "/intrinsics":
            return self.set_intrinsics(arg or None)
        if name == "/docs":
            return self.set_docs(_need(arg, "/docs FOLDER"))
        if name == "/reset":
            n, self.turns = len(self.turns), []
            return f"forgot {n} earlier turn(s); the image and documents stay"
        if name == "/save":
            path = self.save(arg or DEFAULT_TRANSCRIPT)
            return f"saved {len(self.turns)} turn(s) to {path}"
        raise PRGInputError(f"unknown command {name}: /help lists them")

    def set_image(self, path: str | Path) -> str:
        from prg.pipeline import read_image

        p = Path(path).expanduser()
        self.image, self.image_path = read_image(p), str(p)
        note = ""
        if self.depth is not None:
            self.depth, self.depth_path = None, None
            note = "; the depth was the old image's, so there is none now (/depth PATH)"
        return f"image: {p} ({self.image.shape[1]} x {self.image.shape[0]} pixels){note}"

    def set_depth(self, path: str | Path | None) -> str:
        from prg.pipeline import read_depth

        if path is None:
            self.depth, self.depth_path = None, None
            return "no depth: grasps in pixels only"
        p = Path(path).expanduser()
        d = read_depth(p)
        if self.image is not None and d.shape != self.image.shape[:2]:
            raise PRGInputError(
                f"{p}: depth is {d.shape[1]} x {d.shape[0]} but the image is "
                f"{self.image.shape[1]} x {self.image.shape[0]}: they must be aligned"
            )
        self.depth, self.depth_path = d, str(p)
        hint = "" if self.intrinsics is not None else " (poses also need /intrinsics)"
        return f"depth: {p}{hint}"

    def set_intrinsics(self, text: str | None) -> str:
        from prg.pipeline import read_intrinsics

        if text is None:
            self.intrinsics = None
            return "no intrinsics: grasps in pixels only"
        self.intrinsics = read_intrinsics(text)
        k = self.intrinsics
        return f"intrinsics: fx={k.fx:g} fy={k.fy:g} cx={k.cx:g} cy={k.cy:g}"

    def set_docs(self, folder: str | Path) -> str:
        from prg.pipeline import index_for_docs
        from prg.retrieval.retriever import Retriever

        src = Path(folder).expanduser()
        index = index_for_docs(src, embedder=self.embedder)
        new = Retriever.open(index)
        old, self.pipeline.retriever = self.pipeline.retriever, new
        if old is not None:
            old.close()
        self.documents = str(src)
        return f"documents: {src} (index {index})"

    # -- the transcript ------------------------------------------------------------------------------------
    def transcript(self) -> dict[str, Any]:
        """The session as JSON-ready data: settings, then each turn with its whole :class:`PRGResult`."""
        return {
            "format": "prg-chat/1",
            "checkpoint": self.checkpoint,
            "documents": self.documents,
            "turns": [
                {
                    "instruction": t.instruction,
                    "answer": t.answer,
                    "image": t.image,
                    "depth": t.depth,
                    "retrieval_query": t.query,
                    "overlay": t.overlay,
                    "documents_kept": round(t.documents_kept, 4),
                    "result": t.result.model_dump(mode="json"),
                }
                for t in self.turns
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write the transcript: Markdown for a ``.md`` / ``.markdown`` path, JSON otherwise."""
        from prg.fsutil import atomic_write_text

        p = Path(path).expanduser()
        if p.is_dir():
            raise PRGInputError(f"{p} is a folder: give a file name (.json or .md)")
        p.parent.mkdir(parents=True, exist_ok=True)
        data = self.transcript()
        md = p.suffix.lower() in (".md", ".markdown")
        atomic_write_text(p, transcript_markdown(data) if md else json.dumps(data, indent=2, ensure_ascii=False))
        return p

    def close(self) -> None:
        self._wait_for_worker()
        self.pipeline.close()


def format_grasp(i: int, j: int, g: Any) -> str:
    """``grasp 1.2: x=.. y=.. width=.. height=.. angle=.. rad score=..`` (the j-th grasp of the i-th [POSE])."""
    return (
        f"grasp {i}.{j}: x={g.x:.1f} y={g.y:.1f} width={g.width:.1f} height={g.height:.1f} "
        f"angle={g.angle:.3f} rad score={g.score:.3f}"
    )


def transcript_markdown(data: dict[str, Any]) -> str:
    """A transcript (:meth:`ChatSession.transcript`) as Markdown: one section per turn."""
    out = ["# PRG chat", "", f"- checkpoint: `{data['checkpoint']}`", f"- documents: `{data['documents']}`", ""]
    for n, t in enumerate(data["turns"], start=1):
        res = PRGResult.model_validate(t["result"])
        out += [f"## {n}. {one_line(t['instruction'])}", ""]
        if t["image"]:
            out.append(f"- image: `{t['image']}`" + (f", depth: `{t['depth']}`" if t["depth"] else ""))
        out.append(f"- retrieved: {', '.join(c.id for c in res.retrieved) or 'nothing'}")
        out += ["", f"**PRG:** {printable(res.answer)}", ""]
        for c in res.citations:
            out.append(f"- cites **{c.id}**: {one_line(c.text)[:200]}")
        for u in res.unresolved_citations:
            out.append(f"- cites {u}, which was not retrieved")
        for i, grasps in enumerate(res.grasps, start=1):
            out += [f"- {format_grasp(i, j, g)}" for j, g in enumerate(grasps, start=1)]
            if not grasps:
                out.append(f"- [POSE] {i}: no grasp scored above the decoder's threshold")
        if t["overlay"]:
            out.append(f"- overlay: `{t['overlay']}`")
        out.append("")
    return "\n".join(out)


# C0 and C1 control characters but newline and tab: a model's raw output (random weights, or a byte-level
# tokenizer's stray pieces) may hold ESC sequences that would drive the user's terminal
_CONTROL = {c: "\ufffd" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) not in "\n\t"}


def printable(text: str) -> str:
    """``text`` safe to show on a terminal or in Markdown: control characters (ESC, CR, BEL, ...) become U+FFFD."""
    return text.translate(_CONTROL)


def one_line(text: str) -> str:
    """A chunk's text on one line (PDF chunks keep their line breaks), printable."""
    return printable(" ".join(text.split()))


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"" else s


def _need(arg: str, usage: str) -> str:
    if not arg:
        raise PRGInputError(f"usage: {usage}")
    return arg
