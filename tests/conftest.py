"""Shared fixtures: small PRG datasets written by the tests themselves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# MuJoCo picks its GL backend at its first import, which a test module may trigger while it is collected: an
# offscreen one first (as prg.data.synth.render.import_mujoco does), never the windowed default (no display here)
os.environ.setdefault("MUJOCO_GL", "egl" if os.path.exists("/dev/nvidiactl") else "osmesa")

from prg.data.dataset import DatasetWriter, save_depth_png
from prg.data.schema import DatasetInfo, DocRef, Grasp, Intrinsics, MaskRef, ObjectAnnotation, PRGRecord


def make_record(i: int = 0, **overrides: object) -> PRGRecord:
    fields: dict[str, object] = dict(
        id=f"r{i}",
        image=f"images/r{i}.png",
        depth=f"depth/r{i}.png",
        intrinsics=Intrinsics(fx=300, fy=300, cx=32, cy=24),
        industry="electric_power",
        instruction="The breaker is off; hand me what I need before I touch the busbar.",
        answer="Per EP-SAF-001 §4.2.1 the absence of voltage is verified first: [POSE].",
        objects=[
            ObjectAnnotation(
                id="1",
                name="voltage detector",
                category="voltage_detector",
                mask=MaskRef(path=f"masks/r{i}.png", value=1),
                grasps=[Grasp(x=20, y=20, width=12, height=5, angle=0.3)],
            ),
            ObjectAnnotation(
                id="2",
                name="continuity tester",
                category="continuity_tester",
                mask=MaskRef(path=f"masks/r{i}.png", value=2),
                grasps=[Grasp(x=45, y=30, width=12, height=5, angle=-0.3)],
            ),
        ],
        targets=["1"],
        documents=[DocRef(doc_id="EP-SAF-001", clause="4.2.1")],
        split="train",
    )
    fields.update(overrides)
    return PRGRecord.model_validate(fields)


def write_tiny_dataset(root: Path, n: int = 3) -> Path:
    """A valid 64x48 dataset with depth and instance masks."""
    with DatasetWriter(root, DatasetInfo(name="tiny", industries=["electric_power"])) as w:
        for i in range(n):
            rec = make_record(i)
            img = np.full((48, 64, 3), 200, np.uint8)
            img[15:25, 14:26] = (255, 0, 0)
            Image.fromarray(img).save(w.path(rec.image))
            save_depth_png(w.path(rec.depth or ""), np.full((48, 64), 0.6))
            mask = np.zeros((48, 64), np.uint8)
            mask[15:25, 14:26] = 1
            mask[25:35, 40:50] = 2
            Image.fromarray(mask).save(w.path(f"masks/r{i}.png"))
            w.add(rec)
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "ds")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module: tiny nets run many times slower with two threads on a busy two-core machine.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
