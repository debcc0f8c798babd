"""``prg eval model``: per-record metrics on hand-built cases, and the report from a tiny-preset checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prg.data.dataset import iter_records
from prg.eval.model import score, summarise_records
from prg.pipeline import CitationOut, GraspOut, PRGResult
from tests.cli_run import run_main
from tests.conftest import make_record, write_tiny_dataset


def result(grasps: list[list[tuple[float, float, float]]], answer: str = "Take it [POSE].", cited: bool = True):
    """A PRGResult with grasps given as (x, y, angle) (opening 12, jaws 5, as the records' annotations)."""
    doc = CitationOut(id="EP-SAF-001 §4.2.1", doc_id="EP-SAF-001", clause="4.2.1", text="t", rank=1, score=1.0)
    return PRGResult(
        instruction="i",
        answer=answer,
        citations=[doc] if cited else [],
        retrieved=[doc],
        grasps=[[GraspOut(x=x, y=y, width=12, height=5, angle=a, score=0.9) for x, y, a in g] for g in grasps],
        image_size=(64, 48),
        timings_ms={"generate": 10.0, "grasp_head": 2.0},
    )


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "ds", n=1)


def test_a_grasp_on_the_target_counts_and_one_on_the_neighbour_does_not(ds: Path) -> None:
    rec = next(iter_records(ds))  # target: object 1 (mask rows 15-24, cols 14-25), grasp at (20, 20, 0.3)
    good = score(ds, rec, result([[(20, 20, 0.3)]]), {}, k=5)
    assert good.recognised and good.grasp_success and good.format_ok and good.chosen == ["voltage detector"]
    assert good.cites_rule and good.hallucinated == 0 and good.iou[0] > 0.99
    wrong = score(ds, rec, result([[(45, 30, -0.3)]]), {}, k=5)  # on the continuity tester
    assert not wrong.recognised and not wrong.grasp_success and wrong.any_object_success
    assert wrong.chosen == ["continuity tester"] and wrong.iou == [0.0]
    # the mask's border pixel (column 25) is inside, the next one (26) is background
    assert score(ds, rec, result([[(25, 20, 0.3)]]), {}, k=5).recognised
    edge = score(ds, rec, result([[(26, 20, 0.3)]]), {}, k=5)
    assert not edge.recognised and edge.chosen == ["background"]
    # a right centre at a wrong angle: recognised, not a successful grasp; top-k finds the second one
    turned = score(ds, rec, result([[(20, 20, 1.3), (20, 20, 0.35)]]), {}, k=5)
    assert turned.recognised and not turned.grasp_success and turned.grasp_success_topk


def test_two_step_order_matters_and_abstention_is_scored(tmp_path: Path) -> None:
    two = make_record(0, targets=["1", "2"], answer="First [POSE], then [POSE].")
    root = write_tiny_dataset(tmp_path / "ds", n=1)
    in_order = score(root, two, result([[(20, 20, 0.3)], [(45, 30, -0.3)]]), {}, k=5)
    swapped = score(root, two, result([[(45, 30, -0.3)], [(20, 20, 0.3)]]), {}, k=5)
    assert in_order.recognised and in_order.grasp_success
    assert not swapped.recognised and not swapped.grasp_success and swapped.format_ok
    none = make_record(0, targets=[], answer="No tool here is rated for this.")
    quiet = score(root, none, result([], answer="None of these is rated."), {}, k=5)
    eager = score(root, none, result([[(20, 20, 0.3)]]), {}, k=5)
    # a [POSE] whose maps decode no grasp offers nothing: abstention, though not the strict no-[POSE] kind
    empty = score(root, none, result([[]], answer="Here it is [POSE]."), {}, k=5)
    assert quiet.abstention and quiet.recognised and quiet.format_ok
    assert not eager.recognised and not eager.format_ok
    assert empty.recognised and not empty.format_ok and empty.chosen == ["none"]
    summary = summarise_records([in_order, swapped, quiet, eager])
    assert summary["target_recognition"] == 0.5 and summary["abstention_correct"] == 0.5
    assert summary["abstention_no_pose"] == 0.5
    both = summarise_records([quiet, eager, empty], text=False)
    assert both["abstention_correct"] == 2 / 3 and both["abstention_no_pose"] == 1 / 3
    assert summary["grasp_success"] == 0.5 and summary["latency_ms_p50"] == 12.0


def test_records_without_masks_report_recognition_as_unavailable(tmp_path: Path) -> None:
    root = write_tiny_dataset(tmp_path / "ds", n=1)
    rec = next(iter_records(root))
    bare = rec.model_copy(update={"objects": [o.model_copy(update={"mask": None}) for o in rec.objects]})
    row = score(root, bare, result([[(20, 20, 0.3)]]), {}, k=5)
    assert row.recognised is None and row.grasp_success
    assert "target_recognition" not in summarise_records([row], text=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from prg.data.synth.generate import SynthConfig, generate
    from prg.data.torch.retrieval_cache import build_retrieval_cache
    from prg.model.checkpoint import save_pretrained
    from prg.model.prg_model import build_tiny_prg_model
    from prg.pipeline import PipelineConfig, PRGPipeline
    from prg.retrieval.build import build_index
    from prg.retrieval.retriever import Retriever

    root = tmp_path_factory.mktemp("evalmodel")
    generate(root / "ds", SynthConfig(n=16, seed=0), workers=1, progress=False)
    build_index([root / "ds" / "documents"], root / "index", embedder="hashing")
    pipe = PRGPipeline(model=None, retriever=Retriever.open(root / "index"), config=PipelineConfig(k_docs=3))
    try:
        build_retrieval_cache(root / "ds", lambda t, i, d: pipe.retrieve(t, i, d)[0], k=3, index="idx", progress=False)
    finally:
        pipe.close()
    save_pretrained(build_tiny_prg_model(), root / "ckpt")
    return root / "ds", root / "index", root / "ckpt"


def test_cli_writes_every_section_and_the_docs_flag_changes_the_prompt(
    tiny_run: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds, index, ckpt = tiny_run
    reports = {}
    for docs in ("retrieved", "cache", "none"):
        args = ["eval", "model", "-c", str(ckpt), "-d", str(ds), "-o", str(tmp_path / docs), "--docs", docs,
                "--split", "zero_shot_task", "--split", "zero_shot_industry", "--limit", "2",
                "--batch-size", "2"]  # fmt: skip
        if docs == "retrieved":
            args += ["--index", str(index)]
        code, out, err = run_main(args, capsys, monkeypatch)
        assert code == 0, out + err
        reports[docs] = json.loads((tmp_path / docs / "metrics.json").read_text())
    md = (tmp_path / "cache" / "report.md").read_text()
    html = (tmp_path / "cache" / "report.html").read_text()
    from prg.eval.report import SECTIONS

    assert all(f"## {s}" in md for s in SECTIONS) and all(f"<h2>{s}</h2>" in html for s in SECTIONS)
    assert html.count("data:image/png;base64,") >= 4
    for name in ("splits", "industries", "success_vs_iou", "latency"):
        assert (tmp_path / "cache" / "figures" / f"{name}.png").stat().st_size > 1000
    assert list((tmp_path / "cache" / "gallery").glob("*.png"))
    assert set(reports["cache"]["splits"]) == {"zero_shot_task", "zero_shot_industry"}
    rows = reports["cache"]["records"]
    assert len(rows) == sum(m["n"] for m in reports["cache"]["splits"].values()) <= 4
    assert {"target_recognition", "bleu4", "cites_rule"} <= set(reports["cache"]["splits"]["zero_shot_task"])
    # what the model saw: no documents at all, the cache's top 3, the live retrieval's top 3
    from prg.data.torch.retrieval_cache import cache_path, read_retrieval_cache

    cache = read_retrieval_cache(cache_path(ds, "default"))
    recs = {r.id: r for r in iter_records(ds)}
    assert reports["none"]["settings"]["docs"] == "none"
    ev_none = _prompt_docs(ckpt, ds, "none")
    ev_cache = _prompt_docs(ckpt, ds, "cache")
    assert all(not d for d in ev_none.values())
    gold = {i: [f"{d.doc_id} §{d.clause}" if d.clause else d.doc_id for d in recs[i].documents] for i in ev_none}
    assert _prompt_docs(ckpt, ds, "oracle") == gold
    assert all(d == [x["id"] for x in cache.documents(recs[i])[:3]] for i, d in ev_cache.items())
    # bad input: an empty split, and --docs retrieved without an index
    code, out, err = run_main(["eval", "model", "-c", str(ckpt), "-d", str(ds), "-o", str(tmp_path / "x"),
                               "--docs", "cache", "--split", "nosuch"], capsys, monkeypatch)  # fmt: skip
    assert code != 0 and "split 'nosuch' has no records" in out + err
    code, out, err = run_main(["eval", "model", "-c", str(ckpt), "-d", str(ds), "-o", str(tmp_path / "y")], capsys,
                              monkeypatch)  # fmt: skip
    assert code != 0 and "--index" in out + err


def _prompt_docs(ckpt: Path, ds: Path, docs: str) -> dict[str, list[str]]:
    from prg.eval.model import evaluate_model
    from prg.pipeline import PRGPipeline

    pipe = PRGPipeline.from_pretrained(ckpt)
    ev = evaluate_model(pipe, ds, ["zero_shot_task"], docs=docs, limit=2, batch_size=2)
    return {row.id: [c.id for c in res.retrieved] for row, res in zip(ev.records, ev.results, strict=True)}


def test_an_index_of_other_documents_is_warned_about(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    from prg.eval.model import unreachable_gold
    from prg.retrieval.build import build_index

    ds, _, ckpt = tiny_run
    recs = [r for r in iter_records(ds) if r.documents]
    assert unreachable_gold({d.doc_id for r in recs for d in r.documents}, recs) == 0.0
    assert unreachable_gold(set(), recs) == 1.0
    one = sorted((ds / "documents").rglob("*.md"))[0]
    build_index([one], tmp_path / "other", embedder="hashing")
    code, out, err = run_main(["eval", "model", "-c", str(ckpt), "-d", str(ds), "-o", str(tmp_path / "r"),
                               "--index", str(tmp_path / "other"), "--split", "zero_shot_task", "--limit", "1"],
                              capsys, monkeypatch)  # fmt: skip
    assert code == 0, out + err
    assert "warning: the index lacks" in out + err


def test_modular_baseline_names_the_first_tool_and_grounds_it(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    from prg.data.torch.prompts import category_vocab
    from prg.eval.baselines import ModularBaseline, catalogue_names
    from prg.model.checkpoint import save_pretrained
    from prg.model.prg_model import build_prg_model, tiny_config

    ds, _, ckpt = tiny_run
    names = catalogue_names(ds)
    config = tiny_config()
    config.prompt_vocab = category_vocab([ds], splits=None)
    model = build_prg_model(config)
    base = ModularBaseline(model, names)
    pick = base.choose("Use the insulated screwdriver; a voltage detector comes later. Never the screwdriver.")
    assert pick is not None and pick[0] == "insulated screwdriver"
    assert base.choose("No tool is named here.") is None
    with pytest.raises(ValueError, match="prompt table"):
        ModularBaseline(from_pretrained_tiny(ckpt), names)
    save_pretrained(model, tmp_path / "with_table")
    args = ["eval", "model", "-c", str(tmp_path / "with_table"), "-d", str(ds), "-o", str(tmp_path / "r"),
            "--docs", "oracle", "--baseline", "modular", "--split", "zero_shot_industry", "--limit", "3"]  # fmt: skip
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 0, out + err
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert report["settings"]["baseline"] == "modular"
    assert any(row["n_poses"] for row in report["records"])
    for row in report["records"]:
        if row["n_poses"]:  # it named a tool from the gold clause and grounded it: one [POSE], one grasp list
            assert row["answer"].count("[POSE]") == 1 and row["cites_rule"]
    code, out, err = run_main([*args[:-6], "--docs", "none", "--baseline", "modular"], capsys, monkeypatch)
    assert code != 0 and "--docs cache or oracle" in out + err


def test_detector_baseline_grasps_without_reading(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    from prg.data.torch.prompts import category_vocab
    from prg.eval.baselines import DetectorBaseline
    from prg.model.checkpoint import save_pretrained
    from prg.model.prg_model import build_prg_model, tiny_config

    ds, _, ckpt = tiny_run
    with pytest.raises(ValueError, match="prompt table"):
        DetectorBaseline(from_pretrained_tiny(ckpt))
    config = tiny_config()
    config.prompt_vocab = category_vocab([ds], splits=None)
    save_pretrained(build_prg_model(config), tmp_path / "with_table")
    code, out, err = run_main(["eval", "model", "-c", str(tmp_path / "with_table"), "-d", str(ds), "-o",
                               str(tmp_path / "r"), "--baseline", "detector", "--split", "zero_shot_task",
                               "--limit", "3"], capsys, monkeypatch)  # fmt: skip
    assert code == 0, out + err  # no --index needed: it reads no documents
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert report["settings"]["baseline"] == "detector" and report["settings"]["docs"] == "none"
    for row in report["records"]:
        assert row["answer"] == "[POSE]" and row["n_poses"] == 1 and not row["cites_rule"]
    assert "any_object_success" in report["splits"]["zero_shot_task"]


def test_a_dataset_at_another_image_scale_is_warned_about(tiny_run) -> None:
    from types import SimpleNamespace

    from prg.eval.model import image_scale_mismatch

    ds, _, ckpt = tiny_run
    recs = list(iter_records(ds))
    warning = image_scale_mismatch(from_pretrained_tiny(ckpt), ds, recs)  # the tiny encoder sees 64 px, scenes 448
    assert warning is not None and "448x448" in warning and "64x64" in warning
    assert image_scale_mismatch(SimpleNamespace(map_size=448), ds, recs) is None  # the small preset's size
    assert image_scale_mismatch(SimpleNamespace(map_size=400), ds, recs) is None  # within the tolerance
    assert image_scale_mismatch(None, ds, recs) is None  # a baseline without a model


def from_pretrained_tiny(path: Path):  # type: ignore[no-untyped-def]
    from prg.model.checkpoint import from_pretrained

    return from_pretrained(path)


def test_a_twin_of_the_target_is_not_the_target(ds: Path) -> None:
    rec = next(iter_records(ds))
    twin = rec.model_copy(
        update={"objects": [rec.objects[0], rec.objects[1].model_copy(update={"name": rec.objects[0].name})]}
    )
    row = score(ds, twin, result([[(45, 30, -0.3)]]), {}, k=5)  # on object 2, named like the target
    assert row.chosen == ["voltage detector"] and not row.recognised


def test_a_sim_result_joins_the_report(
    tiny_run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from prg.sim.evaluate import summarise

    ds, _, ckpt = tiny_run
    trials = [{"method": m, "split": "test", "industry": "chemical", "outcome": o}
              for m, o in [("annotated", "success"), ("annotated", "collided"), ("model", "missed")]]  # fmt: skip
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "sim.json").write_text(json.dumps({"settings": {"n_records": 1, "dataset": str(ds)},
                                                           "summary": summarise(trials)}))  # fmt: skip
    args = ["eval", "model", "-c", str(ckpt), "-d", str(ds), "-o", str(tmp_path / "r"), "--docs", "none",
            "--split", "zero_shot_task", "--limit", "1", "--sim", str(tmp_path / "sim")]  # fmt: skip
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 0, out + err
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Simulated lift success" in md and "| annotated | all | 2 | 50.0% |" in md
    assert "<h2>Simulated lift success</h2>" in (tmp_path / "r" / "report.html").read_text()
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = run_main([*args[:-1], str(tmp_path / "bad.json")], capsys, monkeypatch)
    assert code != 0 and "not a prg eval sim result" in err


def test_latency_histogram_bins_survive_timings_equal_but_for_rounding() -> None:
    # a batch's records share one timing; summed per record they can differ in the last bit, where numpy's
    # 20 bins fail ("Too many bins for data range"), as `prg eval cases` once did
    import numpy as np

    from prg.eval.report import hist_bins

    tied = [1000.0, float(np.nextafter(1000.0, 2000.0))]
    with pytest.raises(ValueError, match="Too many bins"):
        np.histogram(tied, bins=20)
    assert np.histogram(tied, **hist_bins(tied))[0].sum() == 2
    spread = [1.0, 2.0, 3.5]
    assert hist_bins(spread) == {"bins": 20}
    assert np.histogram([0.0], **hist_bins([]))[0].sum() == 1


def test_a_centre_between_a_tools_two_bars_is_on_the_target(ds: Path) -> None:
    """PRG-Synth labels v3 grasp pliers and tongs across both bars, centred in the gap: the mask's convex hull
    counts as the target, unless another object's mask is there."""
    import numpy as np
    from PIL import Image

    mask = np.zeros((48, 64), np.uint8)
    mask[15:25, 14:18] = 1  # the target as two bars, columns 14-17 and 22-25, with a gap between them
    mask[15:25, 22:26] = 1
    mask[25:35, 40:50] = 2
    Image.fromarray(mask).save(ds / "masks" / "r0.png")
    rec = next(iter_records(ds))
    gap = score(ds, rec, result([[(20, 20, 0.3)]]), {}, k=5)
    assert gap.recognised and gap.grasp_success and gap.chosen == ["background"]
    assert not score(ds, rec, result([[(20, 12, 0.3)]]), {}, k=5).recognised  # above the bars: off the hull
    mask[18:22, 19:21] = 2  # the neighbour's pixels inside the target's hull
    Image.fromarray(mask).save(ds / "masks" / "r0.png")
    assert not score(ds, rec, result([[(20, 20, 0.3)]]), {}, k=5).recognised
