"""The README's main job, run as a user runs it (with the fast embedder so the test stays short)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from prg.data.validate import validate_dataset
from prg.demo import TOP_K, _retrieval_line, rule_rank
from prg.pipeline import CitationOut


@pytest.mark.integration
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "prg.cli.main", "demo", "--out", str(out), "--n", "4", "--embedder", "hashing",
           "--annotations-only"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert validate_dataset(out / "dataset").ok
    result = json.loads((out / "result.json").read_text())
    assert len(result["records"]) == 4
    assert f"among the top {TOP_K} retrieved" in proc.stdout  # what the check mark means is printed
    for row in result["records"]:
        assert row["retrieved"] and all("§" in c for c in row["retrieved"])
        # the mark, the printed clause and its rank say one thing (the picture quotes the same clause)
        rank = row["rule_rank"]
        assert row["gold_in_top5"] == (rank is not None)
        if rank is not None:
            assert row["rule_clause"] == row["retrieved"][rank - 1]
            assert f"✓ {row['id']}:" in proc.stdout
            assert f"rule: {row['rule_clause']} (rank {rank} of {len(row['retrieved'])})" in proc.stdout
        else:
            assert f"✗ {row['id']}:" in proc.stdout
        assert bool(row.get("grasps")) == bool(row["targets"])  # every target's annotated grasp decodes
        for g in row.get("grasps", []):
            assert g["decoded_matches_annotation"]  # the map decoder recovers the annotated grasp
            assert 0.3 < g["pose"]["pose"]["position"]["z"] < 1.0  # metres from the camera
        with Image.open(out / f"{row['id']}.png") as im:
            assert im.width == 448
    # run again: dataset and index are reused, not rebuilt
    before = (out / "dataset" / "records.jsonl").stat().st_mtime
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False).returncode == 0
    assert (out / "dataset" / "records.jsonl").stat().st_mtime == before
    # another --n makes the scenes again (a reused folder never shows another run's scenes)
    cmd[cmd.index("4")] = "3"
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False).returncode == 0
    assert len(json.loads((out / "result.json").read_text())["records"]) == 3
    info = json.loads((out / "dataset" / "dataset.json").read_text())["extra"]["config"]
    assert (info["n"], info["seed"]) == (3, 2)  # the demo's seed: one the shipped checkpoint was not trained on


@pytest.mark.integration
def test_demo_with_a_checkpoint_runs_the_whole_pipeline(tmp_path: Path) -> None:
    from prg.model.checkpoint import save_pretrained
    from prg.model.prg_model import build_tiny_prg_model

    model = build_tiny_prg_model()
    model.config.max_new_tokens = 4
    save_pretrained(model, tmp_path / "ckpt")
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "prg.cli.main", "demo", "--out", str(out), "--n", "2", "--embedder", "hashing",
           "--checkpoint", str(tmp_path / "ckpt")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "result.json").read_text())["records"]
    assert len(rows) == 2 and "model:" in proc.stdout
    for row in rows:
        pred = row["prediction"]
        assert pred["instruction"] == row["instruction"] and pred["image_size"] == [448, 448]
        assert [c["id"] for c in pred["retrieved"]] == row["retrieved"]
        # the prediction is scored against the annotation (prg.eval.model.score)
        sc = row["score"]
        assert len(sc["landed_on"]) == len(pred["grasps"])
        if not pred["grasps"] and row["targets"]:
            assert sc["on_target"] is False and sc["grasp_success"] is False
        with Image.open(out / f"{row['id']}.png") as im:
            assert im.width == 448 and im.height > 448


def _hit(label: str, rank: int) -> CitationOut:
    return CitationOut.from_label(label, f"{label} states a rule about tools in words enough to be cut. " * 12, rank)


def test_the_caption_quotes_the_clause_the_mark_is_about() -> None:
    """The mark means "a clause stating the rule is in the top 5": the picture quotes that clause and its rank,
    not the top-1 hit, which may state another rule."""
    hits = [_hit("EP-GUI-016 §4.2.1", 1), _hit("EP-PRC-031 §4.2.1", 2), _hit("EP-SAF-004 §4.2", 3)]
    rules = ["rule:other", "rule:gold", "rule:gold"]
    rank = rule_rank({"rule:gold"}, rules)
    assert rank == 2 and rule_rank({"rule:none"}, rules) is None and rule_rank({"rule:gold"}, []) is None
    line = _retrieval_line(hits, rank)
    assert line.startswith("Retrieved rule (rank 2 of 3) EP-PRC-031 §4.2.1: EP-PRC-031 §4.2.1 states")
    assert line.endswith(" …") and len(line) < 500  # a long clause is cut after a whole word
    quote = line.split(": ", 1)[1][: -len(" …")]
    assert hits[1].text.startswith(quote) and hits[1].text[len(quote)] == " "
    miss = _retrieval_line(hits, None)
    assert miss.startswith("The rule is not among the 3 retrieved clauses; top hit EP-GUI-016 §4.2.1:")
    assert _retrieval_line([], None) == "Retrieved: nothing."


def test_the_printed_rule_line_names_the_clause_and_its_rank(capsys: pytest.CaptureFixture[str]) -> None:
    from prg.cli.demo import _print_record

    row = {"id": "ep-1", "instruction": "Hand me the detector.", "retrieved": ["A §1", "B §2", "C §3"],
           "targets": ["voltage detector"], "gold_in_top5": True, "rule_rank": 2, "rule_clause": "B §2"}  # fmt: skip
    _print_record(row)
    _print_record(row | {"id": "ep-2", "gold_in_top5": False, "rule_rank": None, "rule_clause": None, "targets": []})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ ep-1: Hand me the detector."
    assert out[1].split() == ["rule:", "B", "§2", "(rank", "2", "of", "3)", "target:", "voltage", "detector"]
    assert out[2] == "✗ ep-2: Hand me the detector."
    assert "rule: not in the top 3; top hit A §1" in out[3] and "not on the table" in out[3]
