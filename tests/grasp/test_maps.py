"""Grasp maps: encoding by hand, and rectangles -> maps -> rectangles round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prg.grasp import GraspMaps, GraspRect, angle_diff, compact_rect, grasp_success, maps_to_rects, rects_to_maps

SHAPE = (200, 240)
WELL_SEPARATED = [
    GraspRect(50.3, 60.7, 60, 24, math.radians(30)),
    GraspRect(170.0, 55.0, 45, 20, math.radians(-70)),
    GraspRect(110.4, 150.2, 90, 30, math.radians(85)),
    GraspRect(200.0, 150.0, 36, 16, math.radians(-5)),
]


def test_encoding_by_hand() -> None:
    r = GraspRect(30, 20, 30, 10, math.radians(45))
    m = rects_to_maps([r], (40, 60), width_scale=150.0)
    assert m.shape == (40, 60)
    for a in (m.quality, m.cos2, m.sin2, m.width):
        assert a.dtype == np.float32 and a.shape == (40, 60)
    inside = m.quality == 1
    assert inside[20, 30]
    assert set(np.unique(m.quality)) == {0.0, 1.0}
    assert m.cos2[20, 30] == pytest.approx(0.0, abs=1e-6)  # cos(90 deg)
    assert m.sin2[20, 30] == pytest.approx(1.0)
    assert m.width[20, 30] == pytest.approx(30 / 150)
    # Background is 0 in every map.
    assert np.all(m.cos2[~inside] == 0) and np.all(m.sin2[~inside] == 0) and np.all(m.width[~inside] == 0)
    # The marked region is the centre third: about (30 / 3) x 10 pixels, far smaller than the full 30 x 10.
    assert abs(inside.sum() - compact_rect(r).area()) < 0.25 * compact_rect(r).area()


def test_compact_region_is_centre_third_along_axis() -> None:
    r = GraspRect(50, 30, 60, 10, 0.0)  # axis along x: centre third spans x in [40, 60]
    q = rects_to_maps([r], (60, 100)).quality
    cols = np.nonzero(q[30])[0]
    assert cols.min() == 40 and cols.max() == 60
    rows = np.nonzero(q[:, 50])[0]
    assert rows.min() == 25 and rows.max() == 35


def test_width_normalisation_and_clipping() -> None:
    m = rects_to_maps([GraspRect(20, 20, 75, 10, 0.0), GraspRect(80, 20, 300, 10, 0.0)], (40, 200), 150.0)
    assert m.width[20, 20] == pytest.approx(0.5)
    assert m.width[20, 80] == pytest.approx(1.0)  # 300 px > width_scale saturates
    assert rects_to_maps([GraspRect(20, 20, 75, 10, 0.0)], (40, 40), 75.0).width[20, 20] == pytest.approx(1.0)


def test_later_rectangles_overwrite() -> None:
    first = GraspRect(30, 30, 60, 20, 0.0)
    second = GraspRect(30, 30, 60, 20, math.radians(90))
    m = rects_to_maps([first, second], (60, 60))
    assert m.cos2[30, 30] == pytest.approx(-1.0)  # cos(2 * 90 deg): the second rectangle won
    m2 = rects_to_maps([second, first], (60, 60))
    assert m2.cos2[30, 30] == pytest.approx(1.0)


def test_clipped_at_image_border() -> None:
    m = rects_to_maps([GraspRect(0, 0, 90, 40, 0.3), GraspRect(1000, 1000, 30, 10, 0.0)], (50, 50))
    assert m.quality[0, 0] == 1.0
    assert m.quality.sum() > 0


def test_stack_round_trip_and_validation() -> None:
    m = rects_to_maps(WELL_SEPARATED, SHAPE)
    s = m.stack()
    assert s.shape == (4, *SHAPE) and s.dtype == np.float32
    back = GraspMaps.from_stack(s)
    assert np.array_equal(back.quality, m.quality) and np.array_equal(back.width, m.width)
    with pytest.raises(ValueError):
        GraspMaps.from_stack(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError):
        GraspMaps(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5)), np.zeros((4, 4)))
    with pytest.raises(ValueError):
        rects_to_maps([], (0, 10))
    with pytest.raises(ValueError):
        rects_to_maps([], (10, 10), width_scale=0.0)
    with pytest.raises(ValueError):
        maps_to_rects(m, k=0)


def random_rects(seed: int, shape: tuple[int, int] = (480, 640)) -> list[GraspRect]:
    """20 rectangles of any angle, opening 20-120 px and jaw 4-60 px, one per cell of a 4 x 5 grid (no overlaps)."""
    rng = np.random.default_rng(seed)
    ch, cw = shape[0] / 4, shape[1] / 5
    return [
        GraspRect(
            (c + 0.5) * cw + rng.uniform(-8, 8),
            (r + 0.5) * ch + rng.uniform(-8, 8),
            rng.uniform(20, 120),
            rng.uniform(4, 60),
            rng.uniform(-math.pi / 2, math.pi / 2),
        )
        for r in range(4)
        for c in range(5)
    ]


@pytest.mark.parametrize("smooth", [False, True])
def test_round_trip_passes_the_rectangle_metric_unless_the_jaw_is_far_from_half_the_opening(smooth: bool) -> None:
    """The maps carry no jaw size: decoding gives height = 0.5 x opening (GG-CNN). A round trip passes the
    rectangle metric when the annotated jaw is near that; a jaw under 0.1 x the opening cannot (IoU <= 2 x 0.1)."""
    near, thin = 0, 0
    for seed in (0, 1, 2):
        rects = random_rects(seed)
        out = maps_to_rects(rects_to_maps(rects, (480, 640)), k=30, smooth=smooth)
        assert len(out) >= len(rects)
        for gt in rects:
            match = min(out, key=lambda r: math.hypot(r.x - gt.x, r.y - gt.y))
            assert match.height == pytest.approx(0.5 * match.width)
            assert math.degrees(angle_diff(match.angle, gt.angle)) < 2.0
            assert abs(match.width - gt.width) < 2.0
            if not smooth:  # rasterised plateaus decode to their centroid
                assert math.hypot(match.x - gt.x, match.y - gt.y) < 1.5
            ratio = gt.height / gt.width
            if 0.2 < ratio < 1.5:
                near += 1
                assert grasp_success(match, [gt]), (gt, match)
            elif ratio < 0.1:
                thin += 1
                assert not grasp_success(match, [gt]), (gt, match)
    assert near >= 40 and thin >= 5  # both cases are exercised (45 and 6 with these seeds)


def test_ranked_by_quality_and_k_limits() -> None:
    maps = rects_to_maps(WELL_SEPARATED, SHAPE)
    maps.quality[maps.quality > 0] *= 0.5
    # Make the third rectangle's region the best.
    best = WELL_SEPARATED[2]
    maps.quality[round(best.y) - 3 : round(best.y) + 4, round(best.x) - 3 : round(best.x) + 4] = 1.0
    out = maps_to_rects(maps, k=10, smooth=False)
    qualities = [r.quality or 0.0 for r in out]
    assert qualities == sorted(qualities, reverse=True)
    assert math.hypot(out[0].x - best.x, out[0].y - best.y) < 2
    assert len(maps_to_rects(maps, k=2)) == 2


def test_threshold_and_empty_maps() -> None:
    empty = GraspMaps(*(np.zeros(SHAPE) for _ in range(4)))
    assert maps_to_rects(empty) == []
    weak = rects_to_maps(WELL_SEPARATED, SHAPE)
    weak.quality *= 0.1
    assert maps_to_rects(weak, threshold=0.2, smooth=False) == []
    assert len(maps_to_rects(weak, threshold=0.05, smooth=False, k=10)) == len(WELL_SEPARATED)


def test_angle_pi_ambiguity_encodes_identically() -> None:
    a = rects_to_maps([GraspRect(40, 40, 60, 20, 0.4)], (80, 80))
    b = rects_to_maps([GraspRect(40, 40, 60, 20, 0.4 + math.pi)], (80, 80))
    assert np.allclose(a.stack(), b.stack())


def test_noisy_maps_decode_without_error() -> None:
    rng = np.random.default_rng(0)
    noisy = GraspMaps.from_stack(rng.uniform(-1, 1, size=(4, 64, 80)))
    for smooth in (False, True):
        out = maps_to_rects(noisy, k=7, min_distance=5, threshold=0.0, smooth=smooth)
        assert 1 <= len(out) <= 7
        assert all(r.width >= 1.0 and -math.pi / 2 <= r.angle < math.pi / 2 for r in out)
        assert all(0 <= r.x < 80 and 0 <= r.y < 64 for r in out)


def test_negative_peak_values_decode() -> None:
    # Raw network logits can be negative everywhere; a low threshold must still decode the plateau centre.
    q = np.full((40, 40), -5.0)
    q[10:15, 20:25] = -1.0
    maps = GraspMaps(q, np.ones_like(q), np.zeros_like(q), np.full_like(q, 0.2))
    out = maps_to_rects(maps, k=1, threshold=-3.0, smooth=False)
    assert len(out) == 1
    assert (out[0].x, out[0].y) == pytest.approx((22.0, 12.0))
    assert out[0].width == pytest.approx(30.0) and out[0].angle == pytest.approx(0.0)


def test_angle_and_width_read_from_local_blur_equal_the_whole_map_blur() -> None:
    """Decoding blurs angle and width only around the peaks; the values must be those of blurring whole maps,
    also for peaks at the image border (where scipy reflects)."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    raw = [ndimage.gaussian_filter(rng.random((60, 90)), 3).astype(np.float32) for _ in range(4)]
    quality = (raw[0] - raw[0].min()) / (raw[0].max() - raw[0].min())
    quality[0, 45] = quality[59, 0] = 1.5  # peaks on the border and in a corner
    cos2, sin2, width = (2 * r - 1 for r in raw[1:])
    width = np.abs(width)
    fast = maps_to_rects(GraspMaps(quality, cos2, sin2, width), k=8, min_distance=4, threshold=0.3)
    blurred = GraspMaps(
        ndimage.gaussian_filter(quality, 2.0),
        ndimage.gaussian_filter(cos2, 2.0),
        ndimage.gaussian_filter(sin2, 2.0),
        ndimage.gaussian_filter(width, 1.0),
    )
    reference = maps_to_rects(blurred, k=8, min_distance=4, threshold=0.3, smooth=False)
    assert len(fast) == len(reference) >= 4
    assert any(r.y < 2 or r.x < 2 for r in fast)  # a border peak is among them
    for a, b in zip(fast, reference, strict=True):
        assert (a.x, a.y, a.quality) == (b.x, b.y, b.quality)
        assert a.angle == pytest.approx(b.angle, abs=1e-5)
        assert a.width == pytest.approx(b.width, rel=1e-5)


def test_plateau_larger_than_the_labelling_window_is_found_whole() -> None:
    """_plateau_centre labels a window around the peak first; a flat top wider than that window must still give
    the centroid of the whole flat top (the window grows until the plateau no longer touches its edges)."""
    quality = np.zeros((300, 400), dtype=np.float32)
    quality[40:240, 60:310] = 0.9  # 200 x 250 px plateau, far wider than the first 65 px window
    zeros = np.zeros_like(quality)
    rects = maps_to_rects(GraspMaps(quality, zeros + 1, zeros, zeros + 0.2), k=1, smooth=False)
    assert len(rects) == 1
    assert rects[0].x == pytest.approx(184.5) and rects[0].y == pytest.approx(139.5)
