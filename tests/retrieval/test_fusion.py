"""Reciprocal-rank and score fusion against scores computed by hand; clause deduplication."""

from __future__ import annotations

from typing import Any

import pytest

from prg.retrieval.fusion import (
    FusionConfig,
    Reranker,
    dedupe_clauses,
    default_fusion,
    fuse,
    reciprocal_rank_fusion,
    score_fusion,
)
from prg.retrieval.types import Chunk, Hit


def hits(*ids: str, source: str = "dense") -> list[Hit]:
    return [Hit(Chunk(id=i, doc_id="d", text=i), 1.0 / r, r, source) for r, i in enumerate(ids, start=1)]


def scored(*pairs: tuple[str, float], source: str = "dense") -> list[Hit]:
    return [Hit(Chunk(id=i, doc_id="d", text=i), s, r, source) for r, (i, s) in enumerate(pairs, start=1)]


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


def test_score_fusion_hand_computed() -> None:
    dense = scored(("a", 0.6), ("b", 0.5), ("c", 0.3))
    lexical = scored(("c", 8.0), ("d", 2.0), source="lexical")
    fused = score_fusion([dense, lexical], weights=[0.8, 0.2], top_k=10)
    expected = {"a": 0.8, "b": 0.8 * 0.5 / 0.6, "c": 0.8 * 0.3 / 0.6 + 0.2, "d": 0.2 * 2 / 8}
    assert [h.chunk.id for h in fused] == ["a", "b", "c", "d"]
    assert [h.score for h in fused] == pytest.approx([expected[h.chunk.id] for h in fused])
    assert {h.source for h in fused} == {"fused"} and [h.rank for h in fused] == [1, 2, 3, 4]
    # scale-free: multiplying a list's scores changes nothing
    lexical_x10 = scored(("c", 80.0), ("d", 20.0), source="lexical")
    assert [h.score for h in score_fusion([dense, lexical_x10], [0.8, 0.2])] == pytest.approx([h.score for h in fused])


def test_score_fusion_empty_and_non_positive_lists() -> None:
    dense = scored(("a", 0.6), ("b", 0.3))
    assert [h.chunk.id for h in score_fusion([dense, []], [0.8, 0.2])] == ["a", "b"]
    neg = scored(("x", -0.1), ("y", -0.2))
    fused = score_fusion([dense, neg], [0.5, 0.5])
    assert {h.chunk.id: h.score for h in fused}["x"] == 0.0  # a list with no positive score adds nothing
    with pytest.raises(ValueError):
        score_fusion([dense], weights=[1.0, 1.0])


def test_fusion_config_and_dispatch() -> None:
    dense = scored(("a", 0.9), ("b", 0.8))
    lexical = scored(("b", 5.0), ("c", 1.0), source="lexical")
    assert FusionConfig().method == "score" and FusionConfig().weights == (0.8, 0.2)
    assert [h.chunk.id for h in fuse(dense, lexical, FusionConfig("dense"))] == ["a", "b"]
    assert [h.chunk.id for h in fuse(dense, lexical, FusionConfig("lexical"), top_k=1)] == ["b"]
    rrf = fuse(dense, lexical, FusionConfig("rrf", (1.0, 1.0), 60))
    assert [h.chunk.id for h in rrf] == [h.chunk.id for h in reciprocal_rank_fusion([dense, lexical])]
    # b: 0.8 * 0.8/0.9 + 0.2 * 1 = 0.911 beats a: 0.8
    assert [h.chunk.id for h in fuse(dense, lexical)] == ["b", "a", "c"]
    with pytest.raises(ValueError, match="unknown fusion"):
        FusionConfig("nope")
    one_weight: Any = (1.0,)
    with pytest.raises(ValueError, match="weights"):
        FusionConfig("score", one_weight)


def test_dedupe_clauses_keeps_the_best_ranked() -> None:
    def hit(cid: str, doc: str, clause: str | None, rank: int) -> Hit:
        return Hit(Chunk(id=cid, doc_id=doc, text=cid, clause=clause), 1.0 / rank, rank, "fused")

    ranked = [
        hit("md-1", "A", "4.2.1", 1),
        hit("pdf-1", "A", "4.2.1", 2),  # the PDF copy of the same clause
        hit("b", "B", "4.2.1", 3),  # same clause number, other document: kept
        hit("intro", "A", None, 4),
        hit("intro2", "A", None, 5),  # outside any clause: only its own duplicate
        hit("intro", "A", None, 6),
    ]
    out = dedupe_clauses(ranked)
    assert [h.chunk.id for h in out] == ["md-1", "b", "intro", "intro2"]
    assert [h.rank for h in out] == [1, 2, 3, 4] and out[1].score == pytest.approx(1 / 3)


def test_default_fusion_follows_the_embedder() -> None:
    assert default_fusion("minilm") == FusionConfig() == default_fusion("")
    assert default_fusion("hashing").method == default_fusion("hashing-256").method == "rrf"
