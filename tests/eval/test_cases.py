"""``prg eval cases``: a user's cases -> composed scenes (one dataset, split ``cases``) -> the model metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prg.data.dataset import iter_records
from prg.data.validate import validate_dataset
from prg.eval.cases import CASES_SPLIT, CaseError, build_case_dataset, read_cases
from tests.cli_run import run_main

CASES = [
    {"instruction": "The breaker is off; hand me what I need before I touch the busbar.", "target": "voltage detector",
     "distractors": ["insulated screwdriver"], "gold": "EP-SAF-004 §4.2",
     "answer": "Per EP-SAF-004 §4.2, the voltage detector [POSE].", "id": "busbar", "seed": 5},
    {"instruction": "I am about to decant nitric acid.", "target": "nitrile gloves", "distractors": ["cotton gloves"]},
]  # fmt: skip


def write(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_cases_become_one_dataset_holding_what_each_case_says(tmp_path: Path) -> None:
    cases = read_cases(write(tmp_path / "cases.jsonl", [CASES[0], "", CASES[1]]))
    assert [(c.id, c.seed, c.gold) for c in cases] == [("busbar", 5, ["EP-SAF-004 §4.2"]), ("case-3", 3, [])]
    ds = build_case_dataset(cases, tmp_path / "ds", size=160)
    assert validate_dataset(ds).ok
    recs = {r.id: r for r in iter_records(ds)}
    assert set(recs) == {"busbar", "case-3"} and {r.split for r in recs.values()} == {CASES_SPLIT}
    busbar = recs["busbar"]
    assert busbar.instruction == CASES[0]["instruction"] and busbar.answer == CASES[0]["answer"]
    (target,) = busbar.target_objects()
    assert target.category == "voltage_detector" and target.grasps  # the target, graspable, first on the list
    assert {o.category for o in busbar.objects} == {"voltage_detector", "screwdriver_insulated"}
    assert [(d.doc_id, d.clause) for d in busbar.documents] == [("EP-SAF-004", "4.2")]
    assert (ds / busbar.image).is_file() and (ds / busbar.meta["mjcf"]).is_file()  # files renamed with the case
    gloves = recs["case-3"]
    assert gloves.documents == [] and gloves.answer == "The nitrile gloves [POSE]."  # no reference given
    assert gloves.meta["case"]["instruction"] == CASES[1]["instruction"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "cases.jsonl:1: not JSON"),
        ([{"target": "voltage detector"}], "cases.jsonl:1: instruction: Field required"),
        ([CASES[1], {**CASES[1], "instruction": "  "}], "cases.jsonl:2: instruction"),
        ([{**CASES[1], "colour": "red"}], "cases.jsonl:1: colour: Extra inputs are not permitted"),
        ([{**CASES[1], "id": "a"}, {**CASES[1], "id": "a"}], "case id 'a' appears twice"),
        ([""], "no cases in the file"),
    ],
)
def test_a_bad_cases_file_names_the_line_and_the_problem(tmp_path: Path, lines: list[object], message: str) -> None:
    with pytest.raises(CaseError, match=re.escape(message)):
        read_cases(write(tmp_path / "cases.jsonl", lines))


def test_an_unknown_tool_names_the_case(tmp_path: Path) -> None:
    cases = read_cases(write(tmp_path / "cases.jsonl", [{**CASES[1], "distractors": ["flux capacitor"]}]))
    with pytest.raises(CaseError, match=r"case case-1: .*flux capacitor"):
        build_case_dataset(cases, tmp_path / "ds", size=160)
    assert not (tmp_path / "ds" / "dataset.json").exists()


def test_prg_eval_cases_scores_the_cases_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prg.model.checkpoint import save_pretrained
    from prg.model.prg_model import build_tiny_prg_model
    from prg.retrieval.build import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "EP-SAF-004.md").write_text("# EP-SAF-004 Isolation\n\n## 4\n\n4.2 Verify the absence of voltage with a "
                                        "tested voltage detector before touching a busbar.\n")  # fmt: skip
    build_index([docs], tmp_path / "index", embedder="hashing")
    save_pretrained(build_tiny_prg_model(), tmp_path / "ckpt")
    cases = write(tmp_path / "cases.jsonl", CASES)
    args = ["eval", "cases", str(cases), "-c", str(tmp_path / "ckpt"), "--index", str(tmp_path / "index"),
            "-o", str(tmp_path / "out"), "--size", "160"]  # fmt: skip
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["splits"][CASES_SPLIT]["n"] == 2
    assert "cases" in out and (tmp_path / "out" / "report.html").is_file()
    assert validate_dataset(tmp_path / "out" / "dataset").ok  # the composed scenes are kept for inspection
    code, _, err = run_main(["eval", "cases", str(cases), "-c", str(tmp_path / "ckpt"), "-o", str(tmp_path / "o2")],
                            capsys, monkeypatch)  # fmt: skip
    assert code != 0 and "--docs retrieved needs --index" in err
