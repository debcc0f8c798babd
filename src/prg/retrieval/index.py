"""A document index: one vector store + a BM25 index + a manifest, in one folder, safe to crash and to share.

Layout::

    index/
      CURRENT                 name of the published snapshot ("v7"); replaced atomically (prg.fsutil)
      store/                  the vector store (LanceDB database, or Qdrant local folder; absent for url=)
      snapshots/v7/manifest.json, snapshots/v7/lexical/   one folder per published write
      .write.lock             writers take it (flock): one writer at a time

A write (``add``/``remove``) changes the store, builds the whole next snapshot folder under a temporary name,
renames it into place, and only then swaps ``CURRENT``. A reader reads ``CURRENT`` once, loads that snapshot and,
for LanceDB, checks out the table version the manifest recorded (Lance commits are atomic and old versions stay
readable), so it sees one consistent index however long it lives and whatever writers do. A write killed before
the swap leaves ``CURRENT`` on the old snapshot; the next writer restores the Lance table to that snapshot's
version before it starts. Qdrant has no versions: see docs/retrieval_index.md for what that backend guarantees.

Power cuts: before ``CURRENT`` moves, the new snapshot folder and every store file the write changed are fsynced,
and ``CURRENT`` itself is written with :func:`prg.fsutil.atomic_write_text` (temp file fsynced, renamed, folder
fsynced), so the name it holds after a reboot always points at a snapshot whose files reached the disk.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prg import fsutil
from prg.retrieval.fusion import FusionConfig, Reranker, default_fusion, fuse
from prg.retrieval.lexical import LexicalIndex
from prg.retrieval.store import open_store
from prg.retrieval.store_lancedb import chunks_to_arrow
from prg.retrieval.types import Chunk, Filters, Hit, VectorStore

__all__ = ["DocumentIndex"]

FORMAT_VERSION = 1
#: backends whose store can be pinned at a committed version (readers) and rolled back (writers).
VERSIONED_BACKENDS = frozenset({"lancedb"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _doc_sha256(chunks: Sequence[Chunk]) -> str:
    """A content hash of a document as indexed: its chunks' ids and texts, in order."""
    h = hashlib.sha256()
    for c in chunks:
        h.update(c.id.encode() + b"\x1f" + c.text.encode() + b"\x1e")
    return h.hexdigest()


def _fsync_changed(folder: Path, since_ns: int) -> None:
    """fsync the files under ``folder`` modified at or after ``since_ns`` (``time.time_ns()``), and their folders.

    The vector store writes its own files (Lance, Qdrant) without fsync; only what this write touched needs it.
    """
    if not folder.is_dir():
        return
    for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
        changed = False
        for name in filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if st.st_mtime_ns >= since_ns and not p.is_symlink():
                fsutil.fsync_file(p)
                changed = True
        if changed or Path(dirpath).stat().st_mtime_ns >= since_ns:
            fsutil.fsync_dir(dirpath)


class DocumentIndex:
    """Dense + lexical retrieval over chunks of regulation documents, stored in one folder.

    Use :meth:`create` or :meth:`open`; an instance reads the snapshot that was current when it was opened
    (or that it last wrote). Vectors come from the caller (the embedder is not part of the index).
    """

    def __init__(self, root: Path, manifest: dict[str, Any], lexical: LexicalIndex, store: VectorStore) -> None:
        self.root = root
        self.manifest = manifest
        self._lexical = lexical
        self._store = store
        self._write_started_ns = 0  # set when a write takes the lock; store files newer than this get fsynced

    # -- opening -----------------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | Path, dim: int, backend: str = "lancedb", embedder_name: str = "", **store_kwargs: Any
    ) -> DocumentIndex:
        """Make an empty index at ``path`` (``store_kwargs``: e.g. ``url=``/``collection=`` for Qdrant)."""
        root = Path(path)
        if (root / "CURRENT").exists():
            raise FileExistsError(f"{root} already holds an index")
        made = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        if made:
            fsutil.fsync_dir(root.parent)
        now = _now()
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "snapshot": 0,
            "previous": None,
            "embedder": embedder_name,
            "dim": dim,
            "backend": backend,
            "store_kwargs": store_kwargs,
            "store_version": None,
            "documents": {},
            "created": now,
            "updated": now,
        }
        index = cls(root, manifest, LexicalIndex.build([]), _open_store(root, manifest, pinned=False))
        with index._write_lock():
            index._publish(index._lexical)
        return index

    @classmethod
    def open(cls, path: str | Path) -> DocumentIndex:
        """Open the snapshot named by ``CURRENT`` (read once: later writes by others are not seen)."""
        root = Path(path)
        manifest, lexical = _load_snapshot(root)
        return cls(root, manifest, lexical, _open_store(root, manifest, pinned=True))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray, doc_sha256: Mapping[str, str] | None = None) -> None:
        """Index chunks with their ``[n x dim]`` unit vectors; a document already present is replaced whole.

        ``doc_sha256`` (doc id -> hash of the source file) is recorded in the manifest; by default the hash of
        the document's chunks is.
        """
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        by_doc: dict[str, list[Chunk]] = defaultdict(list)
        for c in chunks:
            by_doc[c.doc_id].append(c)
        with self._write_lock():
            self._begin_write()
            self._store.delete_documents(list(by_doc))
            self._store.upsert(chunks, np.asarray(vectors, dtype=np.float32))
            maintain = getattr(self._store, "maintain", None)
            if maintain is not None:
                maintain()
            table = self._lexical.table
            keep = pc.invert(pc.is_in(table.column("doc_id"), value_set=pa.array(list(by_doc), pa.string())))
            new = chunks_to_arrow(chunks, None, 0)
            table = pa.concat_tables([table.filter(keep), new.cast(table.schema)])
            docs = self.manifest["documents"]
            for doc_id, doc_chunks in by_doc.items():
                sha = (doc_sha256 or {}).get(doc_id) or _doc_sha256(doc_chunks)
                docs[doc_id] = {"sha256": sha, "chunk_ids": [c.id for c in doc_chunks], "updated": _now()}
            self._publish(LexicalIndex.from_table(table))

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Remove these documents; returns how many chunks went."""
        with self._write_lock():
            self._begin_write()
            n = self._store.delete_documents(list(doc_ids))
            table = self._lexical.table
            keep = pc.invert(pc.is_in(table.column("doc_id"), value_set=pa.array(list(doc_ids), pa.string())))
            for d in doc_ids:
                self.manifest["documents"].pop(d, None)
            self._publish(LexicalIndex.from_table(table.filter(keep)))
        return n

    def compact(self, older_than: timedelta = timedelta(days=1)) -> None:
        """Compact the store, fold new rows into its ANN index and drop store versions older than ``older_than``.

        Readers opened on a snapshot whose store version gets dropped can no longer search it: pick an age longer
        than any reader lives. No-op for backends without versions (Qdrant compacts itself).
        """
        if self.manifest["backend"] not in VERSIONED_BACKENDS:
            return
        with self._write_lock():
            self._begin_write()
            self._store.optimize(older_than)  # type: ignore[attr-defined]
            self._publish(self._lexical)

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Hold the folder's writer lock; if the write fails, go back to reading the published snapshot."""
        with open(self.root / ".write.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            # store files modified from here on belong to this write (1 s early: file times use a coarse clock)
            self._write_started_ns = time.time_ns() - 1_000_000_000
            try:
                yield
            except BaseException:
                if self.manifest["backend"] in VERSIONED_BACKENDS and self.manifest["store_version"] is not None:
                    self.manifest, self._lexical = _load_snapshot(self.root)
                    self._store.close()
                    self._store = _open_store(self.root, self.manifest, pinned=True)
                raise
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _begin_write(self) -> None:
        """Move onto the latest published snapshot with a writable store, undoing any unpublished write."""
        self.manifest, self._lexical = _load_snapshot(self.root)
        # Qdrant (local mode allows one client per folder) keeps this instance's live store.
        if self.manifest["backend"] in VERSIONED_BACKENDS:
            self._store.close()
            self._store = _open_store(self.root, self.manifest, pinned=False)
            # a writer killed before publishing left commits past the published version: roll them back.
            self._store.restore(self.manifest["store_version"])  # type: ignore[attr-defined]

    def _publish(self, lexical: LexicalIndex) -> None:
        """Write the next snapshot folder, then point ``CURRENT`` at it (the commit point)."""
        snaps = self.root / "snapshots"
        snaps.mkdir(exist_ok=True)
        # numbers above CURRENT's may belong to crashed writes: never reuse them.
        taken = [int(p.name[1:]) for p in snaps.iterdir() if p.name.startswith("v") and p.name[1:].isdigit()]
        n = max([self.manifest["snapshot"], *taken]) + 1
        manifest = dict(self.manifest)
        manifest.update(
            snapshot=n,
            previous=self.manifest["snapshot"] or None,
            store_version=getattr(self._store, "version", None),
            updated=_now(),
        )
        tmp = snaps / f".tmp-v{n}-{os.getpid()}"
        lexical.save(tmp / "lexical")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        # durable before CURRENT names it: the store's new files, the snapshot folder, its entry in snapshots/
        _fsync_changed(self.root / "store", self._write_started_ns)
        fsutil.fsync_tree(tmp)
        os.rename(tmp, snaps / f"v{n}")
        fsutil.fsync_dir(snaps)
        fsutil.fsync_dir(self.root)  # snapshots/ itself may be new
        fsutil.atomic_write_text(self.root / "CURRENT", f"v{n}\n")  # the commit point
        self.manifest, self._lexical = manifest, lexical
        if manifest["backend"] in VERSIONED_BACKENDS:
            self._store.close()
            self._store = _open_store(self.root, manifest, pinned=True)
        self._cleanup(keep={f"v{n}", f"v{manifest['previous']}"})

    def _cleanup(self, keep: set[str]) -> None:
        """Delete snapshot folders but the current and previous ones (and temp folders of crashed writes).

        Readers hold their lexical index in memory and their Lance version stays in the table, so removing a
        folder an open reader came from does not disturb it. Old Lance versions are kept; see :meth:`compact`.
        """
        for p in (self.root / "snapshots").iterdir():
            if p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)
        for pattern in ("CURRENT.tmp*", f"CURRENT{fsutil.PARTIAL_SUFFIX}*"):  # temp files of killed writers
            for p in self.root.glob(pattern):
                p.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------------------------

    def search_dense(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """Nearest chunks to a ``[dim]`` query vector (cosine), best first."""
        return self._store.search(vector, k, filters)

    def search_lexical(self, text: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """Best BM25 matches for ``text``, best first."""
        return self._lexical.search(text, k, filters)

    def hybrid(
        self,
        text: str,
        vector: np.ndarray,
        k: int = 10,
        filters: Filters | None = None,
        fusion: FusionConfig | None = None,
        candidates: int | None = None,
        reranker: Reranker | None = None,
    ) -> list[Hit]:
        """The best ``k`` of the dense and lexical rankings over ``candidates`` (4k) each, fused as ``fusion`` says
        (default: :func:`~prg.retrieval.fusion.default_fusion` of the index's embedder), optionally reranked."""
        n = candidates or 4 * k
        dense, lexical = self.search_dense(vector, n, filters), self.search_lexical(text, n, filters)
        fused = fuse(dense, lexical, fusion or default_fusion(self.manifest["embedder"]), top_k=n if reranker else k)
        return reranker(text, fused)[:k] if reranker else fused

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return self._store.get(ids)

    def documents(self) -> dict[str, dict[str, Any]]:
        """doc id -> ``{"sha256", "chunk_ids", "updated"}`` as recorded in the manifest."""
        return self.manifest["documents"]

    @property
    def store(self) -> VectorStore:
        return self._store

    def stats(self) -> dict[str, Any]:
        """Sizes and settings: chunks, documents, per-industry chunk counts, bytes on disk, ANN index or not."""
        table = self._lexical.table
        industries = {str(r["values"]): int(r["counts"]) for r in pc.value_counts(table.column("industry")).to_pylist()}
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        n = table.num_rows
        return {
            "backend": self.manifest["backend"],
            "embedder": self.manifest["embedder"],
            "dim": self.manifest["dim"],
            "snapshot": self.manifest["snapshot"],
            "chunks": n,
            "documents": len(self.manifest["documents"]),
            "industries": industries,
            "bytes_on_disk": size,
            "bytes_per_chunk": size / n if n else 0.0,
            "ann_index": bool(self._store.stats().get("ann_index", False)) if hasattr(self._store, "stats") else False,
        }


def _load_snapshot(root: Path) -> tuple[dict[str, Any], LexicalIndex]:
    """The manifest and lexical index of the snapshot ``CURRENT`` names (read once)."""
    for attempt in range(5):
        folder = root / "snapshots" / _current(root)
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            lexical = LexicalIndex.load(folder / "lexical")
            break
        except FileNotFoundError:
            # two writes published (and cleaned our snapshot up) between reading CURRENT and the folder: retry
            if attempt == 4:
                raise
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}")
    return manifest, lexical


def _current(root: Path) -> str:
    """The name ``CURRENT`` holds; a clear error where ``root`` is not an index."""
    try:
        return (root / "CURRENT").read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        why = "no CURRENT file" if root.is_dir() else "no such folder"
        raise FileNotFoundError(f"{root} is not a PRG index ({why})") from None


def _open_store(root: Path, manifest: Mapping[str, Any], pinned: bool) -> VectorStore:
    kwargs = dict(manifest["store_kwargs"])
    if "url" not in kwargs:
        kwargs["path"] = root / "store"
    if pinned and manifest["backend"] in VERSIONED_BACKENDS and manifest["store_version"] is not None:
        kwargs["version"] = manifest["store_version"]
    return open_store(manifest["backend"], dim=manifest["dim"], **kwargs)
