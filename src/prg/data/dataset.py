"""Reading and writing PRG dataset folders.

Layout (see ``docs/data_format.md``)::

    DATASET/
      dataset.json      metadata (DatasetInfo); written last, so a folder without it is incomplete
      records.jsonl     one PRGRecord per line
      images/ depth/ masks/ documents/   files the records point to (relative paths)

Writes survive a killed process and a power cut (``prg.fsutil``): records go to ``records.jsonl.partial``; on
``close()`` that file, every file handed out by :meth:`DatasetWriter.path` and every directory of the folder are
fsynced, the records file is renamed into place (directory fsynced), and only then is ``dataset.json`` written
atomically. Overwriting removes the old ``dataset.json`` (durably) before anything else changes. An interrupted
writer therefore leaves a folder that ``validate`` rejects, never a mix of an old and a new dataset. Files that
other code writes into the folder (e.g. PRG-Synth's worker processes) are that code's to fsync.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from prg.data.schema import DatasetInfo, MaskRef, PRGRecord
from prg.fsutil import atomic_write_text, fsync_dir, fsync_file

__all__ = [
    "INFO_FILE",
    "RECORDS_FILE",
    "DatasetError",
    "DatasetWriter",
    "copy_into",
    "iter_records",
    "load_depth",
    "load_image",
    "load_mask",
    "read_dataset",
    "read_info",
    "remove_dataset",
    "save_depth_png",
    "write_dataset",
]

INFO_FILE = "dataset.json"
RECORDS_FILE = "records.jsonl"
_PARTIAL = ".partial"


class DatasetError(Exception):
    """A dataset folder is missing, incomplete or malformed; the message says where."""


class DatasetWriter:
    """Streams records into a dataset folder; the folder becomes valid only on a clean ``close()``.

    >>> with DatasetWriter(out, DatasetInfo(name="demo")) as w:   # doctest: +SKIP
    ...     w.add(record)
    """

    def __init__(self, root: str | Path, info: DatasetInfo, overwrite: bool = False) -> None:
        self.root = Path(root)
        self.info = info
        if (self.root / INFO_FILE).exists() or (self.root / RECORDS_FILE).exists():
            if not overwrite:
                raise DatasetError(f"{self.root} already holds a dataset; pass overwrite=True to replace it")
            # Removing dataset.json first makes the folder invalid before anything else changes; the directory
            # fsync makes that removal reach the disk before any old file is overwritten in place.
            (self.root / INFO_FILE).unlink(missing_ok=True)
            fsync_dir(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / (RECORDS_FILE + _PARTIAL)
        self._f = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._ids: set[str] = set()
        self._files: dict[Path, None] = {}  # files handed out by path(), fsynced on close (ordered, unique)
        self.count = 0

    def add(self, record: PRGRecord) -> None:
        if record.id in self._ids:
            raise DatasetError(f"duplicate record id {record.id!r}")
        self._ids.add(record.id)
        self._f.write(record.model_dump_json(exclude_none=True) + "\n")
        self.count += 1

    def path(self, *parts: str) -> Path:
        """Absolute path for a file inside the dataset (parent folders are created); fsynced on ``close()``."""
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        self._files[p] = None
        return p

    def close(self) -> None:
        """Make the folder a valid dataset: everything durable first, ``dataset.json`` last."""
        if self._f.closed:
            return
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        for p in self._files:
            if p.is_file():  # a path asked for but never written is not part of the dataset
                fsync_file(p)
        # Every directory, so the entries of new media files (whoever wrote them) are on disk too.
        for dirpath, _dirs, _files in os.walk(self.root, topdown=False):
            fsync_dir(dirpath)
        os.replace(self._tmp, self.root / RECORDS_FILE)
        fsync_dir(self.root)
        atomic_write_text(self.root / INFO_FILE, self.info.model_dump_json(indent=2) + "\n")

    def abort(self) -> None:
        """Stop without making the folder valid (the partial records file is removed)."""
        if not self._f.closed:
            self._f.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_dataset(root: str | Path, info: DatasetInfo, records: Iterable[PRGRecord], overwrite: bool = False) -> int:
    """Write a whole dataset folder; returns the number of records written."""
    with DatasetWriter(root, info, overwrite=overwrite) as w:
        for r in records:
            w.add(r)
        return w.count


def remove_dataset(root: str | Path) -> None:
    """Delete a dataset folder so that a crash (or power cut) part-way leaves an invalid folder, never a mix:
    ``dataset.json`` is removed and that removal made durable before anything else is deleted."""
    root = Path(root)
    (root / INFO_FILE).unlink(missing_ok=True)
    fsync_dir(root)
    shutil.rmtree(root)


def read_info(root: str | Path) -> DatasetInfo:
    root = Path(root)
    p = root / INFO_FILE
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if not p.is_file():
        raise DatasetError(f"{p}: missing (an incomplete or interrupted dataset, or not a PRG dataset folder)")
    try:
        return DatasetInfo.model_validate_json(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise DatasetError(f"{p}: {e}") from e


def iter_records(root: str | Path) -> Iterator[PRGRecord]:
    """Yield records, raising :class:`DatasetError` (with file and line) on the first bad one."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    p = root / RECORDS_FILE
    if not p.is_file():
        raise DatasetError(f"{p}: missing (an incomplete or interrupted dataset, or not a PRG dataset folder)")
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield PRGRecord.model_validate_json(line)
            except ValueError as e:
                raise DatasetError(f"{p}:{lineno}: {e}") from e


def read_dataset(root: str | Path) -> tuple[DatasetInfo, list[PRGRecord]]:
    info = read_info(root)
    return info, list(iter_records(root))


def _resolve(root: str | Path, rel: str) -> Path:
    p = (Path(root) / rel).resolve()
    if not p.is_file():
        raise DatasetError(f"{p}: file not found")
    return p


def load_image(root: str | Path, record: PRGRecord) -> np.ndarray:
    """The record's image as ``[H x W x 3]`` uint8 RGB (grey and RGBA images are converted)."""
    p = _resolve(root, record.image)
    try:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: unreadable image ({e})") from e


def load_depth(root: str | Path, record: PRGRecord) -> np.ndarray | None:
    """Depth in metres as ``[H x W]`` float32, NaN where the sensor gave nothing (0 or non-finite)."""
    if record.depth is None:
        return None
    p = _resolve(root, record.depth)
    try:
        if p.suffix.lower() == ".npy":
            d = np.load(p, allow_pickle=False).astype(np.float32)  # never unpickle data from outside
        elif p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            d = np.asarray(tifffile.imread(p)).astype(np.float32)
        else:
            with Image.open(p) as im:
                raw = np.asarray(im)
            d = raw.astype(np.float32)
            if np.issubdtype(raw.dtype, np.integer):
                d *= record.depth_scale
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: unreadable depth ({e})") from e
    if d.ndim == 3:
        d = d[..., 0]
    d[~np.isfinite(d) | (d <= 0)] = np.nan
    return d


def save_depth_png(path: str | Path, depth_m: np.ndarray, depth_scale: float = 0.001) -> None:
    """Save metric depth as a 16-bit PNG (units of ``depth_scale`` metres; 0 = no reading)."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64) / depth_scale, nan=0.0)
    # compress_level=1: 16-bit depth compresses poorly anyway, and level 6 costs several times the time
    Image.fromarray(np.clip(np.rint(d), 0, 65535).astype(np.uint16)).save(path, compress_level=1)


def load_mask(root: str | Path, mask: MaskRef, cache: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """A boolean ``[H x W]`` mask for one object. ``cache`` (path -> decoded file) lets the objects of a record,
    which share one instance-mask file, decode it once."""
    m = None if cache is None else cache.get(mask.path)
    if m is None:
        p = _resolve(root, mask.path)
        try:
            with Image.open(p) as im:
                m = np.asarray(im)
        except (OSError, ValueError) as e:
            raise DatasetError(f"{p}: unreadable mask ({e})") from e
        if cache is not None:
            cache[mask.path] = m
    if m.ndim == 3:
        m = m[..., 0]
    return m != 0 if mask.value is None else m == mask.value


def copy_into(writer: DatasetWriter, src: Path, rel: str) -> str:
    """Copy ``src`` into the writer's dataset at ``rel`` (fsynced on close); returns ``rel`` for the record."""
    shutil.copyfile(src, writer.path(rel))
    return rel
