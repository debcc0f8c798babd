"""The embedded default vector store: a LanceDB table on local disk (or object storage).

One row per chunk: the :class:`~prg.retrieval.types.Chunk` fields as columns (``metadata`` as a JSON string)
plus a ``vector`` column ``[dim]`` float32. Search is cosine. Below ``ann_threshold`` rows Lance scans every
vector (exact and, at that size, faster than an index); at or above it :meth:`LanceDBStore.maintain` builds an
approximate-nearest-neighbour index (IVF_HNSW_SQ by default). Rows added after the index was built are still
found: Lance scans the unindexed tail exactly and merges it with the index results.

Every write is an atomic Lance commit that makes a new table *version*; old versions stay readable, which is
what :class:`~prg.retrieval.index.DocumentIndex` uses to give readers a consistent snapshot (``version=``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import HnswSq, IvfPq

from prg.retrieval.types import Chunk, Filters, Hit

__all__ = ["FILTER_FIELDS", "LanceDBStore", "where_clause"]

#: Chunk fields that filters may name (anything else is refused rather than pasted into SQL).
FILTER_FIELDS = ("id", "doc_id", "kind", "industry", "title", "section", "clause", "page", "figure", "source")
_STRING_FIELDS = ("id", "doc_id", "text", "kind", "industry", "title", "section", "clause", "figure", "source")


def _schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("text", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("industry", pa.string()),
            pa.field("title", pa.string()),
            pa.field("section", pa.string()),
            pa.field("clause", pa.string()),
            pa.field("page", pa.int32()),
            pa.field("figure", pa.string()),
            pa.field("source", pa.string()),
            pa.field("metadata", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def _sql_literal(value: object) -> str:
    """A SQL literal for a filter value: integers as digits, strings single-quoted with quotes doubled."""
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise TypeError(f"filter values must be str or int, got {type(value).__name__}")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(int(value))


def where_clause(filters: Filters | None) -> str | None:
    """SQL ``WHERE`` text for ``filters`` (``{"industry": "chemical", "kind": ["text", "table"]}``).

    Field names are checked against :data:`FILTER_FIELDS` and quoted; values become escaped literals; a list
    becomes ``IN (...)``, an empty list matches nothing. Fields are AND-ed.
    """
    if not filters:
        return None
    parts = []
    for name, value in filters.items():
        if name not in FILTER_FIELDS:
            raise ValueError(f"cannot filter on {name!r}; allowed: {', '.join(FILTER_FIELDS)}")
        column = f"`{name}`"
        if isinstance(value, (str, int, np.integer)):
            parts.append(f"{column} = {_sql_literal(value)}")
        elif len(value) == 0:
            parts.append("FALSE")
        else:
            parts.append(f"{column} IN ({', '.join(_sql_literal(v) for v in value)})")
    return " AND ".join(parts)


def chunks_to_arrow(chunks: Sequence[Chunk], vectors: np.ndarray | None, dim: int) -> pa.Table:
    """Chunks (and their ``[n x dim]`` vectors, if given) as an Arrow table with the store's columns."""
    cols: dict[str, Any] = {f: [getattr(c, f) for c in chunks] for f in _STRING_FIELDS}
    cols["page"] = pa.array([c.page for c in chunks], pa.int32())
    cols["metadata"] = [json.dumps(c.metadata, sort_keys=True) for c in chunks]
    schema = _schema(dim)
    if vectors is None:
        schema = schema.remove(schema.get_field_index("vector"))
    else:
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        cols["vector"] = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.table(cols, schema=schema)


def chunks_from_arrow(table: pa.Table) -> list[Chunk]:
    """Inverse of :func:`chunks_to_arrow` (extra columns such as ``vector`` or ``_distance`` are ignored)."""
    rows = table.select([f for f in Chunk.__dataclass_fields__ if f in table.column_names]).to_pylist()
    for r in rows:
        r["metadata"] = json.loads(r["metadata"]) if r.get("metadata") else {}
        r["clause"] = r.get("clause")
    return [Chunk.from_dict(r) for r in rows]


class LanceDBStore:
    """A :class:`~prg.retrieval.types.VectorStore` on an embedded LanceDB table.

    Args:
        path: the LanceDB database folder (created if missing).
        dim: vector size.
        table: table name inside the database.
        version: open this table version read-only (a consistent snapshot); ``None`` follows the latest.
        ann_threshold: row count from which :meth:`maintain` builds an ANN index.
        index_type: ``"IVF_HNSW_SQ"`` (default: accurate, moderate size) or ``"IVF_PQ"`` (smaller, lossy).
        nprobes, refine_factor, ef: search-time knobs for the ANN index (recall vs speed); see docs.
        hnsw_m, ef_construction: HNSW graph degree and build beam (build time vs recall).
    """

    def __init__(
        self,
        path: str | Path,
        dim: int,
        table: str = "chunks",
        *,
        version: int | None = None,
        ann_threshold: int = 10_000,
        index_type: str = "IVF_HNSW_SQ",
        nprobes: int = 20,
        refine_factor: int | None = 5,
        ef: int | None = 100,
        hnsw_m: int = 20,
        ef_construction: int = 150,
    ) -> None:
        self.path = Path(path)
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.index_type = index_type
        self.nprobes = nprobes
        self.refine_factor = refine_factor
        self.ef = ef
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self._db = lancedb.connect(str(self.path))
        self._table = self._db.create_table(table, schema=_schema(dim), exist_ok=True)
        field = self._table.schema.field("vector")
        if field.type.list_size != dim:
            raise ValueError(f"table {table!r} holds {field.type.list_size}-d vectors, not {dim}-d")
        self.read_only = version is not None
        if version is not None:
            self._table.checkout(version)

    # -- writing -----------------------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.read_only:
            raise RuntimeError("this store was opened at a fixed version (read-only)")

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace chunks by id; ``vectors`` is ``[n x dim]`` float32, L2-normalised."""
        self._check_writable()
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        if not chunks:
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be [n x {self.dim}], got {list(vectors.shape)}")
        # merge_insert refuses a source with repeated keys: keep the last occurrence of each id.
        last = {c.id: i for i, c in enumerate(chunks)}
        keep = sorted(last.values())
        data = chunks_to_arrow([chunks[i] for i in keep], vectors[keep], self.dim)
        (self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data))

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        self._check_writable()
        if not doc_ids:
            return 0
        where = f"`doc_id` IN ({', '.join(_sql_literal(d) for d in doc_ids)})"
        n = self._table.count_rows(where)
        if n:
            self._table.delete(where)
        return n

    # -- ANN index ---------------------------------------------------------------------------------------------

    def has_ann_index(self) -> bool:
        return any(ix.columns == ["vector"] for ix in self._table.list_indices())

    def build_ann_index(self, num_partitions: int | None = None) -> None:
        """Build (or rebuild) the cosine ANN index over all rows now, whatever the row count."""
        self._check_writable()
        n = self.count()
        if num_partitions is None:
            # HNSW: few large partitions (one graph each); PQ: ~sqrt(n) partitions of a few thousand rows.
            num_partitions = max(1, n // 100_000) if "HNSW" in self.index_type else max(1, int(np.sqrt(n)))
        config: HnswSq | IvfPq
        if self.index_type == "IVF_PQ":
            # 8 dims per sub-vector (1 byte each): 48 bytes per 384-d vector
            nsub = self.dim // 8 if self.dim % 8 == 0 else 1
            config = IvfPq(distance_type="cosine", num_partitions=num_partitions, num_sub_vectors=nsub)
        elif self.index_type == "IVF_HNSW_SQ":
            config = HnswSq(
                distance_type="cosine",
                num_partitions=num_partitions,
                m=self.hnsw_m,
                ef_construction=self.ef_construction,
            )
        else:
            raise ValueError(f"unknown index_type {self.index_type!r}; use IVF_HNSW_SQ or IVF_PQ")
        self._table.create_index("vector", config=config, replace=True)

    def maintain(self) -> None:
        """Build the ANN index once the table is big enough, and fold new rows into an existing index."""
        self._check_writable()
        if not self.has_ann_index():
            if self.count() >= self.ann_threshold:
                self.build_ann_index()
            return
        name = next(ix.name for ix in self._table.list_indices() if ix.columns == ["vector"])
        st = self._table.index_stats(name)
        if st is not None and st.num_unindexed_rows > 0.1 * max(1, st.num_indexed_rows):
            self._table.optimize()  # appends the new rows to the index (no retraining)

    def optimize(self, older_than: timedelta) -> None:
        """Compact files, add unindexed rows to the ANN index, delete versions older than ``older_than``."""
        self._check_writable()
        self._table.optimize(cleanup_older_than=older_than)

    # -- reading -----------------------------------------------------------------------------------------------

    def _query(self, vector: np.ndarray, k: int, filters: Filters | None) -> Any:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.dim:
            raise ValueError(f"query must be [{self.dim}], got [{vec.shape[0]}]")
        q: Any = self._table.search(vec, vector_column_name="vector")
        q = q.distance_type("cosine").limit(k)
        where = where_clause(filters)
        if where:
            q = q.where(where, prefilter=True)
        return q

    def _hits(self, q: Any) -> list[Hit]:
        table = q.to_arrow()
        chunks = chunks_from_arrow(table)
        dist = table.column("_distance").to_pylist()
        # cosine distance is 1 - cosine similarity: report the similarity, higher is better.
        return [Hit(c, 1.0 - float(d), i + 1, "dense") for i, (c, d) in enumerate(zip(chunks, dist, strict=True))]

    def search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Nearest chunks to ``vector`` (``[dim]``) by cosine similarity, best first (ANN once indexed)."""
        if k <= 0:
            return []
        q = self._query(vector, k, filters).nprobes(self.nprobes)
        if self.refine_factor:
            q = q.refine_factor(self.refine_factor)
        if self.ef:
            q = q.ef(self.ef)
        return self._hits(q)

    def search_exact(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Brute-force cosine search that ignores the ANN index (ground truth for recall)."""
        if k <= 0:
            return []
        return self._hits(self._query(vector, k, filters).bypass_vector_index())

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked; unknown ids are skipped."""
        if not ids:
            return []
        where = f"`id` IN ({', '.join(_sql_literal(i) for i in ids)})"
        table = self._table.search().where(where).limit(None).to_arrow()
        by_id = {c.id: c for c in chunks_from_arrow(table)}
        return [by_id[i] for i in ids if i in by_id]

    def iter_chunks(self, batch_size: int = 4096) -> Iterator[Chunk]:
        """Every chunk, read in Arrow batches of ``batch_size`` rows (vectors are not read)."""
        cols = [f for f in _schema(self.dim).names if f != "vector"]
        reader = self._table.search().select(cols).limit(None).to_batches(batch_size)
        for batch in reader:
            yield from chunks_from_arrow(pa.Table.from_batches([batch]))

    def count(self) -> int:
        return self._table.count_rows()

    @property
    def version(self) -> int:
        """The table version being read (after a write: the version that write committed)."""
        return self._table.version

    def restore(self, version: int) -> None:
        """Make ``version``'s contents the latest again (as a new commit); undoes an unpublished write."""
        self._check_writable()
        if self._table.version != version:
            self._table.restore(version)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "lancedb",
            "chunks": self.count(),
            "ann_index": self.has_ann_index(),
            "version": self.version,
        }

    def close(self) -> None:
        """Nothing to release: Lance holds no open handles or locks between calls."""
