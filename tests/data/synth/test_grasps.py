from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scene_fixtures import POOL, make_types

from prg.data.synth.grasps import min_opening_m, object_grasps
from prg.data.synth.render import render_scene
from prg.data.synth.scene import metres_to_pixels, sample_scene
from prg.data.synth.types import PlacedObject, SceneSpec

TYPES = make_types()
MAX_OPENING = 80.0  # pixels: about an 8.5 cm gripper seen from 0.7 m at 448 px
GRIPPER_M = 0.1  # a gripper that opens 10 cm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_object_gets_valid_grasps(seed: int) -> None:
    spec = sample_scene(np.random.default_rng(seed), TYPES, ["screwdriver", "bottle"], 6, POOL, ["clutter_nut"])
    inst = render_scene(spec, TYPES).instances
    counts = []
    max_px = metres_to_pixels(spec, GRIPPER_M)
    for o in spec.objects:
        grasps = object_grasps(o, TYPES[o.type_key], spec, inst, max_px, n_max=12)
        # neighbours can block some jaws, never all of them with 1 cm between footprints and this gripper
        assert 1 <= len(grasps) <= 12, (o.type_key, len(grasps))
        counts.append(len(grasps))
        for g in grasps:
            assert inst[round(g.y), round(g.x)] == o.instance_id
            assert g.width <= max_px
            assert -math.pi / 2 <= g.angle < math.pi / 2
    assert np.mean(counts) >= 8


@pytest.mark.parametrize("key", ["screwdriver", "meter_case", "bottle", "probe"])
def test_each_shape_alone_gets_at_least_five(key: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        o = PlacedObject(1, key, *rng.uniform(-0.1, 0.1, 2), rng.uniform(-math.pi, math.pi), 1.0, {})
        spec = _single(o)
        grasps = object_grasps(o, TYPES[key], spec, render_scene(spec, TYPES).instances, MAX_OPENING)
        assert len(grasps) >= 5, key


def _single(obj: PlacedObject, others: Sequence[PlacedObject] = ()) -> SceneSpec:
    return SceneSpec(0, [obj, *others], (128, 128, 128), "plain", (0.0, 0.0, 1.0), 0.8, 0.7, 45.0, 448)


def test_grasp_geometry_of_an_axis_aligned_screwdriver() -> None:
    sd = PlacedObject(1, "screwdriver", 0.0, 0.0, 0.0, 1.0, {"handle": (200, 0, 0), "shaft": (150, 150, 150)})
    spec = _single(sd)
    inst = render_scene(spec, TYPES).instances
    grasps = object_grasps(sd, TYPES["screwdriver"], spec, inst, MAX_OPENING, n_max=50)
    assert len(grasps) >= 5
    fx = 224 / math.tan(math.radians(22.5))
    for g in grasps:
        # lying along x: the jaws close along y, i.e. a vertical grasp axis on screen
        assert math.isclose(abs(g.angle), math.pi / 2, abs_tol=1e-9)
        assert math.isclose(g.y, 223.5, abs_tol=1e-6)
    handle = [g for g in grasps if g.x < 223.5 - 10]
    expected = (1.15 * 0.028 + 0.004) * fx / (0.7 - 0.028)
    assert handle and all(math.isclose(g.width, expected, rel_tol=1e-9) for g in handle)
    # a gripper that cannot open over the handle keeps only the thin shaft grasps
    small = object_grasps(sd, TYPES["screwdriver"], spec, inst, expected - 1, n_max=50)
    assert small and all(g.x > 223.5 for g in small)


def test_jaws_colliding_with_a_neighbour_are_dropped() -> None:
    bottle = PlacedObject(1, "bottle", 0.0, 0.0, 0.0, 1.0, {"body": (90, 60, 30)})
    alone = _single(bottle)
    n_alone = len(object_grasps(bottle, TYPES["bottle"], alone, render_scene(alone, TYPES).instances, 200))
    assert n_alone == 12
    # a box just right of the bottle blocks the jaw on that side for horizontal-ish grasps
    case = PlacedObject(2, "meter_case", 0.075, 0.0, math.pi / 2, 1.0, {"body": (40, 40, 40)})
    crowded = _single(bottle, [case])
    inst = render_scene(crowded, TYPES).instances
    grasps = object_grasps(bottle, TYPES["bottle"], crowded, inst, 200)
    assert 0 < len(grasps) < n_alone
    assert all(abs(g.angle) > math.radians(45) for g in grasps)


def test_min_opening_predicts_when_an_object_cannot_be_grasped() -> None:
    case = TYPES["meter_case"]  # 12 x 7 cm box: the 7 cm side decides
    need = min_opening_m(case, 1.0)
    assert need is not None and math.isclose(need, 1.15 * 0.07 + 0.004)
    o = PlacedObject(1, "meter_case", 0.0, 0.0, 0.3, 1.0, {})
    spec = _single(o)
    inst = render_scene(spec, TYPES).instances
    # the opening is measured at the box's top (4 cm up), where the grasp is projected
    px = metres_to_pixels(spec, need, z=0.04)
    assert object_grasps(o, case, spec, inst, px * 0.99) == []
    assert len(object_grasps(o, case, spec, inst, px * 1.01)) >= 5
    assert min_opening_m(TYPES["probe"]) is not None  # the ball is not graspable, the handle is


def test_a_finger_over_another_part_of_the_same_object_is_dropped() -> None:
    from prg.data.synth.grasps import _jaws_free
    from prg.grasp.rect import GraspRect

    # one object (id 1): a 20 px wide bar across the opening's middle, a second part of it 6 px beyond the right jaw
    inst = np.zeros((100, 100), np.int32)
    inst[40:60, 40:60] = 1
    rect = GraspRect(50.0, 50.0, 30.0, 12.0, 0.0)  # opening along x: jaws at x = 35 and 65
    assert _jaws_free(rect, inst, own_id=1)
    inst[44:56, 68:74] = 1  # the object's own other part, where the right finger descends
    assert not _jaws_free(rect, inst, own_id=1)  # the old rule (other objects only) let this finger land on it
    inst[44:56, 68:74] = 0
    inst[44:56, 30:34] = 2  # a neighbour where the left finger descends
    assert not _jaws_free(rect, inst, own_id=1)


def test_the_labels_assume_the_simulated_gripper() -> None:
    from prg.data.synth import grasps as g
    from prg.sim.gripper import GripperConfig
    from prg.sim.trial import TrialConfig

    grip, trial = GripperConfig(), TrialConfig()
    assert grip.pad_width_m == g.PAD_WIDTH_M and grip.finger_length_m == g.FINGER_LENGTH_M
    assert grip.finger_thickness_m == g.FINGER_THICKNESS_M
    assert math.isclose(g.PALM_HALF_SPAN_M, grip.max_opening_m / 2 + grip.finger_thickness_m + 0.01)
    assert grip.pad_width_m == g.PALM_HALF_WIDTH_M  # the palm box's half-size along hand y
    sim = (trial.close_depth_m, trial.min_tip_height_m, trial.open_margin_m)
    assert sim == (g.CLOSE_DEPTH_M, g.MIN_TIP_M, g.OPEN_MARGIN_M)


def test_the_hand_must_clear_what_lies_under_its_palm_and_open_fingers() -> None:
    from prg.data.synth.grasps import _hand_clear
    from prg.grasp.rect import GraspRect

    spec = _single(PlacedObject(1, "meter_case", 0.0, 0.0, 0.0, 1.0, {}))
    fx = spec.image_size / 2 / math.tan(math.radians(spec.fov_deg) / 2)
    heights = np.zeros((spec.image_size, spec.image_size), np.float32)
    c = spec.image_size / 2
    heights[int(c) - 4 : int(c) + 4, int(c) - 4 : int(c) + 4] = 0.02  # the 2 cm part being grasped
    rect = GraspRect(c, c, 10.0, 5.0, 0.0)  # opening along x
    assert _hand_clear(rect, heights, 0.02, spec, fx)
    tall = heights.copy()
    tall[int(c) - 2 : int(c) + 2, int(c) + 30 : int(c) + 36] = 0.09  # 9 cm, under the palm 9 cm up (tip 3 mm + 8 cm)
    assert not _hand_clear(rect, tall, 0.02, spec, fx)
    low = heights.copy()
    low[int(c) - 2 : int(c) + 2, int(c) + 30 : int(c) + 36] = 0.05  # 5 cm passes under the palm
    assert _hand_clear(rect, low, 0.02, spec, fx)
    # a 1 cm bar where the right finger lands (its inner face 3 mm outside the opening, 8 mm thick)
    ppm = fx / (spec.camera_height - 0.003)
    x0 = c + 5.0 + 0.003 * ppm
    bar = heights.copy()
    bar[int(c) - 3 : int(c) + 3, int(x0) : int(x0 + 0.008 * ppm) + 1] = 0.01
    assert not _hand_clear(rect, bar, 0.02, spec, fx)


def test_two_bars_side_by_side_are_held_together() -> None:
    from prg.data.synth.grasps import pair_candidates
    from prg.data.synth.types import Part

    # pliers' handles: 11 cm bars 1.6 cm wide, centres 2.6 cm apart (1 cm gap: no pad fits between them)
    handles = (Part("box", (0.11, 0.016, 0.014), offset=(-0.03, 0.013)),
               Part("box", (0.11, 0.016, 0.014), offset=(-0.03, -0.013)),
               Part("box", (0.07, 0.016, 0.016), offset=(0.06, 0.0), graspable=False))  # fmt: skip
    cands = pair_candidates(handles, 1.0)
    assert cands
    for x, y, top, angle, narrow in cands:
        assert math.isclose(y, 0.0, abs_tol=1e-12) and math.isclose(angle, math.pi / 2)  # across both, along y
        assert math.isclose(narrow, 0.042) and math.isclose(top, 0.014)
        assert -0.085 + 0.0125 - 1e-9 <= x <= 0.025 - 0.0125 + 1e-9  # the pads stay on the bars
    assert pair_candidates(handles[:1], 1.0) == []  # one bar: nothing to pair
