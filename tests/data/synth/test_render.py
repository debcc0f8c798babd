from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import POOL, make_types
from scipy.ndimage import binary_erosion

from prg.data.synth.render import import_mujoco, render_scene
from prg.data.synth.scene import camera_intrinsics, project_points, sample_scene

TYPES = make_types()


def _spec(seed: int = 0, size: int = 160):
    return sample_scene(
        np.random.default_rng(seed), TYPES, ["screwdriver", "bottle"], 6, POOL, ["clutter_nut"], size, seed=seed
    )


def test_render_shapes_and_determinism() -> None:
    spec = _spec()
    a, b = render_scene(spec, TYPES), render_scene(spec, TYPES)
    assert a.rgb.shape == (160, 160, 3) and a.rgb.dtype == np.uint8
    assert a.depth.shape == (160, 160) and a.depth.dtype == np.float32
    assert a.instances.dtype == np.uint16
    for x, y in ((a.rgb, b.rgb), (a.depth, b.depth), (a.instances, b.instances)):
        np.testing.assert_array_equal(x, y)
    assert a.intrinsics == camera_intrinsics(spec)


def test_depth_and_instances_match_geometry() -> None:
    spec = _spec(1)
    r = render_scene(spec, TYPES, "raster")
    table = r.instances == 0
    np.testing.assert_allclose(r.depth[table], spec.camera_height, atol=1e-6)
    assert np.all(r.depth[~table] < spec.camera_height)
    ids = {o.instance_id for o in [*spec.objects, *spec.clutter]}
    assert set(np.unique(r.instances)) - {0} == ids
    for o in spec.objects:
        # the pixel under the object's origin shows that object (origins sit inside every fixture object)
        u, v = project_points(spec, np.array([[o.x, o.y, 0.0]]))[0]
        assert r.instances[round(v), round(u)] == o.instance_id
    # an upright bottle seen from above: its top is at camera_height - bottle height
    bottle = next(o for o in spec.objects if o.type_key == "bottle")
    u, v = project_points(spec, np.array([[bottle.x, bottle.y, 0.1 * bottle.scale]]))[0]
    assert np.isclose(r.depth[round(v), round(u)], spec.camera_height - 0.1 * bottle.scale, atol=1e-4)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown render backend"):
        render_scene(_spec(), TYPES, "vulkan")


@pytest.mark.parametrize("seed", [0, 7])
def test_raster_agrees_with_mujoco(seed: int) -> None:
    import_mujoco()  # a dependency; scripts/setup.sh installs its GL library (libosmesa6)
    spec = _spec(seed, size=224)
    ras, mj = render_scene(spec, TYPES, "raster"), render_scene(spec, TYPES, "mujoco")
    assert mj.rgb.shape == ras.rgb.shape and mj.depth.dtype == np.float32
    for o in [*spec.objects, *spec.clutter]:
        a, b = ras.instances == o.instance_id, mj.instances == o.instance_id
        iou = (a & b).sum() / (a | b).sum()
        # benchmarks/README.md states this bound; measured here: >= 0.980 (a 51-pixel nut, one pixel off), and
        # >= 0.989 over 658 catalogue objects at 448 px (benchmarks/bench_render_agreement.py)
        assert iou >= 0.98, f"{o.type_key}: IoU {iou:.3f}"
        # Silhouette pixels differ by centimetres (the edge of a polygonised cylinder falls on either side of
        # a pixel centre); compare the interior, where MuJoCo's tessellation leaves a few mm at most.
        inner = binary_erosion(a & b)
        err = np.abs(ras.depth[inner] - mj.depth[inner])
        assert inner.sum() > 0.3 * a.sum(), o.type_key
        assert np.median(err) < 0.001 and np.percentile(err, 95) < 0.004, (o.type_key, np.percentile(err, 95))
    table = (ras.instances == 0) & (mj.instances == 0)
    np.testing.assert_allclose(mj.depth[table], spec.camera_height, atol=1e-4)
