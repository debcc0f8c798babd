import math

import pytest
from pydantic import ValidationError

from prg.data.schema import Grasp, PRGRecord, count_pose_tokens
from prg.grasp.rect import GraspRect
from tests.conftest import make_record


def test_record_round_trips_through_json() -> None:
    r = make_record()
    assert PRGRecord.model_validate_json(r.model_dump_json()) == r


def test_one_target_per_pose_token() -> None:
    with pytest.raises(ValidationError, match=r"1 \[POSE\] token\(s\) but 2 target"):
        make_record(targets=["1", "2"])
    two = make_record(answer="First [POSE], then [POSE].", targets=["1", "2"])
    assert count_pose_tokens(two.answer) == 2
    assert [o.name for o in two.target_objects()] == ["voltage detector", "continuity tester"]


def test_no_pose_answer_has_no_targets() -> None:
    r = make_record(answer="The earthing clamp required by §5.1 is not on the table.", targets=[])
    assert r.targets == []


def test_targets_must_exist_and_ids_be_unique() -> None:
    with pytest.raises(ValidationError, match="unknown object ids"):
        make_record(targets=["9"])
    r = make_record()
    with pytest.raises(ValidationError, match="unique"):
        make_record(objects=[r.objects[0], r.objects[0]])


def test_unknown_fields_and_bad_numbers_are_rejected() -> None:
    with pytest.raises(ValidationError):
        PRGRecord.model_validate({**make_record().model_dump(), "colour": "red"})
    with pytest.raises(ValidationError):
        Grasp(x=float("nan"), y=0, width=1, height=1, angle=0)
    with pytest.raises(ValidationError):
        Grasp(x=0, y=0, width=-1, height=1, angle=0)


def test_grasp_and_rect_convert_both_ways() -> None:
    r = GraspRect(10, 20, 30, 8, math.pi / 2 + 0.1)  # normalised on construction
    g = Grasp.from_rect(r)
    assert g.to_rect().almost_equal(r)
    assert -math.pi / 2 <= g.angle < math.pi / 2
