"""Reference runs over a PRG-Synth dataset, the report, ``prg eval sim`` and a trial video."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prg.data.dataset import iter_records
from prg.data.synth.generate import SynthConfig, generate
from prg.sim.evaluate import evaluate_sim, summarise, wilson
from tests.cli_run import run_main
from tests.sim.scenes import box, scene, top_down


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "ds"
    generate(out, SynthConfig(n=2, seed=4, size=192), workers=1, progress=False)
    return out


def test_wilson_interval_matches_known_values() -> None:
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(8, 10)
    assert (lo, hi) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson(0, 0) == (0.0, 1.0)


def test_summary_counts_invalid_as_failure_per_group() -> None:
    rows = [
        {"method": "model", "split": "test", "industry": "chemical", "outcome": "success"},
        {"method": "model", "split": "test", "industry": "chemical", "outcome": "invalid"},
        {"method": "model", "split": "val", "industry": "mechanical", "outcome": "missed"},
    ]
    s = summarise(rows)["model"]
    assert s["all"]["n"] == 3 and s["all"]["successes"] == 1
    assert s["split=test"]["rate"] == 0.5 and s["split=test"]["outcomes"] == {"success": 1, "invalid": 1}
    assert s["industry=mechanical"]["rate"] == 0.0


def test_model_top1_is_run_like_the_label_it_returns_and_a_missing_one_is_invalid(synth: Path) -> None:
    recs = {r.id: r for r in iter_records(synth)}

    def first_label(rec, image, depth, intr):  # type: ignore[no-untyped-def]
        return [rec.object(t).grasps[0].to_rect() for t in rec.targets]

    ev = evaluate_sim(synth, ["annotated", "model"], predictor=first_label, n=1, seed=3)
    rows = {(t["method"], t["target"], t["index"]): t for t in ev.trials}
    rid = ev.trials[0]["record"]
    for tid in recs[rid].targets:
        m, a = rows[("model", int(tid), 0)], rows[("annotated", int(tid), 0)]
        assert m["pose"] == a["pose"] and m["outcome"] == a["outcome"]
    none = evaluate_sim(synth, ["model"], predictor=lambda *a: [], n=1)
    assert {t["outcome"] for t in none.trials} == {"invalid"}
    assert "no grasp" in none.trials[0]["reason"]


def test_prg_eval_sim_writes_the_report_and_is_deterministic(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["eval", "sim", "--dataset", str(synth), "--reference", "annotated,random", "--n-random", "2"]
    code, out, err = run_main([*args, "--out", str(tmp_path / "a")], capsys, monkeypatch)
    assert code == 0, err
    assert "| annotated | all |" in out and "| random | all |" in out
    rep = json.loads((tmp_path / "a" / "sim.json").read_text())
    n_labels = sum(len(r.object(t).grasps) for r in iter_records(synth) for t in r.targets)
    assert rep["summary"]["annotated"]["all"]["n"] == n_labels
    assert rep["summary"]["random"]["all"]["n"] == 2 * sum(len(r.targets) for r in iter_records(synth))
    assert all(t["outcome"] != "invalid" for t in rep["trials"])
    assert "95% CI" in (tmp_path / "a" / "sim.md").read_text()
    code, _, err = run_main([*args, "--out", str(tmp_path / "b"), "--workers", "2"], capsys, monkeypatch)
    assert code == 0, err
    again = json.loads((tmp_path / "b" / "sim.json").read_text())
    key = [(t["record"], t["method"], t["index"], t["outcome"], t["target_rise_m"]) for t in rep["trials"]]
    assert key == [(t["record"], t["method"], t["index"], t["outcome"], t["target_rise_m"]) for t in again["trials"]]


def test_a_broken_scene_file_is_an_invalid_trial_not_a_crashed_run(synth: Path, tmp_path: Path) -> None:
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(synth, ds)
    rec = next(iter_records(ds))
    bad = ds / rec.meta["mjcf"]
    bad.write_text("<mujoco><worldbody><body><geom type='box'/></worldbody></mujoco>")  # unclosed <body>
    ev = evaluate_sim(ds, ["annotated"], n=2)
    broken = [t for t in ev.trials if t["record"] == rec.id]
    assert broken and all(t["outcome"] == "invalid" and str(bad) in t["reason"] for t in broken)
    assert any(t["outcome"] != "invalid" for t in ev.trials if t["record"] != rec.id)


def test_video_of_a_trial_has_both_views(tmp_path: Path) -> None:
    iio = pytest.importorskip("imageio.v3")
    from prg.sim.video import record_trial

    try:
        r = record_trial(scene(box(1, 0.0, 0.0, (0.04, 0.1, 0.03))), top_down(0.0, 0.0, 0.03, 0.05), 1,
                         tmp_path / "t.gif", size=64, fps=5)  # fmt: skip
    except Exception as e:  # no offscreen GL here (no libOSMesa / EGL)
        pytest.skip(f"offscreen rendering unavailable: {e}")
    assert r.outcome == "success"
    frames = iio.imread(tmp_path / "t.gif")
    assert frames.shape[1:3] == (64, 128) and frames.shape[0] >= 15  # ~3.3 s at 5 fps, top | side
    assert frames[0].std() > 0  # rendered something, not a blank canvas


@pytest.mark.slow
def test_prg_synth_labels_lift_their_target(tmp_path: Path) -> None:
    """The generator's annotated grasps, executed: most lift the target (the labels' own check; issue P9)."""
    out = tmp_path / "ds"
    generate(out, SynthConfig(n=8, seed=2), workers=1, progress=False)  # the demo's scenes
    ev = evaluate_sim(out, ["annotated"])
    all_ = ev.summary["annotated"]["all"]
    # 72 / 72 with the third labels (heights under the palm and the open fingers); the second: 64 / 72, the first 60%
    assert all_["n"] >= 40 and all_["rate"] >= 0.95, all_
