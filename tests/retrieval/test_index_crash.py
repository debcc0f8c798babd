"""An index write SIGKILLed at every step leaves an index that opens with the old or the new contents, never a mix.

``crash_writer.py`` (a child process) runs one write per step number and kills itself just before that step:
each vector store commit, the lexical save, each fsync, rename and deletion. Here every resulting folder is
opened as a reader would (manifest, BM25 and dense search must agree on one state), then written to, to check the
next writer also starts from that state (no rows of the killed write survive). A kill cannot drop the page cache,
so it does not test the fsyncs themselves; ``test_publish_fsyncs_before_current_moves`` checks their order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import prg.fsutil
import prg.retrieval.index as index_mod
from prg.retrieval.index import DocumentIndex
from tests.retrieval.crash_writer import ADD, DIM, OLD, document

WRITER = Path(__file__).with_name("crash_writer.py")
WORDS = "alpha beta gamma gloves goggles respirator replaced helmet boots zeta"
State = dict[str, tuple[str, ...]]  # doc id -> its chunk texts


def add_docs(idx: DocumentIndex, docs: State) -> None:
    parts = [document(d, list(t)) for d, t in docs.items()]
    idx.add([c for cs, _ in parts for c in cs], np.concatenate([v for _, v in parts]))


def views(idx: DocumentIndex) -> list[State]:
    """The index as the manifest, BM25 search and dense search each see it."""

    def state(pairs: list[tuple[str, str, str]]) -> State:
        out: dict[str, list[tuple[str, str]]] = {}
        for doc_id, cid, text in sorted(pairs):
            out.setdefault(doc_id, []).append((cid, text))
        return {d: tuple(t for _, t in v) for d, v in out.items()}

    lexical = [(h.chunk.doc_id, h.chunk.id, h.chunk.text) for h in idx.search_lexical(WORDS, 100)]
    dense = [(h.chunk.doc_id, h.chunk.id, h.chunk.text) for h in idx.search_dense(np.ones(DIM, np.float32), 100)]
    manifest = {d: tuple(sorted(m["chunk_ids"])) for d, m in idx.documents().items()}
    return [state(lexical), state(dense), {d: tuple(f"{d}-{i}" for i in range(len(v))) for d, v in manifest.items()}]


def as_state(docs: dict[str, list[str]]) -> State:
    return {d: tuple(t) for d, t in docs.items()}


@pytest.mark.parametrize("op", ["add", "remove"])
def test_killed_write_leaves_old_or_new_index(tmp_path: Path, op: str) -> None:
    template = tmp_path / "template"
    with DocumentIndex.create(template, DIM) as idx:
        add_docs(idx, as_state(OLD))
    old = as_state(OLD)
    new = {**old, **as_state(ADD)} if op == "add" else {"A": old["A"]}
    (tmp_path / "work").mkdir()
    proc = subprocess.run(
        [sys.executable, str(WRITER), str(template), str(tmp_path / "work"), op],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads(proc.stdout)
    assert len(steps) > 10 and not steps[-1]["killed"] and all(s["killed"] for s in steps[:-1])
    seen = []
    for s in steps:
        with DocumentIndex.open(s["folder"]) as idx:
            got = views(idx)
        manifest_keys = set(got[2])
        assert got[0] == got[1] and set(got[0]) == manifest_keys, (s, got)  # one state in every part
        assert got[0] in (old, new), (s, got)
        seen.append("old" if got[0] == old else "new")
        # the next writer starts from that state: nothing of the killed write comes back
        with DocumentIndex.open(s["folder"]) as idx:
            add_docs(idx, {"Z": ("zeta",)})
        with DocumentIndex.open(s["folder"]) as idx:
            after = views(idx)
        assert after[0] == after[1] == {**got[0], "Z": ("zeta",)}, (s, after)
    # both outcomes occur: killed before the CURRENT swap (old) and after it, during clean-up (new)
    assert seen[0] == "old" and seen[-1] == "new" and "old" in seen[:-1] and "new" in seen[:-1], seen


def test_publish_fsyncs_before_current_moves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order that makes a snapshot survive a power cut: files, folder, its entry, then CURRENT."""
    idx = DocumentIndex.create(tmp_path / "ix", DIM)
    calls: list[tuple[str, str]] = []
    for name in ("fsync_file", "fsync_dir", "fsync_tree", "atomic_write_text"):
        real = getattr(prg.fsutil, name)

        def record(*args: object, _name: str = name, _real: object = real) -> None:
            calls.append((_name, Path(str(args[0])).name))
            _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(prg.fsutil, name, record)
    real_rename = index_mod.os.rename

    def rename(src: str, dst: str) -> None:
        calls.append(("rename", Path(dst).name))
        real_rename(src, dst)

    monkeypatch.setattr(index_mod.os, "rename", rename)
    add_docs(idx, {"A": ("alpha gloves",)})
    idx.close()
    n = (tmp_path / "ix" / "CURRENT").read_text().strip()
    r = calls.index(("rename", n))
    tree = calls.index(("fsync_tree", f".tmp-{n}-{os.getpid()}"))
    assert tree < r  # every file and folder of the snapshot is on disk before it gets its name
    assert calls[r + 1 : r + 4] == [("fsync_dir", "snapshots"), ("fsync_dir", "ix"), ("atomic_write_text", "CURRENT")]
    # the store's files written by this add were fsynced before that (Lance does not fsync them itself)
    assert any(c[0] == "fsync_file" for c in calls[:tree]), calls
