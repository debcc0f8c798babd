from __future__ import annotations

import json
from pathlib import Path

import pytest

from prg.data import read_dataset
from prg.data.dataset import load_image
from prg.data.readers import convert
from prg.grasp.rect import GraspRect

RECT = [(10.0, 10.0), (40.0, 10.0), (40.0, 20.0), (10.0, 20.0)]
GRASPS = "".join(f"{x} {y}\n" for x, y in RECT)
POLY = [[5, 5], [45, 5], [45, 25], [5, 25]]


def _convert(src: Path, tmp_path: Path):
    out = tmp_path / "out"
    return convert("reasongrasp", src, out, progress=False), out


def test_sentences_with_polygon_and_explanation(reasongrasp_item, tmp_path: Path) -> None:
    ann = {
        "text": ["I want to drink some tea.", "What holds hot water?"],
        "is_sentence": True,
        "shapes": [
            {"label": "ignore", "shape_type": "polygon", "points": [[0, 0], [1, 0], [1, 1]]},
            {"label": "target", "shape_type": "polygon", "points": POLY},
        ],
    }
    src = reasongrasp_item("train", "img_001", ann, GRASPS)
    (src / "explanatory").mkdir()
    (src / "explanatory" / "train.json").write_text(
        json.dumps([{"image": "img_001.jpg", "query": "What holds hot water?", "outputs": "The mug holds tea."}])
    )
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped, report.warnings) == (2, 0, [])
    r0, r1 = read_dataset(out)[1]
    assert (r0.id, r1.id) == ("train-img_001-0", "train-img_001-1")
    assert r0.instruction == "I want to drink some tea."
    assert r0.answer == "The mug holds tea. [POSE]" == r1.answer
    assert (r0.split, r0.source, r0.targets) == ("train", "reasongrasp", ["0"])
    obj = r0.object("0")
    assert obj.polygon == [tuple(p) for p in POLY]
    (g,) = obj.grasps
    assert g.to_rect().almost_equal(GraspRect(25, 15, 30, 10, 0))
    assert r0.image == r1.image == "images/train/img_001.jpg"
    assert load_image(out, r0).shape == (48, 64, 3)


def test_short_name_and_no_explanation(reasongrasp_item, tmp_path: Path) -> None:
    ann = {"text": "red cup", "is_sentence": False}
    src = reasongrasp_item("val", "cup", ann, GRASPS, "cup_cpos.txt", ".png")
    report, out = _convert(src, tmp_path)
    assert report.n_records == 1
    (r,) = read_dataset(out)[1]
    assert (r.instruction, r.answer, r.split) == ("Please grasp the red cup.", "Sure, [POSE].", "val")
    assert r.objects[0].name == "red cup" and r.objects[0].polygon is None


@pytest.mark.parametrize("grasp_name", ["a1cpos.txt", "a1_cpos.txt", "a1.txt"])
def test_grasp_file_names(reasongrasp_item, tmp_path: Path, grasp_name: str) -> None:
    src = reasongrasp_item("test", "a1", {"text": "box", "is_sentence": False}, GRASPS, grasp_name)
    assert _convert(src, tmp_path)[0].n_records == 1


def test_split_name_mapping(reasongrasp_item, tmp_path: Path) -> None:
    reasongrasp_item("validation", "a", {"text": "box", "is_sentence": False}, GRASPS)
    src = reasongrasp_item("zero_shot_task", "b", {"text": "box", "is_sentence": False}, GRASPS)
    _, out = _convert(src, tmp_path)
    assert {r.id: r.split for r in read_dataset(out)[1]} == {
        "validation-a-0": "val",
        "zero_shot_task-b-0": "zero_shot_task",
    }


def test_bad_items_skipped(reasongrasp_item, tmp_path: Path) -> None:
    ok = {"text": "box", "is_sentence": False}
    src = reasongrasp_item("train", "no_grasps", ok)
    reasongrasp_item("train", "no_image", ok, GRASPS, image_ext=None)
    reasongrasp_item("train", "bad_json", '{"text": "box",\n "is_sentence": }', GRASPS)
    reasongrasp_item("train", "nan", ok, "1 1\n2 2\nNaN 3\n4 4\n")
    reasongrasp_item("train", "no_text", {"text": [], "is_sentence": True}, GRASPS)
    report, out = _convert(src, tmp_path)
    assert (report.n_records, report.n_skipped) == (0, 5)
    d = src / "train"
    text = "\n".join(report.warnings)
    assert f"{d / 'no_graspscpos.txt'}: grasp file not found" in text
    assert f"{d / 'no_image.jpg'}: image file not found" in text
    assert f"{d / 'bad_json.json'}:2: invalid JSON" in text
    assert f"{d / 'nancpos.txt'}:3: NaN" in text
    assert f"{d / 'no_text.json'}: 'text' must be" in text
    assert read_dataset(out)[1] == []


def test_soft_problems_warn_but_keep(reasongrasp_item, tmp_path: Path) -> None:
    ann = {
        "text": ["fine", ""],
        "shapes": [{"label": "target", "points": [[1, 2]]}, {"label": "target", "points": POLY}],
    }
    src = reasongrasp_item("train", "s", ann, GRASPS)
    (src / "explanatory").mkdir()
    (src / "explanatory" / "train.json").write_text("[{]")
    report, out = _convert(src, tmp_path)
    assert report.n_records == 1
    text = "\n".join(report.warnings)
    for expected in ("text entry 1 is empty", "'is_sentence' missing", "shape 0", "invalid JSON"):
        assert expected in text
    (r,) = read_dataset(out)[1]
    assert r.instruction == "fine" and r.objects[0].polygon is not None
