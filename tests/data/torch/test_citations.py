"""Training answers are rewritten to cite the prompt's statement of their rule."""

from __future__ import annotations

from prg.data.torch.citations import align_citations

GROUPS = {"A-1§4.2": "rule:r1", "B-2§3.1": "rule:r1", "C-3§1": "rule:r2", "D-4§2": "rule:r3"}


def test_cited_gold_missing_from_the_prompt_becomes_the_prompt_clause_of_the_same_rule() -> None:
    answer = "A-1 §4.2 says: take the detector [POSE]."
    out = align_citations(answer, [("A-1", "4.2")], ["C-3 §1", "B-2 §3.1"], GROUPS)
    assert out == "B-2 §3.1 says: take the detector [POSE]."


def test_kept_when_shown_or_when_no_prompt_clause_states_the_rule() -> None:
    answer = "A-1 §4.2 says so [POSE]."
    assert align_citations(answer, [("A-1", "4.2")], ["A-1 §4.2", "B-2 §3.1"], GROUPS) == answer
    assert align_citations(answer, [("A-1", "4.2")], ["C-3 §1", "D-4 §2"], GROUPS) == answer
    assert align_citations(answer, [("A-1", None)], ["B-2 §3.1"], GROUPS) == answer
