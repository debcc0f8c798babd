"""Text metrics: hand-computed cases and a cross-check of our CIDEr-D against pycocoevalcap's."""

from __future__ import annotations

import math

import pytest

from prg.eval.text import bleu4, cider, cider_d_tokens, cider_tokens, normalise, rouge_l, text_scores

ANSWER = "Per EP-SAF-004 §4.2 use the voltage detector [POSE]."


def test_normalise_drops_pose_and_collapses_whitespace() -> None:
    assert normalise("  Per EP-SAF-004 §4.2\n use  the detector [POSE].  ") == "Per EP-SAF-004 §4.2 use the detector ."
    assert normalise("[POSE][POSE]") == ""


def test_cider_tokens_keep_clause_ids() -> None:
    assert cider_tokens("Per EP-SAF-004 §4.2, use it [POSE].") == ["per", "ep-saf-004", "§", "4.2", "use", "it"]


def test_identical_texts_score_full() -> None:
    hyps = [ANSWER, "Wear the insulated gloves before touching the panel [POSE]."]
    assert bleu4(hyps, hyps) == pytest.approx(100.0)
    assert rouge_l(hyps, hyps) == pytest.approx(1.0)


def test_pose_token_is_not_scored() -> None:
    assert bleu4([ANSWER], [ANSWER.replace(" [POSE]", "")]) == pytest.approx(100.0)
    assert rouge_l([ANSWER + " [POSE]"], [ANSWER]) == pytest.approx(1.0)


def test_disjoint_texts_score_zero() -> None:
    hyps = ["alpha beta gamma delta epsilon", "one two three four five"]
    refs = ["zeta eta theta iota kappa", "six seven eight nine ten"]
    s = text_scores(hyps, refs)
    assert s["bleu4"] == 0.0
    assert s["rouge_l"] == 0.0
    assert s["cider"] == 0.0


def test_several_references_of_varying_number() -> None:
    hyps = [ANSWER, "hand me the torque wrench [POSE]"]
    refs = [["something else entirely here", ANSWER], ["hand me the torque wrench [POSE]"]]
    assert bleu4(hyps, refs) == pytest.approx(100.0)
    assert rouge_l(hyps, refs) == pytest.approx(1.0)  # the best reference counts


def test_rouge_l_partial_by_hand() -> None:
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4, F1 = 3/4
    assert rouge_l(["a b c d"], ["a c d e"]) == pytest.approx(0.75)


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError):
        bleu4(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        cider(["a"], [[]])
    with pytest.raises(TypeError):
        rouge_l("a", "a")


def test_cider_by_hand() -> None:
    # N = 2, every n-gram in one reference set: idf = log 2 for all. Identical pairs: cosine 1 for uni- and
    # bigrams, 0 for the absent 3/4-grams -> mean over orders 0.5, x10 -> 5.
    assert cider(["a b", "c d"], ["a b", "c d"]) == pytest.approx(5.0)
    # n-grams in every reference set carry no weight (idf = log 2 - log 2 = 0)
    assert cider(["a b", "a b"], ["a b", "a b"]) == pytest.approx(0.0)
    # clipping: "a a" vs "a b", unigram vectors {a: 2L} and {a: L, b: L}: sum min(h, r) r = L^2 over
    # |h| |r| = 2L * sqrt(2) L -> 1 / (2 sqrt 2); bigrams share nothing; equal lengths, no penalty
    first = 10 * (1 / (2 * math.sqrt(2))) / 4
    assert cider(["a a", "x y"], ["a b", "x y"]) == pytest.approx((first + 5.0) / 2)


def test_cider_length_penalty_by_hand() -> None:
    # "c d" vs "c d c d c" (idf log 2 = L throughout): unigrams {c: L, d: L} . {c: 3L, d: 2L} clipped = 5 L^2 over
    # sqrt 2 L * sqrt 13 L; bigrams {cd: L} . {cd: 2L, dc: 2L} clipped = 2 L^2 over L * sqrt 8 L; the reference
    # has 3 more bigrams: penalty exp(-3^2 / (2 * 6^2))
    got = cider_d_tokens([["a", "b"], ["c", "d"]], [[["a", "b"]], [["c", "d", "c", "d", "c"]]])
    assert got[0] == pytest.approx(5.0)
    expected = 10 * (5 / math.sqrt(26) + 2 / math.sqrt(8)) / 4 * math.exp(-9 / 72)
    assert got[1] == pytest.approx(expected)


# ~10 PRG-like answers, each with several references (2-4), fixed for the cross-check
PAIRS: list[tuple[str, list[str]]] = [
    (
        "Per EP-SAF-004 §4.2 use the voltage detector [POSE].",
        [
            "Per EP-SAF-004 §4.2 verify absence of voltage with the detector [POSE].",
            "EP-SAF-004 §4.2 says to test for voltage first: [POSE].",
            "Use the voltage detector first, per EP-SAF-004 §4.2 [POSE].",
        ],
    ),
    (
        "Wear insulated gloves as EP-SAF-001 §3.1 requires [POSE].",
        ["Per EP-SAF-001 §3.1 insulated gloves are worn [POSE].", "Insulated gloves first (EP-SAF-001 §3.1) [POSE]."],
    ),
    (
        "Hand me the torque wrench [POSE] set to 40 Nm per MN-MEC-010 §2.4.",
        [
            "Per MN-MEC-010 §2.4 tighten to 40 Nm with the torque wrench [POSE].",
            "The torque wrench [POSE], 40 Nm, as MN-MEC-010 §2.4 says.",
            "MN-MEC-010 §2.4: torque wrench [POSE].",
            "Use the torque wrench [POSE].",
        ],
    ),
    (
        "Lock out the breaker before work per EP-LOTO-002 §5 [POSE].",
        [
            "EP-LOTO-002 §5 requires a lockout padlock on the breaker [POSE].",
            "Apply the padlock [POSE] per EP-LOTO-002 §5.",
        ],
    ),
    (
        "The continuity tester [POSE] is not for live circuits.",
        [
            "Do not use the continuity tester on live circuits; take the voltage detector [POSE].",
            "Per EP-SAF-004 §4.2 the voltage detector [POSE] comes first.",
        ],
    ),
    (
        "Grab the fire extinguisher [POSE].",
        [
            "Per FS-GEN-003 §1.2 the CO2 extinguisher [POSE] is used on electrical fires.",
            "Take the extinguisher [POSE].",
        ],
    ),
    (
        "Per CH-LAB-007 §6.1 goggles [POSE] and gloves [POSE] before pouring acid.",
        [
            "CH-LAB-007 §6.1: splash goggles [POSE] and nitrile gloves [POSE] before handling acid.",
            "Put on goggles [POSE] and gloves [POSE] per CH-LAB-007 §6.1.",
            "Goggles and gloves first [POSE] [POSE].",
        ],
    ),
    (
        "Use the earthing clamp [POSE] on the busbar per EP-SAF-004 §4.3.",
        ["Per EP-SAF-004 §4.3 earth the busbar with the earthing clamp [POSE].", "Earth it first: clamp [POSE]."],
    ),
    (
        "The ladder [POSE] must be inspected per CN-WAH-001 §2.",
        ["Inspect the ladder [POSE] before use, CN-WAH-001 §2.", "Per CN-WAH-001 §2 the ladder [POSE] is checked."],
    ),
    (
        "Nothing here is needed.",
        ["Per EP-SAF-004 §4.2 the voltage detector [POSE] is needed.", "You need the voltage detector [POSE]."],
    ),
]


def test_cider_matches_pycocoevalcap() -> None:
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    hyps = [h for h, _ in PAIRS]
    refs = [r for _, r in PAIRS]
    # both sides get the same tokenisation: pycocoevalcap splits pre-tokenised strings on whitespace
    gts = {i: [" ".join(cider_tokens(r)) for r in rr] for i, rr in enumerate(refs)}
    res = {i: [" ".join(cider_tokens(h))] for i, h in enumerate(hyps)}
    theirs_mean, theirs = cider_mod.Cider().compute_score(gts, res)
    ours = cider_d_tokens([cider_tokens(h) for h in hyps], [[cider_tokens(r) for r in rr] for rr in refs])
    assert ours == pytest.approx([float(x) for x in theirs], abs=1e-6)
    assert cider(hyps, refs) == pytest.approx(float(theirs_mean), abs=1e-6)
    assert 0.0 < cider(hyps, refs) < 10.0
