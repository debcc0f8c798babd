"""Reciprocal-rank fusion against scores computed by hand."""

from __future__ import annotations

import pytest

from prg.retrieval.fusion import Reranker, reciprocal_rank_fusion
from prg.retrieval.types import Chunk, Hit


def hits(*ids: str, source: str = "dense") -> list[Hit]:
    return [Hit(Chunk(id=i, doc_id="d", text=i), 1.0 / r, r, source) for r, i in enumerate(ids, start=1)]


def test_two_lists_hand_computed() -> None:
    dense = hits("a", "b", "c")
    lexical = hits("c", "a", "d", source="lexical")
    fused = reciprocal_rank_fusion([dense, lexical], k=60, top_k=10)
    expected = {
        "a": 1 / 61 + 1 / 62,
        "c": 1 / 63 + 1 / 61,
        "b": 1 / 62,
        "d": 1 / 63,
    }
    assert [h.chunk.id for h in fused] == ["a", "c", "b", "d"]
    assert [h.score for h in fused] == pytest.approx([expected[h.chunk.id] for h in fused])
    assert [h.rank for h in fused] == [1, 2, 3, 4]
    assert {h.source for h in fused} == {"fused"}


def test_weights_and_top_k() -> None:
    fused = reciprocal_rank_fusion([hits("a", "b"), hits("b", "a")], k=1, weights=[1.0, 3.0], top_k=1)
    # a: 1/2 + 3/3 = 1.5; b: 1/3 + 3/2 = 1.8333
    assert [h.chunk.id for h in fused] == ["b"]
    assert fused[0].score == pytest.approx(1 / 3 + 3 / 2)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([hits("a")], weights=[1.0, 2.0])


def test_ties_broken_by_id() -> None:
    # q is rank 1 in list 1, p rank 1 in list 2: equal scores and equal best rank -> id order; same for m, n.
    fused = reciprocal_rank_fusion([hits("q", "m"), hits("p", "n")], top_k=4)
    assert [h.chunk.id for h in fused] == ["p", "q", "m", "n"]
    assert fused[0].score == fused[1].score == pytest.approx(1 / 61)


def test_exact_tie_prefers_best_individual_rank() -> None:
    # with k=0: u at ranks 2 and 2 -> 1/2 + 1/2 = 1; v at rank 1 once -> 1. Equal scores; v has rank 1.
    fused = reciprocal_rank_fusion([hits("a", "u"), hits("v", "u")], k=0, top_k=10)
    scores = {h.chunk.id: h.score for h in fused}
    assert scores["u"] == scores["v"] == 1.0
    assert [h.chunk.id for h in fused][:3] == ["a", "v", "u"]  # a: 1/1 = 1, rank 1, id "a" < "v"


def test_duplicates_in_a_list_count_once() -> None:
    fused = reciprocal_rank_fusion([hits("a", "a", "b")], k=60)
    assert [h.chunk.id for h in fused] == ["a", "b"]
    assert fused[0].score == pytest.approx(1 / 61)
    assert fused[1].score == pytest.approx(1 / 63)  # b keeps its position (3) in the list


def test_reranker_protocol() -> None:
    def reverse(query: str, hs: object) -> list[Hit]:
        return list(reversed(list(hs)))  # type: ignore[call-overload]

    assert isinstance(reverse, Reranker)
    assert reciprocal_rank_fusion([]) == []
