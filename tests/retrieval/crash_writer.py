"""Child process of test_index_crash.py: one index write, SIGKILLed at each of its steps in turn.

    python tests/retrieval/crash_writer.py TEMPLATE WORKDIR add|remove

For step N = 1, 2, ...: copy the TEMPLATE index to WORKDIR/stepNNN, fork, and in the child run the write with
every step counted; the child kills itself with SIGKILL (no cleanup, no ``finally``, no flush, as a power supply
pulled or ``kill -9``) just before step N. Stops at the first N the write survives. Steps are what can leave
state behind: vector store commits, the lexical index save, each fsync, every rename/replace and each deletion.
Prints a JSON list ``[{"step", "folder", "killed"}]``. Forking one process that imported everything once keeps
each step at a fraction of a second.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import prg.fsutil
from prg.retrieval.index import DocumentIndex
from prg.retrieval.lexical import LexicalIndex
from prg.retrieval.store_lancedb import LanceDBStore
from prg.retrieval.types import Chunk

DIM = 8


def document(doc_id: str, texts: list[str]) -> tuple[list[Chunk], np.ndarray]:
    """Chunks of one document with unit vectors that depend only on their text (the same in every process)."""
    chunks = [Chunk(id=f"{doc_id}-{i}", doc_id=doc_id, text=t) for i, t in enumerate(texts)]
    vecs = np.stack([np.random.default_rng(sum(t.encode())).standard_normal(DIM) for t in texts]).astype(np.float32)
    return chunks, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


#: the template holds A (old text) and B; "add" replaces A and adds C in one write, "remove" drops B.
OLD = {"A": ["alpha gloves", "alpha goggles"], "B": ["beta respirator"]}
ADD = {"A": ["alpha replaced"], "C": ["gamma helmet", "gamma boots"]}


def write(op: str, folder: Path) -> None:
    with DocumentIndex.open(folder) as idx:
        if op == "add":
            parts = [document(d, t) for d, t in ADD.items()]
            idx.add([c for cs, _ in parts for c in cs], np.concatenate([v for _, v in parts]))
        else:
            idx.remove(["B"])


def kill_before_step(n: int) -> None:
    """Wrap every step so that the n-th call SIGKILLs this process before it runs."""
    count = 0

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            if count == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return step

    steps: list[tuple[object, str]] = [
        (prg.fsutil, f) for f in ("fsync_file", "fsync_dir", "fsync_tree", "atomic_write_bytes")
    ]
    steps += [(LanceDBStore, f) for f in ("upsert", "delete_documents", "maintain", "restore")]
    steps += [(LexicalIndex, "save"), (os, "rename"), (os, "replace"), (shutil, "rmtree"), (Path, "unlink")]
    for owner, name in steps:
        setattr(owner, name, wrap(getattr(owner, name)))


def main(template: Path, work: Path, op: str) -> None:
    # Nothing in this process has used LanceDB before it forks (its runtime is reset in the child); a child that
    # hangs anyway dies of its alarm and fails the run instead of hanging it.
    warnings.filterwarnings("ignore", message="lancedb fork support is experimental")
    results = []
    for n in range(1, 500):
        folder = work / f"step{n:03d}"
        shutil.copytree(template, folder)
        pid = os.fork()
        if pid == 0:  # the child: never returns into the loop
            code = 0
            signal.alarm(60)
            try:
                kill_before_step(n)
                write(op, folder)
            except BaseException:
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed and os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"step {n}: the write failed without being killed (status {status})")
        results.append({"step": n, "folder": str(folder), "killed": killed})
        if not killed:
            break
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
