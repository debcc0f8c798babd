"""The retrieval cache: what the real retriever returns for each record, computed once and stored beside the data.

Training prompts must hold what retrieval gives at inference (the top ``k`` chunks, right or wrong), never the
gold clause alone, or the model learns to trust its documents blindly. Retrieving per step would tie the data
loader to the index, so the chunks are retrieved once per record and written to
``<dataset>/retrieval/<name>.jsonl``::

    {"prg_retrieval_cache": 1, "k": 5, "index": "...", "dataset": "...", "records": 400, "gold_recall": 0.83, ...}
    {"id": "ep-000017", "q": "<sha1 of the instruction, 12 hex>", "documents": [{"id": "EP-SAF-004 §3.2.1",
     "text": "...", "doc_id": "EP-SAF-004", "clause": "3.2.1"}, ...]}

The first line is the header (``k``, the index it came from, how often the gold passages were among the ``k``);
one line per record follows. ``q`` detects a cache gone stale (an instruction changed since it was built). The
file is written whole and atomically (``prg.fsutil``). Build from the command line with
``python -m prg.data.torch.build_cache DATASET --index INDEX -k 5``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from prg.data.dataset import DatasetError, iter_records, load_depth, load_image, read_info
from prg.data.schema import PRGRecord
from prg.fsutil import atomic_write_text

__all__ = [
    "CACHE_DIR",
    "CACHE_VERSION",
    "RetrievalCache",
    "RetrievalCacheError",
    "RetrieveFn",
    "build_command",
    "build_retrieval_cache",
    "cache_path",
    "instruction_key",
    "read_retrieval_cache",
]

CACHE_DIR = "retrieval"
CACHE_VERSION = 1
#: ``retrieve_fn(instruction, image [H x W x 3] uint8, depth [H x W] metres or None)`` -> ranked hits: (label,
#: text) pairs, objects with ``.id`` and ``.text`` (``CitationOut``), or ``PRGPipeline.retrieve``'s (hits, seen).
RetrieveFn = Callable[[str, np.ndarray, "np.ndarray | None"], Any]


class RetrievalCacheError(DatasetError):
    """A retrieval cache is missing, stale, malformed, or lacks a record; the message says how to rebuild it."""


def cache_path(dataset_root: str | Path, name: str = "default") -> Path:
    """Where the cache called ``name`` of a dataset lives: ``<root>/retrieval/<name>.jsonl``."""
    return Path(dataset_root) / CACHE_DIR / f"{name}.jsonl"


def build_command(dataset_root: str | Path, name: str = "default") -> str:
    """The shell command that builds a cache (for error messages)."""
    tail = "" if name == "default" else f" --name {name}"
    return f"prg data retrieval-cache {dataset_root} --index INDEX -k 5{tail}"


def instruction_key(instruction: str) -> str:
    return hashlib.sha1(instruction.encode("utf-8")).hexdigest()[:12]


def _split_label(label: str) -> tuple[str, str | None]:
    doc_id, sep, clause = label.partition(" §")  # prg.pipeline.citation_label's form: "DOC-ID §clause"
    return (doc_id, clause) if sep else (label, None)


def _hits(result: Any, k: int) -> list[dict[str, Any]]:
    """Normalise what a ``retrieve_fn`` returned to at most ``k`` cache entries."""
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], list):
        result = result[0]  # PRGPipeline.retrieve: (hits, tools seen)
    out = []
    for h in list(result)[:k]:
        if isinstance(h, tuple | list):
            label, text = str(h[0]), str(h[1])
            doc_id, clause = _split_label(label)
        elif hasattr(h, "id") and hasattr(h, "text"):
            label, text = str(h.id), str(h.text)
            doc_id, clause = _split_label(label)
            doc_id = str(getattr(h, "doc_id", None) or doc_id)
            clause = getattr(h, "clause", clause)
        else:
            raise TypeError(f"retrieve_fn must return (label, text) pairs or objects with .id/.text, got {h!r}")
        out.append({"id": label, "text": text, "doc_id": doc_id, "clause": clause})
    return out


def _gold_found(record: PRGRecord, hits: Sequence[Mapping[str, Any]]) -> bool:
    got = {(h["doc_id"], h["clause"]) for h in hits}
    docs = {h["doc_id"] for h in hits}
    return all(((d.doc_id, d.clause) in got) if d.clause else d.doc_id in docs for d in record.documents)


def build_retrieval_cache(
    dataset_root: str | Path,
    retrieve_fn: RetrieveFn,
    k: int,
    out_path: str | Path | None = None,
    *,
    index: str | None = None,
    progress: bool = True,
) -> Path:
    """Retrieve the top ``k`` chunks for every record of a dataset folder and write the cache; returns its path.

    ``out_path`` defaults to :func:`cache_path` (``<root>/retrieval/default.jsonl``). ``index`` describes where
    the chunks came from (e.g. the index folder) and is recorded in the header. ``retrieve_fn`` gets the record's
    instruction, image and depth (so an image-aware retriever tags the scene as it would at inference).
    """
    from tqdm import tqdm

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    root = Path(dataset_root)
    info = read_info(root)
    out = Path(out_path) if out_path is not None else cache_path(root)
    lines: list[str] = []
    n_gold = n_found = 0
    for record in tqdm(list(iter_records(root)), desc=f"retrieval {info.name}", unit="rec", disable=not progress):
        hits = _hits(retrieve_fn(record.instruction, load_image(root, record), load_depth(root, record)), k)
        if record.documents:
            n_gold += 1
            n_found += _gold_found(record, hits)
        entry = {"id": record.id, "q": instruction_key(record.instruction), "documents": hits}
        lines.append(json.dumps(entry, ensure_ascii=False))
    header = {
        "prg_retrieval_cache": CACHE_VERSION,
        "k": k,
        "index": index,
        "dataset": info.name,
        "records": len(lines),
        "gold_recall": n_found / n_gold if n_gold else None,  # records whose gold passages are all in the top k
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join([json.dumps(header, ensure_ascii=False), *lines]) + "\n")
    return out


@dataclass(frozen=True)
class RetrievalCache:
    """A read cache: ``header`` (k, index, ...) and, per record id, its instruction key and ranked chunks."""

    path: Path
    header: dict[str, Any]
    entries: dict[str, dict[str, Any]]

    def documents(self, record: PRGRecord) -> list[dict[str, Any]]:
        """The record's cached chunks (``{id, text, doc_id, clause}``, best first); a clear error when the record
        is missing or its instruction changed since the cache was built."""
        entry = self.entries.get(record.id)
        if entry is None:
            raise RetrievalCacheError(
                f"{self.path}: no entry for record {record.id!r} (the dataset changed since the cache was built); "
                f"rebuild it: {build_command(self.path.parent.parent, self.path.stem)}"
            )
        if entry.get("q") != instruction_key(record.instruction):
            raise RetrievalCacheError(
                f"{self.path}: record {record.id!r} has a different instruction than when the cache was built; "
                f"rebuild it: {build_command(self.path.parent.parent, self.path.stem)}"
            )
        return list(entry["documents"])


def read_retrieval_cache(path: str | Path) -> RetrievalCache:
    """Read a cache written by :func:`build_retrieval_cache` (errors name the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise RetrievalCacheError(
            f"{path}: retrieval cache missing; build it with: {build_command(path.parent.parent, path.stem)}"
        )
    entries: dict[str, dict[str, Any]] = {}
    header: dict[str, Any] | None = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RetrievalCacheError(f"{path}:{lineno}: invalid JSON ({e.msg})") from e
            if header is None:
                if not isinstance(obj, dict) or obj.get("prg_retrieval_cache") != CACHE_VERSION:
                    raise RetrievalCacheError(f"{path}:{lineno}: not a version-{CACHE_VERSION} PRG retrieval cache")
                header = obj
            elif not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or "documents" not in obj:
                raise RetrievalCacheError(f"{path}:{lineno}: an entry needs 'id' and 'documents'")
            else:
                entries[obj["id"]] = obj
    if header is None:
        raise RetrievalCacheError(f"{path}: empty retrieval cache")
    return RetrievalCache(path, header, entries)
