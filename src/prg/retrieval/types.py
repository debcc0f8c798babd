"""Types shared by every part of retrieval: what a chunk is, what a search returns, what a store must do.

Ingestion makes :class:`Chunk` objects, embedders turn their text (or figure) into vectors, a
:class:`VectorStore` keeps both, lexical search and fusion rank them, and each :class:`Hit` carries what an
answer needs to cite it: document, clause, page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["Chunk", "Filters", "Hit", "VectorStore", "chunk_id"]

ChunkKind = Literal["text", "table", "figure"]
#: Metadata filters: field -> value or list of accepted values (``{"industry": "chemical"}``).
Filters = Mapping[str, str | int | Sequence[str | int]]


def chunk_id(doc_id: str, locator: str, ordinal: int = 0) -> str:
    """A stable id: the same document section gives the same id on every ingestion (so re-ingesting replaces)."""
    return hashlib.sha1(f"{doc_id}\x1f{locator}\x1f{ordinal}".encode()).hexdigest()[:20]


@dataclass
class Chunk:
    """A retrievable passage: a clause, a paragraph, a table or a figure with its caption."""

    id: str
    doc_id: str
    text: str  # what is embedded and searched; for a figure, its caption (+ alt text)
    kind: ChunkKind = "text"
    industry: str = ""
    title: str = ""  # document title
    section: str = ""  # heading path, " > "-joined: "4 Tools for isolation work > 4.2 Testing for absence of voltage"
    clause: str | None = None  # "4.2.1" where the chunk is (or starts) a numbered clause
    page: int | None = None  # 1-based page for paged sources (PDF)
    figure: str | None = None  # path of the figure image (relative to the index's figure folder)
    source: str = ""  # the file it came from
    metadata: dict[str, Any] = field(default_factory=dict)

    def citation(self) -> str:
        """How an answer cites this chunk: ``DOC-ID §4.2.1`` (page added when known)."""
        s = self.doc_id
        if self.clause:
            s += f" §{self.clause}"
        if self.page is not None:
            s += f" (p. {self.page})"
        return s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Chunk:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class Hit:
    chunk: Chunk
    score: float
    rank: int  # 1-based
    source: str = "dense"  # "dense" | "lexical" | "image" | "fused" | "rerank"


@runtime_checkable
class VectorStore(Protocol):
    """What every backend (embedded LanceDB, Qdrant local/server) provides; one test suite checks all of them."""

    dim: int

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace chunks by id; ``vectors`` is ``[n x dim]`` float32, L2-normalised."""
        ...

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        ...

    def search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Nearest chunks to ``vector`` (``[dim]``) by cosine similarity, best first."""
        ...

    def get(self, ids: Sequence[str]) -> list[Chunk]: ...

    def iter_chunks(self) -> Iterator[Chunk]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...
