"""Building and updating a document index from files: ingest -> embed -> :class:`DocumentIndex`.

An existing index is *synchronised*, never deleted and rebuilt: documents are upserted in one write and documents
that disappeared are removed in a second, so a build killed at any point leaves the previous snapshot loadable.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prg.retrieval.embed import TextEmbedder, get_text_embedder
from prg.retrieval.index import DocumentIndex
from prg.retrieval.ingest import ingest_path
from prg.retrieval.retriever import TAGGER_DIR
from prg.retrieval.types import Chunk

__all__ = ["BuildReport", "add_documents", "build_index", "embed_chunks", "open_embedder"]

FIGURES_DIR = "figures"
#: what a folder may hold before it holds an index: parts PRG writes there (figures, a tagger, a create that died)
INDEX_PARTS = frozenset({FIGURES_DIR, TAGGER_DIR, "store", "snapshots", ".write.lock"})


@dataclass
class BuildReport:
    index: str
    documents: int = 0
    chunks: int = 0
    removed_documents: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds_ingest: float = 0.0
    seconds_embed: float = 0.0
    seconds_index: float = 0.0
    pages: int = 0

    @property
    def seconds(self) -> float:
        return self.seconds_ingest + self.seconds_embed + self.seconds_index


def open_embedder(name: str) -> TextEmbedder:
    """The text embedder registered under ``name`` ("minilm", "hashing", or ``hashing-<dim>``)."""
    if name.startswith("hashing-"):
        return get_text_embedder("hashing", dim=int(name.split("-", 1)[1]))
    return get_text_embedder(name)


def embed_chunks(embedder: TextEmbedder, chunks: Sequence[Chunk]) -> np.ndarray:
    """``[n x dim]`` vectors of what a chunk says, with its heading path as context (a clause alone is terse)."""
    texts = [f"{c.title}. {c.section}. {c.text}" if c.section else f"{c.title}. {c.text}" for c in chunks]
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    return embedder.embed(texts)


def _ingest_and_embed(
    docs: Sequence[str | Path], index_root: Path, embedder: TextEmbedder, industry: str | None, report: BuildReport
) -> tuple[list[Chunk], np.ndarray, dict[str, str]]:
    t0 = time.perf_counter()
    chunks: list[Chunk] = []
    sha: dict[str, str] = {}
    for d in docs:
        res = ingest_path(d, industry=industry, figure_dir=index_root / FIGURES_DIR)
        chunks += res.chunks
        report.skipped += res.skipped
        report.warnings += res.warnings
        for info in res.documents:
            sha[info.doc_id] = info.sha256
            report.pages += info.pages or 0
    report.seconds_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors = embed_chunks(embedder, chunks)
    report.seconds_embed = time.perf_counter() - t0
    return chunks, vectors, sha


def build_index(
    docs: Sequence[str | Path],
    out: str | Path,
    embedder: str = "minilm",
    backend: str = "lancedb",
    industry: str | None = None,
    prune: bool = True,
) -> BuildReport:
    """Index every document under ``docs`` into ``out`` (created, or synchronised if it exists).

    ``prune``: remove documents that the index holds but ``docs`` no longer has. Refuses (before writing anything)
    a missing ``docs`` path and an ``out`` folder that holds other things than an index. When nothing under
    ``docs`` can be ingested, nothing is written either (an existing index keeps all its documents): the report
    has ``documents == 0`` and says so in ``warnings``.
    """
    out = Path(out)
    missing = [str(d) for d in docs if not Path(d).exists()]
    if missing:
        raise FileNotFoundError(f"no such document file or folder: {', '.join(missing)}; nothing was indexed")
    report = BuildReport(str(out))
    exists = (out / "CURRENT").exists()
    if not exists:
        _check_new_index_folder(out)
    made = not out.exists()
    index = DocumentIndex.open(out) if exists else None
    name = index.manifest["embedder"] if index is not None else embedder
    if index is not None and name != embedder:
        raise ValueError(f"{out} was built with the {name!r} embedder, not {embedder!r}; build into a new folder")
    emb = open_embedder(name)
    chunks, vectors, sha = _ingest_and_embed(docs, out, emb, industry, report)
    if not sha:
        if index is not None:
            index.close()
        _undo_new_folder(out, made)
        report.warnings.append(
            f"no ingestible documents in {', '.join(map(str, docs))} ({len(report.skipped)} file(s) skipped); "
            + ("the index was left as it was" if exists else "no index was written")
        )
        return report
    t0 = time.perf_counter()
    if index is None:
        index = DocumentIndex.create(out, dim=emb.dim, backend=backend, embedder_name=name)
    with index:
        if chunks:
            index.add(chunks, vectors, doc_sha256=sha)
        if prune:
            stale = sorted(set(index.documents()) - set(sha))
            if stale:
                report.removed_documents = index.remove(stale)
    report.seconds_index = time.perf_counter() - t0
    report.documents = len(sha)
    report.chunks = len(chunks)
    return report


def _check_new_index_folder(out: Path) -> None:
    """``out`` may become an index: it does not exist, or is a folder holding nothing but index parts."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a folder for an index")
    other = sorted(p.name for p in out.iterdir() if p.name not in INDEX_PARTS) if out.is_dir() else []
    if other:
        shown = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
        raise FileExistsError(
            f"{out} is not empty and is not a PRG index (it holds {shown}); build into a new or empty folder"
        )


def _undo_new_folder(out: Path, made: bool) -> None:
    """Remove what ingestion created in ``out`` when nothing was indexed (the folder itself if it was new)."""
    if made:
        shutil.rmtree(out, ignore_errors=True)
        return
    figures = out / FIGURES_DIR
    if figures.is_dir() and not any(figures.iterdir()):
        figures.rmdir()


def add_documents(docs: Sequence[str | Path], index_path: str | Path, industry: str | None = None) -> BuildReport:
    """Add (or replace) documents in an existing index, keeping the others."""
    index_path = Path(index_path)
    with DocumentIndex.open(index_path) as idx:  # a clear error where there is no index
        name = idx.manifest["embedder"]
    return build_index(docs, index_path, embedder=name, industry=industry, prune=False)
