"""Sampling tabletop scenes: which objects, where, and how they are lit and seen.

World frame: metres, the table top is the plane ``z = 0``, x right, y away from the viewer, z up. The camera is
a pinhole at ``(0, 0, camera_height)`` looking straight down (-z), image columns along +x and image rows along -y
(the top of the image is the far edge of the table). This is MuJoCo's default camera orientation, so the MJCF
camera needs no rotation. Pixel ``(u, v)`` has its centre at integer coordinates; the principal point is the
image centre ``((W - 1) / 2, (H - 1) / 2)``.

Instance ids: objects are ``1..len(objects)``; clutter continues with ``len(objects) + 1, ...`` so masks are
unique; ``0`` is the table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import numpy as np
from shapely import affinity
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from prg.data.synth.types import ObjectType, Part, PlacedObject, SceneSpec

__all__ = [
    "MAX_OBJECTS",
    "SceneSamplingError",
    "camera_intrinsics",
    "footprint",
    "metres_to_pixels",
    "project_points",
    "sample_scene",
    "scene_from_json",
    "scene_to_json",
]

TEXTURES = ("plain", "wood", "mat", "grid")
# Muted table tops (RGB) that real workbenches have; jittered per scene.
_TABLE_COLOURS = (
    (200, 190, 170),
    (150, 110, 75),
    (90, 95, 100),
    (60, 110, 80),
    (215, 215, 210),
    (45, 50, 60),
)
_FALLBACK_RGB = (128, 128, 128)
_MAX_FILL = 0.22  # largest fraction of the visible table the objects' footprints may cover
_LAYOUT_RESTARTS = 4
MAX_OBJECTS = 8  # objects per scene, clutter not counted (more rarely fit: the table widens to 0.9 m at most)


class SceneSamplingError(RuntimeError):
    """Raised when objects cannot be placed without overlap in the bounded number of tries."""


# --------------------------------------------------------------------------- camera
def camera_intrinsics(spec: SceneSpec) -> tuple[float, float, float, float]:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` in pixels for the square top-down camera (fov is vertical)."""
    f = (spec.image_size / 2) / math.tan(math.radians(spec.fov_deg) / 2)
    c = (spec.image_size - 1) / 2
    return (f, f, c, c)


def project_points(spec: SceneSpec, points: np.ndarray) -> np.ndarray:
    """Project world points ``[N x 3]`` (metres) to pixels ``[N x 2]`` (u right, v down)."""
    fx, fy, cx, cy = camera_intrinsics(spec)
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    depth = spec.camera_height - p[:, 2]
    return np.stack([cx + fx * p[:, 0] / depth, cy - fy * p[:, 1] / depth], axis=1)


def metres_to_pixels(spec: SceneSpec, length: float, z: float = 0.0) -> float:
    """Image length in pixels of ``length`` metres lying flat at height ``z`` (e.g. a gripper's max opening)."""
    return length * camera_intrinsics(spec)[0] / (spec.camera_height - z)


def visible_half_width(spec: SceneSpec, z: float = 0.0) -> float:
    """Half the side (metres) of the square of the plane at height ``z`` that the camera sees."""
    return (spec.camera_height - z) * math.tan(math.radians(spec.fov_deg) / 2)


# --------------------------------------------------------------------------- geometry
def part_footprint(shape: str, size: tuple[float, float, float]) -> tuple[float, float]:
    """Footprint ``(extent_x, extent_y)`` of one part in the object frame, metres."""
    if shape == "cylinder_z":
        return (size[0], size[0])
    return (size[0], size[1])


@lru_cache(maxsize=4096)
def _unit_footprint(parts: tuple[Part, ...]) -> Polygon:
    """Footprint at scale 1, yaw 0, at the origin (cached: every placement try moves this one shape)."""
    rects = []
    for part in parts:
        ex, ey = part_footprint(part.shape, part.size)
        dx, dy = part.offset
        rects.append(box(dx - ex / 2, dy - ey / 2, dx + ex / 2, dy + ey / 2))
    return unary_union(rects)


def footprint(obj_type: ObjectType, x: float, y: float, yaw: float, scale: float, margin: float = 0.0) -> Polygon:
    """The object's footprint on the table as a shapely polygon (union of rotated part rectangles)."""
    c, s = math.cos(yaw) * scale, math.sin(yaw) * scale
    poly = affinity.affine_transform(_unit_footprint(obj_type.parts), [c, -s, s, c, x, y])
    return poly.buffer(margin, join_style="mitre") if margin > 0 else poly


def object_height(obj_type: ObjectType, scale: float = 1.0) -> float:
    """Highest point of the object above the table, metres."""
    return scale * max(p.z0 + p.size[2] for p in obj_type.parts)


# --------------------------------------------------------------------------- sampling
def _choose_objects(
    rng: np.random.Generator,
    types: Mapping[str, ObjectType],
    required: Sequence[str],
    n_objects: int,
    pool: Sequence[str],
) -> list[str]:
    """Required keys, then their look-alikes (so the image alone does not decide), then random distractors."""
    chosen = list(required)
    lookalikes = [k for r in required for k in types[r].lookalikes if k in types and k not in chosen]
    lookalikes = list(dict.fromkeys(lookalikes))  # de-duplicate, keep order
    rng.shuffle(lookalikes)
    for key in lookalikes:
        if len(chosen) >= n_objects:
            break
        chosen.append(key)
    rest = [k for k in pool if k in types and k not in chosen]
    if len(chosen) < n_objects and not rest:
        rest = [k for k in pool if k in types]  # pool too small: allow a second instance of a type
    while len(chosen) < n_objects and rest:
        key = rest[int(rng.integers(len(rest)))]
        chosen.append(key)
        if key in rest and len(rest) > 1:
            rest.remove(key)
    return chosen


Occupied = tuple[Polygon, float, float, float]  # footprint, centre x, centre y, bounding radius


def _place(
    rng: np.random.Generator,
    obj_type: ObjectType,
    half: float,
    occupied: list[Occupied],
    margin: float,
    max_tries: int,
) -> tuple[float, float, float, float, Occupied] | None:
    """Rejection-sample a free pose inside ``[-half, half]^2``; None after ``max_tries`` tries."""
    scale = float(rng.uniform(*obj_type.scale))
    base = footprint(obj_type, 0.0, 0.0, 0.0, scale)  # built once, moved per try
    padded = base.buffer(margin, join_style="mitre")
    hull = np.asarray(base.convex_hull.exterior.coords)  # [K x 2]
    radius = float(np.hypot(hull[:, 0], hull[:, 1]).max())
    for _ in range(max_tries):
        yaw = float(rng.uniform(-math.pi, math.pi))
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
        c, s = math.cos(yaw), math.sin(yaw)
        # Cheap tests first (numpy bounds, bounding circles); shapely only for the close calls.
        px, py = hull[:, 0] * c - hull[:, 1] * s + x, hull[:, 0] * s + hull[:, 1] * c + y
        if min(px.min(), py.min()) < -half or max(px.max(), py.max()) > half:
            continue
        near = [o for o in occupied if math.hypot(o[1] - x, o[2] - y) < radius + o[3] + margin]
        if near:
            moved = affinity.affine_transform(padded, [c, -s, s, c, x, y])
            if any(moved.intersects(o[0]) for o in near):
                continue
        poly = affinity.affine_transform(base, [c, -s, s, c, x, y])
        return x, y, yaw, scale, (poly, x, y, radius)
    return None


def _colours(rng: np.random.Generator, obj_type: ObjectType) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for role, variants in obj_type.colours.items():
        rgb = variants[int(rng.integers(len(variants)))] if variants else _FALLBACK_RGB
        out[role] = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    return out


def sample_scene(
    rng: np.random.Generator,
    types: Mapping[str, ObjectType],
    required: Sequence[str],
    n_objects: int,
    pool: Sequence[str],
    clutter_pool: Sequence[str] = (),
    image_size: int = 448,
    seed: int = 0,
    margin: float = 0.01,
    max_tries: int = 300,
    n_clutter: tuple[int, int] = (0, 3),
) -> SceneSpec:
    """Sample one scene: the ``required`` objects, look-alike and random distractors, clutter, light and camera.

    Footprints never overlap (each is padded by ``margin`` metres) and stay inside the camera's view of the
    table. Deterministic for a given ``rng`` state. ``seed`` is stored in the spec (it seeds render noise).

    Raises:
        ValueError: unknown keys or ``n_objects`` outside 1..8 / below ``len(required)``.
        SceneSamplingError: an object found no free place in ``max_tries`` tries.
    """
    if not 1 <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in 1..{MAX_OBJECTS}, got {n_objects}")
    if len(required) > n_objects:
        raise ValueError(f"{len(required)} required objects do not fit in n_objects={n_objects}")
    unknown = [k for k in (*required, *clutter_pool) if k not in types]
    if unknown:
        raise ValueError(f"unknown object type keys: {unknown}")

    keys = _choose_objects(rng, types, required, n_objects, pool)
    camera_height = float(rng.uniform(0.6, 0.8))
    # Metres of table the image covers: a random size, widened when the objects would fill more than
    # _MAX_FILL of it (big items such as gloves and meters), so random placement still succeeds.
    area = sum(_unit_footprint(types[k].parts).area * types[k].scale[1] ** 2 for k in keys)
    table_side = float(np.clip(max(rng.uniform(0.5, 0.62), math.sqrt(area / _MAX_FILL)), 0.5, 0.9))
    fov_deg = math.degrees(2 * math.atan(table_side / 2 / camera_height))
    # Largest first: big objects are the hardest to fit, so they go on the empty table.
    order = sorted(range(len(keys)), key=lambda i: -_unit_footprint(types[keys[i]].parts).area)

    failure = ""
    for _ in range(_LAYOUT_RESTARTS):  # an unlucky early placement can block the rest: start the layout again
        occupied: list[Occupied] = []
        placed: dict[int, PlacedObject] = {}
        for i in order:
            t = types[keys[i]]
            # A tall point is seen further out than its footprint (perspective): shrink the area to keep it in view.
            half = 0.94 * table_side / 2 * (1 - object_height(t, t.scale[1]) / camera_height)
            got = _place(rng, t, half, occupied, margin, max_tries)
            if got is None:
                failure = (
                    f"could not place {keys[i]!r} without overlap in {max_tries} tries x {_LAYOUT_RESTARTS} layouts "
                    f"({len(occupied)} objects already on a {table_side:.2f} m table); use fewer or smaller objects"
                )
                break
            x, y, yaw, scale, poly = got
            occupied.append(poly)
            placed[i] = PlacedObject(i + 1, keys[i], x, y, yaw, scale, _colours(rng, t))
        else:
            break
    else:
        raise SceneSamplingError(failure)
    objects = [placed[i] for i in range(len(keys))]

    clutter: list[PlacedObject] = []
    if clutter_pool:
        for _ in range(int(rng.integers(n_clutter[0], n_clutter[1] + 1))):
            key = clutter_pool[int(rng.integers(len(clutter_pool)))]
            t = types[key]
            half = 0.94 * table_side / 2 * (1 - object_height(t, t.scale[1]) / camera_height)
            got = _place(rng, t, half, occupied, margin, max_tries // 3)
            if got is None:  # clutter is optional: a full table simply gets less of it
                continue
            x, y, yaw, scale, poly = got
            occupied.append(poly)
            clutter.append(PlacedObject(len(objects) + len(clutter) + 1, key, x, y, yaw, scale, _colours(rng, t)))

    base = np.array(_TABLE_COLOURS[int(rng.integers(len(_TABLE_COLOURS)))], dtype=float)
    table_colour = tuple(int(v) for v in np.clip(base + rng.normal(0, 12, size=3), 0, 255))
    elevation = float(rng.uniform(math.radians(50), math.radians(85)))
    azimuth = float(rng.uniform(-math.pi, math.pi))
    light_dir = (
        math.cos(elevation) * math.cos(azimuth),
        math.cos(elevation) * math.sin(azimuth),
        math.sin(elevation),
    )
    return SceneSpec(
        seed=int(seed),
        objects=objects,
        table_colour=(table_colour[0], table_colour[1], table_colour[2]),
        table_texture=TEXTURES[int(rng.integers(len(TEXTURES)))],
        light_dir=light_dir,
        light_intensity=float(rng.uniform(0.6, 1.0)),
        camera_height=camera_height,
        fov_deg=fov_deg,
        image_size=int(image_size),
        clutter=clutter,
    )


# --------------------------------------------------------------------------- JSON
def _placed_from_dict(d: Mapping[str, Any]) -> PlacedObject:
    colours = {k: (int(v[0]), int(v[1]), int(v[2])) for k, v in d["colours"].items()}
    return PlacedObject(
        int(d["instance_id"]), str(d["type_key"]), float(d["x"]), float(d["y"]), float(d["yaw"]),
        float(d["scale"]), colours,
    )  # fmt: skip


def scene_to_json(spec: SceneSpec) -> str:
    """The scene as plain JSON text (no pickle; readable by any language)."""
    return json.dumps(asdict(spec), sort_keys=True)


def scene_from_json(text: str) -> SceneSpec:
    """Inverse of :func:`scene_to_json`; tuples come back as tuples so specs compare equal."""
    d = json.loads(text)
    tc = d["table_colour"]
    ld = d["light_dir"]
    return SceneSpec(
        seed=int(d["seed"]),
        objects=[_placed_from_dict(o) for o in d["objects"]],
        table_colour=(int(tc[0]), int(tc[1]), int(tc[2])),
        table_texture=str(d["table_texture"]),
        light_dir=(float(ld[0]), float(ld[1]), float(ld[2])),
        light_intensity=float(d["light_intensity"]),
        camera_height=float(d["camera_height"]),
        fov_deg=float(d["fov_deg"]),
        image_size=int(d["image_size"]),
        clutter=[_placed_from_dict(o) for o in d.get("clutter", [])],
    )
