"""A scene as MuJoCo MJCF: the same file renders the image and lets a simulated gripper act on the scene.

Every object (and clutter item) is a body named ``inst{instance_id}`` with a free joint, so physics can move it;
each :class:`~prg.data.synth.types.Part` becomes one geom (``inst{id}_p{k}``). The table is the plane ``z = 0``.
The fixed camera ``top`` sits at ``(0, 0, camera_height)`` with MuJoCo's default orientation (looking down -z,
image up = +y), and ``fovy = fov_deg``, so its intrinsics are :func:`prg.data.synth.scene.camera_intrinsics`.
This module only writes text; it does not import mujoco.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from prg.data.synth.types import ObjectType, Part, PlacedObject, SceneSpec

__all__ = ["FRICTION", "body_name", "scene_to_mjcf"]

# Sliding friction per material hint (torsional and rolling stay small, MuJoCo's defaults scaled).
FRICTION: dict[str, float] = {
    "metal": 0.5, "steel": 0.5, "aluminium": 0.5, "plastic": 0.7, "rubber": 1.1,
    "wood": 0.6, "glass": 0.4, "ceramic": 0.5, "fabric": 0.9, "paper": 0.6,
}  # fmt: skip
_DEFAULT_FRICTION = 0.7


def body_name(instance_id: int) -> str:
    """Name of the MJCF body of an instance (its id is also the value in the instance mask)."""
    return f"inst{instance_id}"


def _f(*values: float) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def _rgba(rgb: tuple[int, int, int]) -> str:
    return _f(rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, 1.0)


def part_volume(part: Part, scale: float = 1.0) -> float:
    """Volume of a part in m^3 (for splitting an object's mass over its geoms)."""
    a, b, c = (v * scale for v in part.size)
    if part.shape == "box":
        return a * b * c
    if part.shape == "cylinder":
        return math.pi * (b / 2) ** 2 * a
    if part.shape == "cylinder_z":
        return math.pi * (a / 2) ** 2 * c
    return 4 / 3 * math.pi * (a / 2) ** 3


def part_geom_attrs(part: Part, scale: float) -> dict[str, str]:
    """MJCF geom attributes (type, size, pos, orientation) for a part in its body's frame."""
    a, b, c = (v * scale for v in part.size)
    dx, dy = (v * scale for v in part.offset)
    z0 = part.z0 * scale
    if part.shape == "box":
        return {"type": "box", "size": _f(a / 2, b / 2, c / 2), "pos": _f(dx, dy, z0 + c / 2)}
    if part.shape == "cylinder":  # lying along the object's x axis
        return {"type": "cylinder", "size": _f(b / 2, a / 2), "pos": _f(dx, dy, z0 + b / 2), "zaxis": "1 0 0"}
    if part.shape == "cylinder_z":
        return {"type": "cylinder", "size": _f(a / 2, c / 2), "pos": _f(dx, dy, z0 + c / 2)}
    if part.shape == "sphere":
        return {"type": "sphere", "size": _f(a / 2), "pos": _f(dx, dy, z0 + a / 2)}
    raise ValueError(f"unknown part shape {part.shape!r}")


def _add_body(world: ET.Element, placed: PlacedObject, obj_type: ObjectType) -> None:
    yaw = placed.yaw
    body = ET.SubElement(
        world,
        "body",
        name=body_name(placed.instance_id),
        pos=_f(placed.x, placed.y, 0.0),
        quat=_f(math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)),
    )
    ET.SubElement(body, "freejoint", name=f"{body_name(placed.instance_id)}_free")
    volumes = [part_volume(p, placed.scale) for p in obj_type.parts]
    total = sum(volumes) or 1.0
    friction = FRICTION.get(obj_type.material, _DEFAULT_FRICTION)
    for k, (part, vol) in enumerate(zip(obj_type.parts, volumes, strict=True)):
        rgb = placed.colours.get(part.role, (128, 128, 128))
        attrs = {
            "name": f"{body_name(placed.instance_id)}_p{k}",
            "rgba": _rgba(rgb),
            "mass": _f(max(obj_type.mass * vol / total, 1e-4)),
            "friction": _f(friction, 0.005, 0.0001),
            **part_geom_attrs(part, placed.scale),
        }
        ET.SubElement(body, "geom", attrs)


def scene_to_mjcf(spec: SceneSpec, types: Mapping[str, ObjectType]) -> str:
    """MJCF XML text of the scene: table plane, one free body per object/clutter item, camera ``top``, a light."""
    root = ET.Element("mujoco", model=f"prg_synth_{spec.seed}")
    ET.SubElement(root, "compiler", angle="radian")
    ET.SubElement(root, "option", timestep="0.002")
    # extent=1 makes znear/zfar below absolute metres (MuJoCo scales them by the model extent).
    ET.SubElement(root, "statistic", extent="1", center="0 0 0.2")
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "global", offwidth=str(spec.image_size), offheight=str(spec.image_size))
    ET.SubElement(visual, "map", znear="0.02", zfar="5")
    ET.SubElement(visual, "quality", shadowsize="2048")
    amb = 0.35
    ET.SubElement(visual, "headlight", ambient=_f(amb, amb, amb), diffuse="0 0 0", specular="0 0 0")

    world = ET.SubElement(root, "worldbody")
    half = 1.5 * spec.camera_height * math.tan(math.radians(spec.fov_deg) / 2)  # table a bit larger than the view
    ET.SubElement(
        world, "geom", name="table", type="plane", size=_f(half, half, 0.05), rgba=_rgba(spec.table_colour),
        friction=_f(0.8, 0.005, 0.0001),
    )  # fmt: skip
    lx, ly, lz = spec.light_dir  # points from the scene towards the light
    i = spec.light_intensity
    ET.SubElement(
        world, "light", name="sun", directional="true", pos=_f(lx, ly, lz), dir=_f(-lx, -ly, -lz),
        diffuse=_f(i, i, i), specular="0.1 0.1 0.1", castshadow="true",
    )  # fmt: skip
    ET.SubElement(world, "camera", name="top", pos=_f(0.0, 0.0, spec.camera_height), fovy=_f(spec.fov_deg))
    for placed in [*spec.objects, *spec.clutter]:
        _add_body(world, placed, types[placed.type_key])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
