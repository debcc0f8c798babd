"""Retrieval quality on a PRG dataset: gold = the clause(s) each record references.

A retrieved chunk counts as the clause ``(doc_id, clause)`` it belongs to; several chunks of one clause (its
text, its table row, its PDF version) count once, at the best rank. Metrics: Recall@k, MRR and nDCG@k, per split,
per industry and overall (``prg.retrieval.metrics``), at one of two levels:

* ``clause``: the exact clauses the record lists are the relevant items;
* ``rule``: a regulation library states one rule in several documents, and any of those clauses supports the
  answer equally. Where the corpus says which rule each clause states (``documents/index.json``, as PRG-Synth
  writes it), clauses are grouped by rule and a record's relevant item is its rule: Recall@5 = 1 when a clause
  stating it is in the top 5. Clauses no rule maps stay clause-level. Without such a map, both levels agree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prg.data.dataset import RECORDS_FILE, iter_records, load_depth, load_image
from prg.data.schema import PRGRecord
from prg.retrieval.metrics import evaluate_grouped, evaluate_runs
from prg.retrieval.retriever import Retriever
from prg.retrieval.rules import clause_groups, clause_key
from prg.retrieval.types import Hit

__all__ = [
    "Query",
    "RetrievalEval",
    "clause_groups",
    "clause_key",
    "evaluate_queries",
    "evaluate_retrieval",
    "load_queries",
]


@dataclass
class RetrievalEval:
    overall: dict[str, float]
    by_split: dict[str, dict[str, float]]
    by_industry: dict[str, dict[str, float]]
    mode: str  # "text", "image" or "oracle-seen"
    level: str  # "rule" or "clause"
    n_queries: int
    latency_ms_p50: float
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "level": self.level,
            "queries": self.n_queries,
            "overall": self.overall,
            "by_split": self.by_split,
            "by_industry": self.by_industry,
            "latency_ms_p50": self.latency_ms_p50,
            "examples": self.examples,
        }


def evaluate_retrieval(
    dataset: str | Path,
    retriever: Retriever,
    splits: Sequence[str] | None = None,
    mode: str = "text",
    ks: Sequence[int] = (1, 5, 10),
    limit: int | None = None,
    industry_filter: bool = False,
    progress: bool = True,
    level: str = "rule",
) -> RetrievalEval:
    """Run every selected record's instruction through ``retriever`` and score against its gold clauses.

    ``mode``: ``text`` (instruction only), ``image`` (the tagger sees the scene), ``oracle-seen`` (the true
    names of the objects on the table join the query: an upper bound for image-aware retrieval).
    """
    from tqdm import tqdm

    if not Path(dataset).is_dir():
        raise FileNotFoundError(f"dataset folder {dataset} does not exist")
    if not (Path(dataset) / RECORDS_FILE).is_file():
        raise FileNotFoundError(f"{dataset} is not a PRG dataset (no {RECORDS_FILE})")
    if mode not in ("text", "image", "oracle-seen"):
        raise ValueError(f"unknown mode {mode!r}: choose text, image or oracle-seen")
    if level not in ("rule", "clause"):
        raise ValueError(f"unknown level {level!r}: choose rule or clause")
    group = clause_groups(dataset) if level == "rule" else {}
    if mode == "image" and retriever.tagger is None:
        raise ValueError("mode 'image' needs a scene tagger (train one with `prg index train-tagger`)")
    records = _select(iter_records(dataset), splits, limit)
    if not records:
        raise ValueError(f"no records in {dataset} for splits {list(splits or [])}")
    runs: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    by_split: dict[str, str] = {}
    by_ind: dict[str, str] = {}
    lat: list[float] = []
    examples: list[dict[str, Any]] = []
    kmax = max(ks)
    for rec in tqdm(records, desc=f"retrieval ({mode})", disable=None if progress else True):
        gold = {_g(group, clause_key(d.doc_id, d.clause)): 1 for d in rec.documents}
        if not gold:
            continue
        kwargs: dict[str, Any] = {}
        if mode == "image":
            kwargs = {"image": load_image(dataset, rec), "depth": load_depth(dataset, rec)}
        elif mode == "oracle-seen":
            kwargs = {"seen": [o.name for o in rec.objects if not o.category.startswith("clutter_")]}
        t0 = time.perf_counter()
        # over-fetch: several chunks of one clause collapse into one entry of the ranking
        res = retriever.search(
            rec.instruction, k=3 * kmax, industry=rec.industry if industry_filter else None, **kwargs
        )
        lat.append(1000 * (time.perf_counter() - t0))
        ranked = _ranked(res.hits, group, kmax)
        runs[rec.id], qrels[rec.id] = ranked, gold
        by_split[rec.id], by_ind[rec.id] = rec.split, rec.industry
        if len(examples) < 5:
            examples.append(
                {"id": rec.id, "query": res.query, "seen": res.seen, "gold": sorted(gold), "top": ranked[:5]}
            )
    return RetrievalEval(
        overall=evaluate_runs(runs, qrels, ks=ks),
        by_split=evaluate_grouped(runs, qrels, by_split, ks=ks),
        by_industry=evaluate_grouped(runs, qrels, by_ind, ks=ks),
        mode=mode,
        level=level,
        n_queries=len(runs),
        latency_ms_p50=float(np.median(lat)) if lat else 0.0,
        examples=examples,
    )


def _select(records: Iterable[PRGRecord], splits: Sequence[str] | None, limit: int | None) -> list[PRGRecord]:
    """Records of the chosen splits; with ``limit``, at most that many per split (the first ones)."""
    out: list[PRGRecord] = []
    count: dict[str, int] = {}
    for r in records:
        if splits and r.split not in splits:
            continue
        if limit is not None and count.get(r.split, 0) >= limit:
            continue
        count[r.split] = count.get(r.split, 0) + 1
        out.append(r)
    return out


def _g(group: dict[str, str], key: str) -> str:
    return group.get(key, key)


def _ranked(hits: Sequence[Hit], group: dict[str, str], kmax: int) -> list[str]:
    """The first ``kmax`` distinct clauses (or rules) of a ranking, best first."""
    return list(dict.fromkeys(_g(group, clause_key(h.chunk.doc_id, h.chunk.clause)) for h in hits))[:kmax]


@dataclass
class Query:
    """An instruction and its gold clauses, outside a PRG dataset (a hand-written query set)."""

    id: str
    text: str
    gold: list[tuple[str, str | None]]  # (doc_id, clause)
    split: str = ""


def load_queries(path: str | Path) -> list[Query]:
    """Queries from JSONL: ``{"id", "text", "split", "gold": [{"doc_id", "clause"}]}`` per line."""
    out: list[Query] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                gold = [(g["doc_id"], g.get("clause")) for g in d["gold"]]
                out.append(Query(str(d["id"]), d["text"], gold, d.get("split", "")))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: not a query ({type(e).__name__}: {e})") from e
    return out


def evaluate_queries(
    queries: Sequence[Query],
    retriever: Retriever,
    ks: Sequence[int] = (1, 5, 10),
    groups: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Score ``retriever`` on ``queries`` at clause level (rule level with a ``groups`` map, as
    :func:`clause_groups` makes): ``{"all": metrics, <split>: metrics, ...}``, metrics as ``evaluate_runs``."""
    group = groups or {}
    kmax = max(ks)
    runs: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    split: dict[str, str] = {}
    for q in queries:
        res = retriever.search(q.text, k=3 * kmax)  # over-fetch, as evaluate_retrieval does
        runs[q.id] = _ranked(res.hits, group, kmax)
        qrels[q.id] = {_g(group, clause_key(d, c)): 1 for d, c in q.gold}
        split[q.id] = q.split
    return {"all": evaluate_runs(runs, qrels, ks=ks), **evaluate_grouped(runs, qrels, split, ks=ks)}
