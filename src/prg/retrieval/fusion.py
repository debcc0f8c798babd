"""Fusion of ranked hit lists (dense, lexical, image), clause deduplication, and a hook for a reranker.

Two fusions: :func:`score_fusion` (weighted sum of each list's scores divided by its top score: the hybrid
default) and :func:`reciprocal_rank_fusion` (ranks only: used where one list has no comparable scores, e.g. the
"seen tools first" ranking). :class:`FusionConfig` says how :meth:`DocumentIndex.hybrid` combines the dense and
BM25 rankings; its default was chosen for MiniLM on the tuning halves of two corpora (PRG-Synth and the
hand-written Works Safety Code), see ``benchmarks/bench_fusion.py`` and docs/retrieval_index.md. How much the dense
ranking deserves depends on the embedder, so :func:`default_fusion` picks the default by the index's embedder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from prg.retrieval.types import Chunk, Hit

__all__ = [
    "EMBEDDER_FUSION",
    "FUSIONS",
    "FusionConfig",
    "Reranker",
    "dedupe_clauses",
    "default_fusion",
    "fuse",
    "reciprocal_rank_fusion",
    "score_fusion",
]


@runtime_checkable
class Reranker(Protocol):
    """Reorders (and may rescore or cut) fused hits for a query, e.g. a cross-encoder. Off unless given."""

    def __call__(self, query: str, hits: Sequence[Hit]) -> list[Hit]: ...


@dataclass(frozen=True)
class FusionConfig:
    """How the dense and the lexical (BM25) rankings of one query become one ranking.

    Args:
        method: ``score`` (weighted sum of max-normalised scores, the default), ``rrf`` (reciprocal-rank fusion,
            the default before it), ``dense`` or ``lexical`` (one ranking alone: baselines).
        weights: [dense, lexical] weights of ``score`` and ``rrf``.
        rrf_k: the RRF constant.

    The default, ``score`` with weights 0.8 / 0.2, had the largest worst-case margin over the better single
    ranking (MRR and R@5, tuning halves of both corpora) among the scale-free fusions tried: RRF with k 1-60 and
    lexical weights 0.1-1, score fusion with min-max, max and z-score normalisation and dense weights 0.5-0.95.
    RRF gives a weak ranking the same say as a strong one: on plain prose, where BM25 is weak, it pulled the
    hybrid below dense search alone. (Unnormalised sums such as ``cosine + 0.03 * BM25`` did as well but tie the
    weight to the corpus's BM25 scale.)
    """

    method: str = "score"
    weights: tuple[float, float] = (0.8, 0.2)
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.method not in FUSIONS:
            raise ValueError(f"unknown fusion {self.method!r}; choose one of {', '.join(FUSIONS)}")
        if len(self.weights) != 2:
            raise ValueError(f"weights are [dense, lexical], got {list(self.weights)}")


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
    return _fuse(ranked_lists, weights, top_k, lambda hits: [1.0 / (k + pos) for pos in range(1, len(hits) + 1)])


def score_fusion(
    ranked_lists: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None, top_k: int = 10
) -> list[Hit]:
    """Fuse by scores: ``score(c) = sum_i w_i * s_i(c) / max_j s_i(j)`` over the lists holding chunk ``c``.

    Dividing by each list's top score puts cosine similarities and BM25 scores on one scale without a corpus
    constant, and, unlike min-max, does not depend on how deep the candidate lists go. A chunk missing from a
    list scores 0 there; a list whose top score is not positive adds nothing. Ties and duplicates as in
    :func:`reciprocal_rank_fusion`.
    """

    def normalised(hits: Sequence[Hit]) -> list[float]:
        top = max((h.score for h in hits), default=0.0)
        return [max(h.score, 0.0) / top if top > 0 else 0.0 for h in hits]

    return _fuse(ranked_lists, weights, top_k, normalised)


def _fuse(
    ranked_lists: Sequence[Sequence[Hit]],
    weights: Sequence[float] | None,
    top_k: int,
    contribution: Callable[[Sequence[Hit]], list[float]],
) -> list[Hit]:
    """Sum ``w_i * contribution(list_i)[pos]`` per chunk (first occurrence in each list), best first."""
    if weights is None:
        weights = [1.0] * len(ranked_lists)
    if len(weights) != len(ranked_lists):
        raise ValueError(f"{len(weights)} weights for {len(ranked_lists)} lists")
    score: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    chunk: dict[str, Chunk] = {}
    for hits, w in zip(ranked_lists, weights, strict=True):
        seen: set[str] = set()
        for pos, (hit, value) in enumerate(zip(hits, contribution(hits), strict=True), start=1):
            cid = hit.chunk.id
            if cid in seen:
                continue
            seen.add(cid)
            score[cid] = score.get(cid, 0.0) + w * value
            best_rank[cid] = min(best_rank.get(cid, pos), pos)
            chunk.setdefault(cid, hit.chunk)
    order = sorted(score, key=lambda c: (-score[c], best_rank[c], c))[:top_k]
    return [Hit(chunk[c], score[c], i + 1, "fused") for i, c in enumerate(order)]


def _one(lst: int) -> Callable[[Sequence[Hit], Sequence[Hit], FusionConfig, int], list[Hit]]:
    def pick(dense: Sequence[Hit], lexical: Sequence[Hit], cfg: FusionConfig, top_k: int) -> list[Hit]:
        return list((dense, lexical)[lst][:top_k])

    return pick


#: fusion method name -> ``(dense, lexical, config, top_k) -> hits``
FUSIONS: dict[str, Callable[[Sequence[Hit], Sequence[Hit], FusionConfig, int], list[Hit]]] = {
    "score": lambda d, lx, cfg, n: score_fusion([d, lx], cfg.weights, n),
    "rrf": lambda d, lx, cfg, n: reciprocal_rank_fusion([d, lx], cfg.rrf_k, cfg.weights, n),
    "dense": _one(0),
    "lexical": _one(1),
}


#: default fusion per embedder family (the index's embedder name up to its first "-"); others get FusionConfig().
#: The hashing embedder is a bag of hashed words, far weaker than BM25 (Works Safety Code held-out MRR 0.08 vs
#: 0.56): weighted 0.8 it would drown BM25, so it keeps RRF with equal weights.
EMBEDDER_FUSION: dict[str, FusionConfig] = {"hashing": FusionConfig("rrf", (1.0, 1.0), 60)}


def default_fusion(embedder: str) -> FusionConfig:
    """The fusion to use with vectors of ``embedder`` ("minilm", "hashing-256", ...) when none is given."""
    return EMBEDDER_FUSION.get(embedder.split("-", 1)[0], FusionConfig())


def fuse(
    dense: Sequence[Hit], lexical: Sequence[Hit], config: FusionConfig | None = None, top_k: int = 10
) -> list[Hit]:
    """One ranking of at most ``top_k`` hits from a query's dense and lexical hits, as ``config`` says."""
    cfg = config or FusionConfig()
    return FUSIONS[cfg.method](dense, lexical, cfg, top_k)


def dedupe_clauses(hits: Sequence[Hit]) -> list[Hit]:
    """The hits with one per clause ``(doc_id, clause)``, the best-ranked, re-ranked 1..n.

    The Markdown and PDF copies of a document (or a clause's text and its table row) are separate chunks of one
    clause; an answer needs the clause once. A chunk outside any clause (``clause`` None) is only its own
    duplicate.
    """
    seen: set[tuple[str, str]] = set()
    out: list[Hit] = []
    for h in hits:
        clause = h.chunk.clause
        key = (h.chunk.doc_id, clause) if clause else ("", h.chunk.id)
        if key in seen:
            continue
        seen.add(key)
        out.append(Hit(h.chunk, h.score, len(out) + 1, h.source))
    return out
