"""Lifting rectangles to 6-DoF poses on synthetic depth with known intrinsics."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from prg.data.schema import Intrinsics
from prg.grasp import CameraIntrinsics, GraspRect, rect_to_pose

K = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0)
H, W = 480, 640


def plane(z: float = 0.5) -> np.ndarray:
    return np.full((H, W), z, dtype=np.float32)


def test_centre_pixel_lifts_to_optical_axis() -> None:
    pose = rect_to_pose(GraspRect(320, 240, 100, 40, 0.0), plane(), K)
    assert pose.position == pytest.approx((0.0, 0.0, 0.5))


def test_off_centre_back_projection() -> None:
    # 100 px right and 50 px down at 0.5 m with f = 500: 0.1 m right, 0.05 m down (camera y is down).
    pose = rect_to_pose(GraspRect(420, 290, 60, 20, 0.0), plane(), K)
    assert pose.position == pytest.approx((0.1, 0.05, 0.5))


def test_opening_in_metres() -> None:
    pose = rect_to_pose(GraspRect(320, 240, 100, 40, 0.0), plane(), K)
    assert pose.opening_m == pytest.approx(0.1)
    assert pose.jaw_m == pytest.approx(0.04)
    # Same pixel opening at twice the depth is twice as wide.
    assert rect_to_pose(GraspRect(320, 240, 100, 40, 0.7), plane(1.0), K).opening_m == pytest.approx(0.2)


def test_opening_with_anisotropic_focal_lengths() -> None:
    k = CameraIntrinsics(fx=500.0, fy=250.0, cx=320.0, cy=240.0)
    horizontal = rect_to_pose(GraspRect(320, 240, 100, 40, 0.0), plane(), k)
    vertical = rect_to_pose(GraspRect(320, 240, 100, 40, math.pi / 2), plane(), k)
    assert horizontal.opening_m == pytest.approx(0.1)  # 100 * 0.5 / 500
    assert vertical.opening_m == pytest.approx(0.2)  # 100 * 0.5 / 250
    assert vertical.jaw_m == pytest.approx(0.04)  # jaw runs along x for a vertical axis


def test_angle_zero_is_identity_orientation() -> None:
    pose = rect_to_pose(GraspRect(320, 240, 100, 40, 0.0), plane(), K)
    assert np.allclose(pose.rotation, np.eye(3))
    assert pose.quaternion == (0.0, 0.0, 0.0, 1.0)


def test_angle_90_is_minus_90_about_camera_z() -> None:
    # 90 degrees counter-clockwise on screen = axis pointing up in the image = camera -y. Normalisation maps
    # it to -90 (pointing down, camera +y): the same grasp. Either way the opening axis lies along camera y.
    pose = rect_to_pose(GraspRect(320, 240, 100, 40, math.radians(90)), plane(), K)
    x_axis, y_axis, z_axis = pose.rotation.T
    assert np.allclose(z_axis, [0, 0, 1])
    assert np.allclose(np.abs(x_axis), [0, 1, 0])
    assert np.allclose(np.cross(z_axis, x_axis), y_axis)
    # A small CCW angle on screen is a negative rotation about camera z (z points into the scene).
    small = rect_to_pose(GraspRect(320, 240, 100, 40, math.radians(20)), plane(), K)
    rotvec = Rotation.from_quat(small.quaternion).as_rotvec()
    assert rotvec == pytest.approx([0, 0, -math.radians(20)])
    assert small.rotation[:, 0] == pytest.approx([math.cos(math.radians(20)), -math.sin(math.radians(20)), 0])


def test_rotation_is_proper_and_quaternion_unit() -> None:
    for a in np.linspace(-1.5, 1.5, 7):
        pose = rect_to_pose(GraspRect(300, 200, 80, 30, float(a)), plane(), K)
        r = pose.rotation
        assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
        assert np.linalg.norm(pose.quaternion) == pytest.approx(1.0)
        t = pose.as_matrix()
        assert t.shape == (4, 4) and np.allclose(t[:3, 3], pose.position)


@pytest.mark.parametrize("hole", [np.nan, 0.0])
def test_holes_in_centre_use_valid_neighbours(hole: float) -> None:
    depth = plane(0.5)
    depth[200:280, 280:360] = hole  # a hole bigger than the rectangle's centre third
    pose = rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), depth, K)
    assert pose.position[2] == pytest.approx(0.5)
    # A partly missing centre: the median over the valid part.
    depth2 = plane(0.5)
    depth2[238:243, 310:330] = hole
    assert rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), depth2, K).position[2] == pytest.approx(0.5)


def test_median_is_robust_to_outliers() -> None:
    depth = plane(0.5)
    depth[240, 315:318] = 5.0  # a few flying pixels
    assert rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), depth, K).position[2] == pytest.approx(0.5)


def test_depth_comes_from_under_the_rectangle() -> None:
    depth = plane(0.8)  # table
    depth[220:260, 300:340] = 0.6  # an object under the grasp
    assert rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), depth, K).position[2] == pytest.approx(0.6)


def test_all_missing_depth_raises() -> None:
    with pytest.raises(ValueError, match="no valid pixel"):
        rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), np.full((H, W), np.nan), K)
    with pytest.raises(ValueError, match="no valid pixel"):
        rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), np.zeros((H, W)), K)


def test_other_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="outside"):
        rect_to_pose(GraspRect(700, 240, 60, 20, 0.0), plane(), K)
    with pytest.raises(ValueError, match="2-D"):
        rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), np.zeros((H, W, 1)), K)
    with pytest.raises(ValueError, match="focal"):
        CameraIntrinsics(0.0, 500.0, 1.0, 1.0)
    not_intrinsics: Any = object()
    with pytest.raises(TypeError, match="fx"):
        rect_to_pose(GraspRect(320, 240, 60, 20, 0.0), plane(), not_intrinsics)


def test_depth_offset_moves_along_approach() -> None:
    base = rect_to_pose(GraspRect(420, 290, 60, 20, 0.3), plane(), K)
    deeper = rect_to_pose(GraspRect(420, 290, 60, 20, 0.3), plane(), K, depth_offset=0.02)
    assert deeper.position == pytest.approx((base.position[0], base.position[1], 0.52))
    assert deeper.opening_m == pytest.approx(base.opening_m)  # measured at the surface


def test_intrinsics_inputs() -> None:
    k_mat = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert CameraIntrinsics.from_matrix(k_mat) == K
    assert np.allclose(K.matrix(), k_mat)
    rect = GraspRect(400, 300, 60, 20, 0.2)
    ref = rect_to_pose(rect, plane(), K)
    assert rect_to_pose(rect, plane(), k_mat).position == pytest.approx(ref.position)
    schema_k = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    assert rect_to_pose(rect, plane(), schema_k).position == pytest.approx(ref.position)
    with pytest.raises(ValueError, match="3 x 3"):
        CameraIntrinsics.from_matrix(np.eye(2))


def test_ros_dict_round_trips_through_json() -> None:
    pose = rect_to_pose(GraspRect(400, 300, 60, 20, 0.2, quality=0.87), plane(), K)
    d = pose.to_ros_dict(stamp=12.25)
    back = json.loads(json.dumps(d))
    assert back == d
    assert back["header"] == {
        "frame_id": "camera_color_optical_frame",
        "stamp": {"sec": 12, "nanosec": 250_000_000},
    }
    assert [back["pose"]["position"][c] for c in "xyz"] == pytest.approx(pose.position)
    assert [back["pose"]["orientation"][c] for c in "xyzw"] == pytest.approx(pose.quaternion)
    assert back["width"] == pytest.approx(pose.opening_m) and back["quality"] == 0.87
    assert pose.to_ros_dict()["header"]["stamp"] == {"sec": 0, "nanosec": 0}
    assert pose.to_ros_dict("base", stamp=(3, 5))["header"] == {
        "frame_id": "base",
        "stamp": {"sec": 3, "nanosec": 5},
    }
    assert pose.to_ros_dict(stamp=1.9999999999)["header"]["stamp"] == {"sec": 2, "nanosec": 0}


def test_quaternion_sign_is_canonical() -> None:
    for a in np.linspace(-1.57, 1.5, 9):
        assert rect_to_pose(GraspRect(320, 240, 60, 20, float(a)), plane(), K).quaternion[3] >= 0
