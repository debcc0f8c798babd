"""GraspRect.flipped / rot90 agree with numpy's fliplr/flipud/rot90 of the image the rectangle lies in."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import polygon as draw_polygon

from prg.grasp import GraspRect, angle_diff

H, W = 40, 60


def _mask(r: GraspRect, shape: tuple[int, int]) -> np.ndarray:
    c = r.corners()
    m = np.zeros(shape, bool)
    rr, cc = draw_polygon(c[:, 1], c[:, 0], shape)
    m[rr, cc] = True
    return m


def test_hand_checked_points() -> None:
    r = GraspRect(10, 5, 8, 4, 0.0)  # axis points right
    q = r.rot90(1, (H, W))  # a quarter turn counter-clockwise: the right edge comes to the top
    assert (q.x, q.y) == (5, W - 1 - 10)
    assert math.isclose(q.angle, -math.pi / 2)  # axis now points up: +pi/2, normalised to -pi/2
    f = GraspRect(10, 5, 8, 4, 0.3).flipped("x", (H, W))
    assert (f.x, f.y) == (W - 1 - 10, 5) and math.isclose(f.angle, -0.3)
    f = GraspRect(10, 5, 8, 4, 0.3).flipped("y", (H, W))
    assert (f.x, f.y) == (10, H - 1 - 5) and math.isclose(f.angle, -0.3)


@pytest.mark.parametrize("op", ["fliplr", "flipud", "rot1", "rot2", "rot3", "rot-1"])
def test_matches_numpy(op: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        r = GraspRect(rng.uniform(15, W - 15), rng.uniform(12, H - 12), rng.uniform(8, 20), rng.uniform(4, 10),
                      rng.uniform(-math.pi, math.pi))  # fmt: skip
        m = _mask(r, (H, W))
        if op == "fliplr":
            m2, r2 = np.fliplr(m), r.flipped("x", (H, W))
        elif op == "flipud":
            m2, r2 = np.flipud(m), r.flipped("y", (H, W))
        else:
            k = int(op[3:])
            m2, r2 = np.rot90(m, k), r.rot90(k, (H, W))
        drawn = _mask(r2, m2.shape)
        iou = (drawn & m2).sum() / (drawn | m2).sum()
        assert iou >= 0.95, (op, r, iou)


def test_round_trip() -> None:
    r = GraspRect(12.25, 7.5, 9, 3, 1.2)
    back = r.rot90(1, (H, W)).rot90(-1, (W, H))
    assert back.almost_equal(r, tol=1e-12, angle_tol=1e-12)
    assert r.flipped("x", (H, W)).flipped("x", (H, W)).almost_equal(r, tol=1e-12, angle_tol=1e-12)
    assert angle_diff(r.rot90(4, (H, W)).angle, r.angle) < 1e-12
    with pytest.raises(ValueError, match="axis"):
        r.flipped("z", (H, W))
