from __future__ import annotations

import math
from pathlib import Path

import pytest

from prg.data import DatasetError, read_dataset
from prg.data.readers import assign_split, convert, known_formats
from prg.data.readers.common import ConvertOptions, check_image, parse_corner_lines

SQUARE_CORNERS = [(10.0, 10.0), (40.0, 10.0), (40.0, 20.0), (10.0, 20.0)]


def corner_text(rects) -> str:
    return "".join(f"{x} {y}\n" for r in rects for x, y in r)


def test_known_formats_and_unknown_format_lists_them(tmp_path: Path) -> None:
    assert known_formats() == ["cornell", "jacquard", "reasongrasp"]
    with pytest.raises(ValueError, match=r"unknown dataset format 'coco'.*cornell, jacquard, reasongrasp"):
        convert("coco", tmp_path, tmp_path / "out")


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="source folder not found"):
        convert("cornell", tmp_path / "nope", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_existing_destination_needs_overwrite(cornell_item, tmp_path: Path) -> None:
    src = cornell_item(100)
    out = tmp_path / "out"
    assert convert("cornell", src, out, progress=False).n_records == 1
    with pytest.raises(DatasetError, match="overwrite"):
        convert("cornell", src, out, progress=False)
    cornell_item(101)
    assert convert("cornell", src, out, overwrite=True, progress=False).n_records == 2
    assert len(read_dataset(out)[1]) == 2


def test_assign_split_is_deterministic_and_follows_fractions() -> None:
    keys = [f"cornell-pcd{i:04d}" for i in range(2000)]
    assert all(assign_split(k) == "train" for k in keys)
    splits = [assign_split(k, 0.2, 0.1) for k in keys]
    assert splits == [assign_split(k, 0.2, 0.1) for k in keys]
    assert abs(splits.count("val") / len(keys) - 0.2) < 0.04
    assert abs(splits.count("test") / len(keys) - 0.1) < 0.03
    assert all(assign_split(k, 1.0) == "val" for k in keys[:50])


def test_bad_fractions_rejected() -> None:
    with pytest.raises(ValueError):
        ConvertOptions(val_fraction=0.7, test_fraction=0.5)
    with pytest.raises(ValueError):
        ConvertOptions(val_fraction=-0.1)


def test_corner_parse_hand_checked(tmp_path: Path) -> None:
    p = tmp_path / "g.txt"
    p.write_text(corner_text([SQUARE_CORNERS]) + "\n")  # a trailing blank line is fine
    rects, problems = parse_corner_lines(p)
    assert problems == []
    (r,) = rects
    assert (r.x, r.y, r.width, r.height) == pytest.approx((25, 15, 30, 10))
    assert r.angle == pytest.approx(0.0)


def test_corner_parse_vertical_opening(tmp_path: Path) -> None:
    # Opening edge p0 -> p1 points up on screen (y decreasing): angle +pi/2 CCW, i.e. -pi/2 after normalising.
    p = tmp_path / "g.txt"
    p.write_text(corner_text([[(10, 40), (10, 10), (20, 10), (20, 40)]]))
    (r,), _ = parse_corner_lines(p)
    assert (r.x, r.y, r.width, r.height) == pytest.approx((15, 25, 30, 10))
    assert abs(abs(r.angle) - math.pi / 2) < 1e-9


def test_check_image(tmp_path: Path, fx) -> None:
    assert check_image(fx.write_png(tmp_path / "a.png")) is None
    msg = check_image(fx.write_corrupt(tmp_path / "b.png"))
    assert msg is not None and msg.startswith(f"{tmp_path / 'b.png'}: unreadable image")
    msg = check_image(tmp_path / "c.png")
    assert msg is not None and "not found" in msg


def test_progress_bar_runs(cornell_item, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = cornell_item(100)
    assert convert("cornell", src, tmp_path / "out", progress=True).n_records == 1
    assert "converting cornell" in capsys.readouterr().err
