"""Rules: valid keys, implicit instructions, two-step and zero-shot coverage, paraphrasing."""

from __future__ import annotations

import random
from dataclasses import replace

from prg.data.schema import INDUSTRIES
from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.rules import RULES, check_rules, paraphrase, rules_for_industry


def test_rule_set_has_no_problems() -> None:
    assert check_rules() == []


def test_check_rules_catches_named_tool_and_unknown_key() -> None:
    bad = replace(RULES[0], instructions=("Grab the Voltage Tester and check the cabinet.",))
    unknown = replace(RULES[1], id="XX-1", required=("warp_drive",))
    problems = check_rules([bad, unknown])
    assert any("names 'voltage tester'" in p for p in problems)
    assert any("unknown object key 'warp_drive'" in p for p in problems)


def test_per_industry_counts() -> None:
    for ind in INDUSTRIES:
        rules = rules_for_industry(ind)
        assert len(rules) >= 10
        assert sum(len(r.required) == 2 for r in rules) >= 2
        phrasings = {i for r in rules for i in r.instructions}
        assert len(phrasings) >= 20, ind
        zs = [r for r in rules if r.zero_shot]
        assert 0.15 <= len(zs) / len(rules) <= 0.3, ind


def test_keys_exist_and_forbidden_are_lookalikes() -> None:
    for r in RULES:
        for req, forb in zip(r.required, r.forbidden, strict=False):
            assert req in CATALOGUE and forb in CATALOGUE
            assert forb in CATALOGUE[req].lookalikes, r.id


def test_zero_shot_objects_appear_in_training_rules() -> None:
    train = {k for r in RULES if not r.zero_shot for k in r.required}
    for r in RULES:
        if r.zero_shot:
            assert set(r.required) <= train, r.id


def test_paraphrase_varies_and_never_names_a_tool() -> None:
    rng = random.Random(0)
    names = [n.lower() for t in CATALOGUE.values() for n in (t.name, *t.aliases)]
    for r in RULES:
        outs = {paraphrase(r.instructions[0], rng) for _ in range(30)}
        assert len(outs) > 3
        for o in outs:
            assert not any(n in o.lower() for n in names if n not in r.instructions[0].lower()), o


def test_every_rule_has_scope_phrases() -> None:
    for r in RULES:
        assert 3 <= len(r.scope) <= 5, r.id
        assert len(set(r.scope)) == len(r.scope), r.id


def test_check_rules_catches_bad_scope() -> None:
    r = RULES[0]
    named = replace(r, scope=(*r.scope[:2], "work with a voltage detector on panels"))
    copied = replace(r, scope=(*r.scope[:2], "whenever I need to confirm this cabinet is dead"))
    short = replace(r, scope=r.scope[:2])
    assert any("scope names 'voltage detector'" in p for p in check_rules([named]))
    assert any("scope copies instruction words 'i need to confirm this'" in p for p in check_rules([copied]))
    assert any("needs 3-5 scope phrases, has 2" in p for p in check_rules([short]))
    # four shared consecutive words are allowed, five are not
    ok = replace(r, scope=(*r.scope[:2], "to confirm this cabinet before opening"))
    assert check_rules([ok]) == []
