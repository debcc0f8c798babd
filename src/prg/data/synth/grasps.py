"""Ground-truth parallel-jaw grasps for a placed object, from its geometry, checked against the rendered masks.

For each graspable part the gripper closes across the part's narrow dimension at several positions along its long
axis (boxes and lying cylinders), or at several angles through the centre (upright cylinders, spheres). A
candidate survives when its opening fits the gripper, its centre pixel lies on the object's own instance mask
and neither jaw (a small rectangle at each end of the opening) covers another object's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from prg.data.synth.scene import project_points
from prg.data.synth.types import ObjectType, Part, PlacedObject, SceneSpec
from prg.grasp.rect import GraspRect

__all__ = ["OPENING_MARGIN", "min_opening_m", "object_grasps", "part_candidates"]

OPENING_MARGIN = (1.15, 0.004)  # opening = factor * part width + metres: slightly wider than the part
JAW_FRACTION = 0.5  # jaw size (rectangle height) as a fraction of the opening
JAW_DEPTH_FRACTION = 0.2  # extent of each jaw region along the opening, as a fraction of the opening
# The gripper the labels assume (prg.sim.gripper.GripperConfig and prg.sim.trial.TrialConfig defaults; a test keeps
# them equal): its pads are wider than a label's jaw on thin parts, and its palm spans 17.6 cm above the fingers.
PAD_WIDTH_M = 0.025  # pad width along the jaw (hand y)
PALM_HALF_SPAN_M = 0.088  # palm half-length along the opening
PALM_HALF_WIDTH_M = 0.025  # palm half-width along hand y
FINGER_LENGTH_M = 0.08  # fingertip to palm
CLOSE_DEPTH_M = 0.03  # the fingertips close this far below the seen surface ...
MIN_TIP_M = 0.003  # ... but no lower than this above the table
PALM_CLEARANCE_M = 0.003  # the palm must pass this far above anything under it
FINGER_THICKNESS_M = 0.008  # each finger along the opening
OPEN_MARGIN_M = 0.006  # the jaws open this much wider than the label's opening while descending
_N_ANGLES = 12  # grasps through the centre of round parts, every 15 degrees


def part_candidates(part: Part, scale: float, n_along: int = 8) -> list[tuple[float, float, float, float, float]]:
    """Candidate grasps on one part in the object frame: ``(x, y, z_top, angle, part_width)`` metres/radians.

    ``angle`` is the opening direction in the object frame; ``part_width`` what the jaws close on.
    """
    a, b, c = (v * scale for v in part.size)
    dx, dy = (v * scale for v in part.offset)
    z0 = part.z0 * scale
    out: list[tuple[float, float, float, float, float]] = []
    if part.shape in ("cylinder_z", "sphere"):
        top = z0 + (c if part.shape == "cylinder_z" else a)
        return [(dx, dy, top, k * math.pi / _N_ANGLES, a) for k in range(_N_ANGLES)]
    top = z0 + (b if part.shape == "cylinder" else c)
    # (long extent, narrow extent, long axis angle) for each way a box can be held; a lying cylinder only one.
    ways = [(a, b, 0.0)] if part.shape == "cylinder" else [(a, b, 0.0), (b, a, math.pi / 2)]
    for long_len, narrow, long_angle in ways:
        jaw = JAW_FRACTION * (OPENING_MARGIN[0] * narrow + OPENING_MARGIN[1])
        # the pads (PAD_WIDTH_M, often wider than the jaw) stay on the part: nearer its end they land on the
        # neighbouring part (a screwdriver's shaft beside its handle), which the simulated trials showed
        span = max(long_len - max(jaw, PAD_WIDTH_M), 0.0)
        k = int(np.clip(span / (0.25 * jaw), 0, n_along - 1)) + 1  # positions at least a quarter jaw apart
        for s in np.linspace(-span / 2, span / 2, k):
            x = dx + s * math.cos(long_angle)
            y = dy + s * math.sin(long_angle)
            out.append((x, y, top, long_angle + math.pi / 2, narrow))
    return out


def pair_candidates(
    parts: Sequence[Part], scale: float, n_along: int = 8
) -> list[tuple[float, float, float, float, float]]:
    """Candidates that hold two parallel graspable bars at once (pliers' or tongs' handles lying side by side),
    as :func:`part_candidates` gives them: where the bars lie closer than a finger's pad can fit between them, no
    grasp of one bar alone is free, and closing the jaws across both is how the tool is picked up."""
    bars = [p for p in parts if p.graspable and p.shape == "box"]
    out: list[tuple[float, float, float, float, float]] = []
    for i, p in enumerate(bars):
        for q in bars[i + 1 :]:
            for long_axis in (0, 1):  # both bars long along the object's x (0) or y (1)
                across = 1 - long_axis
                if not (p.size[long_axis] > p.size[across] and q.size[long_axis] > q.size[across]):
                    continue
                lo = max(p.offset[long_axis] - p.size[long_axis] / 2, q.offset[long_axis] - q.size[long_axis] / 2)
                hi = min(p.offset[long_axis] + p.size[long_axis] / 2, q.offset[long_axis] + q.size[long_axis] / 2)
                a0 = min(p.offset[across] - p.size[across] / 2, q.offset[across] - q.size[across] / 2)
                a1 = max(p.offset[across] + p.size[across] / 2, q.offset[across] + q.size[across] / 2)
                overlap, narrow = (hi - lo) * scale, (a1 - a0) * scale
                if overlap <= 0:
                    continue
                top = max(p.z0 + p.size[2], q.z0 + q.size[2]) * scale
                jaw = JAW_FRACTION * (OPENING_MARGIN[0] * narrow + OPENING_MARGIN[1])
                span = max(overlap - max(jaw, PAD_WIDTH_M), 0.0)
                k = int(np.clip(span / (0.25 * jaw), 0, n_along - 1)) + 1
                mid, centre = (lo + hi) / 2 * scale, (a0 + a1) / 2 * scale
                for t in np.linspace(-span / 2, span / 2, k):
                    along = mid + t
                    x, y = (along, centre) if long_axis == 0 else (centre, along)
                    out.append((float(x), float(y), top, math.pi / 2 if long_axis == 0 else 0.0, narrow))
    return out


def min_opening_m(obj_type: ObjectType, scale: float | None = None) -> float | None:
    """Smallest gripper opening (metres) any grasp of this object needs; None if no part is graspable.

    ``scale`` defaults to the smallest of the type's scale range, so a gripper narrower than this can never
    hold the object: generators can check this before asking for the object as a target.
    """
    s = obj_type.scale[0] if scale is None else scale
    widths = [c[4] for p in obj_type.parts if p.graspable for c in part_candidates(p, s)]
    return OPENING_MARGIN[0] * min(widths) + OPENING_MARGIN[1] if widths else None


def _rect_pixels(instances: np.ndarray, rect: GraspRect) -> np.ndarray:
    """Instance ids of the pixels whose centres lie inside ``rect`` (a tiny exact test; no polygon library)."""
    corners = rect.corners()
    u0, v0 = np.floor(corners.min(0)).astype(int)
    u1, v1 = np.ceil(corners.max(0)).astype(int) + 1
    u0, v0 = max(u0, 0), max(v0, 0)
    du = np.arange(u0, u1, dtype=np.float64)[None, :] - rect.x  # [1 x w], broadcast against [h x 1]
    dv = np.arange(v0, v1, dtype=np.float64)[:, None] - rect.y
    ax, ay = rect.axis
    inside = (np.abs(du * ax + dv * ay) <= rect.width / 2) & (np.abs(-du * ay + dv * ax) <= rect.height / 2)
    return instances[v0:v1, u0:u1][inside[: instances.shape[0] - v0, : instances.shape[1] - u0]]


def _jaws_free(rect: GraspRect, instances: np.ndarray, own_id: int) -> bool:
    """True when both jaw regions lie inside the image and cover no other object's pixels, and the fingers'
    own footprint (just outside each end of the opening, where a finger descends) covers no object at all: a
    finger landing on another part of the same object (a glove's cuff beside its palm) collides as surely as one
    landing on a neighbour (measured in MuJoCo, prg.sim: most failures of the old labels were such)."""
    h, w = instances.shape
    depth = max(JAW_DEPTH_FRACTION * rect.width, 2.0)
    for sign in (-1.0, 1.0):
        cx, cy = np.array(rect.center) + sign * rect.axis * (rect.width / 2)
        jaw = GraspRect(float(cx), float(cy), depth, rect.height, rect.angle)
        corners = jaw.corners()
        if corners.min() < 0 or corners[:, 0].max() > w - 1 or corners[:, 1].max() > h - 1:
            return False
        ids = _rect_pixels(instances, jaw)
        if np.any((ids != 0) & (ids != own_id)):
            return False
        fx, fy = np.array(rect.center) + sign * rect.axis * (rect.width / 2 + depth / 2)
        finger = GraspRect(float(fx), float(fy), depth / 2, rect.height, rect.angle)
        if np.any(_rect_pixels(instances, finger) != 0):
            return False
    return True


def _hand_clear(rect: GraspRect, heights: np.ndarray, top: float, spec: SceneSpec, fx: float) -> bool:
    """True when the hand descends onto a part whose top is ``top`` without striking anything
    (``heights``: the rendered scene's heights above the table): the palm, at the height it reaches when the
    fingertips close, passes above everything in its footprint, and each open finger (where it really is: outside
    the opening by the open margin, as wide as its pad) finds nothing taller than its tip beneath it."""
    tip = max(top - CLOSE_DEPTH_M, MIN_TIP_M)
    palm = tip + FINGER_LENGTH_M
    ppm = fx / max(spec.camera_height - palm, 1e-3)  # pixels per metre at the palm's underside
    footprint = GraspRect(rect.x, rect.y, 2 * PALM_HALF_SPAN_M * ppm, 2 * PALM_HALF_WIDTH_M * ppm, rect.angle)
    under = _rect_pixels(heights, footprint)
    if under.size and float(under.max()) >= palm - PALM_CLEARANCE_M:
        return False
    ppm = fx / max(spec.camera_height - tip, 1e-3)
    offset = rect.width / 2 + (OPEN_MARGIN_M / 2 + FINGER_THICKNESS_M / 2) * ppm
    for sign in (-1.0, 1.0):
        fx_, fy_ = np.array(rect.center) + sign * rect.axis * offset
        finger = GraspRect(float(fx_), float(fy_), FINGER_THICKNESS_M * ppm, PAD_WIDTH_M * ppm, rect.angle)
        under = _rect_pixels(heights, finger)
        if under.size and float(under.max()) >= tip:
            return False
    return True


def object_grasps(
    placed: PlacedObject,
    obj_type: ObjectType,
    spec: SceneSpec,
    instances: np.ndarray,
    max_opening_px: float,
    n_max: int = 12,
    heights: np.ndarray | None = None,
) -> list[GraspRect]:
    """Valid grasp rectangles (pixels) on one object, at most ``n_max``, spread over its candidates.

    Args:
        instances: ``[H, W]`` instance mask of the rendered scene (0 = table).
        max_opening_px: the gripper's largest opening in pixels; wider grasps are dropped.
        heights: ``[H, W]`` metres above the table (from the rendered depth); given, a grasp whose palm would
            strike something taller beside the part (another object, or the object's own taller part) is dropped.
    """
    fx = spec.image_size / 2 / math.tan(math.radians(spec.fov_deg) / 2)
    c, s = math.cos(placed.yaw), math.sin(placed.yaw)
    h, w = instances.shape
    valid: list[GraspRect] = []
    singles = [
        (cand, False) for part in obj_type.parts if part.graspable for cand in part_candidates(part, placed.scale)
    ]
    pairs = [(cand, True) for cand in pair_candidates(obj_type.parts, placed.scale)] if heights is not None else []
    for (x, y, top, angle, narrow), pair in singles + pairs:
        world = np.array([[placed.x + c * x - s * y, placed.y + s * x + c * y, top]])
        u, v = project_points(spec, world)[0]
        opening = (OPENING_MARGIN[0] * narrow + OPENING_MARGIN[1]) * fx / (spec.camera_height - top)
        if opening > max_opening_px:
            continue
        iu, iv = round(u), round(v)
        seen = instances[iv, iu] if 0 <= iu < w and 0 <= iv < h else -1
        # hidden under another object or outside the image (between a pair's bars the table shows)
        if seen != placed.instance_id and not (pair and seen == 0):
            continue
        # World angles are screen angles: world +y is image up, and GraspRect angles are CCW on screen.
        rect = GraspRect(float(u), float(v), opening, max(JAW_FRACTION * opening, 3.0), placed.yaw + angle)
        if _jaws_free(rect, instances, placed.instance_id) and (
            heights is None or _hand_clear(rect, heights, top, spec, fx)
        ):
            valid.append(rect)
    if len(valid) > n_max:
        keep = np.unique(np.linspace(0, len(valid) - 1, n_max).round().astype(int))
        valid = [valid[i] for i in keep]
    return valid
