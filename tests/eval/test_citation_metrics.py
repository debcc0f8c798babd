"""Citation metrics on results built by hand: plain dataclasses and the pipeline's own result type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from prg.data.schema import DocRef
from prg.eval.citations import CitationScore, citation_score, citation_summary, evaluate_citations, gold_rules
from prg.pipeline import CitationOut, PRGResult

# one rule stated by two documents; a second rule by one clause
GROUPS = {
    "EP-SAF-004§4.2": "rule:verify_dead",
    "EP-SITE-010§3.1": "rule:verify_dead",
    "EP-SAF-001§2.0": "rule:gloves",
}


@dataclass
class Ref:
    doc_id: str
    clause: str | None = None


@dataclass
class Result:
    answer: str
    citations: list[Ref] = field(default_factory=list)
    unresolved_citations: list[str] = field(default_factory=list)
    retrieved: list[Ref] = field(default_factory=list)


def test_citing_another_document_stating_the_rule_counts() -> None:
    r = Result("Per EP-SITE-010 §3.1 test first [POSE].", [Ref("EP-SITE-010", "3.1")], [], [Ref("EP-SITE-010", "3.1")])
    s = citation_score(r, [Ref("EP-SAF-004", "4.2")], GROUPS)
    assert s == CitationScore(True, 0, True, ("rule:verify_dead",), ("rule:verify_dead",))


def test_wrong_rule_and_hallucinated_ids() -> None:
    r = Result("Per EP-SAF-001 §2.0 and XX-999 §1 ...", [Ref("EP-SAF-001", "2.0")], ["XX-999 §1", "YY-1 §2"])
    s = citation_score(r, [Ref("EP-SAF-004", "4.2")], GROUPS)
    assert not s.cites_rule
    assert s.hallucinated == 2
    assert s.any_citation


def test_only_hallucinated_citations_still_cite_something() -> None:
    s = citation_score(Result("Per XX-999 §1.", [], ["XX-999 §1"]), [Ref("EP-SAF-004", "4.2")], GROUPS)
    assert (s.cites_rule, s.hallucinated, s.any_citation) == (False, 1, True)


def test_no_citation() -> None:
    s = citation_score(Result("Take it [POSE]."), [Ref("EP-SAF-004", "4.2")], GROUPS)
    assert (s.cites_rule, s.hallucinated, s.any_citation) == (False, 0, False)


def test_clause_unknown_to_the_map_is_its_own_rule() -> None:
    assert gold_rules([Ref("MN-1", "7"), Ref("EP-SAF-004", "4.2"), Ref("MN-1", "7")], GROUPS) == (
        "MN-1§7",
        "rule:verify_dead",
    )
    r = Result("Per MN-1 §7.", [Ref("MN-1", "7")])
    assert citation_score(r, [Ref("MN-1", "7")], {}).cites_rule
    assert not citation_score(r, [Ref("MN-1", "8")], {}).cites_rule


def test_summary() -> None:
    scores = [
        CitationScore(True, 0, True),
        CitationScore(False, 2, True),
        CitationScore(True, 1, True),
        CitationScore(False, 0, False),
    ]
    assert citation_summary(scores) == {
        "n": 4.0,
        "cites_rule": 0.5,
        "any_citation": 0.75,
        "hallucinated_any": 0.5,
        "hallucinated_mean": 0.75,
    }
    with pytest.raises(ValueError):
        citation_summary([])


def _chunk(doc_id: str, clause: str, rank: int) -> CitationOut:
    return CitationOut(id=f"{doc_id} §{clause}", doc_id=doc_id, clause=clause, text="...", rank=rank, score=1.0)


def test_pipeline_result_and_dataset_rule_map(tmp_path: Path) -> None:
    index = {
        "documents": [
            {"doc_id": "EP-SAF-004", "clauses": {"4.2": "verify_dead"}},
            {"doc_id": "EP-SITE-010", "clauses": {"3.1": "verify_dead"}},
        ]
    }
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "index.json").write_text(json.dumps(index), encoding="utf-8")
    hit = _chunk("EP-SITE-010", "3.1", 0)
    results = [
        PRGResult(
            instruction="test the busbar",
            answer="Per EP-SITE-010 §3.1 use the detector [POSE].",
            citations=[hit.model_copy(update={"cited": True})],
            retrieved=[hit, _chunk("EP-SAF-001", "2.0", 1)],
            image_size=(64, 48),
        ),
        PRGResult(
            instruction="test the busbar",
            answer="Per ZZ-1 §9 use the detector [POSE].",
            unresolved_citations=["ZZ-1 §9"],
            retrieved=[hit],
            image_size=(64, 48),
        ),
    ]
    gold = [[DocRef(doc_id="EP-SAF-004", clause="4.2")]] * 2
    scores, summary = evaluate_citations(results, gold, dataset=tmp_path)
    assert [s.cites_rule for s in scores] == [True, False]
    assert summary["cites_rule"] == 0.5
    assert summary["hallucinated_any"] == 0.5
    assert summary["hallucinated_mean"] == 0.5
    # without the rule map the other document's clause is a different clause
    scores, _ = evaluate_citations(results, gold)
    assert not scores[0].cites_rule
    with pytest.raises(ValueError):
        evaluate_citations(results, gold[:1])
