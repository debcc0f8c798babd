from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prg.data import read_dataset
from prg.data.dataset import load_depth, load_image
from prg.data.readers import convert, parse_cornell_grasps
from prg.grasp.rect import GraspRect

# Hand-checked: centre (25, 15), width 30, height 10, angle 0 (the conftest's default rectangle too).
SQUARE_CORNERS = [(10.0, 10.0), (40.0, 10.0), (40.0, 20.0), (10.0, 20.0)]
SECOND = [(50.0, 30.0), (50.0, 10.0), (56.0, 10.0), (56.0, 30.0)]


def corner_text(rects) -> str:
    return "".join(f"{x} {y}\n" for r in rects for x, y in r)


def _convert(src: Path, tmp_path: Path, **kw):
    out = tmp_path / "out"
    report = convert("cornell", src, out, progress=False, **kw)
    return report, out


def test_good_item_converts(cornell_item, tmp_path: Path) -> None:
    src = cornell_item(100, corner_text([SQUARE_CORNERS, SECOND]), depth=True, folder="01")
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped, report.warnings) == (1, 0, [])
    info, records = read_dataset(out)
    assert info.source == "cornell"
    (r,) = records
    assert r.id == "cornell-pcd0100"
    assert (r.instruction, r.answer, r.targets, r.split, r.source, r.industry) == (
        "Grasp the object.",
        "[POSE]",
        ["0"],
        "train",
        "cornell",
        "general",
    )
    obj = r.object("0")
    assert (obj.name, obj.category) == ("object", "object")
    expected = [GraspRect.from_corners(SQUARE_CORNERS), GraspRect.from_corners(SECOND)]
    assert all(g.to_rect().almost_equal(e) for g, e in zip(obj.grasps, expected, strict=True))
    g = obj.grasps[0]
    assert (g.x, g.y, g.width, g.height, g.angle) == pytest.approx((25, 15, 30, 10, 0))
    assert load_image(out, r).shape == (48, 64, 3)
    depth = load_depth(out, r)
    assert depth is not None and np.allclose(depth, 0.7)


def test_depth_is_optional(cornell_item, tmp_path: Path) -> None:
    report, out = _convert(cornell_item(100), tmp_path)
    assert report.n_records == 1
    assert read_dataset(out)[1][0].depth is None


def test_nan_rectangle_dropped_item_kept(cornell_item, tmp_path: Path) -> None:
    nan = [("NaN", "NaN")] * 4
    src = cornell_item(100, corner_text([SQUARE_CORNERS, nan]))
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (1, 0)
    cpos = src / "01" / "pcd0100cpos.txt"
    assert len(report.warnings) == 1 and report.warnings[0].startswith(f"{cpos}:5: NaN")
    assert len(read_dataset(out)[1][0].objects[0].grasps) == 1


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (corner_text([SQUARE_CORNERS]) + "1 2\n", "", "not a multiple of 4"),
        ("10 10\n40 10\nNaN NaN\n10 20\n", ":3", "NaN"),
        ("10 10\n40 ten\n40 20\n10 20\n", ":2", "not a number"),
        ("10 10\n40 10 3\n40 20\n10 20\n", ":2", "expected 'x y'"),
        ("10 10\n10 10\n10 10\n10 10\n", ":1", "degenerate"),
        ("", "", "no grasp rectangles"),
    ],
)
def test_bad_grasp_file_skips_item(cornell_item, tmp_path: Path, text: str, where: str, problem: str) -> None:
    src = cornell_item(100, text)
    cornell_item(101)  # a good neighbour survives
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (1, 1)
    cpos = src / "01" / "pcd0100cpos.txt"
    assert any(w.startswith(f"{cpos}{where}: ") and problem in w for w in report.warnings), report.warnings
    assert [r.id for r in read_dataset(out)[1]] == ["cornell-pcd0101"]


@pytest.mark.parametrize(("image", "problem"), [(False, "image file not found"), ("corrupt", "unreadable image")])
def test_bad_image_skips_item(cornell_item, tmp_path: Path, image, problem: str) -> None:
    src = cornell_item(100, image=image)
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (0, 1)
    png = src / "01" / "pcd0100r.png"
    assert report.warnings[0].startswith(f"{png}: {problem}")
    assert report.warnings[-1] == f"{src / '01' / 'pcd0100cpos.txt'}: item skipped"
    assert read_dataset(out)[1] == []
    assert not (out / "images").exists()  # nothing copied for a skipped item


def test_only_bad_items_gives_empty_valid_dataset(cornell_item, tmp_path: Path) -> None:
    src = cornell_item(1, "1 2\n")
    cornell_item(2, image="corrupt")
    cornell_item(3, "NaN NaN\n" * 4)
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (0, 3)
    _info, records = read_dataset(out)
    assert records == []


def test_unreadable_depth_dropped_with_warning(cornell_item, tmp_path: Path) -> None:
    src = cornell_item(100)
    (src / "01" / "pcd0100d.tiff").write_bytes(b"garbage")
    report, out = _convert(src, tmp_path)
    assert report.n_records == 1 and "unreadable depth" in report.warnings[0]
    assert read_dataset(out)[1][0].depth is None


def test_val_fraction_splits_deterministically(cornell_item, tmp_path: Path) -> None:
    for i in range(40):
        src = cornell_item(i, folder=f"{i // 10 + 1:02d}")
    _r1, out1 = _convert(src, tmp_path, val_fraction=0.3, test_fraction=0.2)
    splits = {r.id: r.split for r in read_dataset(out1)[1]}
    assert set(splits.values()) == {"train", "val", "test"}
    convert("cornell", src, tmp_path / "again", progress=False, val_fraction=0.3, test_fraction=0.2)
    assert splits == {r.id: r.split for r in read_dataset(tmp_path / "again")[1]}


def test_parse_cornell_grasps_is_pure(tmp_path: Path) -> None:
    p = tmp_path / "pcd0001cpos.txt"
    p.write_text(corner_text([SQUARE_CORNERS]) + "x y\n1 1\n2 2\n3 3\n")
    rects, problems = parse_cornell_grasps(p)
    assert len(rects) == 1 and problems == [f"{p}:5: not a number in 'x y'; rectangle dropped"]


def test_duplicate_id_in_two_folders_skipped(cornell_item, tmp_path: Path) -> None:
    src = cornell_item(100, folder="01")
    cornell_item(100, folder="02")
    report, _out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (1, 1)
    assert report.warnings == [
        f"{src / '02' / 'pcd0100cpos.txt'}: record id 'cornell-pcd0100' already made from "
        f"{src / '01' / 'pcd0100cpos.txt'}; item skipped"
    ]
