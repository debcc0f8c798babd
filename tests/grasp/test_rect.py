"""GraspRect conventions: corners, Cornell order, Jacquard sign, angle normalisation, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prg.grasp import GraspRect, angle_diff, normalize_angle

coord = st.floats(-500, 500, allow_nan=False)
size = st.floats(0.5, 200, allow_nan=False)
angle = st.floats(-10, 10, allow_nan=False)
rects = st.builds(GraspRect, coord, coord, size, size, angle)


@settings(max_examples=80, deadline=None)
@given(rects)
def test_corner_round_trip(r: GraspRect) -> None:
    back = GraspRect.from_corners(r.corners())
    assert back.almost_equal(r, tol=1e-6, angle_tol=1e-9)


@settings(max_examples=80, deadline=None)
@given(rects)
def test_cornell_order_first_edge_is_opening(r: GraspRect) -> None:
    p = r.corners()
    assert np.linalg.norm(p[1] - p[0]) == pytest.approx(r.width)
    assert np.linalg.norm(p[2] - p[1]) == pytest.approx(r.height)
    assert p.mean(axis=0) == pytest.approx([r.x, r.y])


def test_corners_by_hand() -> None:
    # Angle 90 degrees counter-clockwise on screen: the opening axis points up, i.e. towards -y.
    r = GraspRect(10, 20, 4, 2, math.pi / 2)
    p = r.corners()
    # Normalised to -pi/2: the axis is (0, +1) (down); the same grasp.
    assert r.angle == pytest.approx(-math.pi / 2)
    assert p[1] - p[0] == pytest.approx([0, 4])
    # Angle 0: opening along +x, jaw along y.
    q = GraspRect(0, 0, 4, 2, 0.0).corners()
    assert q == pytest.approx(np.array([[-2, -1], [2, -1], [2, 1], [-2, 1]]))
    # A small positive angle tilts the axis up on screen (y decreases along it).
    t = GraspRect(0, 0, 10, 2, 0.3).corners()
    assert (t[1] - t[0])[1] < 0


def test_jacquard_round_trip_and_sign_flip() -> None:
    r = GraspRect.from_jacquard(120.5, 80.25, 30.0, 50.0, 20.0)
    assert r.angle == pytest.approx(-math.radians(30))
    assert (r.x, r.y, r.width, r.height) == (120.5, 80.25, 50.0, 20.0)
    x, y, theta, opening, jaw = r.to_jacquard()
    assert (x, y, opening, jaw) == (120.5, 80.25, 50.0, 20.0)
    assert theta == pytest.approx(30.0)
    assert r.to_jacquard_line().split(";") == ["120.5", "80.25", "30", "50", "20"]
    # Jacquard's theta = 90 is our -pi/2, which Jacquard writes back as +90 (range (-90, 90]).
    assert GraspRect.from_jacquard(0, 0, 90.0, 10, 5).to_jacquard()[2] == pytest.approx(90.0)


def test_normalize_angle_range_and_edges() -> None:
    assert normalize_angle(math.pi / 2) == pytest.approx(-math.pi / 2)
    assert normalize_angle(-math.pi / 2) == pytest.approx(-math.pi / 2)
    assert normalize_angle(math.pi) == pytest.approx(0.0, abs=1e-12)
    assert normalize_angle(0.3 + 5 * math.pi) == pytest.approx(0.3)
    assert GraspRect(0, 0, 1, 1, math.pi / 2).angle == pytest.approx(-math.pi / 2)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e3, 1e3, allow_nan=False))
def test_normalize_angle_property(a: float) -> None:
    n = normalize_angle(a)
    assert -math.pi / 2 <= n < math.pi / 2
    assert angle_diff(n, a) == pytest.approx(0.0, abs=1e-9)


def test_angle_diff_examples() -> None:
    assert angle_diff(math.radians(-89), math.radians(89)) == pytest.approx(math.radians(2))
    assert angle_diff(0.0, math.pi) == pytest.approx(0.0, abs=1e-12)
    assert angle_diff(0.0, math.pi / 2) == pytest.approx(math.pi / 2)
    assert angle_diff(0.2, 0.5) == pytest.approx(angle_diff(0.5, 0.2))


@pytest.mark.parametrize(
    "args",
    [
        (0, 0, 0, 1, 0),
        (0, 0, 1, -1, 0),
        (float("nan"), 0, 1, 1, 0),
        (0, 0, 1, 1, float("inf")),
    ],
)
def test_invalid_rect_raises(args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        GraspRect(*args)


def test_invalid_corners_raise() -> None:
    with pytest.raises(ValueError, match="4 corners"):
        GraspRect.from_corners([[0, 0], [1, 0], [1, 1]])
    with pytest.raises(ValueError, match="NaN"):
        GraspRect.from_corners([[0, 0], [1, 0], [1, float("nan")], [0, 1]])


def test_polygon_and_transforms() -> None:
    r = GraspRect(10, 10, 6, 3, 0.4, quality=0.9)
    assert r.polygon().area == pytest.approx(r.area())
    assert GraspRect.from_polygon(r.polygon()).almost_equal(r)
    assert r.translated(5, -2).center == (15, 8)
    s = r.scaled(2.0)
    assert (s.x, s.y, s.width, s.height, s.angle) == pytest.approx((20, 20, 12, 6, 0.4))
    assert r.to_dict()["quality"] == 0.9
