"""PRG-Synth end to end: determinism, resume, annotations that a model can be scored on, leak-free splits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from prg.data.dataset import load_mask, read_dataset
from prg.data.synth import generate as gen
from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.corpus import build_corpus, rule_citations
from prg.data.synth.generate import SynthConfig, generate
from prg.data.synth.rules import RULES
from prg.data.validate import validate_dataset

CFG = SynthConfig(n=24, seed=3, size=192)
RULE_BY_ID = {r.id: r for r in RULES}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate(out, CFG, workers=2, progress=False)
    return out


def test_validates_and_has_all_splits(dataset: Path) -> None:
    rep = validate_dataset(dataset)
    assert rep.ok, "\n".join(map(str, rep.errors[:10]))
    assert rep.n_records == CFG.n
    assert {"train", "zero_shot_industry"} <= set(rep.splits)


def test_deterministic_across_worker_counts(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    generate(other, CFG, workers=1, progress=False)
    assert (other / "records.jsonl").read_text() == (dataset / "records.jsonl").read_text()
    for name in ("images/ep-000000.png", "depth/ch-000001.png", "masks/me-000002.png"):
        assert (other / name).read_bytes() == (dataset / name).read_bytes()


def test_interrupted_generation_resumes_to_the_same_result(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "resumed"
    real = gen.make_record

    def dies_at_ten(index: int, cfg: SynthConfig, out_dir: Path):  # type: ignore[no-untyped-def]
        if index == 10:
            raise KeyboardInterrupt
        return real(index, cfg, out_dir)

    monkeypatch.setattr(gen, "make_record", dies_at_ten)
    with pytest.raises(KeyboardInterrupt):
        generate(out, CFG, workers=1, progress=False)
    assert not validate_dataset(out).ok  # a half-made dataset never validates
    monkeypatch.setattr(gen, "make_record", real)
    rep = generate(out, CFG, workers=1, progress=False)
    assert rep.n_resumed == 10
    assert (out / "records.jsonl").read_text() == (dataset / "records.jsonl").read_text()


def test_other_settings_do_not_resume_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "x"

    def dies(index: int, cfg: SynthConfig, out_dir: Path):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "make_record", dies)
    with pytest.raises(KeyboardInterrupt):
        generate(out, CFG, workers=1, progress=False)
    with pytest.raises(FileExistsError, match="other settings"):
        generate(out, SynthConfig(n=5, seed=4, size=192), workers=1, progress=False)


def test_targets_have_grasps_on_their_mask_that_fit_the_gripper(dataset: Path) -> None:
    _, records = read_dataset(dataset)
    n_targets = 0
    for rec in records:
        assert rec.intrinsics is not None
        max_open_px = CFG.max_opening_m * rec.intrinsics.fx / rec.meta["camera_height_m"]
        for obj in rec.target_objects():
            assert obj.mask is not None and obj.grasps
            mask = load_mask(dataset, obj.mask)
            on_mask = [mask[round(g.y), round(g.x)] for g in obj.grasps]
            assert any(on_mask), f"{rec.id}: no grasp of {obj.name} lies on its mask"
            assert all(g.width <= max_open_px + 1e-6 for g in obj.grasps)
            n_targets += 1
    assert n_targets >= CFG.n // 2


def test_answers_cite_existing_clauses_and_name_the_target(dataset: Path) -> None:
    _, records = read_dataset(dataset)
    for rec in records:
        assert rec.documents, rec.id
        for ref in rec.documents:
            md = (dataset / "documents" / rec.industry / f"{ref.doc_id}.md").read_text()
            assert re.search(rf"(^|\W){re.escape(ref.clause or '')}\b", md), (rec.id, ref)
        # the answer cites one of the supporting clauses (the record lists every place the rule is stated)
        assert any(f"{r.doc_id} §{r.clause}" in rec.answer for r in rec.documents), rec.id
        for obj in rec.target_objects():
            assert obj.name.lower() in rec.answer.lower(), (rec.id, obj.name)
        if rec.meta["kind"] == "absent":
            missing = set(rec.meta["required"]) - {o.category for o in rec.objects}
            assert missing and all(CATALOGUE[k].name.lower() in rec.answer.lower() for k in missing)


def test_zero_shot_splits_leak_no_rules(dataset: Path) -> None:
    _, records = read_dataset(dataset)
    manifest = json.loads((dataset / "splits.json").read_text())
    train_docs = set(manifest["documents"]["train"])
    cites = rule_citations(build_corpus(CFG.seed))
    for rec in records:
        rule = RULE_BY_ID[rec.meta["rule"]]
        if rec.split in ("train", "val", "test"):
            assert not rule.zero_shot and rec.industry != CFG.zero_shot_industry
            assert {r.doc_id for r in rec.documents} <= train_docs
        if rec.split in ("zero_shot_task", "zero_shot_industry"):
            assert not {r.doc_id for r in rec.documents} & train_docs, rec.id  # its rule is only in held-out docs
    for rule in RULES:
        in_train = {d for d, _ in cites.get(rule.id, [])} & train_docs
        if rule.zero_shot or rule.industry == CFG.zero_shot_industry:
            assert not in_train, rule.id


def test_lookalikes_share_the_table_with_the_target(dataset: Path) -> None:
    _, records = read_dataset(dataset)
    with_forbidden = [r for r in records if r.meta["forbidden"] and r.targets]
    shared = [r for r in with_forbidden if set(r.meta["forbidden"]) & {o.category for o in r.objects}]
    assert with_forbidden and len(shared) / len(with_forbidden) >= 0.5


def test_scene_files_reload(dataset: Path) -> None:
    from prg.data.synth.scene import scene_from_json

    _, records = read_dataset(dataset)
    rec = records[0]
    spec = scene_from_json((dataset / rec.meta["scene"]).read_text())
    assert {str(p.instance_id) for p in spec.objects} == {o.id for o in rec.objects}
    assert (dataset / rec.meta["mjcf"]).read_text().lstrip().startswith("<mujoco")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown industries"):
        SynthConfig(industries=("astronautics",))
    with pytest.raises(ValueError, match="size"):
        SynthConfig(size=10)
    with pytest.raises(ValueError, match="n must"):
        SynthConfig(n=0)


def test_depth_is_metric(dataset: Path) -> None:
    from prg.data.dataset import load_depth

    _, records = read_dataset(dataset)
    d = load_depth(dataset, records[0])
    assert d is not None
    table = np.nanmax(d)
    assert abs(table - records[0].meta["camera_height_m"]) < 0.01
