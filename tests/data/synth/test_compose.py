"""``prg data compose``: one scene with exactly the named tools, a valid one-record dataset, deterministic."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from prg.data.dataset import load_image, load_mask, read_dataset
from prg.data.synth import compose as comp
from prg.data.synth.compose import ComposeError, choose_rule, compose_scene, plan_scene, resolve_tool
from prg.data.synth.scene import SceneSamplingError
from prg.data.validate import validate_dataset

THREE = "voltage detector,continuity tester,insulated screwdriver"
runner = CliRunner()


def run_prg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prg.cli.main", *args], capture_output=True, text=True, timeout=120, check=False
    )


def cli(*args: str) -> tuple[int, str]:
    from prg.cli.main import app

    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compose") / "three"
    compose_scene(THREE, seed=4, size=160, out=out)
    return out


def test_writes_a_valid_dataset_with_exactly_these_tools(three: Path) -> None:
    rep = validate_dataset(three)
    assert rep.ok, rep.problems
    info, (rec,) = read_dataset(three)
    assert info.industries == ["electric_power"] and info.extra["compose"]["seed"] == 4
    assert [o.category for o in rec.objects] == ["voltage_detector", "continuity_tester", "screwdriver_insulated"]
    assert [o.id for o in rec.objects] == ["1", "2", "3"]
    assert rec.industry == "electric_power" and rec.split == "test"
    # EP-01 (prove a circuit dead) needs the voltage detector, the first listed tool that a rule requires
    assert rec.meta["rule"] == "EP-01" and rec.targets == ["1"] and rec.answer.count("[POSE]") == 1
    assert rec.documents and f"{rec.documents[0].doc_id} §{rec.documents[0].clause}" in rec.answer
    assert rec.intrinsics is not None and rec.depth is not None
    assert load_image(three, rec).shape == (160, 160, 3)
    for obj in rec.objects:  # every tool is in the picture, each with its own instance value
        assert obj.mask is not None and load_mask(three, obj.mask).sum() > 20
    with Image.open(three / f"masks/{rec.id}.png") as im:  # nothing else on the table: no distractors, no clutter
        assert np.unique(np.asarray(im)).tolist() == [0, 1, 2, 3]
    mjcf = ET.fromstring((three / rec.meta["mjcf"]).read_text())
    assert {b.get("name") for b in mjcf.iter("body")} >= {"inst1", "inst2", "inst3"}
    assert not list(three.glob("**/*.partial*"))


def test_same_arguments_give_the_same_bytes(three: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    compose_scene(THREE, seed=4, size=160, out=again)
    assert (again / "records.jsonl").read_bytes() == (three / "records.jsonl").read_bytes()
    assert (again / "dataset.json").read_bytes() == (three / "dataset.json").read_bytes()
    _, (rec,) = read_dataset(three)
    assert np.array_equal(load_image(again, rec), load_image(three, rec))
    for rel in (rec.image, rec.depth, f"masks/{rec.id}.png", rec.meta["scene"], rec.meta["mjcf"]):
        assert (again / rel).read_bytes() == (three / rel).read_bytes(), rel
    other = tmp_path / "other"
    compose_scene(THREE, seed=5, size=160, out=other)
    _, (rec5,) = read_dataset(other)
    assert not np.array_equal(load_image(other, rec5), load_image(three, rec))


def test_names_are_case_space_and_alias_tolerant() -> None:
    assert resolve_tool("  Two-Pole   VOLTAGE tester ") == "voltage_detector"  # an alias
    assert resolve_tool("VOLTAGE_DETECTOR") == "voltage_detector"  # the key
    assert resolve_tool("pH Meter") == "ph_meter"
    # "combination pliers" is one tool's name and another's alias: the name wins
    assert resolve_tool("Combination Pliers") == "combination_pliers"


def test_cli_with_a_case_insensitive_alias_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "alias"
    code, text = cli("data", "compose", "--objects", "  STANDARD screwdriver , vde SCREWDRIVER ,", "--out", str(out),
                     "--size", "128", "--seed", "2")  # fmt: skip
    assert code == 0, text
    assert "target: insulated screwdriver" in text  # EP-02 needs the insulated (VDE) screwdriver
    _, (rec,) = read_dataset(out)
    assert [o.category for o in rec.objects] == ["screwdriver_plain", "screwdriver_insulated"]
    assert rec.meta["rule"] == "EP-02" and rec.targets == ["2"]
    code, text = cli("data", "validate", str(out))
    assert code == 0 and "1 record(s)" in text and "ok" in text, text


def test_rule_choice() -> None:
    # the earliest-listed tool that some rule needs decides (no rule needs the plain screwdriver)
    assert choose_rule(["screwdriver_plain", "screwdriver_insulated", "voltage_detector"]).id == "EP-02"
    # a two-step rule that is fully on the table wins over the one-step rule of its first tool (EP-01)
    assert choose_rule(["voltage_detector", "earthing_clamp"]).id == "EP-08"
    assert choose_rule(["screwdriver_plain", "pliers_plain"]) is None
    assert choose_rule(["voltage_detector", "ph_meter"]).id == "EP-01"


def test_no_rule_gives_a_neutral_instruction_for_the_first_tool(tmp_path: Path) -> None:
    plan = plan_scene("plain screwdriver, unrated fuse puller")  # tools that no rule requires
    assert plan.rule is None and plan.kind == "named" and plan.documents == ()
    assert plan.instruction == "Pick up the plain screwdriver."
    assert plan.answer == "Here is the plain screwdriver [POSE]." and plan.target_keys == ("screwdriver_plain",)
    assert plan_scene("combination pliers").answer == "Here are the combination pliers [POSE]."
    rec = compose_scene(["plain screwdriver", "unrated fuse puller"], seed=1, size=128, out=tmp_path / "n")
    assert rec.targets == ["1"] and rec.meta["rule"] is None and rec.documents == []
    assert validate_dataset(tmp_path / "n").ok


def test_mixed_industries_and_a_zero_shot_rule() -> None:
    plan = plan_scene("insulating gloves, rated fuse puller, pH meter")
    assert plan.industry == "mixed"
    assert plan.rule is not None and plan.rule.id == "EP-10" and plan.rule.zero_shot  # two-step, held out
    assert plan.target_keys == ("insulating_gloves", "fuse_puller_rated")


def test_repeated_tools_are_separate_objects(tmp_path: Path) -> None:
    rec = compose_scene("pH meter, ph meter", seed=0, size=128, out=tmp_path / "d")
    assert [o.category for o in rec.objects] == ["ph_meter", "ph_meter"] and len(rec.targets) == 1
    assert validate_dataset(tmp_path / "d").ok


@pytest.mark.parametrize(
    ("objects", "kwargs", "message"),
    [
        ("voltage detectr", {}, "unknown tool 'voltage detectr'; close matches: voltage detector"),
        ("xyzzy", {}, "no close match (prg data compose --list"),
        (" , ,", {}, "no objects given"),
        (",".join(["voltage detector"] * 9), {}, "9 objects do not fit a PRG-Synth table; at most 8"),
        ("voltage detector", {"size": 0}, "size must be between 64 and 2048 pixels, got 0"),
        ("voltage detector", {"seed": -1}, "seeds must be non-negative"),
        ("voltage detector", {"backend": "vulkan"}, "unknown render backend 'vulkan'"),
    ],
)
def test_bad_requests_write_nothing(tmp_path: Path, objects: str, kwargs: dict[str, int | str], message: str) -> None:
    with pytest.raises(ComposeError) as e:
        compose_scene(objects, out=tmp_path / "x", **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_ambiguous_alias_names_the_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    names, _ = comp._lookup()
    monkeypatch.setattr(comp, "_lookup", lambda: (names, {"tester": ("voltage_detector", "continuity_tester")}))
    with pytest.raises(ComposeError, match="alias of several tools: voltage detector, continuity tester"):
        resolve_tool("Tester")


def test_a_table_that_cannot_hold_them_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise SceneSamplingError("could not place 'ph_meter' without overlap; use fewer or smaller objects")

    monkeypatch.setattr("prg.data.synth.scene.sample_scene", full)
    with pytest.raises(ComposeError, match="use fewer or smaller objects"):
        compose_scene("pH meter", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_existing_output_is_kept_unless_overwrite(three: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    compose_scene("pH meter", seed=1, size=96, out=out)
    with pytest.raises(ComposeError, match="already holds a dataset; pass --overwrite"):
        compose_scene("pH meter", seed=2, size=96, out=out)
    compose_scene("pH meter", seed=2, size=96, out=out, overwrite=True)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["compose-s2.png"]  # no old files linger
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ComposeError, match="not empty and holds no dataset"):
        compose_scene("pH meter", out=tmp_path / "busy", overwrite=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objects", "voltage detectr"], "error: unknown tool 'voltage detectr'; close matches: voltage detector"),
        (["--objects", ""], "error: no objects given"),
        (["--objects", ",".join(["pH meter"] * 9)], "error: 9 objects do not fit"),
        (["--objects", "pH meter", "--size", "0"], "error: size must be between 64 and 2048 pixels, got 0"),
        (["--objects", "pH meter", "--size", "-5"], "error: size must be between 64 and 2048 pixels, got -5"),
        (["--objects", "pH meter", "--out", "FILE"], "is a file, not a folder"),
        (["--out", "OUT"], "error: --objects and --out are required"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "f.txt").write_text("x")
    args = [{"FILE": str(tmp_path / "f.txt"), "OUT": str(tmp_path / "o")}.get(a, a) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "o")]
    proc = run_prg("data", "compose", *args)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text, text
    assert message in text and len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "o").exists()


def test_cli_lists_the_tools() -> None:
    code, text = cli("data", "compose", "--list")
    assert code == 0 and "electric_power:" in text and "voltage detector (two-pole voltage tester" in text
