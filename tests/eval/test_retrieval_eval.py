"""Retrieval evaluation: gold clauses from the records, per split and industry, through the CLI too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prg.cli.main import app
from prg.data.dataset import iter_records, write_dataset
from prg.data.schema import DatasetInfo, DocRef, PRGRecord
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
    # A floor, not a figure: BM25 + the hashing embedder measured R@5 0.94, MRR 0.72 here; any of ~44 rules at
    # random would give R@5 ~0.1.
    assert text.overall["R@5"] >= 0.8 and text.overall["MRR"] >= 0.6
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


def _write_records(root: Path, queries: list[tuple[str, list[tuple[str, str]], str]]) -> Path:
    """A dataset folder of text-only records: (instruction, gold (doc_id, clause) pairs, split)."""
    records = [
        PRGRecord(
            id=f"q{i}",
            image="unused.png",  # text-mode evaluation never opens it
            instruction=text,
            answer="",
            documents=[DocRef(doc_id=d, clause=c) for d, c in gold],
            split=split,
        )
        for i, (text, gold, split) in enumerate(queries)
    ]
    write_dataset(root, DatasetInfo(name="hand"), records)
    return root


class _Scripted:
    """Returns a fixed ranking of (doc_id, clause) per instruction, one chunk per entry (duplicates allowed)."""

    tagger = None

    def __init__(self, rankings: dict[str, list[tuple[str, str]]]) -> None:
        self.rankings = rankings

    def search(self, text: str, k: int = 5, **_: Any) -> RetrievalResult:
        chunks = [Chunk(id=f"c{i}", doc_id=d, text="", clause=c) for i, (d, c) in enumerate(self.rankings[text])]
        return RetrievalResult([Hit(c, 1.0, i + 1) for i, c in enumerate(chunks)], text)


def test_hand_computed_metrics(tmp_path: Path) -> None:
    """Three queries with rankings written out, and their metrics worked by hand (no index.json: clause level)."""
    a, b, c = ("A", "1"), ("B", "2"), ("C", "3")
    other = [("D", "4"), ("E", "5"), ("F", "6"), ("G", "7")]
    ds = _write_records(tmp_path / "ds", [("q one", [a], "test"), ("q two", [a], "test"), ("q three", [b, c], "val")])
    rankings = {
        "q one": [a, b, c],  # gold at rank 1
        "q two": [b, c, a, a],  # gold at rank 3; its second chunk counts once
        "q three": [b, *other, c],  # two gold clauses, at ranks 1 and 6
    }
    rep = evaluate_retrieval(ds, _Scripted(rankings), level="clause", progress=False)  # type: ignore[arg-type]
    # per query:  R@1  R@5  R@10  MRR  nDCG@1  nDCG@5
    #   one       1    1    1     1    1       1
    #   two       0    1    1     1/3  0       1 / log2(4) = 0.5
    #   three     1/2  1/2  1     1    1       1 / (1 + 1/log2(3)) = 0.61315  (ideal: both gold at ranks 1, 2)
    # nDCG@10 of three: (1 + 1/log2(7)) / (1 + 1/log2(3)) = 0.83156
    assert rep.n_queries == 3
    assert rep.overall["R@1"] == pytest.approx(0.5)
    assert rep.overall["R@5"] == pytest.approx(2.5 / 3)
    assert rep.overall["R@10"] == pytest.approx(1.0)
    assert rep.overall["MRR"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert rep.overall["nDCG@1"] == pytest.approx(2 / 3)
    assert rep.overall["nDCG@5"] == pytest.approx((1 + 0.5 + 0.61315) / 3, abs=1e-4)
    assert rep.overall["nDCG@10"] == pytest.approx((1 + 0.5 + 0.83156) / 3, abs=1e-4)
    assert rep.by_split["test"]["R@1"] == pytest.approx(0.5) and rep.by_split["test"]["MRR"] == pytest.approx(2 / 3)
    assert rep.by_split["val"]["R@5"] == pytest.approx(0.5) and rep.by_split["val"]["R@10"] == pytest.approx(1.0)


# Four short regulations and eight instructions that paraphrase one clause each, naming neither the document nor
# (mostly) its words: the quality floor below is what the real default retriever (MiniLM + BM25, fused) reaches.
HAND_DOCS = {
    "EL-001": ("Live electrical work", "4 Isolation", {
        "4.1": "Before anyone touches a busbar, isolate the supply, lock the isolator and prove the conductors dead "
               "with a voltage detector.",
        "4.2": "Use insulated screwdrivers rated for 1000 V on any conductor that may still be energised.",
    }),
    "CH-001": ("Handling corrosive chemicals", "3 Decanting", {
        "3.1": "Wear acid-resistant nitrile gloves and a face shield when decanting hydrochloric acid.",
        "3.2": "Rinse a splash on the skin with running water for 15 minutes at an eyewash station.",
    }),
    "ME-001": ("Bolted joints", "2 Assembly", {
        "2.1": "Tighten flange bolts with a calibrated torque wrench to the torque given on the drawing.",
        "2.2": "Replace a bolt whose thread is damaged; never re-use a stretched bolt.",
    }),
    "HA-001": ("Household appliances", "5 Cleaning", {
        "5.1": "Unplug the kettle and let it cool before descaling it with diluted vinegar.",
        "5.2": "Clean the refrigerator door seal with warm soapy water and a soft cloth.",
    }),
}  # fmt: skip
HAND_QUERIES = [
    ("I must touch the copper bars in the switchboard; how do I make sure nothing is live?", "EL-001", "4.1"),
    ("Which screwdriver should I use on wires that might still carry current?", "EL-001", "4.2"),
    ("What protection do I need when pouring acid into a smaller container?", "CH-001", "3.1"),
    ("Acid splashed on my arm, what do I do now?", "CH-001", "3.2"),
    ("How tight should the bolts on this pipe flange be, and with what tool?", "ME-001", "2.1"),
    ("The thread of this bolt is stripped; can I put it back in?", "ME-001", "2.2"),
    ("How do I get the limescale out of the kettle safely?", "HA-001", "5.1"),
    ("The rubber strip around the fridge door is dirty; how should I clean it?", "HA-001", "5.2"),
]  # fmt: skip


class _Reversed:
    """A broken ranker: the wrapped retriever's top 10, worst first."""

    tagger = None

    def __init__(self, inner: Retriever) -> None:
        self.inner = inner

    def search(self, text: str, k: int = 5, **kw: Any) -> RetrievalResult:
        hits = self.inner.search(text, k=10, **kw).hits[::-1]
        return RetrievalResult([Hit(h.chunk, h.score, i + 1) for i, h in enumerate(hits)], text)


@pytest.mark.slow
def test_quality_floor_on_a_hand_written_corpus(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for doc_id, (title, section, clauses) in HAND_DOCS.items():
        body = "\n\n".join(f"{n} {text}" for n, text in clauses.items())
        (docs / f"{doc_id}.md").write_text(f"# {doc_id} {title}\n\n## {section}\n\n{body}\n", encoding="utf-8")
    ds = _write_records(tmp_path / "ds", [(q, [(d, c)], "test") for q, d, c in HAND_QUERIES])
    build_index([docs], tmp_path / "idx", embedder="minilm")
    r = Retriever.open(tmp_path / "idx")
    try:
        good = evaluate_retrieval(ds, r, level="clause", progress=False)
        broken = evaluate_retrieval(ds, _Reversed(r), level="clause", progress=False)  # type: ignore[arg-type]
    finally:
        r.close()
    # measured: R@1 7/8 (the splash question ranks the decanting clause of the same document first), R@5 1, MRR 0.94
    assert good.overall["R@1"] >= 7 / 8 and good.overall["R@5"] == 1.0 and good.overall["MRR"] >= 0.9
    assert broken.overall["R@1"] < 7 / 8 and broken.overall["MRR"] < 0.9  # the floor catches a ranking regression
