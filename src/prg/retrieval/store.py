"""Open a vector store by backend name; backends register a builder here and are imported only when used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prg.retrieval.types import VectorStore

__all__ = ["STORES", "open_store"]


def _lancedb(**kwargs: Any) -> VectorStore:
    from prg.retrieval.store_lancedb import LanceDBStore

    return LanceDBStore(**kwargs)


def _qdrant(**kwargs: Any) -> VectorStore:
    from prg.retrieval.store_qdrant import QdrantStore

    return QdrantStore(**kwargs)


#: backend name -> builder taking the backend's keyword arguments (``path=``, ``dim=``, ...).
STORES: dict[str, Callable[..., VectorStore]] = {"lancedb": _lancedb, "qdrant": _qdrant}


def open_store(backend: str, **kwargs: Any) -> VectorStore:
    """A store of ``backend`` (``"lancedb"``: ``path, dim``; ``"qdrant"``: ``dim`` and ``path`` or ``url``)."""
    try:
        builder = STORES[backend]
    except KeyError:
        raise ValueError(f"unknown store backend {backend!r}; known: {', '.join(STORES)}") from None
    return builder(**kwargs)
