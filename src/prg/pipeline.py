"""The main job, as one call: request -> retrieval -> processor -> model -> cited answer, grasps, 6-DoF poses.

```
image (+ depth, intrinsics) + instruction
  -> Retriever.search (hybrid; image-aware when the index has a scene tagger)   top-k chunks, deduplicated
  -> PromptDocument per chunk, labelled by its citation ("EP-SAF-004 §4.2")   the processor builds the prompt
  -> PRGModel.predict                                                           answer text, grasps per [POSE]
  -> citations in the answer resolved back to the retrieved chunks            (a cited id not retrieved: flagged)
  -> top grasp of each [POSE] lifted to a 6-DoF pose when depth + intrinsics are given
  -> PRGResult (pydantic: typed, JSON as it stands)
```

The CLI (``prg predict``, ``prg demo``), evaluation, the server and the benchmarks all call
:meth:`PRGPipeline.__call__` / :meth:`PRGPipeline.batch`; nothing else joins these parts.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from prg.grasp.pose import CameraIntrinsics, rect_to_pose
from prg.grasp.rect import GraspRect
from prg.tokens import POSE_TOKEN

__all__ = [
    "CitationOut",
    "GraspOut",
    "PRGInputError",
    "PRGPipeline",
    "PRGRequest",
    "PRGResult",
    "PipelineConfig",
    "PoseOut",
    "StreamEvent",
    "citation_label",
    "default_checkpoint",
    "index_for_docs",
    "read_depth",
    "read_image",
    "read_intrinsics",
    "resolve_citations",
]


class PRGInputError(ValueError):
    """A request the pipeline cannot answer (bad image, depth, intrinsics or instruction); the message says why."""


# --------------------------------------------------------------------------------------------------------------
# The result


class GraspOut(BaseModel):
    """A grasp rectangle in original-image pixels: centre, opening (``width``), jaw size, angle (rad), score."""

    x: float
    y: float
    width: float
    height: float
    angle: float
    score: float

    @classmethod
    def from_rect(cls, r: GraspRect) -> GraspOut:
        return cls(x=r.x, y=r.y, width=r.width, height=r.height, angle=r.angle, score=r.quality)

    def to_rect(self) -> GraspRect:
        return GraspRect(self.x, self.y, self.width, self.height, self.angle, self.score)


class PoseOut(BaseModel):
    """A top-down 6-DoF gripper pose in the camera frame: ROS ``geometry_msgs/PoseStamped`` fields (``header``,
    ``pose.position``, ``pose.orientation``) plus the opening (``width``) and jaw size in metres and the score."""

    header: dict[str, Any]
    pose: dict[str, dict[str, float]]
    width: float  # gripper opening, metres
    jaw_m: float
    quality: float


class CitationOut(BaseModel):
    """A retrieved chunk as an answer cites it. ``id`` is the label the prompt showed (``EP-SAF-004 §4.2``)."""

    id: str
    doc_id: str
    clause: str | None = None
    page: int | None = None
    title: str = ""
    text: str
    rank: int
    score: float
    cited: bool = False

    @classmethod
    def from_label(cls, label: str, text: str, rank: int, score: float = 0.0) -> CitationOut:
        """A document known only by its prompt label (``EP-SAF-004 §4.2``) and text, e.g. from a retrieval cache."""
        doc_id, _, clause = label.partition(" §")
        return cls(id=label, doc_id=doc_id, clause=clause or None, text=text, rank=rank, score=score)


class PRGResult(BaseModel):
    """Everything one request produced. ``grasps`` and ``poses`` have one entry per ``[POSE]`` in the answer, in
    order (``poses`` only when depth and intrinsics were given; None where the depth had no reading)."""

    instruction: str
    answer: str
    citations: list[CitationOut] = Field(default_factory=list)  # retrieved chunks the answer cites
    unresolved_citations: list[str] = Field(default_factory=list)  # cited ids no retrieved chunk carries
    retrieved: list[CitationOut] = Field(default_factory=list)  # what the prompt held, best first
    seen_tools: list[str] = Field(default_factory=list)  # tools the scene tagger named (image-aware retrieval)
    grasps: list[list[GraspOut]] = Field(default_factory=list)
    poses: list[PoseOut | None] = Field(default_factory=list)
    image_size: tuple[int, int]  # (width, height)
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def pose_count(self) -> int:
        return len(self.grasps)

    def top_grasps(self) -> list[GraspRect | None]:
        return [g[0].to_rect() if g else None for g in self.grasps]


@dataclass
class StreamEvent:
    """One event of :meth:`PRGPipeline.stream`: ``kind`` is ``retrieved`` (``documents``), ``token`` (``text``,
    the next piece of the answer) or ``result`` (``result``, the whole :class:`PRGResult`)."""

    kind: str
    text: str = ""
    documents: list[CitationOut] = field(default_factory=list)
    result: PRGResult | None = None


class _StreamFanout:
    """The model's per-step hook (``token [B]``, ``finished [B]``) -> each request's streamer: ``put`` of the
    request's new token while it runs, ``end()`` once it finished (its eos is not passed on). A streamer whose
    ``cancelled`` attribute is true (its client went away) is ended and its sample stopped: the returned mask
    tells ``generate`` to treat it as finished, so the rest of the batch goes on without it."""

    def __init__(self, streamers: Sequence[Any], model: Any) -> None:
        self.streamers = list(streamers)
        self.skip = set(model.vlm.eos_token_ids) | {model.vlm.pad_token_id}
        self.done = [s is None for s in self.streamers]

    def __call__(self, token: Any, finished: Any) -> list[bool] | None:
        ids, fin = token.tolist(), finished.tolist()
        stop: list[bool] | None = None
        for i, st in enumerate(self.streamers):
            if self.done[i]:
                continue
            if getattr(st, "cancelled", False):
                self._end(i)
                stop = stop or [False] * len(ids)
                stop[i] = True
                continue
            if ids[i] not in self.skip:
                st.put(token[i : i + 1].cpu())
            if fin[i]:
                self._end(i)
        return stop

    def _end(self, i: int) -> None:
        self.done[i] = True
        self.streamers[i].end()

    def end_all(self) -> None:
        for i in range(len(self.streamers)):
            if not self.done[i]:
                self._end(i)


# --------------------------------------------------------------------------------------------------------------
# Requests and their checks


@dataclass
class PRGRequest:
    """One request: ``image`` ``[H x W x 3|4]`` uint8 (or grey, or PIL), ``depth`` ``[H x W]`` metres (NaN/0 =
    no reading), ``intrinsics`` (fx, fy, cx, cy in pixels; a mapping, a 3x3 matrix or ``CameraIntrinsics``)."""

    image: Any
    instruction: str
    depth: np.ndarray | None = None
    intrinsics: Any = None
    documents: list[CitationOut] | None = None  # given: used instead of retrieval (oracle/no-docs ablations, eval)
    history: list[tuple[str, str]] = field(default_factory=list)  # earlier (instruction, answer) turns, oldest first

    def checked(self) -> tuple[np.ndarray, str, np.ndarray | None, CameraIntrinsics | None]:
        """The request's parts, validated and normalised; :class:`PRGInputError` names the first problem."""
        from prg.model.processor import to_rgb_array

        if self.image is None:
            raise PRGInputError("no image given")
        try:
            rgb = to_rgb_array(self.image)
        except ValueError as e:
            raise PRGInputError(f"image: {e}") from None
        if rgb.shape[0] < 2 or rgb.shape[1] < 2:
            raise PRGInputError(f"image is empty or degenerate ({rgb.shape[1]} x {rgb.shape[0]} pixels)")
        instruction = (self.instruction or "").strip()
        if not instruction:
            raise PRGInputError("the instruction is empty")
        depth = None
        if self.depth is not None:
            depth = np.asarray(self.depth, dtype=np.float32)
            if depth.ndim == 3 and depth.shape[2] == 1:
                depth = depth[..., 0]
            if depth.shape != rgb.shape[:2]:
                raise PRGInputError(
                    f"depth is {_size(depth.shape)} but the image is {_size(rgb.shape)}: they must be aligned"
                )
            depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
        intr = None
        if self.intrinsics is not None:
            try:
                intr = _coerce_intrinsics(self.intrinsics)
            except (ValueError, TypeError, KeyError) as e:
                raise PRGInputError(f"intrinsics: {e}") from None
        return rgb, instruction, depth, intr


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]} x {shape[0]}" if len(shape) >= 2 else str(shape)


def _coerce_intrinsics(obj: Any) -> CameraIntrinsics:
    if isinstance(obj, Mapping):
        if "K" in obj or "k" in obj:
            return CameraIntrinsics.from_matrix(obj.get("K", obj.get("k")))
        missing = [k for k in ("fx", "fy", "cx", "cy") if k not in obj]
        if missing:
            raise KeyError(f"missing {missing} (give fx, fy, cx, cy in pixels, or K as a 3x3 matrix)")
        vals = [float(obj[k]) for k in ("fx", "fy", "cx", "cy")]
        return CameraIntrinsics(*vals)
    return CameraIntrinsics.coerce(obj)


def read_image(path: str | Path) -> np.ndarray:
    """An image file -> ``[H x W x 3]`` uint8 RGB; :class:`PRGInputError` when missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise PRGInputError(f"{p}: no such image file")
    try:
        with Image.open(p) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                raise PRGInputError(f"{p}: empty image")
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise PRGInputError(f"{p}: unreadable image ({e})") from None


def read_depth(path: str | Path, depth_scale: float = 0.001) -> np.ndarray:
    """A depth file -> ``[H x W]`` float32 metres, NaN = no reading. ``.npy`` / ``.tif`` hold metres; a 16-bit
    PNG holds units of ``depth_scale`` metres (PRG-Synth and most RGB-D cameras: millimetres)."""
    p = Path(path)
    if not p.is_file():
        raise PRGInputError(f"{p}: no such depth file")
    try:
        if p.suffix.lower() == ".npy":
            d = np.load(p, allow_pickle=False).astype(np.float32)  # never unpickle data from outside
        elif p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            d = np.asarray(tifffile.imread(p), dtype=np.float32)
        else:
            with Image.open(p) as im:
                raw = np.asarray(im)
            d = raw.astype(np.float32) * (depth_scale if raw.dtype.kind in "ui" else 1.0)
    except (OSError, ValueError) as e:
        raise PRGInputError(f"{p}: unreadable depth ({e})") from None
    if d.ndim == 3:
        d = d[..., 0]
    if d.ndim != 2:
        raise PRGInputError(f"{p}: depth must be a 2-D image, got shape {d.shape}")
    return np.where(np.isfinite(d) & (d > 0), d, np.nan).astype(np.float32)


def read_intrinsics(text_or_path: str | Path) -> CameraIntrinsics:
    """Intrinsics from a JSON file or a JSON string: ``{"fx":..,"fy":..,"cx":..,"cy":..}`` or ``{"K": 3x3}``."""
    s = str(text_or_path)
    try:
        p = Path(s)
        raw = p.read_text() if p.is_file() else s
    except OSError:
        raw = s
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        raise PRGInputError(f"intrinsics: {s[:80]!r} is neither a JSON file nor a JSON object") from None
    try:
        return _coerce_intrinsics(obj)
    except (ValueError, TypeError, KeyError) as e:
        raise PRGInputError(f"intrinsics: {e}") from None


# --------------------------------------------------------------------------------------------------------------
# Citations


def citation_label(chunk: Any) -> str:
    """How the prompt labels a chunk and an answer cites it: ``DOC-ID §clause`` (``DOC-ID`` without a clause).
    The page is left out so a Markdown and a PDF copy of one clause share one label."""
    return f"{chunk.doc_id} §{chunk.clause}" if chunk.clause else str(chunk.doc_id)


# A document id as PRG-Synth and most regulation libraries write it (EP-SAF-004, ISO-45001, NFPA-70E), optionally
# followed by a clause (§4.2.1): the pattern that finds cited ids no retrieved chunk carries.
_CITED = re.compile(r"\b([A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)+)(?:\s*§\s*(\d+(?:\.\d+)*))?")
_DOC_N = re.compile(r"\[doc (\d+)\]")


def resolve_citations(answer: str, retrieved: Sequence[CitationOut]) -> tuple[list[CitationOut], list[str]]:
    """The retrieved chunks an answer cites (by label, in retrieval order) and the cited ids none carries.

    A chunk counts as cited when its label appears in the answer (``EP-SAF-004 §4.2``), when its document is cited
    without a clause and it is that document's best chunk, or by position (``[doc 2]``, legacy prompts).
    """
    cited: list[CitationOut] = []
    found_ids: set[int] = set()
    for i, c in enumerate(retrieved):
        if c.id in answer:
            cited.append(c)
            found_ids.add(i)
    for m in _DOC_N.finditer(answer):
        i = int(m.group(1)) - 1
        if 0 <= i < len(retrieved) and i not in found_ids:
            cited.append(retrieved[i])
            found_ids.add(i)
    unresolved: list[str] = []
    known = {(c.doc_id, c.clause) for c in retrieved}
    docs = {c.doc_id for c in retrieved}
    for m in _CITED.finditer(answer):
        doc, clause = m.group(1), m.group(2)
        if clause is not None:
            if (doc, clause) not in known:
                unresolved.append(f"{doc} §{clause}")
        elif doc not in docs:
            unresolved.append(doc)
        elif not any(c.doc_id == doc for c in cited):  # a bare document id: its best retrieved chunk
            i = next(i for i, c in enumerate(retrieved) if c.doc_id == doc)
            cited.append(retrieved[i])
            found_ids.add(i)
    cited.sort(key=lambda c: c.rank)
    return [c.model_copy(update={"cited": True}) for c in cited], list(dict.fromkeys(unresolved))


# --------------------------------------------------------------------------------------------------------------
# The pipeline


@dataclass
class PipelineConfig:
    """Defaults of one pipeline; each call may override ``k_docs`` / ``k_grasps``."""

    k_docs: int = 5  # retrieved chunks shown to the model
    k_grasps: int = 3  # rectangles kept per [POSE], best first
    image_aware: bool = True  # use the index's scene tagger when it has one
    max_new_tokens: int | None = None  # None: the model config's
    depth_offset: float = 0.0  # metres below the surface where the jaws close (rect_to_pose)
    frame_id: str = "camera_color_optical_frame"


@dataclass
class PRGPipeline:
    """A model, optionally a retriever, and the settings that join them. Build with :meth:`from_pretrained`."""

    model: Any  # prg.model.prg_model.PRGModel, or None for retrieval only (typed loosely: no torch import here)
    retriever: Any = None  # prg.retrieval.retriever.Retriever, or None: answer without documents
    config: PipelineConfig = field(default_factory=PipelineConfig)

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | Path,
        index: str | Path | Any = None,
        device: str = "cpu",
        base: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> PRGPipeline:
        """Load a PRG checkpoint (``prg.model.checkpoint``) and open ``index`` (a path, or a ``Retriever``).

        ``k_docs`` defaults to the number of documents the checkpoint was trained with (its ``training.json``,
        written by ``prg.train.export``), else :class:`PipelineConfig`'s."""
        from prg.model.checkpoint import from_pretrained

        if "k_docs" not in settings:
            trained = _trained_k_docs(Path(checkpoint))
            if trained is not None:
                settings["k_docs"] = trained
        model = from_pretrained(checkpoint, map_location=device, base=base).eval()
        retriever = index
        if isinstance(index, (str, Path)):
            from prg.retrieval.retriever import Retriever

            retriever = Retriever.open(index)
        return cls(model, retriever, PipelineConfig(**settings))

    def close(self) -> None:
        if self.retriever is not None:
            self.retriever.close()

    def __call__(
        self,
        image: Any,
        instruction: str,
        depth: np.ndarray | None = None,
        intrinsics: Any = None,
        k_docs: int | None = None,
        k_grasps: int | None = None,
        logits_processor: Any = None,
    ) -> PRGResult:
        """Answer one request (see :class:`PRGRequest` for the inputs)."""
        req = PRGRequest(image, instruction, depth, intrinsics)
        return self.batch([req], k_docs=k_docs, k_grasps=k_grasps, logits_processor=logits_processor)[0]

    def batch(
        self,
        requests: Sequence[PRGRequest],
        k_docs: int | None = None,
        k_grasps: int | None = None,
        logits_processor: Any = None,
        streamers: Sequence[Any] | None = None,
    ) -> list[PRGResult]:
        """Answer several requests with one batched generation; results in input order.

        Every request is checked before any work starts, so one bad request fails the call with its index.
        ``logits_processor`` (``(ids, scores) -> scores``) constrains decoding, e.g. to force an answer in tests.
        ``streamers``: one per request (or None for a request not streamed), each with the ``put(ids)`` /
        ``end()`` methods of transformers' streamers (``TextIteratorStreamer``): it gets the answer's token ids
        as they are generated (eos and pads left out) and ``end()`` once that request has finished, or failed.
        """
        if streamers is not None and len(streamers) != len(requests):
            raise ValueError(f"{len(streamers)} streamers for {len(requests)} requests")
        fanout = _StreamFanout(streamers, self.model) if streamers and any(s is not None for s in streamers) else None
        try:
            return self._batch(requests, k_docs, k_grasps, logits_processor, fanout)
        finally:
            if fanout is not None:
                fanout.end_all()  # on errors too: a reader waiting on a streamer must not hang

    def _batch(
        self,
        requests: Sequence[PRGRequest],
        k_docs: int | None,
        k_grasps: int | None,
        logits_processor: Any,
        on_token: _StreamFanout | None,
    ) -> list[PRGResult]:
        if self.model is None:
            raise ValueError("this pipeline has no model (retrieval only): load one with PRGPipeline.from_pretrained")
        checked = []
        for i, req in enumerate(requests):
            try:
                checked.append(req.checked())
            except PRGInputError as e:
                raise PRGInputError(f"request {i + 1}: {e}" if len(requests) > 1 else str(e)) from None
        if not checked:
            return []
        kd = self.config.k_docs if k_docs is None else k_docs
        kg = self.config.k_grasps if k_grasps is None else k_grasps
        start = time.perf_counter()
        retrieved: list[list[CitationOut]] = []
        seen: list[list[str]] = []
        t0 = time.perf_counter()
        for (rgb, instruction, depth, _), req in zip(checked, requests, strict=True):
            if req.documents is not None:
                retrieved.append([d.model_copy(update={"rank": i + 1}) for i, d in enumerate(req.documents)])
                seen.append([])
                continue
            r, s = self.retrieve(instruction, rgb, depth, kd)
            retrieved.append(r)
            seen.append(s)
        t_retrieval = time.perf_counter() - t0

        from prg.model.processor import PromptDocument

        documents = [[PromptDocument(c.id, c.text) for c in docs] for docs in retrieved]
        timings: dict[str, float] = {}
        preds = self.model.predict(
            [c[0] for c in checked],
            [c[1] for c in checked],
            documents,
            max_new_tokens=self.config.max_new_tokens,
            k=kg,
            logits_processor=logits_processor,
            timings=timings,
            on_token=on_token,
            histories=[list(r.history) for r in requests],
        )
        if on_token is not None:
            on_token.end_all()  # before F_enc and the grasp decoder run: the text is complete
        results = []
        n = len(checked)
        for (rgb, instruction, depth, intr), pred, docs, tools in zip(checked, preds, retrieved, seen, strict=True):
            t0 = time.perf_counter()
            cited, unresolved = resolve_citations(pred.answer_text, docs)
            ids = {c.id for c in cited}
            grasps = [[GraspOut.from_rect(r) for r in rects] for rects in pred.grasps]
            poses: list[PoseOut | None] = []
            if depth is not None and intr is not None:
                poses = [self._pose(g[0].to_rect() if g else None, depth, intr) for g in grasps]
            stage = {f"model_{k}": 1000 * v / n for k, v in timings.items()}  # batch stages, shared equally
            stage["retrieval"] = 1000 * t_retrieval / n
            stage["citations_poses"] = 1000 * (time.perf_counter() - t0)
            stage["total"] = 1000 * (time.perf_counter() - start) / n
            results.append(
                PRGResult(
                    instruction=instruction,
                    answer=pred.answer_text,
                    citations=cited,
                    unresolved_citations=unresolved,
                    retrieved=[c.model_copy(update={"cited": c.id in ids}) for c in docs],
                    seen_tools=tools,
                    grasps=grasps,
                    poses=poses,
                    image_size=(int(rgb.shape[1]), int(rgb.shape[0])),
                    timings_ms={k: round(v, 3) for k, v in stage.items()},
                )
            )
        return results

    def stream(
        self,
        image: Any,
        instruction: str,
        depth: np.ndarray | None = None,
        intrinsics: Any = None,
        k_docs: int | None = None,
        k_grasps: int | None = None,
        documents: list[CitationOut] | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> Iterator[StreamEvent]:
        """One request, streamed: a ``retrieved`` event (the chunks the prompt holds), ``token`` events (the
        answer's text as it is generated, word by word), then one ``result`` event with the :class:`PRGResult`.

        ``documents``: shown instead of retrieving; ``history``: the conversation's earlier ``(instruction,
        answer)`` turns (``prg chat``), cut after the documents when the prompt is too long.
        The request is checked before anything is yielded (:class:`PRGInputError`). Generation runs on a worker
        thread; an error there is raised here after the text streamed so far.
        """
        import threading

        from transformers import TextIteratorStreamer

        if self.model is None:
            raise ValueError("this pipeline has no model (retrieval only): load one with PRGPipeline.from_pretrained")
        req = PRGRequest(image, instruction, depth, intrinsics, documents, list(history))
        rgb, text, d, _ = req.checked()
        t0 = time.perf_counter()
        seen: list[str] = []
        if documents is None:
            documents, seen = self.retrieve(text, rgb, d, self.config.k_docs if k_docs is None else k_docs)
        t_retrieval = time.perf_counter() - t0
        yield StreamEvent("retrieved", documents=[c.model_copy() for c in documents])
        streamer = TextIteratorStreamer(self.model.tokenizer, skip_special_tokens=False, timeout=None)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                one = PRGRequest(rgb, text, d, intrinsics, documents, list(history))
                box["result"] = self.batch([one], k_grasps=k_grasps, streamers=[streamer])[0]
            except BaseException as e:  # re-raised on the caller's thread below
                box["error"] = e

        worker = threading.Thread(target=work, name="prg-stream", daemon=True)
        worker.start()
        first = True
        for piece in streamer:
            if first:
                piece = piece.lstrip()  # the answer is reported stripped
            if piece:
                first = False
                yield StreamEvent("token", text=piece)
        worker.join()
        if "error" in box:
            raise box["error"]
        res: PRGResult = box["result"]
        timings = dict(res.timings_ms)
        timings["retrieval"] = round(1000 * t_retrieval, 3)
        timings["total"] = round(timings.get("total", 0.0) + 1000 * t_retrieval, 3)
        yield StreamEvent("result", result=res.model_copy(update={"seen_tools": seen, "timings_ms": timings}))

    def retrieve(
        self, instruction: str, rgb: np.ndarray | None = None, depth: np.ndarray | None = None, k: int | None = None
    ) -> tuple[list[CitationOut], list[str]]:
        """The retrieval step alone: the top ``k`` chunks (one per citation label) the prompt would hold, and the
        tools the scene tagger saw. Image-aware when the index has a tagger and ``rgb`` is given."""
        k = self.config.k_docs if k is None else k
        if self.retriever is None or k <= 0:
            return [], []
        use_image = rgb is not None and self.config.image_aware and getattr(self.retriever, "tagger", None) is not None
        res = self.retriever.search(
            instruction, k=k, image=rgb if use_image else None, depth=depth if use_image else None
        )
        out: list[CitationOut] = []
        labels: set[str] = set()
        for h in res.hits:
            c = h.chunk
            label = citation_label(c)
            if label in labels:  # a clause stated in two copies of one document (Markdown and PDF)
                continue
            labels.add(label)
            out.append(
                CitationOut(
                    id=label,
                    doc_id=c.doc_id,
                    clause=c.clause,
                    page=c.page,
                    title=c.title,
                    text=c.text,
                    rank=len(out) + 1,
                    score=float(h.score),
                )
            )
        return out, list(res.seen)

    def _pose(self, rect: GraspRect | None, depth: np.ndarray, intr: CameraIntrinsics) -> PoseOut | None:
        if rect is None:
            return None
        h, w = depth.shape
        if not (-0.5 <= rect.x < w - 0.5 and -0.5 <= rect.y < h - 0.5) or not np.isfinite(depth).any():
            return None
        p = rect_to_pose(rect, depth, intr, depth_offset=self.config.depth_offset)
        if not all(math.isfinite(v) for v in p.position):
            return None
        ros = p.to_ros_dict(frame_id=self.config.frame_id)
        return PoseOut(
            header=ros["header"], pose=ros["pose"], width=p.opening_m, jaw_m=p.jaw_m, quality=float(p.quality or 0.0)
        )


def _trained_k_docs(checkpoint: Path) -> int | None:
    """``data.k_docs`` of the run a checkpoint was exported from (None without a readable training.json)."""
    try:
        info = json.loads((checkpoint / "training.json").read_text(encoding="utf-8"))
        k = info["config"]["data"]["k_docs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(k) if isinstance(k, int) and k > 0 else None


def count_poses(answer: str) -> int:
    """``[POSE]`` tokens in an answer."""
    return answer.count(POSE_TOKEN)


SHIPPED_CHECKPOINT = Path(__file__).parent / "weights" / "prg-small"
"""Where the trained small checkpoint ships inside the package (scripts/train_small.sh trains it, issue P6)."""


def default_checkpoint() -> Path:
    """The shipped checkpoint, or a :class:`FileNotFoundError` naming what to pass instead."""
    if (SHIPPED_CHECKPOINT / "config.json").is_file():
        return SHIPPED_CHECKPOINT
    raise FileNotFoundError(
        f"no trained PRG checkpoint in {SHIPPED_CHECKPOINT} (an install without its weights): pass --checkpoint DIR, "
        "a folder written by prg.model.checkpoint.save_pretrained or prg.train.export"
    )


def _fingerprint(folder: Path) -> list[list[Any]]:
    return sorted(
        [str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns]
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def index_for_docs(folder: str | Path, embedder: str = "minilm", cache_dir: str | Path | None = None) -> Path:
    """An index of every document under ``folder``, built once and cached (``$PRG_CACHE_DIR`` or
    ``~/.cache/prg``); rebuilt (synchronised) when a file under ``folder`` changed. Returns the index folder."""
    import hashlib
    import os

    from prg.fsutil import atomic_write_text
    from prg.retrieval.build import build_index

    src = Path(folder).resolve()
    if not src.is_dir():
        raise PRGInputError(f"{folder}: no such documents folder")
    root = Path(cache_dir or os.environ.get("PRG_CACHE_DIR") or Path.home() / ".cache" / "prg")
    key = hashlib.sha1(f"{src}\x1f{embedder}".encode()).hexdigest()[:16]
    out = root / "indexes" / key
    stamp = out / "prg-docs-fingerprint.json"
    fingerprint = _fingerprint(src)
    if not fingerprint:
        raise PRGInputError(f"{folder}: the documents folder is empty")
    if (out / "CURRENT").exists() and stamp.is_file() and json.loads(stamp.read_text()) == fingerprint:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    report = build_index([src], out, embedder=embedder)
    if report.documents == 0:
        raise PRGInputError(f"{folder}: no document could be indexed (Markdown, text, PDF or images)")
    atomic_write_text(stamp, json.dumps(fingerprint))
    return out
