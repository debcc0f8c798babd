"""Sources -> TrainItem: PRG records (targets per [POSE], augmented exactly), grasp-only records, LLaVA-Instruct
conversations and scene Q&A."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prg.data.dataset import DatasetWriter
from prg.data.schema import DatasetInfo, Grasp, ObjectAnnotation, PRGRecord
from prg.data.torch import (
    GRASP_INSTRUCTIONS,
    AugmentConfig,
    RecordSource,
    VQASource,
    grasp_only_source,
    scene_qa,
    scene_qa_source,
)
from prg.data.torch.scene_qa import object_centre, position_words
from prg.grasp import GraspRect
from tests.conftest import make_record


def test_record_item(cached_dataset: Path) -> None:
    src = RecordSource(cached_dataset, augment=AugmentConfig.none())
    item = src.get(1)
    assert set(item) == {"id", "source", "image", "instruction", "documents", "answer", "pose_rects", "pose_categories"}
    assert item["id"] == "r1" and item["source"] == "prg"
    assert len(item["pose_categories"]) == len(item["pose_rects"])
    assert item["image"].shape == (48, 64, 3) and item["image"].dtype == np.uint8
    assert item["answer"].count("[POSE]") == len(item["pose_rects"]) == 1
    assert item["pose_rects"][0][0].almost_equal(GraspRect(20, 20, 12, 5, 0.3))  # object "1", the target
    assert len(src) == 3 and len(RecordSource(cached_dataset, splits=("val",))) == 0


def test_augmented_rects_stay_on_their_object(cached_dataset: Path) -> None:
    """The target's grasp centre lies on the red block (object 1) in the image as augmented."""
    src = RecordSource(cached_dataset)
    seen = set()
    for epoch in range(12):
        item = src.get(0, epoch)
        again = src.get(0, epoch)
        assert np.array_equal(item["image"], again["image"]) and item["pose_rects"] == again["pose_rects"]
        r = item["pose_rects"][0][0]
        r_, g, b = item["image"][round(r.y), round(r.x)].astype(int)
        assert r_ > g + 30 and r_ > b + 30
        seen.add(item["image"].shape)
    assert seen == {(48, 64, 3), (64, 48, 3)}  # odd rotations happened


def test_several_folders_prefix_ids(cached_dataset: Path, tmp_path: Path) -> None:
    from tests.conftest import write_tiny_dataset

    other = write_tiny_dataset(tmp_path / "other", n=2)
    src = RecordSource([cached_dataset, other], retrieval=None)
    assert src.ids == ["tiny/r0", "tiny/r1", "tiny/r2", "tiny/r0", "tiny/r1"]  # both are named "tiny"
    assert src.get(4)["documents"] == []


def test_grasp_only(tmp_path: Path) -> None:
    root = tmp_path / "cornell"
    with DatasetWriter(root, DatasetInfo(name="cornell", source="cornell")) as w:
        for i in range(4):
            Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(w.path(f"images/c{i}.png"))
            w.add(PRGRecord(id=f"c{i}", image=f"images/c{i}.png", instruction="Grasp the object.", answer="[POSE]",
                            objects=[ObjectAnnotation(id="0", name="object", grasps=[Grasp(x=10, y=12, width=8,
                                     height=4, angle=0.2), Grasp(x=20, y=15, width=9, height=4, angle=-1.0)])],
                            targets=["0"], source="cornell"))  # fmt: skip
    src = grasp_only_source(root)
    items = [src.get(i, e) for i in range(4) for e in range(3)]
    assert all(it["answer"] == "[POSE]" and it["documents"] == [] and it["source"] == "grasp" for it in items)
    assert all(len(it["pose_rects"]) == 1 and len(it["pose_rects"][0]) == 2 for it in items)
    assert {it["instruction"] for it in items} <= set(GRASP_INSTRUCTIONS)
    assert len({it["instruction"] for it in items}) > 1


def test_llava_conversations(tmp_path: Path) -> None:
    Image.fromarray(np.full((20, 30, 3), 9, np.uint8)).save(tmp_path / "a.jpg")
    data = [
        {"id": "a", "image": "a.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWhat is on the left?"}, {"from": "gpt", "value": "A red mug."},
            {"from": "human", "value": "And its handle?"}, {"from": "gpt", "value": "It points right."}]},
        {"id": "t", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"id": "m", "image": "missing.jpg", "conversations": [
            {"from": "human", "value": "?"}, {"from": "gpt", "value": "!"}]},
    ]  # fmt: skip
    (tmp_path / "llava.json").write_text(json.dumps(data), encoding="utf-8")
    src = VQASource.from_llava(tmp_path / "llava.json", tmp_path)
    assert len(src) == 2 and src.skipped == 1  # the text-only sample; the missing image is the reader's skip
    first, second = src.get(0), src.get(1)
    assert (first["id"], first["instruction"], first["answer"]) == ("a#0", "What is on the left?", "A red mug.")
    assert second["instruction"] == "And its handle?" and second["pose_rects"] == [] and second["documents"] == []
    assert first["image"].shape == (20, 30, 3)  # colour only: "on the left" stays true


def test_scene_qa_by_hand() -> None:
    rec = make_record(0)
    rec.objects[1].attributes["facts"] = ["Class 0 gloves are rated 1000 V AC and are air-tested before each use."]
    qa = scene_qa(rec, size=(48, 64))
    pairs = [(s.turns[0].text, s.turns[1].text) for s in qa]
    assert pairs[0] == ("What lies on the table?", "On the table: a voltage detector and a continuity tester.")
    # object 1's grasp centre (20, 20) is in the middle-left third of 64 x 48; object 2's (45, 30) middle-right
    assert ("Where is the voltage detector?", "The voltage detector is on the left of the image.") in pairs
    assert ("Where is the continuity tester?", "The continuity tester is on the right of the image.") in pairs
    assert ("Which tool on the table is rated 1000 V AC?", "The continuity tester.") in pairs
    assert all(s.image == rec.image and "[POSE]" not in s.turns[1].text for s in qa)
    assert len({s.id for s in qa}) == len(qa)
    # the voltage detector's catalogue facts carry no rating; without a size, the intrinsics stand in (cx = 32)
    assert len(scene_qa(rec)) == len(qa)


def test_position_words() -> None:
    assert position_words(0, 0, (90, 90)) == "in the top left"
    assert position_words(44.5, 44.5, (90, 90)) == "in the centre"
    assert position_words(89, 44, (90, 90)) == "on the right"
    assert position_words(44, 89, (90, 90)) == "at the bottom"


def test_scene_qa_source(cached_dataset: Path) -> None:
    src = scene_qa_source(cached_dataset)
    assert len(src) == 3 * 3  # per record: the listing and two positions
    item = src.get(0)
    assert item["source"] == "scene_qa" and item["image"].shape == (48, 64, 3) and item["pose_rects"] == []
    assert item["id"] == "r0#qa0" and item["instruction"] == "What lies on the table?"


@pytest.mark.slow
def test_scene_qa_on_prg_synth(tmp_path: Path) -> None:
    from prg.data.dataset import load_mask, read_dataset
    from prg.data.synth.generate import SynthConfig, generate

    generate(tmp_path / "synth", SynthConfig(n=6, seed=0), progress=False)
    _, records = read_dataset(tmp_path / "synth")
    questions = [s.turns[0].text for r in records for s in scene_qa(r, (448, 448), tmp_path / "synth")]
    assert questions.count("What lies on the table?") == 6
    assert sum(q.startswith(("Where is the", "Where are the")) for q in questions) >= 6 * 3
    assert "Where are the plain pliers?" in questions
    # without the folder, grasp centres stand in for the mask centroid: a rougher position
    agree = total = 0
    for r in records:
        for o in r.objects:
            assert o.mask is not None
            ys, xs = np.nonzero(load_mask(tmp_path / "synth", o.mask))
            assert object_centre(o, tmp_path / "synth") == pytest.approx((xs.mean(), ys.mean()))
            if not o.grasps:  # an object no finger can reach around has no grasp centres to stand in
                assert object_centre(o) is None
                continue
            total += 1
            agree += position_words(*object_centre(o), (448, 448)) == position_words(xs.mean(), ys.mean(), (448, 448))
    assert agree / total >= 0.6, (agree, total)  # 28 of 40 measured
    # ep-000000 has the insulated screwdriver (IEC 60900, "rated for work up to 1000 V AC") on its table
    assert "Which tool on the table is rated for work up to 1000 V AC?" in questions
