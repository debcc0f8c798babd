"""Retrieval evaluation: gold clauses from the records, per split and industry, through the CLI too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prg.cli.main import app
from prg.data.dataset import iter_records
from prg.data.synth.generate import SynthConfig, generate
from prg.eval.retrieval import evaluate_retrieval
from prg.retrieval.build import build_index
from prg.retrieval.retriever import RetrievalResult, Retriever
from prg.retrieval.types import Chunk, Hit


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ev")
    ds = root / "ds"
    generate(ds, SynthConfig(n=16, seed=2, size=128), workers=1, progress=False)
    idx = root / "idx"
    build_index([ds / "documents"], idx, embedder="hashing")
    return ds, idx


class _Oracle:
    """Returns each record's gold clauses (twice: text and PDF chunk) after a wrong one: R@5 = 1, MRR = 0.5."""

    tagger = None

    def __init__(self, dataset: Path) -> None:
        self.gold = {r.instruction: r.documents for r in iter_records(dataset)}

    def search(self, text: str, k: int = 5, **_: Any) -> RetrievalResult:
        chunks = [Chunk(id="w", doc_id="WRONG", text="", clause="9.9")]
        for d in self.gold[text]:
            chunks += [Chunk(id=f"{d.doc_id}{i}", doc_id=d.doc_id, text="", clause=d.clause) for i in range(2)]
        return RetrievalResult([Hit(c, 1.0, i + 1) for i, c in enumerate(chunks)], text)


def test_scores_are_computed_on_clauses(synth: tuple[Path, Path]) -> None:
    ds, _ = synth
    rep = evaluate_retrieval(ds, _Oracle(ds), progress=False)  # type: ignore[arg-type]
    assert rep.overall["R@5"] == pytest.approx(1.0)
    assert rep.overall["R@1"] < 1.0 and rep.overall["MRR"] == pytest.approx(0.5)
    assert set(rep.by_industry) == {"electric_power", "chemical", "mechanical", "home_appliance"}


def test_real_index_text_and_oracle_seen(synth: tuple[Path, Path]) -> None:
    ds, idx = synth
    r = Retriever.open(idx)
    try:
        text = evaluate_retrieval(ds, r, mode="text", progress=False)
        seen = evaluate_retrieval(ds, r, mode="oracle-seen", progress=False)
        with pytest.raises(ValueError, match="tagger"):
            evaluate_retrieval(ds, r, mode="image", progress=False)
        with pytest.raises(ValueError, match="no records"):
            evaluate_retrieval(ds, r, splits=["nonexistent"], progress=False)
    finally:
        r.close()
    for rep in (text, seen):
        assert rep.n_queries == 16
        assert all(0.0 <= v <= 1.0 for k, v in rep.overall.items() if not k.startswith("num_"))
    assert seen.examples[0]["seen"] and not text.examples[0]["seen"]


def test_cli_json(synth: tuple[Path, Path], tmp_path: Path) -> None:
    ds, idx = synth
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        app, ["eval", "retrieval", "--dataset", str(ds), "--index", str(idx), "--split", "train", "--json",
              "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(out.read_text())
    assert set(payload["reports"][0]["by_split"]) == {"train"}


def test_rule_level_counts_any_clause_of_the_rule(synth: tuple[Path, Path]) -> None:
    """A retriever that returns a *different* clause stating the same rule: rule level 1.0, clause level 0."""
    from prg.eval.retrieval import clause_groups

    ds, _ = synth
    groups = clause_groups(ds)
    by_rule: dict[str, list[str]] = {}
    for key, rule in groups.items():
        by_rule.setdefault(rule, []).append(key)
    records = [r for r in iter_records(ds) if r.documents]

    class _Sibling:
        tagger = None

        def search(self, text: str, k: int = 5, **_: Any) -> RetrievalResult:
            rec = next(r for r in records if r.instruction == text)
            gold = {f"{d.doc_id}§{d.clause}" for d in rec.documents}
            rule = groups[next(iter(gold))]
            other = next((c for c in by_rule[rule] if c not in gold), None)
            chunks = [] if other is None else [Chunk(id="s", doc_id=other.split("§")[0], text="",
                                                     clause=other.split("§")[1])]  # fmt: skip
            return RetrievalResult([Hit(c, 1.0, i + 1) for i, c in enumerate(chunks)], text)

    rule = evaluate_retrieval(ds, _Sibling(), level="rule", progress=False)  # type: ignore[arg-type]
    clause = evaluate_retrieval(ds, _Sibling(), level="clause", progress=False)  # type: ignore[arg-type]
    assert clause.overall["R@5"] == 0.0
    assert rule.overall["R@5"] > 0.8  # every record whose rule is stated somewhere else too
    with pytest.raises(ValueError, match="level"):
        evaluate_retrieval(ds, _Sibling(), level="doc", progress=False)  # type: ignore[arg-type]
