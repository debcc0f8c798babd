from __future__ import annotations

import math

import numpy as np
import pytest
from scene_fixtures import POOL, make_types

from prg.data.synth.scene import (
    SceneSamplingError,
    camera_intrinsics,
    footprint,
    project_points,
    sample_scene,
    scene_from_json,
    scene_to_json,
    visible_half_width,
)

TYPES = make_types()


def _sample(seed: int, n: int = 6):
    return sample_scene(
        np.random.default_rng(seed), TYPES, ["screwdriver", "bottle"], n, POOL, clutter_pool=["clutter_nut"], seed=seed
    )


def test_deterministic_for_a_seed() -> None:
    assert _sample(3) == _sample(3)
    assert _sample(3) != _sample(4)


@pytest.mark.parametrize("seed", range(8))
def test_required_present_no_overlap_in_view(seed: int) -> None:
    spec = _sample(seed, n=3 + seed % 6)
    keys = [o.type_key for o in spec.objects]
    assert len(keys) == 3 + seed % 6
    assert "screwdriver" in keys and "bottle" in keys
    assert [o.instance_id for o in spec.objects] == list(range(1, len(keys) + 1))
    assert [o.instance_id for o in spec.clutter] == list(range(len(keys) + 1, len(keys) + len(spec.clutter) + 1))
    polys = [footprint(TYPES[o.type_key], o.x, o.y, o.yaw, o.scale) for o in [*spec.objects, *spec.clutter]]
    for i in range(len(polys)):
        for j in range(i + 1, len(polys)):
            assert not polys[i].intersects(polys[j])
    half = visible_half_width(spec)
    for p in polys:
        minx, miny, maxx, maxy = p.bounds
        assert -half < minx and maxx < half and -half < miny and maxy < half
    assert 0.6 <= spec.camera_height <= 0.8


def test_lookalike_is_preferred_as_distractor() -> None:
    for seed in range(5):
        spec = sample_scene(np.random.default_rng(seed), TYPES, ["screwdriver"], 3, POOL)
        assert "screwdriver_plain" in [o.type_key for o in spec.objects]


def test_impossible_scene_raises_clear_error() -> None:
    with pytest.raises(SceneSamplingError, match="could not place"):
        sample_scene(np.random.default_rng(0), TYPES, ["meter_case"], 8, ["meter_case"], max_tries=2)
    with pytest.raises(ValueError, match="n_objects"):
        sample_scene(np.random.default_rng(0), TYPES, [], 9, POOL)


def test_intrinsics_project_known_point() -> None:
    spec = _sample(0)
    fx, fy, cx, cy = camera_intrinsics(spec)
    assert fx == fy and cx == cy == (spec.image_size - 1) / 2
    # the table corner at the edge of the view lands on the image border (pixel edge at -0.5)
    half = visible_half_width(spec)
    uv = project_points(spec, np.array([[half, half, 0.0], [0.0, 0.0, 0.1]]))
    np.testing.assert_allclose(uv[0], [spec.image_size - 0.5, -0.5], atol=1e-6)
    np.testing.assert_allclose(uv[1], [cx, cy], atol=1e-9)
    # a point 0.1 m right of centre on the table: u = cx + fx * 0.1 / h
    u, v = project_points(spec, np.array([[0.1, 0.0, 0.0]]))[0]
    assert math.isclose(u, cx + fx * 0.1 / spec.camera_height) and math.isclose(v, cy)


def test_json_round_trip() -> None:
    spec = _sample(5)
    text = scene_to_json(spec)
    assert "pickle" not in text and text.startswith("{")
    assert scene_from_json(text) == spec
