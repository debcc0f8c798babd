"""Retrieval metrics: hand-computed cases, edge cases, and agreement with ir-measures (trec_eval)."""

from __future__ import annotations

import math
import random

import pytest

from prg.retrieval.metrics import evaluate_grouped, evaluate_runs, mrr, ndcg_at_k, recall_at_k

RANKED = ["a", "b", "c", "d"]
REL = {"b", "d"}


def test_hand_computed_binary() -> None:
    assert recall_at_k(RANKED, REL, 1) == 0.0
    assert recall_at_k(RANKED, REL, 2) == 0.5
    assert recall_at_k(RANKED, REL, 3) == 0.5
    assert recall_at_k(RANKED, REL, 4) == 1.0
    assert mrr(RANKED, REL) == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, REL, 4) == pytest.approx(expected, abs=1e-12)
    # Top 2 holds only b at rank 2; the ideal top 2 holds both.
    assert ndcg_at_k(RANKED, REL, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_hand_computed_graded() -> None:
    rel = {"a": 0, "b": 1, "d": 2, "z": 1}  # z relevant but never retrieved; a judged non-relevant
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RANKED, rel, 4) == pytest.approx(dcg / idcg)
    assert recall_at_k(RANKED, rel, 4) == pytest.approx(2 / 3)  # denominator: all 3 relevant ids
    assert mrr(RANKED, rel) == 0.5  # "a" has grade 0, so not relevant


def test_perfect_and_worst_rankings() -> None:
    assert ndcg_at_k(["d", "b", "a"], REL, 3) == pytest.approx(1.0)
    assert mrr(["b"], REL) == 1.0
    assert ndcg_at_k(["x", "y"], REL, 2) == 0.0
    assert recall_at_k(["x", "y"], REL, 2) == 0.0


def test_edge_cases() -> None:
    assert recall_at_k([], REL, 5) == 0.0
    assert mrr([], REL) == 0.0
    assert ndcg_at_k([], REL, 5) == 0.0
    # k beyond the list is the whole list.
    assert recall_at_k(RANKED, REL, 100) == 1.0
    assert ndcg_at_k(RANKED, REL, 100) == ndcg_at_k(RANKED, REL, 4)
    # A duplicate counts once, at its first position, and does not push later ids out of the top k.
    dup = ["b", "b", "b", "d"]
    assert recall_at_k(dup, REL, 2) == 1.0
    assert ndcg_at_k(dup, REL, 2) == pytest.approx(1.0)
    assert recall_at_k(["b", "b"], REL, 2) == 0.5
    assert mrr(["x", "x", "d"], REL) == 0.5
    with pytest.raises(ValueError):
        recall_at_k(RANKED, set(), 1)
    with pytest.raises(ValueError):
        ndcg_at_k(RANKED, {"a": 0}, 1)
    with pytest.raises(ValueError):
        recall_at_k(RANKED, REL, 0)
    assert mrr(RANKED, set()) == 0.0


def test_evaluate_runs_means_and_skips() -> None:
    runs = {"q1": RANKED, "q2": ["d", "x"], "q3": ["a"], "q5": ["a"]}
    qrels = {"q1": {"b": 1, "d": 1}, "q2": {"d": 1}, "q3": {"a": 0}, "q4": {"b": 1}}
    out = evaluate_runs(runs, qrels, ks=(1, 2))
    # q3 (no relevant) and q5 (no qrels) are skipped; q4 has no ranking so scores 0.
    assert out["num_queries"] == 3 and out["num_skipped"] == 2
    assert out["R@1"] == pytest.approx((0 + 1 + 0) / 3)
    assert out["R@2"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["MRR"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["nDCG@1"] == pytest.approx((0 + 1 + 0) / 3)
    assert set(out) == {"R@1", "R@2", "MRR", "nDCG@1", "nDCG@2", "num_queries", "num_skipped"}
    empty = evaluate_runs({}, {}, ks=(1,))
    assert empty["num_queries"] == 0 and empty["MRR"] == 0.0


def test_evaluate_grouped() -> None:
    runs = {"q1": RANKED, "q2": ["d", "x"], "q3": ["x"]}
    qrels = {"q1": {"b": 1, "d": 1}, "q2": {"d": 1}, "q3": {"y": 1}}
    groups = {"q1": "test", "q2": "test", "q3": "zero_shot"}
    out = evaluate_grouped(runs, qrels, groups, ks=(1,))
    assert set(out) == {"test", "zero_shot"}
    test_only = ("q1", "q2")
    assert out["test"] == evaluate_runs({q: runs[q] for q in test_only}, {q: qrels[q] for q in test_only}, (1,))
    assert out["test"]["MRR"] == pytest.approx(0.75)
    assert out["zero_shot"]["MRR"] == 0.0 and out["zero_shot"]["num_queries"] == 1
    with pytest.raises(KeyError):
        evaluate_grouped(runs, qrels, {"q1": "test"}, ks=(1,))


def _random_case(seed: int) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(40)]
    runs, qrels = {}, {}
    for q in range(20):
        qid = f"q{q}"
        runs[qid] = rng.sample(docs, rng.randint(0, 25))
        judged = rng.sample(docs, rng.randint(1, 10))
        grades = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if not any(grades.values()):
            grades[judged[0]] = 1  # ir-measures averages such queries as 0; we skip them, so avoid them here
        qrels[qid] = grades
    runs["q0"] = []  # a retriever that returned nothing
    return runs, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_ir_measures(seed: int) -> None:
    import ir_measures
    from ir_measures import RR, R, nDCG

    runs, qrels = _random_case(seed)
    # ir-measures takes a run as docid -> score; strictly decreasing scores reproduce our order with no ties.
    ir_run = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in runs.items()}
    # q0's ranking is empty: ir-measures scores it 0 (it does not drop it), as evaluate_runs does.
    ks = (1, 5, 10)
    measures = [R @ k for k in ks] + [nDCG @ k for k in ks] + [RR]
    # Prefer trec_eval itself (pytrec_eval); else whichever provider ir-measures finds.
    provider = ir_measures.pytrec_eval if ir_measures.pytrec_eval.is_available() else ir_measures
    ref = provider.calc_aggregate(measures, qrels, ir_run)
    ours = evaluate_runs(runs, qrels, ks)
    assert ours["num_queries"] == 20
    for k in ks:
        assert ours[f"R@{k}"] == pytest.approx(ref[R @ k], abs=1e-6)
        assert ours[f"nDCG@{k}"] == pytest.approx(ref[nDCG @ k], abs=1e-6)
    assert ours["MRR"] == pytest.approx(ref[RR], abs=1e-6)
