"""Citation metrics: does an answer cite a clause stating the record's rule, and does it cite ids it never saw?

A rule is stated in several documents (see :mod:`prg.retrieval.rules`), so a citation counts when its clause
states the same rule as one of the record's gold clauses; a clause the corpus map does not know is its own rule.
Per record (:func:`citation_score`):

- ``cites_rule``: some resolved citation's clause states a gold rule;
- ``hallucinated``: cited ids that no retrieved chunk carries (``len(result.unresolved_citations)``);
- ``any_citation``: the answer cites anything, resolved or not.

:func:`citation_summary` averages them over records. Inputs are protocols: a :class:`prg.pipeline.PRGResult`
and the record's ``documents`` (:class:`prg.data.schema.DocRef`) fit, and so do plain dataclasses in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prg.retrieval.rules import clause_groups, clause_key

__all__ = [
    "CitationScore",
    "ClauseRef",
    "ResultLike",
    "citation_score",
    "citation_summary",
    "evaluate_citations",
    "gold_rules",
]


class ClauseRef(Protocol):
    """A clause of a document: a citation, a retrieved chunk, a gold ``DocRef``."""

    @property
    def doc_id(self) -> str: ...

    @property
    def clause(self) -> str | None: ...


class ResultLike(Protocol):
    """What the metrics read from a pipeline result (:class:`prg.pipeline.PRGResult` has all of it)."""

    @property
    def answer(self) -> str: ...

    @property
    def citations(self) -> Sequence[ClauseRef]: ...  # retrieved chunks the answer cites

    @property
    def unresolved_citations(self) -> Sequence[str]: ...  # cited ids no retrieved chunk carries

    @property
    def retrieved(self) -> Sequence[ClauseRef]: ...


@dataclass(frozen=True)
class CitationScore:
    """One record's citation metrics; ``cited_rules`` / ``gold_rules`` say why ``cites_rule`` is what it is."""

    cites_rule: bool
    hallucinated: int
    any_citation: bool
    cited_rules: tuple[str, ...] = ()
    gold_rules: tuple[str, ...] = ()


def _rule(groups: Mapping[str, str], ref: ClauseRef) -> str:
    key = clause_key(ref.doc_id, ref.clause)
    return groups.get(key, key)


def gold_rules(documents: Iterable[ClauseRef], groups: Mapping[str, str]) -> tuple[str, ...]:
    """The rules a record's gold clauses state (``rule:<id>``, or the clause key where the map has none)."""
    return tuple(dict.fromkeys(_rule(groups, d) for d in documents))


def citation_score(result: ResultLike, documents: Iterable[ClauseRef], groups: Mapping[str, str]) -> CitationScore:
    """Score one answer against its record's gold ``documents``; ``groups`` maps clause keys to rules, as
    :func:`prg.retrieval.rules.clause_groups` returns it (``{}``: every clause is its own rule)."""
    gold = gold_rules(documents, groups)
    cited = tuple(dict.fromkeys(_rule(groups, c) for c in result.citations))
    return CitationScore(
        cites_rule=bool(set(cited) & set(gold)),
        hallucinated=len(result.unresolved_citations),
        any_citation=bool(result.citations) or bool(result.unresolved_citations),
        cited_rules=cited,
        gold_rules=gold,
    )


def citation_summary(scores: Sequence[CitationScore]) -> dict[str, float]:
    """Over records: ``n``, ``cites_rule`` (share citing a gold rule), ``any_citation`` (share citing anything),
    ``hallucinated_any`` (share with at least one hallucinated id), ``hallucinated_mean`` (ids per record)."""
    if not scores:
        raise ValueError("no records to summarise")
    n = len(scores)
    return {
        "n": float(n),
        "cites_rule": sum(s.cites_rule for s in scores) / n,
        "any_citation": sum(s.any_citation for s in scores) / n,
        "hallucinated_any": sum(s.hallucinated > 0 for s in scores) / n,
        "hallucinated_mean": sum(s.hallucinated for s in scores) / n,
    }


def evaluate_citations(
    results: Sequence[ResultLike],
    documents: Sequence[Iterable[ClauseRef]],
    dataset: str | Path | None = None,
    groups: Mapping[str, str] | None = None,
) -> tuple[list[CitationScore], dict[str, float]]:
    """Score ``results[i]`` against the gold ``documents[i]`` of its record; the rule map comes from ``groups``
    or else from ``dataset``'s corpus index (neither: clause level). Returns the per-record scores and summary."""
    if len(results) != len(documents):
        raise ValueError(f"{len(results)} results but {len(documents)} gold entries")
    group = dict(groups) if groups is not None else (clause_groups(dataset) if dataset is not None else {})
    scores = [citation_score(r, d, group) for r, d in zip(results, documents, strict=True)]
    return scores, citation_summary(scores)
