"""The rectangle metric: hand-computed cases at the thresholds, and hypothesis properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prg.grasp import GraspRect, grasp_success, match_details, rect_iou, success_rate, top_k_success

W, H = 100.0, 40.0


def shifted_pair(d: float) -> tuple[GraspRect, GraspRect]:
    """Two equal axis-aligned rectangles, the second shifted by d along x: IoU = (W - d) / (W + d)."""
    return GraspRect(200, 200, W, H, 0.0), GraspRect(200 + d, 200, W, H, 0.0)


# ------------------------------------------------------------------------------------------ hand-computed IoU
def test_identical_rectangles_iou_one_and_success() -> None:
    r = GraspRect(10, 20, 60, 30, 0.4)
    assert rect_iou(r, r) == pytest.approx(1.0)
    assert grasp_success(r, [r])


def test_disjoint_rectangles_iou_zero() -> None:
    a, b = shifted_pair(150.0)
    assert rect_iou(a, b) == 0.0
    assert not grasp_success(a, [b])


@pytest.mark.parametrize("d", [0.0, 10.0, 37.5, 60.0, 99.0])
def test_shifted_iou_formula(d: float) -> None:
    a, b = shifted_pair(d)
    assert rect_iou(a, b) == pytest.approx((W - d) / (W + d), abs=1e-12)


def test_iou_just_above_threshold_succeeds() -> None:
    d = W * (1 - 0.26) / 1.26  # IoU = 0.26
    a, b = shifted_pair(d)
    assert rect_iou(a, b) == pytest.approx(0.26)
    assert grasp_success(a, [b])


def test_iou_just_below_threshold_fails() -> None:
    d = W * (1 - 0.24) / 1.24  # IoU = 0.24
    a, b = shifted_pair(d)
    assert rect_iou(a, b) == pytest.approx(0.24)
    assert not grasp_success(a, [b])


def test_iou_exactly_at_threshold_fails_strict() -> None:
    a, b = shifted_pair(60.0)  # intersection 40 x 40, union 160 x 40: exactly 0.25 in floating point
    assert rect_iou(a, b) == 0.25
    assert not grasp_success(a, [b])


def test_rotated_iou_against_hand_value() -> None:
    # A square and the same square turned 45 degrees about its centre: the overlap is a regular octagon.
    s = 10.0
    a = GraspRect(0, 0, s, s, 0.0)
    b = GraspRect(0, 0, s, s, math.pi / 4)
    octagon = 2 * (math.sqrt(2) - 1) * s**2  # area of a regular octagon with inscribed-circle diameter s
    assert rect_iou(a, b) == pytest.approx(octagon / (2 * s**2 - octagon))


# ---------------------------------------------------------------------------------------- hand-computed angle
@pytest.mark.parametrize(("deg", "expected"), [(29.0, True), (29.9, True), (30.1, False), (31.0, False)])
def test_angle_threshold(deg: float, expected: bool) -> None:
    gt = GraspRect(100, 100, 60, 30, 0.0)
    pred = GraspRect(100, 100, 60, 30, math.radians(deg))
    assert rect_iou(pred, gt) > 0.25  # so only the angle decides
    assert grasp_success(pred, [gt]) is expected


def test_angle_modulo_pi_is_same_grasp() -> None:
    theta = 0.7
    gt = GraspRect(50, 50, 60, 20, theta)
    pred = GraspRect(50, 50, 60, 20, theta + math.pi)
    assert grasp_success(pred, [gt])
    # The same grasp given with its corners in the opposite order (axis reversed) is also the same.
    reversed_corners = gt.corners()[[2, 3, 0, 1]]
    flipped = GraspRect.from_corners(reversed_corners)
    assert rect_iou(flipped, gt) == pytest.approx(1.0)
    assert grasp_success(flipped, [gt])


def test_minus_89_and_plus_89_are_two_degrees_apart() -> None:
    a = GraspRect(0, 0, 60, 20, math.radians(-89))
    b = GraspRect(0, 0, 60, 20, math.radians(89))
    details = match_details(a, [b])
    assert details.min_angle_deg == pytest.approx(2.0)
    assert grasp_success(a, [b])
    assert not grasp_success(a, [b], angle_threshold_deg=1.5)


# --------------------------------------------------------------------------------------------- set semantics
def test_any_ground_truth_suffices_and_empty_fails() -> None:
    pred = GraspRect(100, 100, 60, 30, 0.0)
    far = GraspRect(400, 400, 60, 30, 0.0)
    wrong_angle = GraspRect(100, 100, 60, 30, math.radians(60))
    good = GraspRect(102, 101, 58, 30, math.radians(10))
    assert not grasp_success(pred, [])
    assert not grasp_success(pred, [far, wrong_angle])
    assert grasp_success(pred, [far, wrong_angle, good])
    # IoU and angle must hold for the SAME ground truth: one good IoU + another good angle is not enough.
    near_bad_angle = GraspRect(100, 100, 60, 30, math.radians(80))
    far_good_angle = GraspRect(400, 400, 60, 30, 0.0)
    assert not grasp_success(pred, [near_bad_angle, far_good_angle])


def test_match_details() -> None:
    # A square turned 90 degrees covers itself exactly (IoU 1) but is the perpendicular grasp.
    pred = GraspRect(100, 100, 40, 40, 0.0)
    gts = [GraspRect(100, 100, 40, 40, math.radians(90)), GraspRect(105, 100, 40, 40, math.radians(10))]
    d = match_details(pred, gts)
    assert d.success and d.matched_index == 1
    assert d.best_iou == pytest.approx(1.0)
    assert d.best_iou_angle_deg == pytest.approx(90.0)
    assert d.min_angle_deg == pytest.approx(10.0)
    empty = match_details(pred, [])
    assert not empty.success and empty.best_iou == 0.0 and empty.matched_index is None


def test_top_k_and_success_rate() -> None:
    gt = GraspRect(100, 100, 60, 30, 0.0)
    bad = GraspRect(300, 300, 60, 30, 0.0)
    ranked = [bad, bad, gt]
    assert not top_k_success(ranked, [gt], k=1)
    assert not top_k_success(ranked, [gt], k=2)
    assert top_k_success(ranked, [gt], k=3)
    assert top_k_success(ranked, [gt], k=10)
    assert not top_k_success([], [gt], k=1)
    rate = success_rate([[gt], [bad], [], [bad, gt]], [[gt], [gt], [gt], [gt]], k=1)
    assert rate == pytest.approx(0.25)
    assert success_rate([[gt], [bad], [], [bad, gt]], [[gt], [gt], [gt], [gt]], k=2) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iou_threshold": -0.1},
        {"iou_threshold": 1.0},
        {"angle_threshold_deg": 0.0},
        {"angle_threshold_deg": 91.0},
    ],
)
def test_invalid_thresholds_raise(kwargs: dict[str, float]) -> None:
    r = GraspRect(0, 0, 10, 10, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        grasp_success(r, [r], **kwargs)
    with pytest.raises(ValueError, match="threshold"):
        match_details(r, [r], **kwargs)


def test_invalid_batch_arguments_raise() -> None:
    r = GraspRect(0, 0, 10, 10, 0.0)
    with pytest.raises(ValueError, match="k must be"):
        top_k_success([r], [r], k=0)
    with pytest.raises(ValueError, match="samples"):
        success_rate([[r]], [[r], [r]])
    with pytest.raises(ValueError, match="at least one"):
        success_rate([], [])


# ------------------------------------------------------------------------------------------------ properties
coord = st.floats(-200, 200, allow_nan=False)
size = st.floats(1, 120, allow_nan=False)
angle = st.floats(-math.pi, math.pi, allow_nan=False)
rects = st.builds(GraspRect, coord, coord, size, size, angle)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(rects, rects)
def test_iou_symmetric_and_in_unit_interval(a: GraspRect, b: GraspRect) -> None:
    iou = rect_iou(a, b)
    assert 0.0 <= iou <= 1.0
    assert iou == pytest.approx(rect_iou(b, a), abs=1e-9)


@FAST
@given(rects, rects, coord, coord)
def test_iou_invariant_to_translating_both(a: GraspRect, b: GraspRect, dx: float, dy: float) -> None:
    assert rect_iou(a.translated(dx, dy), b.translated(dx, dy)) == pytest.approx(rect_iou(a, b), abs=1e-7)


@FAST
@given(rects, rects, st.sampled_from([-math.pi, math.pi]), st.booleans())
def test_iou_and_success_invariant_to_pi(a: GraspRect, b: GraspRect, turn: float, on_first: bool) -> None:
    def flip(r: GraspRect) -> GraspRect:
        return GraspRect(r.x, r.y, r.width, r.height, r.angle + turn)

    a2, b2 = (flip(a), b) if on_first else (a, flip(b))
    assert rect_iou(a2, b2) == pytest.approx(rect_iou(a, b), abs=1e-7)
    # Compare success away from the threshold edges, where float noise could legitimately flip it.
    iou, ad = rect_iou(a, b), math.degrees(abs(a.angle - b.angle))
    if abs(iou - 0.25) > 1e-6 and abs(ad - 30) > 1e-6 and abs(180 - ad - 30) > 1e-6:
        assert grasp_success(a2, [b2]) == grasp_success(a, [b])


@FAST
@given(rects)
def test_rect_matches_itself(a: GraspRect) -> None:
    assert rect_iou(a, a) == pytest.approx(1.0)
    assert grasp_success(a, [a])
