"""Grasp rectangles: the one geometric representation every other part of PRG speaks.

Conventions (the ones Cornell/Jacquard/GG-CNN results are reported in, so numbers compare):

* Pixel coordinates: ``x`` to the right (column), ``y`` down (row); the centre is in pixels.
* ``width`` is the gripper *opening*, measured along the grasp axis; ``height`` is the jaw size, perpendicular.
* ``angle`` is the direction of the grasp axis, in radians, counter-clockwise as a person looks at the image
  (so with the image's y axis pointing down, the axis direction is ``(cos a, -sin a)`` in (x, y) pixels).
  A parallel-jaw grasp is the same grasp at ``a + pi``, so angles are normalised to ``[-pi/2, pi/2)``.
* Cornell's 4-corner form: the edge ``p0 -> p1`` is the opening (length = ``width``), ``p1 -> p2`` the jaw.
* Jacquard's line form ``x;y;theta_deg;opening;jaw`` measures theta clockwise on screen (image y down), so its
  sign is the opposite of ours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon

__all__ = ["GraspRect", "angle_diff", "normalize_angle"]

_HALF_PI = math.pi / 2


def normalize_angle(angle: float) -> float:
    """Map any angle (radians) to the grasp-equivalent angle in ``[-pi/2, pi/2)``."""
    a = math.fmod(angle + _HALF_PI, math.pi)
    if a < 0:
        a += math.pi
    a -= _HALF_PI
    # fmod can land exactly on +pi/2 through rounding; that is the same grasp as -pi/2.
    if a >= _HALF_PI:
        a -= math.pi
    return a


def angle_diff(a: float, b: float) -> float:
    """Smallest difference between two grasp angles modulo pi, in ``[0, pi/2]`` radians."""
    d = abs(normalize_angle(a - b))
    return min(d, math.pi - d)


@dataclass(frozen=True)
class GraspRect:
    """An oriented parallel-jaw grasp rectangle in pixel coordinates.

    Args:
        x: centre column in pixels.
        y: centre row in pixels.
        width: gripper opening along the grasp axis, in pixels (> 0).
        height: jaw size across the grasp axis, in pixels (> 0).
        angle: grasp-axis direction in radians, counter-clockwise on screen; normalised to ``[-pi/2, pi/2)``.
        quality: optional score (for predictions), not part of the geometry.
    """

    x: float
    y: float
    width: float
    height: float
    angle: float
    quality: float | None = None

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.width, self.height, self.angle)
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError(f"grasp rectangle has a non-finite value: {values}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"grasp rectangle needs width > 0 and height > 0, got {self.width}, {self.height}")
        object.__setattr__(self, "angle", normalize_angle(float(self.angle)))

    # ------------------------------------------------------------------ geometry
    @property
    def center(self) -> tuple[float, float]:
        return (self.x, self.y)

    @property
    def axis(self) -> np.ndarray:
        """Unit vector of the grasp axis (opening direction) in (x, y) pixels, shape ``[2]``."""
        return np.array([math.cos(self.angle), -math.sin(self.angle)])

    def corners(self) -> np.ndarray:
        """The 4 corners in Cornell order as ``[4 x 2]`` (x, y); ``p0 -> p1`` is the opening edge."""
        u = self.axis * (self.width / 2)
        n = np.array([-self.axis[1], self.axis[0]]) * (self.height / 2)  # perpendicular to the axis
        c = np.array([self.x, self.y])
        return np.stack([c - u - n, c + u - n, c + u + n, c - u + n])

    def polygon(self) -> Polygon:
        return Polygon(self.corners())

    def area(self) -> float:
        return self.width * self.height

    def translated(self, dx: float, dy: float) -> GraspRect:
        return GraspRect(self.x + dx, self.y + dy, self.width, self.height, self.angle, self.quality)

    def scaled(self, s: float) -> GraspRect:
        """Scale about the image origin (resizing an image by ``s`` scales its grasps this way)."""
        return GraspRect(self.x * s, self.y * s, self.width * s, self.height * s, self.angle, self.quality)

    def flipped(self, axis: str, shape: tuple[int, int]) -> GraspRect:
        """The rectangle in the mirrored image: ``axis="x"`` is ``np.fliplr`` (left-right), ``"y"`` is
        ``np.flipud``; ``shape`` is the image's ``(H, W)``. Integer coordinates are pixel centres, so ``x``
        maps to ``W - 1 - x``; a mirror reverses the sense of rotation, so the angle becomes ``-angle``."""
        h, w = shape
        if axis == "x":
            return GraspRect(w - 1 - self.x, self.y, self.width, self.height, -self.angle, self.quality)
        if axis == "y":
            return GraspRect(self.x, h - 1 - self.y, self.width, self.height, -self.angle, self.quality)
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")

    def rot90(self, k: int, shape: tuple[int, int]) -> GraspRect:
        """The rectangle in ``np.rot90(image, k)``: ``k`` quarter turns counter-clockwise on screen (negative
        ``k`` turns clockwise) of an image of ``shape`` ``(H, W)``. The angle grows by ``k * pi/2``; the image
        becomes ``W x H`` for odd ``k``."""
        h, w = shape
        k %= 4
        x, y = self.x, self.y
        if k == 1:
            x, y = y, w - 1 - x
        elif k == 2:
            x, y = w - 1 - x, h - 1 - y
        elif k == 3:
            x, y = h - 1 - y, x
        return GraspRect(x, y, self.width, self.height, self.angle + k * _HALF_PI, self.quality)

    # ------------------------------------------------------------- conversions
    @classmethod
    def from_corners(cls, points: Sequence[Sequence[float]] | np.ndarray, quality: float | None = None) -> GraspRect:
        """Build from 4 corners ``[[x0, y0], ..., [x3, y3]]`` in Cornell order (``p0 -> p1`` is the opening).

        Cornell rectangles are not always exact rectangles (hand-clicked); centre is the mean of the corners,
        ``width = |p1 - p0|`` and ``height = |p2 - p1|``, as the field's loaders do.
        """
        p = np.asarray(points, dtype=float)
        if p.shape != (4, 2):
            raise ValueError(f"expected 4 corners as a [4 x 2] array, got shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("corner coordinates contain NaN or infinity")
        dx, dy = p[1] - p[0]
        width = float(math.hypot(dx, dy))
        height = float(np.linalg.norm(p[2] - p[1]))
        angle = math.atan2(-dy, dx)  # y axis points down: flip so angles are counter-clockwise on screen
        cx, cy = p.mean(axis=0)
        return cls(float(cx), float(cy), width, height, angle, quality)

    def to_corners(self) -> np.ndarray:
        return self.corners()

    @classmethod
    def from_polygon(cls, polygon: Polygon | Sequence[Sequence[float]]) -> GraspRect:
        """From a 4-vertex polygon whose first edge is the opening (shapely or a point list)."""
        pts = np.asarray(polygon.exterior.coords if isinstance(polygon, Polygon) else polygon, dtype=float)
        if len(pts) == 5 and np.allclose(pts[0], pts[-1]):
            pts = pts[:4]
        return cls.from_corners(pts)

    @classmethod
    def from_jacquard(cls, x: float, y: float, theta_deg: float, opening: float, jaw: float) -> GraspRect:
        """From Jacquard's ``x;y;theta_deg;opening;jaw`` (theta clockwise on screen: the sign flips)."""
        return cls(x, y, opening, jaw, -math.radians(theta_deg))

    def to_jacquard(self) -> tuple[float, float, float, float, float]:
        """As Jacquard's ``(x, y, theta_deg, opening, jaw)``; theta in ``(-90, 90]``."""
        theta = -math.degrees(self.angle)
        return (self.x, self.y, theta, self.width, self.height)

    def to_jacquard_line(self) -> str:
        return ";".join(f"{v:.6g}" for v in self.to_jacquard())

    def to_dict(self) -> dict[str, float]:
        d = {"x": self.x, "y": self.y, "width": self.width, "height": self.height, "angle": self.angle}
        if self.quality is not None:
            d["quality"] = self.quality
        return d

    def almost_equal(self, other: GraspRect, tol: float = 1e-6, angle_tol: float = 1e-6) -> bool:
        return (
            abs(self.x - other.x) <= tol
            and abs(self.y - other.y) <= tol
            and abs(self.width - other.width) <= tol
            and abs(self.height - other.height) <= tol
            and angle_diff(self.angle, other.angle) <= angle_tol
        )
