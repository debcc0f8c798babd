"""The server/cluster vector store: Qdrant, with the same interface as the embedded LanceDB store.

``QdrantStore(url=...)`` talks to a Qdrant server or cluster; ``path=`` runs qdrant-client's local mode (a
folder, locked by one process at a time) and neither gives ``":memory:"`` (tests). Qdrant point ids must be
unsigned integers or UUIDs, so each point's id is ``uuid5(chunk id)`` and the chunk id stays in the payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from prg.retrieval.store_lancedb import FILTER_FIELDS
from prg.retrieval.types import Chunk, Filters, Hit

__all__ = ["QdrantStore", "point_id", "qdrant_filter"]

# A fixed namespace so that every process maps a chunk id to the same point id.
_NAMESPACE = uuid.UUID("6f1c6a52-2f7e-4c55-9a53-6c1c5b0c3e11")
_BATCH = 256


def point_id(chunk_id: str) -> str:
    """The Qdrant point id (a UUID string) of a chunk id."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


def qdrant_filter(filters: Filters | None) -> models.Filter | None:
    """A Qdrant filter for ``filters``: one ``must`` condition per field; a list means any of its values."""
    if not filters:
        return None
    must: list[models.Condition] = []
    for name, value in filters.items():
        if name not in FILTER_FIELDS:
            raise ValueError(f"cannot filter on {name!r}; allowed: {', '.join(FILTER_FIELDS)}")
        if isinstance(value, (str, int)):
            must.append(models.FieldCondition(key=name, match=models.MatchValue(value=value)))
        else:
            must.append(models.FieldCondition(key=name, match=models.MatchAny(any=list(value))))
    return models.Filter(must=must)


class QdrantStore:
    """A :class:`~prg.retrieval.types.VectorStore` on a Qdrant collection (cosine distance).

    Args:
        dim: vector size.
        path: local-mode folder; ``url``: a server or cluster (``api_key`` if it needs one); neither: in memory.
        collection: collection name (created if missing).
    """

    def __init__(
        self,
        dim: int,
        path: str | Path | None = None,
        url: str | None = None,
        collection: str = "chunks",
        api_key: str | None = None,
    ) -> None:
        if path is not None and url is not None:
            raise ValueError("give path= (local mode) or url= (server), not both")
        self.dim = dim
        self.collection = collection
        if url is not None:
            self.client = QdrantClient(url=url, api_key=api_key)
        elif path is not None:
            self.client = QdrantClient(path=str(path))
        else:
            self.client = QdrantClient(location=":memory:")
        if not self.client.collection_exists(collection):
            self.client.create_collection(
                collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
            # Payload indexes make filtered search fast on a server; local mode has none (it scans), so skip.
            if url is not None:
                for name in FILTER_FIELDS:
                    schema = models.PayloadSchemaType.INTEGER if name == "page" else models.PayloadSchemaType.KEYWORD
                    self.client.create_payload_index(collection, name, field_schema=schema)
        else:
            params = self.client.get_collection(collection).config.params.vectors
            size = params.size if isinstance(params, models.VectorParams) else None
            if size != dim:
                raise ValueError(f"collection {collection!r} holds {size}-d vectors, not {dim}-d")

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace chunks by id; ``vectors`` is ``[n x dim]`` float32, L2-normalised."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        if chunks and (vectors.ndim != 2 or vectors.shape[1] != self.dim):
            raise ValueError(f"vectors must be [n x {self.dim}], got {list(vectors.shape)}")
        for start in range(0, len(chunks), _BATCH):
            points = [
                models.PointStruct(id=point_id(c.id), vector=v.astype(np.float32).tolist(), payload=c.to_dict())
                for c, v in zip(chunks[start : start + _BATCH], vectors[start : start + _BATCH], strict=True)
            ]
            self.client.upsert(self.collection, points=points, wait=True)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        if not doc_ids:
            return 0
        flt = qdrant_filter({"doc_id": list(doc_ids)})
        n = self.client.count(self.collection, count_filter=flt, exact=True).count
        if n:
            self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)
        return n

    def search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Nearest chunks to ``vector`` (``[dim]``) by cosine similarity, best first."""
        if k <= 0:
            return []
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.dim:
            raise ValueError(f"query must be [{self.dim}], got [{vec.shape[0]}]")
        res = self.client.query_points(
            self.collection, query=vec.tolist(), limit=k, query_filter=qdrant_filter(filters), with_payload=True
        )
        return [Hit(_chunk(p.payload), float(p.score), i + 1, "dense") for i, p in enumerate(res.points)]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked; unknown ids are skipped."""
        if not ids:
            return []
        points = self.client.retrieve(self.collection, ids=[point_id(i) for i in ids], with_payload=True)
        by_id = {c.id: c for c in (_chunk(p.payload) for p in points)}
        return [by_id[i] for i in ids if i in by_id]

    def iter_chunks(self, batch_size: int = 1024) -> Iterator[Chunk]:
        """Every chunk, paged through ``scroll`` ``batch_size`` points at a time."""
        offset: Any = None
        while True:
            points, offset = self.client.scroll(
                self.collection, limit=batch_size, offset=offset, with_payload=True, with_vectors=False
            )
            yield from (_chunk(p.payload) for p in points)
            if offset is None:
                return

    def count(self) -> int:
        return self.client.count(self.collection, exact=True).count

    def stats(self) -> dict[str, Any]:
        # Qdrant builds and maintains its HNSW index itself (above its indexing threshold).
        return {"backend": "qdrant", "chunks": self.count(), "ann_index": True}

    def close(self) -> None:
        self.client.close()


def _chunk(payload: dict[str, Any] | None) -> Chunk:
    if payload is None:
        raise ValueError("point without payload")
    return Chunk.from_dict(payload)
