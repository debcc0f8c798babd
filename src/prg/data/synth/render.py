"""Rendering a scene: RGB, metric depth and instance masks from the top-down camera.

Two backends draw the same :class:`SceneSpec`:

* ``"raster"`` (default, numpy only): casts one ray per pixel through a pinhole camera and intersects it
  analytically with every part's primitive (box, cylinder along x, upright cylinder, sphere); the nearest hit
  gives depth and instance id, Lambert shading gives the colour. Hand-written because the scenes are a handful of
  primitives and a general renderer on CPU (MuJoCo + OSMesa) measured ~3 scenes/s per core here, below the goal;
  this one needs nothing beyond numpy, so it also runs on GPU machines with a bare Python stack.
* ``"mujoco"``: MuJoCo's offscreen renderer on the MJCF of :func:`prg.data.synth.mjcf.scene_to_mjcf` (OSMesa on
  CPU, EGL where an NVIDIA device exists). It is the reference the raster backend is tested against.

Depth is the z-distance from the camera plane in metres (what MuJoCo's depth renderer returns), so a bare table
pixel reads ``camera_height``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from prg.data.synth.scene import camera_intrinsics, project_points
from prg.data.synth.types import ObjectType, Part, SceneSpec

__all__ = ["BACKENDS", "RenderResult", "available_backends", "import_mujoco", "render_scene"]

BACKENDS = ("raster", "mujoco")
_AMBIENT = 0.35  # matches the MJCF headlight ambient
_NOISE_LEVELS = 3  # sensor noise: uniform in [-3, 3] 8-bit levels


@dataclass
class RenderResult:
    """One rendered view.

    rgb: ``[H, W, 3]`` uint8. depth: ``[H, W]`` float32 metres from the camera plane. instances: ``[H, W]``
    uint16, 0 = table, else :attr:`PlacedObject.instance_id`. intrinsics: ``(fx, fy, cx, cy)`` pixels.
    """

    rgb: np.ndarray
    depth: np.ndarray
    instances: np.ndarray
    intrinsics: tuple[float, float, float, float]
    backend: str


# --------------------------------------------------------------------------- MuJoCo
def import_mujoco(physics_only: bool = False) -> ModuleType:
    """Import mujoco with an offscreen GL backend chosen first (EGL on NVIDIA machines, else OSMesa).

    MUJOCO_GL must be set before the first import; an explicit user setting wins. ``physics_only`` (simulated
    trials, which render nothing): where the chosen GL library is missing (an NVIDIA host without libEGL, as the
    lent GPU host is), import mujoco again with its rendering disabled (``MUJOCO_GL=disable``) instead of failing.
    """
    if "mujoco" in sys.modules:
        return sys.modules["mujoco"]
    chosen_by_user = "MUJOCO_GL" in os.environ
    os.environ.setdefault("MUJOCO_GL", "egl" if os.path.exists("/dev/nvidiactl") else "osmesa")
    try:
        import mujoco
    except (ImportError, AttributeError, OSError):
        # PyOpenGL raises AttributeError/OSError at import when the GL library (libEGL, libOSMesa) is absent
        if not physics_only or chosen_by_user:
            raise
        for name in [m for m in sys.modules if m.split(".")[0] in ("mujoco", "OpenGL")]:
            del sys.modules[name]  # the failed import's half-initialised modules
        os.environ["MUJOCO_GL"] = "disable"
        import mujoco
    return mujoco


def available_backends() -> list[str]:
    """Backends that can run here, fastest first."""
    out = ["raster"]
    try:
        import_mujoco()
        out.append("mujoco")
    except (ImportError, AttributeError, OSError):
        # PyOpenGL raises AttributeError/OSError at import when the GL library (libEGL, libOSMesa) is absent
        pass
    return out


def _render_mujoco(spec: SceneSpec, types: Mapping[str, ObjectType]) -> RenderResult:
    from prg.data.synth.mjcf import body_name, scene_to_mjcf

    mujoco = import_mujoco()
    model = mujoco.MjModel.from_xml_string(scene_to_mjcf(spec, types))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    size = spec.image_size
    # geom id -> instance id (table and anything else -> 0)
    ids = {body_name(o.instance_id): o.instance_id for o in [*spec.objects, *spec.clutter]}
    geom_to_inst = np.zeros(model.ngeom + 1, dtype=np.uint16)
    for g in range(model.ngeom):
        geom_to_inst[g] = ids.get(model.body(model.geom_bodyid[g]).name, 0)
    renderer = mujoco.Renderer(model, size, size)
    try:
        renderer.update_scene(data, "top")
        rgb = renderer.render().copy()
        renderer.enable_depth_rendering()
        renderer.update_scene(data, "top")
        depth = renderer.render().astype(np.float32)
        renderer.disable_depth_rendering()
        renderer.enable_segmentation_rendering()
        renderer.update_scene(data, "top")
        seg = renderer.render()
        renderer.disable_segmentation_rendering()
    finally:
        renderer.close()
    is_geom = seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
    instances = np.where(is_geom, geom_to_inst[np.where(is_geom, seg[..., 0], model.ngeom)], 0).astype(np.uint16)
    return RenderResult(rgb, depth, instances, camera_intrinsics(spec), "mujoco")


# --------------------------------------------------------------------------- ray casting
# Arrays below are [h, w] over one part's pixel box; directions have dz = -1, so the ray parameter t is the depth.
Arr = np.ndarray


def _quadratic(a: Arr | float, b: Arr, c: float) -> Arr:
    """Smaller root of ``a t^2 + 2 b t + c = 0`` (inf where none)."""
    disc = b * b - a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
    return np.where(disc >= 0, t, np.inf)


def _intersect(shape: str, half: Arr, o: Arr, d: list[Arr]) -> tuple[Arr, list[Arr]]:
    """Ray-primitive hits in the primitive's centred, axis-aligned frame.

    o: ray origin ``[3]``; d: direction components ``[dx, dy, dz]`` (arrays or scalars broadcasting to
    ``[h, w]``); half: half extents ``(hx, hy, hz)``. Returns t ``[h, w]`` (inf on a miss) and the unit normal's
    three components.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if shape == "box":
            slabs = []
            for k in range(3):
                t1, t2 = (-half[k] - o[k]) / d[k], (half[k] - o[k]) / d[k]
                slabs.append((np.minimum(t1, t2), np.maximum(t1, t2)))
            near = np.maximum(np.maximum(slabs[0][0], slabs[1][0]), slabs[2][0])
            far = np.minimum(np.minimum(slabs[0][1], slabs[1][1]), slabs[2][1])
            t = np.where((near <= far) & (near > 0), near, np.inf)
            return t, [np.where(slabs[k][0] == near, -np.sign(d[k]), 0.0) for k in range(3)]
        if shape == "sphere":
            r = half[0]
            a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            t = _quadratic(a, o[0] * d[0] + o[1] * d[1] + o[2] * d[2], float(o @ o - r * r))
            return t, [(o[k] + t * d[k]) / r for k in range(3)]
        # Cylinders: ``ax`` is the axis, (i, j) the cross-section plane.
        ax, (i, j) = (0, (1, 2)) if shape == "cylinder" else (2, (0, 1))
        r, h = half[i], half[ax]
        a = d[i] * d[i] + d[j] * d[j]
        t_side = _quadratic(a, o[i] * d[i] + o[j] * d[j], float(o[i] ** 2 + o[j] ** 2 - r * r))
        best = np.where(np.abs(o[ax] + t_side * d[ax]) <= h, t_side, np.inf)
        cap = np.zeros_like(best)  # 0: side, +-1: which cap
        for sign in (-1.0, 1.0):
            tc = (sign * h - o[ax]) / d[ax]
            pi, pj = o[i] + tc * d[i], o[j] + tc * d[j]
            tc = np.where((pi * pi + pj * pj <= r * r) & (tc > 0), tc, np.inf)
            closer = tc < best
            best = np.where(closer, tc, best)
            cap = np.where(closer, sign, cap)
        side = cap == 0
        normal: list[Arr] = [cap, cap, cap]  # the axis entry stays the cap sign
        normal[i] = np.where(side, (o[i] + best * d[i]) / r, 0.0)
        normal[j] = np.where(side, (o[j] + best * d[j]) / r, 0.0)
        return best, normal


def _part_frame(part: Part, scale: float) -> tuple[str, Arr, Arr]:
    """(shape, half extents, centre) of a part in its object's frame, metres."""
    a, b, c = (v * scale for v in part.size)
    if part.shape == "cylinder_z":
        half = np.array([a, a, c]) / 2
    elif part.shape == "sphere":
        half = np.array([a, a, a]) / 2
    else:  # box, cylinder along x: (length, width/diameter, height/diameter)
        half = np.array([a, b, c]) / 2
    centre = np.array([part.offset[0] * scale, part.offset[1] * scale, part.z0 * scale + half[2]])
    return part.shape, half, centre


def _roi(spec: SceneSpec, corners_world: Arr) -> tuple[int, int, int, int] | None:
    """Pixel box ``(u0, u1, v0, v1)`` (exclusive ends) around the projection of world points ``[N x 3]``."""
    uv = project_points(spec, corners_world)
    size = spec.image_size
    u0, v0 = np.floor(uv.min(0)).astype(int) - 1
    u1, v1 = np.ceil(uv.max(0)).astype(int) + 2
    u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, size), min(v1, size)
    return (u0, u1, v0, v1) if u0 < u1 and v0 < v1 else None


def _table_texture(spec: SceneSpec, x: Arr, y: Arr, rng: np.random.Generator) -> Arr:
    """Brightness factor ``[H, W]`` of the table top at world points x ``[1, W]``, y ``[H, 1]``."""
    shape = (y.shape[0], x.shape[1])
    kind = spec.table_texture
    if kind == "wood":
        phase = rng.uniform(0, 2 * math.pi)
        grain = np.sin(2 * math.pi * (y * 30 + 0.8 * np.sin(x * 6 + phase)))
        return (1.0 + 0.07 * grain + 0.03 * np.sin(2 * math.pi * y * 7 + phase)).astype(np.float32)
    if kind == "grid":
        pitch = 0.05
        gx = np.abs((x / pitch) % 1.0 - 0.5) > 0.46
        gy = np.abs((y / pitch) % 1.0 - 0.5) > 0.46
        return np.where(gx | gy, 0.75, 1.0).astype(np.float32)
    if kind == "mat":
        return 0.92 + 0.08 * rng.random(shape, dtype=np.float32)
    return np.ones(shape, dtype=np.float32)


def _render_raster(spec: SceneSpec, types: Mapping[str, ObjectType]) -> RenderResult:
    size = spec.image_size
    fx, fy, cx, cy = camera_intrinsics(spec)
    rng = np.random.default_rng(spec.seed)
    h = spec.camera_height
    u = ((np.arange(size) - cx) / fx)[None, :]  # [1, W] ray direction x per column
    v = (-(np.arange(size) - cy) / fy)[:, None]  # [H, 1] ray direction y per row (image y is down)
    depth = np.full((size, size), h, dtype=np.float64)
    instances = np.zeros((size, size), dtype=np.uint16)
    light = np.asarray(spec.light_dir, dtype=float)
    light /= np.linalg.norm(light)

    # Table: every ray hits z = 0 at t = h; texture in world coordinates so it does not move with the camera.
    table_rgb = np.asarray(spec.table_colour, dtype=np.float32)
    shade = (_AMBIENT + spec.light_intensity * light[2]) * _table_texture(spec, h * u, h * v, rng)
    rgb = table_rgb[None, None, :] * shade[..., None]  # [H, W, 3] float32

    box_corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    for placed in [*spec.objects, *spec.clutter]:
        c, s = math.cos(placed.yaw), math.sin(placed.yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # object -> world
        origin = np.array([placed.x, placed.y, 0.0])
        o_obj = rot.T @ (np.array([0.0, 0.0, h]) - origin)  # camera centre in the object frame
        for part in types[placed.type_key].parts:
            shape, half, centre = _part_frame(part, placed.scale)
            # Each part is cast only over the pixels of its own bounding box: thin diagonal tools cover few.
            roi = _roi(spec, (centre + box_corners * half) @ rot.T + origin)
            if roi is None:
                continue
            u0, u1, v0, v1 = roi
            uu, vv = u[:, u0:u1], v[v0:v1, :]
            d: list[Arr] = [c * uu + s * vv, -s * uu + c * vv, np.full((1, 1), -1.0)]  # rot.T @ (u, v, -1)
            t, n = _intersect(shape, half, o_obj - centre, d)
            view = depth[v0:v1, u0:u1]
            hit = t < view
            if not hit.any():
                continue
            nx, ny, nz = (np.broadcast_to(nk, hit.shape)[hit] for nk in n)  # normals only where hit
            lambert = (c * nx - s * ny) * light[0] + (s * nx + c * ny) * light[1] + nz * light[2]
            lambert = np.clip(lambert, 0.0, None)
            base = np.asarray(placed.colours.get(part.role, (128, 128, 128)), dtype=np.float32)
            view[hit] = t[hit]
            instances[v0:v1, u0:u1][hit] = placed.instance_id
            rgb[v0:v1, u0:u1][hit] = base[None, :] * (_AMBIENT + spec.light_intensity * lambert)[:, None]

    # Sensor noise: uniform integer levels (std 2) cost a third of Gaussian draws at this size.
    rgb += rng.integers(-_NOISE_LEVELS, _NOISE_LEVELS + 1, size=rgb.shape, dtype=np.int8)
    rgb8 = np.clip(rgb, 0, 255).astype(np.uint8)
    return RenderResult(rgb8, depth.astype(np.float32), instances, (fx, fy, cx, cy), "raster")


def render_scene(spec: SceneSpec, types: Mapping[str, ObjectType], backend: str = "auto") -> RenderResult:
    """Render RGB ``[H,W,3]`` uint8, depth ``[H,W]`` float32 metres and instances ``[H,W]`` uint16.

    ``backend``: ``"raster"``, ``"mujoco"`` or ``"auto"`` (the fastest available: raster, see the module doc).
    Deterministic: the same spec gives identical arrays.
    """
    if backend in ("auto", "raster"):
        return _render_raster(spec, types)
    if backend == "mujoco":
        return _render_mujoco(spec, types)
    raise ValueError(f"unknown render backend {backend!r}; choose from {('auto', *BACKENDS)}")
