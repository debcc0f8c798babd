"""BM25 keyword search over chunk texts (bm25s), saved as plain arrays and JSON next to a chunk side table.

Regulations are full of exact terms ("LOTO", "IEC 60204-1", "Class II") that embeddings blur, so hybrid
retrieval fuses this ranking with the dense one. Tokenisation is bm25s's default (lower-cased ``\\w\\w+`` words,
English stopwords removed, no stemmer, so clause numbers and codes survive as written).

On disk (a folder): bm25s's own files (``*.npy`` arrays, ``vocab.index.json``, ``params.index.json``), loaded
with ``allow_pickle=False`` so a tampered folder cannot run code, and ``chunks.arrow`` (Arrow IPC: every
chunk's fields, row ``i`` = BM25 document ``i``) which gives hits their chunk and filters their metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from prg.retrieval.store_lancedb import FILTER_FIELDS, chunks_from_arrow, chunks_to_arrow
from prg.retrieval.types import Chunk, Filters, Hit

__all__ = ["LexicalIndex"]

_CHUNKS_FILE = "chunks.arrow"


def _tokens(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, lower=True, stopwords="en", return_ids=False, show_progress=False)


class LexicalIndex:
    """BM25 over a fixed set of chunks; build a new one to change the set (BM25 statistics are global)."""

    def __init__(self, model: bm25s.BM25 | None, table: pa.Table) -> None:
        self._model = model  # None when there are no chunks (bm25s cannot index an empty corpus)
        self._table = table  # chunk fields, no vectors; row i = BM25 document i

    @classmethod
    def build(cls, chunks: Sequence[Chunk]) -> LexicalIndex:
        """Index ``chunks`` (their ``text``)."""
        return cls.from_table(chunks_to_arrow(chunks, None, 0))

    @classmethod
    def from_table(cls, table: pa.Table) -> LexicalIndex:
        """Index a chunk side table (as made by :func:`~prg.retrieval.store_lancedb.chunks_to_arrow`)."""
        if table.num_rows == 0:
            return cls(None, table)
        model = bm25s.BM25()
        model.index(_tokens(table.column("text").to_pylist()), show_progress=False)
        return cls(model, table)

    @property
    def table(self) -> pa.Table:
        """The chunk side table (Arrow; one row per chunk, no vectors)."""
        return self._table

    def __len__(self) -> int:
        return self._table.num_rows

    def chunks(self) -> list[Chunk]:
        return chunks_from_arrow(self._table)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._model is not None:
            self._model.save(str(folder), allow_pickle=False, show_progress=False)
        feather.write_feather(self._table, folder / _CHUNKS_FILE, compression="zstd")

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = False) -> LexicalIndex:
        """Load a saved index; ``mmap=True`` maps the score arrays instead of reading them into memory."""
        folder = Path(folder)
        table = feather.read_table(folder / _CHUNKS_FILE)
        if table.num_rows == 0:
            return cls(None, table)
        model = bm25s.BM25.load(str(folder), mmap=mmap, allow_pickle=False, show_progress=False)
        return cls(model, table)

    def _mask(self, filters: Filters | None) -> np.ndarray | None:
        """``[n_chunks]`` float32 weights: 1 where a chunk passes ``filters``, else 0 (None: no filters)."""
        if not filters:
            return None
        keep = pa.array(np.ones(len(self), dtype=bool))
        for name, value in filters.items():
            if name not in FILTER_FIELDS:
                raise ValueError(f"cannot filter on {name!r}; allowed: {', '.join(FILTER_FIELDS)}")
            values = [value] if isinstance(value, (str, int)) else list(value)
            col = self._table.column(name)
            hit = pc.is_in(col, value_set=pa.array(values, type=col.type)) if values else pa.array([False] * len(self))
            keep = pc.and_(keep, pc.fill_null(hit, False))
        return keep.to_numpy(zero_copy_only=False).astype(np.float32)

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query`` by BM25 (only chunks sharing a term with it), best first.

        Filters are applied exactly, before ranking, through bm25s's per-document weight mask, so a selective
        filter never empties the result the way a post-filter over the top candidates can.
        """
        if self._model is None or k <= 0:
            return []
        vocab = self._model.vocab_dict
        tokens = [t for t in _tokens([query])[0] if t in vocab]
        if not tokens:
            return []
        docs, scores = self._model.retrieve(
            [tokens], k=min(k, len(self)), weight_mask=self._mask(filters), show_progress=False, n_threads=1
        )
        rows = [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        if not rows:
            return []
        chunks = chunks_from_arrow(self._table.take([d for d, _ in rows]))
        return [Hit(c, s, i + 1, "lexical") for i, (c, (_, s)) in enumerate(zip(chunks, rows, strict=True))]
