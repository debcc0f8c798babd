"""QA: [POSE] per present required tool, real citations, absent answers."""

from __future__ import annotations

import random

import pytest

from prg.data.schema import POSE_TOKEN, count_pose_tokens
from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.corpus import build_corpus, rule_citations
from prg.data.synth.qa import make_qa
from prg.data.synth.rules import RULES


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    docs = build_corpus(seed=3)
    return {d.doc_id: d.markdown for d in docs}, rule_citations(docs)


def test_present_tools_get_one_pose_each(corpus: tuple[dict, dict]) -> None:
    markdown, cites = corpus
    rng = random.Random(0)
    answers = set()
    for r in RULES:
        for _ in range(5):
            scene = [*r.required, *r.forbidden, "clutter_cup"]
            qa = make_qa(r, scene, cites, rng)
            answers.add(qa.answer.split(" ", 1)[0])
            assert qa.kind == ("two_step" if len(r.required) == 2 else "single")
            assert qa.targets == list(r.required)
            assert count_pose_tokens(qa.answer) == len(r.required)
            for key in r.required:  # [POSE] right after the tool's name
                assert f"{CATALOGUE[key].name} {POSE_TOKEN}" in qa.answer
            doc_id, clause = qa.documents[0]
            assert f"{doc_id} §{clause}" in qa.answer
            assert (doc_id, clause) in cites[r.id]
            assert f"**{clause}**" in markdown[doc_id] or f"| {clause} |" in markdown[doc_id]
            assert qa.instruction and CATALOGUE[r.required[0]].name not in qa.instruction
    assert len(answers) >= 4  # several templates in use


def test_absent_tool_is_named_without_pose(corpus: tuple[dict, dict]) -> None:
    _, cites = corpus
    rng = random.Random(1)
    for r in RULES:
        qa = make_qa(r, list(r.forbidden), cites, rng)
        assert qa.kind == "absent" and qa.targets == []
        assert POSE_TOKEN not in qa.answer
        assert CATALOGUE[r.required[0]].name in qa.answer
        with pytest.raises(ValueError, match="not in the scene"):
            make_qa(r, list(r.forbidden), cites, rng, missing_ok=False)


def test_two_step_with_one_tool_missing(corpus: tuple[dict, dict]) -> None:
    _, cites = corpus
    rng = random.Random(2)
    for r in (r for r in RULES if len(r.required) == 2):
        qa = make_qa(r, [r.required[1]], cites, rng)
        assert qa.kind == "absent" and qa.targets == [r.required[1]]
        assert count_pose_tokens(qa.answer) == 1
        assert f"{CATALOGUE[r.required[1]].name} {POSE_TOKEN}" in qa.answer
        assert CATALOGUE[r.required[0]].name in qa.answer


def test_zero_shot_rules_cite_only_held_out_documents(corpus: tuple[dict, dict]) -> None:
    _, cites = corpus
    held = {d.doc_id for d in build_corpus(seed=3) if d.zero_shot}
    rng = random.Random(4)
    for r in (r for r in RULES if r.zero_shot):
        qa = make_qa(r, list(r.required), cites, rng)
        assert all(doc in held for doc, _ in qa.documents)


def test_unstated_rule_raises() -> None:
    with pytest.raises(ValueError, match="stated in no document"):
        make_qa(RULES[0], list(RULES[0].required), {}, random.Random(0))
