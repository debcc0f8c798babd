from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import POOL, make_types

from prg.data.synth.mjcf import body_name, scene_to_mjcf
from prg.data.synth.render import import_mujoco
from prg.data.synth.scene import sample_scene

TYPES = make_types()


def _spec(seed: int = 1):
    return sample_scene(np.random.default_rng(seed), TYPES, ["screwdriver", "probe"], 6, POOL, ["clutter_nut"])


def test_mjcf_has_camera_and_one_body_per_instance() -> None:
    spec = _spec()
    xml = scene_to_mjcf(spec, TYPES)
    assert '<camera name="top"' in xml
    for o in [*spec.objects, *spec.clutter]:
        assert f'name="{body_name(o.instance_id)}"' in xml
    assert xml.count("<freejoint") == len(spec.objects) + len(spec.clutter)


@pytest.mark.parametrize("seed", [1, 2])
def test_mujoco_loads_and_objects_rest_on_table(seed: int) -> None:
    mujoco = import_mujoco()  # a dependency; scripts/setup.sh installs its GL library (libosmesa6)
    spec = _spec(seed)
    model = mujoco.MjModel.from_xml_string(scene_to_mjcf(spec, TYPES))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    start = {o.instance_id: data.body(body_name(o.instance_id)).xpos.copy() for o in spec.objects}
    np.testing.assert_allclose(start[1][:2], [spec.objects[0].x, spec.objects[0].y], atol=1e-9)
    for _ in range(250):  # half a second
        mujoco.mj_step(model, data)
    assert np.all(np.isfinite(data.qpos))
    for o in spec.objects:
        pos = data.body(body_name(o.instance_id)).xpos
        assert -0.002 < pos[2] < 0.05, f"{o.type_key} left the table: z={pos[2]}"
        assert np.linalg.norm(pos[:2] - start[o.instance_id][:2]) < 0.03, f"{o.type_key} slid or exploded"
    cam = model.camera("top")
    assert np.isclose(cam.fovy[0], spec.fov_deg)
