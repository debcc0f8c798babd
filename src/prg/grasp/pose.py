"""Lifting a pixel grasp rectangle to a 6-DoF top-down gripper pose in the camera frame.

Frames (OpenCV / ROS optical frame): camera ``x`` right, ``y`` down, ``z`` forward into the scene.
Gripper frame: ``z`` = approach = camera ``+z``; ``x`` = opening direction, the rectangle's grasp axis
``(cos a, -sin a)`` on screen lifted to metres (``(cos a / fx, -sin a / fy, 0)`` normalised, which is
``(cos a, -sin a, 0)`` when ``fx == fy``); ``y = z x x`` (right-handed). A rectangle angle ``a`` (counter-
clockwise on screen) is therefore a rotation of ``-a`` about the camera's ``z`` axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.spatial.transform import Rotation
from skimage.draw import polygon as draw_polygon

from prg.grasp.maps import compact_rect
from prg.grasp.rect import GraspRect

__all__ = ["CameraIntrinsics", "GraspPose", "IntrinsicsLike", "grasp_depth", "rect_to_pose", "ros_stamp"]


class IntrinsicsLike(Protocol):
    """Anything with pinhole intrinsics in pixels (e.g. ``prg.data.schema.Intrinsics``)."""

    @property
    def fx(self) -> float: ...
    @property
    def fy(self) -> float: ...
    @property
    def cx(self) -> float: ...
    @property
    def cy(self) -> float: ...


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels: focal lengths ``fx, fy`` and principal point ``cx, cy``."""

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        vals = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(float(v)) for v in vals):
            raise ValueError(f"intrinsics must be finite, got {vals}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be > 0, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_matrix(cls, k: np.ndarray | list[list[float]]) -> CameraIntrinsics:
        """From a ``[3 x 3]`` camera matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        m = np.asarray(k, dtype=float)
        if m.shape != (3, 3):
            raise ValueError(f"camera matrix must be 3 x 3, got shape {m.shape}")
        return cls(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]))

    @classmethod
    def coerce(cls, obj: IntrinsicsLike | np.ndarray | CameraIntrinsics) -> CameraIntrinsics:
        """Accept a ``CameraIntrinsics``, a ``[3 x 3]`` matrix, or any object with fx/fy/cx/cy attributes."""
        if isinstance(obj, CameraIntrinsics):
            return obj
        if isinstance(obj, np.ndarray):
            return cls.from_matrix(obj)
        try:
            return cls(float(obj.fx), float(obj.fy), float(obj.cx), float(obj.cy))
        except AttributeError as e:
            raise TypeError(f"expected intrinsics with fx, fy, cx, cy; got {type(obj).__name__}") from e

    def matrix(self) -> np.ndarray:
        """The ``[3 x 3]`` camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class GraspPose:
    """A parallel-jaw gripper pose in the camera frame.

    Attributes:
        position: grasp point ``(x, y, z)`` in metres.
        quaternion: orientation ``(x, y, z, w)`` (scalar last, as ROS and scipy).
        opening_m: gripper opening in metres.
        jaw_m: jaw size (rectangle height) in metres.
        quality: the rectangle's score, if any.
    """

    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]
    opening_m: float
    jaw_m: float
    quality: float | None = None

    @property
    def rotation(self) -> np.ndarray:
        """``[3 x 3]`` rotation matrix; its columns are the gripper x (opening), y and z (approach) axes."""
        return Rotation.from_quat(self.quaternion).as_matrix()

    def as_matrix(self) -> np.ndarray:
        """``[4 x 4]`` homogeneous transform from gripper frame to camera frame."""
        t = np.eye(4)
        t[:3, :3] = self.rotation
        t[:3, 3] = self.position
        return t

    def to_ros_dict(
        self, frame_id: str = "camera_color_optical_frame", stamp: float | tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """geometry_msgs/PoseStamped fields as JSON-able data, plus ``width`` (opening, m) and ``quality``.

        ``stamp`` is seconds (float), ``(sec, nanosec)``, or None for zero time.
        """
        px, py, pz = self.position
        qx, qy, qz, qw = self.quaternion
        return {
            "header": {"frame_id": frame_id, "stamp": ros_stamp(stamp)},
            "pose": {
                "position": {"x": px, "y": py, "z": pz},
                "orientation": {"x": qx, "y": qy, "z": qz, "w": qw},
            },
            "width": self.opening_m,
            "quality": self.quality,
        }


def _valid(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def grasp_depth(rect: GraspRect, depth_m: np.ndarray, window: int = 5) -> float:
    """Median valid depth (metres) under the rectangle's centre third; grows a square window on holes.

    Valid means finite and > 0 (0 and NaN are the usual "no reading" values of depth cameras). If the centre
    third has no valid pixel, square windows of half-size ``window``, ``2 * window``, ... around the centre
    are tried until one has valid depth or the window covers the image.
    """
    h, w = depth_m.shape
    valid = _valid(depth_m)
    if not valid.any():
        raise ValueError("depth image has no valid pixel (all NaN, infinite or <= 0); cannot lift the grasp")
    corners = compact_rect(rect).corners()
    rr, cc = draw_polygon(corners[:, 1], corners[:, 0], shape=(h, w))
    ok = valid[rr, cc]
    if ok.any():
        return float(np.median(depth_m[rr, cc][ok]))
    r0, c0 = min(max(round(rect.y), 0), h - 1), min(max(round(rect.x), 0), w - 1)
    half = max(int(window), 1)
    while True:
        sl = (slice(max(r0 - half, 0), r0 + half + 1), slice(max(c0 - half, 0), c0 + half + 1))
        ok_win = valid[sl]
        if ok_win.any():
            return float(np.median(depth_m[sl][ok_win]))
        half *= 2  # terminates: the image has a valid pixel, and the window eventually covers it


def rect_to_pose(
    rect: GraspRect,
    depth_m: np.ndarray,
    intrinsics: IntrinsicsLike | CameraIntrinsics | np.ndarray,
    depth_offset: float = 0.0,
    window: int = 5,
) -> GraspPose:
    """Lift a pixel rectangle to a top-down :class:`GraspPose` in the camera frame.

    Args:
        rect: the grasp rectangle, in the pixel frame of ``depth_m``.
        depth_m: ``[H x W]`` depth in metres aligned with the image; NaN or 0 mark missing readings.
        intrinsics: ``CameraIntrinsics``, any object with fx/fy/cx/cy, or a ``[3 x 3]`` camera matrix.
        depth_offset: metres to push the grasp point deeper along the approach axis (camera +z), e.g. to close
            the jaws below the top surface.
        window: half-size in pixels of the first fallback window when the rectangle's centre has no depth.

    The surface depth ``d`` is the median valid depth under the rectangle's centre third (see
    :func:`grasp_depth`). The point is the back-projection of the centre pixel at ``d``, then moved by
    ``depth_offset`` along z; opening and jaw size are the pixel lengths back-projected at ``d``.
    """
    depth = np.asarray(depth_m, dtype=float)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D [H x W] array, got shape {depth.shape}")
    if not math.isfinite(depth_offset):
        raise ValueError(f"depth_offset must be finite, got {depth_offset}")
    h, w = depth.shape
    if not (-0.5 <= rect.x < w - 0.5 and -0.5 <= rect.y < h - 0.5):
        raise ValueError(f"grasp centre ({rect.x:.1f}, {rect.y:.1f}) lies outside the {w} x {h} depth image")
    k = CameraIntrinsics.coerce(intrinsics)
    d = grasp_depth(rect, depth, window)

    x = (rect.x - k.cx) * d / k.fx
    y = (rect.y - k.cy) * d / k.fy
    ca, sa = math.cos(rect.angle), math.sin(rect.angle)
    # A pixel step (du, dv) at depth d is (du * d / fx, dv * d / fy) metres: axis and lengths need both.
    axis = np.array([ca / k.fx, -sa / k.fy, 0.0])
    opening_m = rect.width * d * float(np.linalg.norm(axis))
    jaw_m = rect.height * d * math.hypot(sa / k.fx, ca / k.fy)
    gx = axis / np.linalg.norm(axis)
    gz = np.array([0.0, 0.0, 1.0])
    gy = np.cross(gz, gx)
    rot = np.column_stack([gx, gy, gz])
    quat = Rotation.from_matrix(rot).as_quat()
    if quat[3] < 0:  # q and -q are one rotation; keep w >= 0 so outputs are reproducible
        quat = -quat
    qx, qy, qz, qw = (float(v) + 0.0 for v in quat)  # + 0.0 turns -0.0 into 0.0 for tidy JSON
    return GraspPose(
        position=(float(x), float(y), float(d + depth_offset)),
        quaternion=(qx, qy, qz, qw),
        opening_m=float(opening_m),
        jaw_m=float(jaw_m),
        quality=rect.quality,
    )


def ros_stamp(stamp: float | tuple[int, int] | None) -> dict[str, int]:
    """A ROS ``builtin_interfaces/Time`` as JSON: from seconds (float), ``(sec, nanosec)``, or None (zero)."""
    if stamp is None:
        return {"sec": 0, "nanosec": 0}
    if isinstance(stamp, tuple):
        return {"sec": int(stamp[0]), "nanosec": int(stamp[1])}
    sec = math.floor(stamp)
    nanosec = round((stamp - sec) * 1e9)
    if nanosec >= 1_000_000_000:  # rounding carried into the next second
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return {"sec": int(sec), "nanosec": int(nanosec)}
