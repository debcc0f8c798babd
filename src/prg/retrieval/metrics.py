"""Retrieval metrics: Recall@k, MRR and nDCG@k for one query, and means over a run (all, or per group).

Conventions (they match trec_eval / ``ir-measures``, checked in tests/retrieval/test_metrics.py):

- ``relevant`` is a set of ids (every one has relevance 1) or a mapping id -> graded relevance; an id counts as
  relevant when its relevance is > 0 (trec_eval's default ``rel_level=1`` for integer grades).
- A ranking is best first. A repeated id counts once, at its first position (a run in trec_eval is a map
  docid -> score, so it cannot hold duplicates either).
- Recall@k = (#relevant in the top k) / (#relevant), over all relevant ids, not ``min(k, #relevant)``.
- MRR = 1 / rank of the first relevant id (1-based) over the whole ranking; 0 when none is retrieved.
- nDCG@k: DCG = sum_i gain_i / log2(i + 1), i from 1, with gain = graded relevance (linear, negative grades as 0);
  IDCG is the DCG of all relevant ids in ideal order, cut at k.
- Recall and nDCG are undefined for a query with no relevant id: the per-query functions raise, and
  :func:`evaluate_runs` skips such queries and reports how many it skipped (ir-measures would average them
  as 0).
- A query that has relevant ids but no ranking counts as an empty ranking (score 0), as in ir-measures: a
  retriever that returns nothing should lose points.

docs/retrieval_metrics.md lists every difference from ir-measures.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

__all__ = ["evaluate_grouped", "evaluate_runs", "mrr", "ndcg_at_k", "recall_at_k"]

Relevant = Collection[str] | Mapping[str, float]


def _gains(relevant: Relevant) -> dict[str, float]:
    """id -> gain (> 0) for the relevant ids only."""
    if isinstance(relevant, Mapping):
        return {d: float(r) for d, r in relevant.items() if r > 0}
    return dict.fromkeys(relevant, 1.0)


def _dedupe(ranked: Sequence[str]) -> list[str]:
    """Keep each id at its first position."""
    return list(dict.fromkeys(ranked))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_at_k(ranked_ids: Sequence[str], relevant_ids: Relevant, k: int) -> float:
    """Fraction of the relevant ids found in the top ``k`` of ``ranked_ids``."""
    _check_k(k)
    gains = _gains(relevant_ids)
    if not gains:
        raise ValueError("recall is undefined for a query with no relevant id")
    return sum(d in gains for d in _dedupe(ranked_ids)[:k]) / len(gains)


def mrr(ranked: Sequence[str], relevant: Relevant) -> float:
    """Reciprocal rank of the first relevant id in ``ranked`` (1-based); 0.0 when there is none."""
    gains = _gains(relevant)
    for rank, d in enumerate(_dedupe(ranked), start=1):
        if d in gains:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """Normalised discounted cumulative gain of the top ``k`` (binary gains for a set, graded for a mapping)."""
    _check_k(k)
    gains = _gains(relevant)
    if not gains:
        raise ValueError("nDCG is undefined for a query with no relevant id")
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 1) for i, d in enumerate(_dedupe(ranked)[:k], start=1))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg


def evaluate_runs(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, float]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Mean metrics over queries: ``R@k`` and ``nDCG@k`` for each k in ``ks``, and ``MRR``.

    ``runs``: query id -> ranked doc ids (best first); ``qrels``: query id -> {doc id: relevance}. Every query
    in either is considered; those with no relevant doc are skipped. Also returns ``num_queries`` (evaluated)
    and ``num_skipped`` (as floats, so the result is one flat mapping). Means are 0.0 when nothing is evaluated.
    """
    for k in ks:
        _check_k(k)
    sums: dict[str, float] = {f"R@{k}": 0.0 for k in ks} | {"MRR": 0.0} | {f"nDCG@{k}": 0.0 for k in ks}
    n = skipped = 0
    for qid in dict.fromkeys([*qrels, *runs]):  # union, in a stable order
        rel = qrels.get(qid, {})
        if not _gains(rel):
            skipped += 1
            continue
        ranked = runs.get(qid, [])
        n += 1
        for k in ks:
            sums[f"R@{k}"] += recall_at_k(ranked, rel, k)
            sums[f"nDCG@{k}"] += ndcg_at_k(ranked, rel, k)
        sums["MRR"] += mrr(ranked, rel)
    out = {m: (s / n if n else 0.0) for m, s in sums.items()}
    out["num_queries"] = float(n)
    out["num_skipped"] = float(skipped)
    return out


def evaluate_grouped(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, float]],
    groups: Mapping[str, str],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, dict[str, float]]:
    """:func:`evaluate_runs` per group (a split, an industry): ``groups`` maps every query id to its group.

    Raises ``KeyError`` if a query in ``runs`` or ``qrels`` has no group, since silently dropping it would skew
    the report.
    """
    by_group: dict[str, list[str]] = defaultdict(list)
    ungrouped = []
    for qid in dict.fromkeys([*qrels, *runs]):
        if qid in groups:
            by_group[groups[qid]].append(qid)
        else:
            ungrouped.append(qid)
    if ungrouped:
        raise KeyError(f"{len(ungrouped)} queries have no group, e.g. {ungrouped[:5]}")
    return {
        g: evaluate_runs({q: runs[q] for q in qids if q in runs}, {q: qrels[q] for q in qids if q in qrels}, ks)
        for g, qids in sorted(by_group.items())
    }
