"""Clause identity and the clause -> rule map read from a corpus index."""

from __future__ import annotations

import json
from pathlib import Path

from prg.eval import retrieval as eval_retrieval
from prg.retrieval.rules import clause_groups, clause_key


def test_clause_key() -> None:
    assert clause_key("EP-SAF-001", "4.2.1") == "EP-SAF-001§4.2.1"
    assert clause_key("EP-SAF-001", None) == clause_key("EP-SAF-001", "") == "EP-SAF-001§"


def test_clause_groups_from_corpus_index(tmp_path: Path) -> None:
    assert clause_groups(tmp_path) == {}  # no documents/index.json: clause level only
    (tmp_path / "documents").mkdir()
    docs = [
        {"doc_id": "A", "clauses": {"1.1": "r1", "1.2": "r2"}},
        {"doc_id": "B", "clauses": {"3": "r1"}},
        {"doc_id": "C"},  # a document stating no rule
    ]
    (tmp_path / "documents" / "index.json").write_text(json.dumps({"documents": docs}))
    assert clause_groups(tmp_path) == {"A§1.1": "rule:r1", "A§1.2": "rule:r2", "B§3": "rule:r1"}


def test_evaluation_uses_the_same_helpers() -> None:
    assert eval_retrieval.clause_groups is clause_groups and eval_retrieval.clause_key is clause_key
