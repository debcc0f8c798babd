"""A dataset writer killed at any step leaves an invalid folder, the old dataset, or the whole new one; never a mix.

A child process writes (or overwrites) a small dataset and SIGKILLs itself just before its N-th write step (every
``os.fsync``, ``os.replace``, ``os.unlink``, each media file and each record), for every N. A second test checks
the order that makes the same hold after a power cut: everything fsynced before the rename that publishes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prg.data.dataset import DatasetError, DatasetWriter, load_image, read_dataset
from prg.data.schema import DatasetInfo, Grasp, MaskRef, ObjectAnnotation, PRGRecord
from prg.data.validate import validate_dataset

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

N_RECORDS = 2
GREY = {"old": 10, "new": 200}


def write(root: Path, version: str, overwrite: bool, step: object = None) -> None:
    """``version`` ("old"/"new") of a 2-record dataset; both versions use the same media file names."""
    tick = step if callable(step) else (lambda what: None)
    with DatasetWriter(root, DatasetInfo(name=version), overwrite=overwrite) as w:
        for i in range(N_RECORDS):
            Image.fromarray(np.full((24, 32, 3), GREY[version], np.uint8)).save(w.path(f"images/{i}.png"))
            tick("image")
            mask = np.zeros((24, 32), np.uint8)
            mask[4:12, 4:12] = 1
            Image.fromarray(mask).save(w.path(f"masks/{i}.png"))
            tick("mask")
            obj = ObjectAnnotation(id="1", name="box", mask=MaskRef(path=f"masks/{i}.png", value=1),
                                   grasps=[Grasp(x=8, y=8, width=6, height=3, angle=0.0)])  # fmt: skip
            w.add(PRGRecord(id=f"{version}{i}", image=f"images/{i}.png", instruction="pick it up",
                            answer="here [POSE]", objects=[obj], targets=["1"]))  # fmt: skip
            tick("record")


CHILD = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
root, version, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
steps = 0
def step(what):
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
def hook(name):
    real = getattr(os, name)
    def hooked(*args, **kwargs):
        step(name)
        return real(*args, **kwargs)
    setattr(os, name, hooked)
for name in ("fsync", "replace", "rename", "unlink"):
    hook(name)
from tests.data.test_dataset_crash import write
write(root, version, overwrite=(root / "dataset.json").exists(), step=step)
print(steps)
"""

REPO = Path(__file__).resolve().parents[2]


def child(root: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, str(root), "new", str(kill_at), str(REPO)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def state(root: Path) -> object:
    """ "invalid", or (name, record ids, grey levels of the images) of a dataset that validates."""
    if not validate_dataset(root).ok:
        with pytest.raises(DatasetError):  # readers refuse it too, they do not load half of it
            read_dataset(root)
        return "invalid"
    info, records = read_dataset(root)
    return info.name, [r.id for r in records], [int(load_image(root, r)[0, 0, 0]) for r in records]


def expected(version: str) -> object:
    return version, [f"{version}{i}" for i in range(N_RECORDS)], [GREY[version]] * N_RECORDS


@pytest.mark.parametrize("overwrite", [False, True], ids=["fresh", "overwrite"])
def test_killed_at_every_step(tmp_path: Path, overwrite: bool) -> None:
    def prepare(name: str) -> Path:
        root = tmp_path / name
        if overwrite:
            write(root, "old", overwrite=False)
        return root

    full = child(prepare("full"), kill_at=0)  # 0: never killed; prints how many steps there are
    assert full.returncode == 0, full.stderr
    n_steps = int(full.stdout)
    assert state(tmp_path / "full") == expected("new") and n_steps > 10
    roots = [prepare(f"k{n}") for n in range(1, n_steps + 1)]
    with ThreadPoolExecutor(max_workers=2) as ex:
        procs = list(ex.map(child, roots, range(1, n_steps + 1)))
    seen = []
    for n, (root, proc) in enumerate(zip(roots, procs, strict=True), 1):
        assert proc.returncode == -signal.SIGKILL, (n, proc.stderr)
        got = state(root)
        allowed = ["invalid", expected("new")] + ([expected("old")] if overwrite else [])
        assert got in allowed, f"killed before step {n}: {got}"
        seen.append(got)
    assert seen[0] == (expected("old") if overwrite else "invalid")  # killed before its first step
    assert seen[-2] == "invalid"  # killed just before dataset.json is renamed into place: not valid yet
    assert seen[-1] == expected("new")  # killed before the last step, the directory fsync after that rename


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="maps fds to paths through /proc")
def test_everything_is_fsynced_before_it_is_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ds"
    write(root, "old", overwrite=False)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str, **kw: object) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    def unlink(path: str, **kw: object) -> None:
        events.append(("unlink", str(path)))
        real_unlink(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    write(root, "new", overwrite=True)
    monkeypatch.undo()
    r = str(root.resolve())
    pos = {e: i for i, e in reversed(list(enumerate(events)))}  # first occurrence of each event
    last = {e: i for i, e in enumerate(events)}
    assert events[0] == ("unlink", f"{root}/dataset.json") and events[1] == ("fsync", r)  # invalid, durably, first
    publish_records = pos[("replace", f"{root}/records.jsonl")]
    must_be_durable = [f"{r}/records.jsonl.partial", r, f"{r}/images", f"{r}/masks"]
    must_be_durable += [f"{r}/{d}/{i}.png" for d in ("images", "masks") for i in range(N_RECORDS)]
    for p in must_be_durable:
        assert pos[("fsync", p)] < publish_records, p
    assert last[("fsync", r)] == len(events) - 1  # the final rename of dataset.json is on disk too
    assert events[-2] == ("replace", f"{root}/dataset.json") and publish_records < len(events) - 2
    assert events[-3][0] == "fsync" and events[-3][1].startswith(f"{r}/dataset.json.partial")
    assert state(root) == expected("new")
