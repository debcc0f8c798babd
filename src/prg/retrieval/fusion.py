"""Reciprocal-rank fusion of ranked hit lists (dense, lexical, image), and a hook for an optional reranker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from prg.retrieval.types import Chunk, Hit

__all__ = ["Reranker", "reciprocal_rank_fusion"]


@runtime_checkable
class Reranker(Protocol):
    """Reorders (and may rescore or cut) fused hits for a query, e.g. a cross-encoder. Off unless given."""

    def __call__(self, query: str, hits: Sequence[Hit]) -> list[Hit]: ...


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[Hit]],
    k: int = 60,
    weights: Sequence[float] | None = None,
    top_k: int = 10,
) -> list[Hit]:
    """Fuse ranked lists by RRF: ``score(c) = sum_i w_i / (k + rank_i(c))`` over the lists holding chunk ``c``.

    ``rank_i`` is the 1-based position in list ``i`` (a chunk repeated in one list counts once, at its best
    position). Ties are broken by the best individual rank, then by chunk id, so the order is deterministic.
    Returns at most ``top_k`` hits with ``source="fused"`` and ranks 1..n.
    """
    if weights is None:
        weights = [1.0] * len(ranked_lists)
    if len(weights) != len(ranked_lists):
        raise ValueError(f"{len(weights)} weights for {len(ranked_lists)} lists")
    score: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    chunk: dict[str, Chunk] = {}
    for hits, w in zip(ranked_lists, weights, strict=True):
        seen: set[str] = set()
        for pos, hit in enumerate(hits, start=1):
            cid = hit.chunk.id
            if cid in seen:
                continue
            seen.add(cid)
            score[cid] = score.get(cid, 0.0) + w / (k + pos)
            best_rank[cid] = min(best_rank.get(cid, pos), pos)
            chunk.setdefault(cid, hit.chunk)
    order = sorted(score, key=lambda c: (-score[c], best_rank[c], c))[:top_k]
    return [Hit(chunk[c], score[c], i + 1, "fused") for i, c in enumerate(order)]
