"""The retrieval step of the main job: instruction (+ scene image) -> cited chunks.

Text: hybrid search (dense + BM25, fused as :class:`~prg.retrieval.fusion.FusionConfig` says) over the document
index; one hit per clause (a document's Markdown and PDF copies are one clause to an answer).
Image: a :class:`~prg.retrieval.image.SceneTagger` names the tools it sees on the table; the names are added to
the query ("what the model sees in the scene added to the query"). An instruction like "the breaker is off, I
need to touch the busbar" then also matches the clause that names the voltage detector lying in front of the
robot. ``benchmarks/bench_retrieval.py`` measures text-only against image-aware retrieval on PRG-Synth.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from prg.retrieval.embed import TextEmbedder
from prg.retrieval.fusion import FusionConfig, dedupe_clauses, default_fusion, reciprocal_rank_fusion
from prg.retrieval.index import DocumentIndex
from prg.retrieval.types import Filters, Hit

__all__ = ["RetrievalResult", "Retriever", "SceneTags", "expand_query"]

TAGGER_DIR = "tagger"


class SceneTags(Protocol):
    """What the retriever needs from a scene tagger: names of the tools it sees."""

    def tag(self, rgb: np.ndarray, depth: np.ndarray | None = None, min_score: float = 0.5) -> list[Any]: ...


@dataclass
class RetrievalResult:
    hits: list[Hit]
    query: str  # the text that was searched (the instruction, plus what the image added)
    seen: list[str] = field(default_factory=list)  # tool names taken from the image
    timings_ms: dict[str, float] = field(default_factory=dict)

    def citations(self) -> list[str]:
        return [h.chunk.citation() for h in self.hits]


def expand_query(text: str, seen: Sequence[str]) -> str:
    """The instruction with the visible tools appended (deduplicated, order kept)."""
    names = list(dict.fromkeys(n for n in seen if n))
    return f"{text} Equipment on the table: {', '.join(names)}." if names else text


class Retriever:
    """Hybrid, optionally image-aware retrieval over a :class:`DocumentIndex`.

    Args:
        index: the document index.
        embedder: the text embedder the index was built with.
        tagger: optional scene tagger; used when ``search`` gets an image.
        fusion: how the dense and lexical rankings are combined (default: ``default_fusion`` of the embedder).
        min_tag_score: tags below this confidence are ignored.
        use_seen: how tools seen on the table change the ranking: ``rerank`` (clauses naming a seen tool move up,
            the default: measured best), ``expand`` (their names join the query) or ``both``.
        seen_weight: RRF weight of the "seen tools first" ranking against the text ranking (1.0).
    """

    def __init__(
        self,
        index: DocumentIndex,
        embedder: TextEmbedder,
        tagger: SceneTags | None = None,
        fusion: FusionConfig | None = None,
        min_tag_score: float = 0.5,
        use_seen: str = "rerank",
        seen_weight: float = 1.5,
    ) -> None:
        if use_seen not in ("rerank", "expand", "both"):
            raise ValueError(f"use_seen must be rerank, expand or both, not {use_seen!r}")
        if embedder.dim != index.manifest["dim"]:
            raise ValueError(f"embedder gives {embedder.dim}-d vectors, the index holds {index.manifest['dim']}-d")
        self.index = index
        self.embedder = embedder
        self.tagger = tagger
        self.fusion = fusion or default_fusion(index.manifest["embedder"])
        self.min_tag_score = min_tag_score
        self.use_seen = use_seen
        self.seen_weight = seen_weight

    @classmethod
    def open(cls, path: str | Path, tagger: str | Path | None = "auto", **kwargs: Any) -> Retriever:
        """Open the index at ``path`` with the embedder it was built with; ``tagger="auto"`` loads
        ``<path>/tagger`` when present (``None``: text only)."""
        from prg.retrieval.build import open_embedder

        index = DocumentIndex.open(path)
        emb = open_embedder(index.manifest["embedder"])
        tg: SceneTags | None = None
        tdir = Path(path) / TAGGER_DIR if tagger == "auto" else (Path(tagger) if tagger else None)
        if tdir is not None and tdir.is_dir():
            from prg.retrieval.image import SceneTagger

            tg = SceneTagger.load(tdir)
        return cls(index, emb, tg, **kwargs)

    def close(self) -> None:
        self.index.close()

    def search(
        self,
        text: str,
        k: int = 5,
        image: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        industry: str | None = None,
        seen: Sequence[str] | None = None,
        filters: Filters | None = None,
    ) -> RetrievalResult:
        """Top ``k`` chunks for an instruction, one per clause (the best-ranked chunk of each).

        Args:
            text: the instruction.
            image: ``[H x W x 3]`` uint8 RGB scene image; with a tagger, the tools it shows join the query.
            depth: ``[H x W]`` metres, helps the tagger separate objects from the table.
            industry: restrict to one industry's documents.
            seen: tool names to add to the query instead of tagging the image (e.g. what the VLM described).
            filters: further metadata filters (field -> value or list of values).
        """
        if not text or not text.strip():
            raise ValueError("the query text is empty")
        timings: dict[str, float] = {}
        names = list(seen or [])
        if image is not None and self.tagger is not None and seen is None:
            t0 = time.perf_counter()
            tags = self.tagger.tag(image, depth, min_score=self.min_tag_score)
            timings["tag"] = 1000 * (time.perf_counter() - t0)
            names = [t.name for t in tags]
        f: dict[str, Any] = dict(filters or {})
        if industry:
            f["industry"] = industry
        t0 = time.perf_counter()
        vec = self.embedder.embed_query(text)
        timings["embed"] = 1000 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        query = expand_query(text, names) if names and self.use_seen in ("expand", "both") else text
        qv = self.embedder.embed_query(query) if query != text else vec
        # over-fetch: several chunks of one clause collapse into one hit, so fetch more until k clauses remain
        n_cand = max(4 * k, 40)
        while True:
            ranked = self._ranking(text, vec, query, qv, names, n_cand, f or None)
            hits = dedupe_clauses(ranked)
            if len(hits) >= k or len(ranked) < n_cand:
                break
            n_cand *= 4
        timings["search"] = 1000 * (time.perf_counter() - t0)
        return RetrievalResult(hits[:k], query, names, timings)

    def _ranking(
        self,
        text: str,
        vec: np.ndarray,
        query: str,
        qv: np.ndarray,
        names: Sequence[str],
        n: int,
        filters: Filters | None,
    ) -> list[Hit]:
        """The top ``n`` chunks (clauses not yet deduplicated): hybrid search, then what the scene adds."""
        hits = self.index.hybrid(text, vec, k=n, filters=filters, fusion=self.fusion)
        if query != text:
            expanded = self.index.hybrid(query, qv, k=n, filters=filters, fusion=self.fusion)
            hits = reciprocal_rank_fusion([hits, expanded], top_k=n)
        if names and self.use_seen in ("rerank", "both"):
            hits = reciprocal_rank_fusion([hits, _tools_first(hits, names)], weights=[1.0, self.seen_weight], top_k=n)
        return hits


def _tools_first(hits: Sequence[Hit], names: Sequence[str]) -> list[Hit]:
    """The same hits, those that mention a tool seen on the table first (stable: otherwise in rank order).

    A clause that names a tool lying in front of the robot is far more likely to be the one that applies than a
    clause about a tool that is not there; fused with the text ranking, this promotes without overriding it.
    """
    low = [n.lower() for n in names if n]
    return sorted(hits, key=lambda h: (not any(n in h.chunk.text.lower() for n in low), h.rank))
