"""Clauses and the rules they state: the identity of a clause, and the grouping of clauses into rules.

A regulation library states one rule in several documents (a safety code, a site procedure, a manual), so any
clause stating a rule supports an answer that needs it. The corpus says which rule each clause states in
``documents/index.json`` (PRG-Synth writes it: ``{"documents": [{"doc_id", "clauses": {clause: rule_id}}]}``).
Evaluation scores at rule level with this map, the demo judges its answers with it, and query-time
deduplication uses :func:`clause_key` as a clause's identity.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["clause_groups", "clause_key"]

#: where a dataset folder keeps its corpus index
CORPUS_INDEX = Path("documents") / "index.json"


def clause_key(doc_id: str, clause: str | None) -> str:
    """One string per clause of a document: ``EP-SAF-001§4.2.1`` (``EP-SAF-001§`` for text outside a clause)."""
    return f"{doc_id}§{clause or ''}"


def clause_groups(dataset: str | Path) -> dict[str, str]:
    """clause key -> ``rule:<id>`` from ``<dataset>/documents/index.json``; empty if the corpus has no such map."""
    p = Path(dataset) / CORPUS_INDEX
    if not p.is_file():
        return {}
    docs = json.loads(p.read_text(encoding="utf-8")).get("documents", [])
    return {clause_key(d["doc_id"], c): f"rule:{r}" for d in docs for c, r in (d.get("clauses") or {}).items()}
