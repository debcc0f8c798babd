from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from prg.data.readers import ConvertReport, read_llava_instruct
from prg.data.readers.llava import strip_image_placeholder


def _entry(i: int, image: str | None = "000000001.jpg", **kw) -> dict:
    e = {
        "id": str(i),
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is on the table?"},
            {"from": "gpt", "value": "A red mug and a screwdriver."},
            {"from": "human", "value": "Which one holds tea?\n<image>"},
            {"from": "gpt", "value": "The mug."},
        ],
    }
    if image is not None:
        e["image"] = image
    e.update(kw)
    return e


def _write(tmp_path: Path, entries: list) -> Path:
    p = tmp_path / "llava_instruct_150k.json"
    p.write_text(json.dumps(entries))
    return p


def test_roles_and_placeholder(tmp_path: Path) -> None:
    p = _write(tmp_path, [_entry(1), _entry(2, image=None)])
    report = ConvertReport()
    s1, s2 = read_llava_instruct(p, report=report)
    assert (report.n_records, report.n_skipped, report.warnings) == (2, 0, [])
    assert [t.role for t in s1.turns] == ["user", "assistant", "user", "assistant"]
    assert s1.turns[0].text == "What is on the table?"
    assert s1.turns[2].text == "Which one holds tea?"
    assert s1.turns[1].text == "A red mug and a screwdriver."
    assert (s1.id, s1.image) == ("1", "000000001.jpg")
    assert s2.image is None


def test_strip_placeholder_in_middle_keeps_a_line_break() -> None:
    assert strip_image_placeholder("Look:\n<image>\nWhat is it?") == "Look:\nWhat is it?"
    assert strip_image_placeholder("<image>") == ""


def test_image_root_joins_and_skips_missing(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"x")
    p = _write(tmp_path, [_entry(1, image="a.jpg"), _entry(2, image="missing.jpg")])
    report = ConvertReport()
    (s,) = read_llava_instruct(p, image_root=root, report=report)
    assert s.image == str(root / "a.jpg")
    assert report.n_skipped == 1 and "missing.jpg not found" in report.warnings[0]


def test_malformed_entries_skipped_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad_role = _entry(3)
    bad_role["conversations"][1]["from"] = "robot"
    entries = [
        _entry(1),
        "not an object",
        {"id": "2", "image": "x.jpg"},  # no conversations
        bad_role,
        _entry(4, conversations=[{"from": "human", "value": "hi"}]),  # a single turn
        _entry(5, image=7),
    ]
    p = _write(tmp_path, entries)
    report = ConvertReport()
    with caplog.at_level(logging.WARNING, logger="prg.data.readers"):
        samples = list(read_llava_instruct(p, report=report))
    assert [s.id for s in samples] == ["1"]
    assert (report.n_records, report.n_skipped) == (1, 5)
    assert [w.split(":")[0] for w in report.warnings] == [str(p)] * 5
    assert "entry 1 (id None): not a JSON object" in report.warnings[0]
    assert "entry 3 (id 3): turn 1" in report.warnings[2]
    assert len(caplog.records) == 5  # the same warnings are logged


def test_unreadable_file_raises_clearly(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match=r"x.json:1: invalid JSON"):
        list(read_llava_instruct(p))
    p.write_text("{}")
    with pytest.raises(ValueError, match="expected a JSON list"):
        list(read_llava_instruct(p))
