"""Durable file writes: the one place PRG makes a write survive a killed process *and* a power cut.

``os.replace`` alone makes a swap atomic against a killed process, but after a power cut the rename may be lost
or, worse, the new name may point at a file whose data never reached the disk. The rule used everywhere
(datasets, the document index, model checkpoints):

1. write the new file under a temporary name and ``fsync`` it;
2. ``os.replace`` it over the old name;
3. ``fsync`` the directory, so the rename itself is on disk.

A folder published by renaming (an index snapshot, a checkpoint) is made durable with :func:`fsync_tree` before
the rename. Written by hand: the standard library has no fsync-directory helper, and the one-line POSIX idiom is
not worth a dependency.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_dir", "fsync_file", "fsync_tree"]

PARTIAL_SUFFIX = ".partial"


def fsync_file(path: str | Path) -> None:
    """Flush a file's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a directory's entries (renames, new files) to disk. A no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows: directory handles cannot be fsynced, and NTFS journals renames itself
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file and directory under ``root`` (files first, then directories bottom-up, then ``root``)."""
    root = Path(root)
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                fsync_file(p)
        fsync_dir(dirpath)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half of one, even after a
    power cut (temp file fsynced, renamed over ``path``, directory fsynced)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{PARTIAL_SUFFIX}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))
