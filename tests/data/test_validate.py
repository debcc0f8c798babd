import json
from pathlib import Path

from prg.data.dataset import INFO_FILE, RECORDS_FILE
from prg.data.validate import validate_dataset
from tests.conftest import make_record


def test_valid_dataset_has_no_problems(tiny_dataset: Path) -> None:
    rep = validate_dataset(tiny_dataset)
    assert rep.ok, rep.problems
    assert rep.n_records == 3 and rep.splits["train"] == 3


def test_every_problem_is_reported_with_file_and_line(tiny_dataset: Path) -> None:
    (tiny_dataset / "images" / "r1.png").unlink()  # line 2: missing image
    (tiny_dataset / "images" / "r2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # line 3: corrupt image
    lines = (tiny_dataset / RECORDS_FILE).read_text().splitlines()
    bad_schema = json.loads(lines[0])
    bad_schema["targets"] = ["1", "2"]  # two targets, one [POSE]
    lines += [json.dumps(bad_schema | {"id": "x"}), "{not json", lines[0]]  # lines 4, 5, 6 (duplicate id)
    (tiny_dataset / RECORDS_FILE).write_text("\n".join(lines) + "\n")
    rep = validate_dataset(tiny_dataset)
    assert not rep.ok
    where = {(Path(p.file).name, p.line) for p in rep.errors}
    assert {("records.jsonl", 2), ("records.jsonl", 3), ("records.jsonl", 4), ("records.jsonl", 5),
            ("records.jsonl", 6)} <= where  # fmt: skip
    text = "\n".join(map(str, rep.errors))
    assert "image not found" in text and "unreadable image" in text and "duplicate record id" in text
    # the files are checked in threads; the report is the sequential one, problem for problem
    assert validate_dataset(tiny_dataset, workers=1).problems == rep.problems
    assert validate_dataset(tiny_dataset, workers=4).problems == rep.problems


def test_missing_info_means_incomplete(tiny_dataset: Path) -> None:
    (tiny_dataset / INFO_FILE).unlink()
    rep = validate_dataset(tiny_dataset)
    assert not rep.ok and "incomplete" in str(rep.errors[0])


def test_grasp_outside_image_and_target_without_grasps(tiny_dataset: Path) -> None:
    rec = make_record(0)
    rec.objects[0].grasps[0].x = 500
    rec2 = make_record(1)
    rec2.objects[0].grasps.clear()
    (tiny_dataset / RECORDS_FILE).write_text(rec.model_dump_json() + "\n" + rec2.model_dump_json() + "\n")
    text = "\n".join(map(str, validate_dataset(tiny_dataset).errors))
    assert "outside the 64x48 image" in text and "has no grasps" in text


def test_not_a_folder(tmp_path: Path) -> None:
    assert not validate_dataset(tmp_path / "nope").ok
