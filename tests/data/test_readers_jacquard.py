from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from prg.data import read_dataset
from prg.data.dataset import load_depth, load_mask
from prg.data.readers import convert, parse_jacquard_grasps
from prg.grasp.rect import GraspRect

SCENE = "3_1a2b3c"
GOOD = ["30;20;0;24;8", "30;20;0;24;12", "12.5;30.25;45;10;5"]


def _convert(src: Path, tmp_path: Path, **kw):
    out = tmp_path / "out"
    return convert("jacquard", src, out, progress=False, **kw), out


def test_good_item_converts(jacquard_item, tmp_path: Path) -> None:
    src = jacquard_item(SCENE, GOOD)
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped, report.warnings) == (1, 0, [])
    (r,) = read_dataset(out)[1]
    assert r.id == f"jacquard-{SCENE}"
    assert (r.source, r.split, r.answer, r.targets) == ("jacquard", "train", "[POSE]", ["0"])
    obj = r.object("0")
    assert obj.attributes["jacquard_object_id"] == "1a2b3c"
    # Lines that differ only in jaw size are distinct grasps and all kept.
    expected = [GraspRect.from_jacquard(*map(float, line.split(";"))) for line in GOOD]
    assert len(obj.grasps) == 3
    assert all(g.to_rect().almost_equal(e) for g, e in zip(obj.grasps, expected, strict=True))
    assert (obj.grasps[1].width, obj.grasps[1].height) == (24, 12)
    depth = load_depth(out, r)
    assert depth is not None and np.allclose(depth, 0.7)
    assert obj.mask is not None and load_mask(out, obj.mask).shape == (48, 64)


def test_angle_sign_flips(tmp_path: Path) -> None:
    # Jacquard measures theta clockwise on screen; ours is counter-clockwise.
    p = tmp_path / "1_a_grasps.txt"
    p.write_text("10;10;30;20;5\n10;10;-60;20;5\n")
    (a, b), problems = parse_jacquard_grasps(p)
    assert problems == []
    assert a.angle == pytest.approx(-math.pi / 6)
    assert b.angle == pytest.approx(math.pi / 3)
    # Clockwise 30° on screen with y down: the axis points right and *down* (y grows).
    assert a.axis[1] > 0


def test_exact_duplicates_deduped(tmp_path: Path) -> None:
    p = tmp_path / "1_a_grasps.txt"
    p.write_text("10;10;30;20;5\n10;10;30;20;5\n10;10;30;20;6\n")
    rects, problems = parse_jacquard_grasps(p)
    assert len(rects) == 2 and problems == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("10;10;30;20", "expected 5 fields"),
        ("10;10;30;20;5;1", "expected 5 fields"),
        ("10 10 30 20 5", "expected 5 fields"),
        ("10;10;abc;20;5", "not a number"),
        ("10;nan;30;20;5", "NaN"),
        ("10;10;30;0;5", "invalid rectangle"),
    ],
)
def test_bad_line(jacquard_item, tmp_path: Path, line: str, problem: str) -> None:
    src = jacquard_item(SCENE, [GOOD[0], line])  # one bad line: dropped, item kept
    jacquard_item("4_1a2b3c", [line])  # only a bad line: item skipped
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (1, 1)
    kept = src / "Jacquard_Dataset_0" / "1a2b3c" / f"{SCENE}_grasps.txt"
    skipped = kept.with_name("4_1a2b3c_grasps.txt")
    assert any(w.startswith(f"{kept}:2: {problem}") for w in report.warnings), report.warnings
    assert any(w.startswith(f"{skipped}:1: {problem}") for w in report.warnings), report.warnings
    assert f"{skipped}: item skipped" in report.warnings
    assert [len(r.objects[0].grasps) for r in read_dataset(out)[1]] == [1]


@pytest.mark.parametrize("image", [False, "corrupt"])
def test_bad_image_skips(jacquard_item, tmp_path: Path, image) -> None:
    src = jacquard_item(SCENE, GOOD, image=image)
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (0, 1)
    assert report.warnings[0].startswith(str(src / "Jacquard_Dataset_0" / "1a2b3c" / f"{SCENE}_RGB.png"))
    assert read_dataset(out)[1] == []


def test_missing_depth_and_mask(jacquard_item, tmp_path: Path) -> None:
    src = jacquard_item(SCENE, GOOD, depth=False, mask=False)
    report, out = _convert(src, tmp_path)
    assert report.n_records == 1
    assert len(report.warnings) == 1 and "depth map not found" in report.warnings[0]
    (r,) = read_dataset(out)[1]
    assert r.depth is None and r.objects[0].mask is None


def test_split_is_per_object(jacquard_item, tmp_path: Path) -> None:
    for obj in range(12):
        for view in range(3):
            src = jacquard_item(f"{view}_obj{obj}", GOOD)
    report, out = _convert(src, tmp_path, val_fraction=0.4)
    assert report.n_records == 36
    by_object: dict[str, set[str]] = {}
    for r in read_dataset(out)[1]:
        by_object.setdefault(r.objects[0].attributes["jacquard_object_id"], set()).add(r.split)
    assert all(len(s) == 1 for s in by_object.values())  # every view of an object in the same split
    assert {s for v in by_object.values() for s in v} == {"train", "val"}
