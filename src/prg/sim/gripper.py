"""A parallel-jaw gripper in MJCF, of the class the PRG-Synth labels assume (a 2F-140-style 0.14 m opening).

Frames. The hand body's origin is the *tool centre point* (TCP): midway between the two fingers' inner faces, at
the height of the fingertips. Hand ``z`` is the approach direction (it points from the palm towards the object),
hand ``x`` the opening direction, ``y = z x x``: the frame of :class:`prg.grasp.pose.GraspPose`, so a pose maps to
the hand with no extra rotation.

Drive. The hand is a free body welded to a mocap body (``grip_mocap``): the trial moves the mocap, the weld pulls
the hand after it through a stiff but finite constraint. A mocap body alone is kinematic and would push through
the table and objects with unbounded force; welded, the hand stops at what it hits, so collisions are measured, not
hidden. The hand and fingers have gravity compensation (``gravcomp``), so the weld carries only what is grasped.

Fingers. Each finger is a box on its own slide joint (joint value = distance of its inner face from the TCP,
0 = closed) with a position actuator whose force is clipped to ``grip_force_n``: the jaws close until they meet
the object and then squeeze with at most that force, the force limit of a real parallel gripper. Joint damping
sets the closing speed (force limit / damping, about 0.2 m/s) so the jaws do not slam the object away.

Contacts. Finger pads are rubber (sliding friction 1.0, torsional 0.01 m, condim 4: torsional friction resists
the object pivoting about the jaw axis when it is held off its centre of mass). MuJoCo combines two geoms'
friction by taking the larger value per component, so with PRG-Synth's 0.4-1.1 object friction the pad value
usually decides. All gripper geoms collide with the table and every object (contype/conaffinity 1, as the scene's
geoms); the palm is a box above the fingers, so tall neighbours hit it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = ["FINGERS", "GripperConfig", "attach_gripper"]

FINGERS = ("grip_left_pad", "grip_right_pad")  # geom names of the two finger pads (left: hand -x side)


@dataclass(frozen=True)
class GripperConfig:
    """Geometry and drive of the gripper (metres, newtons, kilograms)."""

    max_opening_m: float = 0.14  # between the inner faces, fully open
    finger_length_m: float = 0.08  # fingertip to palm
    finger_thickness_m: float = 0.008  # along the opening direction
    pad_width_m: float = 0.025  # along hand y (the jaw size of the pads)
    palm_height_m: float = 0.03
    grip_force_n: float = 20.0  # per finger, the actuator's force limit
    finger_kp: float = 2000.0  # N/m: saturates at the force limit 1 cm before the commanded position
    finger_damping: float = 100.0  # N s/m on each slide joint
    finger_mass_kg: float = 0.05
    palm_mass_kg: float = 0.5
    pad_friction: tuple[float, float, float] = (1.0, 0.01, 0.0001)
    weld_solref: tuple[float, float] = (0.01, 1.0)  # time constant (s) and damping ratio of the hand's weld
    pad_solref: tuple[float, float] = (0.004, 1.0)  # stiffest MuJoCo allows at a 2 ms step (2 x timestep)
    pad_solimp: tuple[float, float, float] = (0.99, 0.999, 0.001)  # near-hard contact from 1 mm of overlap
    timestep: float | None = None  # override the scene's step (s); None keeps it

    def __post_init__(self) -> None:
        for name in ("max_opening_m", "finger_length_m", "finger_thickness_m", "pad_width_m", "grip_force_n"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"GripperConfig.{name} must be a positive number, got {v}")


def _f(*values: float) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def _hand(world: ET.Element, cfg: GripperConfig) -> None:
    ET.SubElement(world, "body", name="grip_mocap", mocap="true", pos="0 0 1")
    hand = ET.SubElement(world, "body", name="grip_hand", pos="0 0 1", gravcomp="1")
    ET.SubElement(hand, "freejoint", name="grip_free")
    half_span = cfg.max_opening_m / 2 + cfg.finger_thickness_m + 0.01
    ET.SubElement(
        hand, "geom", name="grip_palm", type="box", rgba="0.25 0.25 0.28 1", mass=_f(cfg.palm_mass_kg),
        size=_f(half_span, cfg.pad_width_m, cfg.palm_height_m / 2),
        pos=_f(0, 0, -cfg.finger_length_m - cfg.palm_height_m / 2),
    )  # fmt: skip
    # Finger bodies sit at the TCP; the slide joint moves each along -x (left) or +x (right) by its joint value.
    for side, sign in (("left", -1.0), ("right", 1.0)):
        finger = ET.SubElement(hand, "body", name=f"grip_{side}", pos="0 0 0", gravcomp="1")
        ET.SubElement(
            finger, "joint", name=f"grip_{side}_slide", type="slide", axis=_f(sign, 0, 0),
            range=_f(0, cfg.max_opening_m / 2), damping=_f(cfg.finger_damping), limited="true",
        )  # fmt: skip
        ET.SubElement(
            finger, "geom", name=f"grip_{side}_pad", type="box", rgba="0.15 0.15 0.15 1",
            size=_f(cfg.finger_thickness_m / 2, cfg.pad_width_m / 2, cfg.finger_length_m / 2),
            pos=_f(sign * cfg.finger_thickness_m / 2, 0, -cfg.finger_length_m / 2),
            mass=_f(cfg.finger_mass_kg), friction=_f(*cfg.pad_friction), condim="4",
            solref=_f(*cfg.pad_solref), solimp=_f(*cfg.pad_solimp),
        )  # fmt: skip


def attach_gripper(scene_xml: str, cfg: GripperConfig) -> str:
    """The scene's MJCF text with the gripper, its weld, its finger actuators and a ``side`` camera added.

    Raises:
        ValueError: the text is not XML or has no ``<worldbody>`` (MuJoCo's own errors surface on loading).
    """
    try:
        root = ET.fromstring(scene_xml)
    except ET.ParseError as e:
        raise ValueError(f"not MJCF XML: {e}") from None
    world = root.find("worldbody")
    if world is None:
        raise ValueError("no <worldbody> in the scene")
    _hand(world, cfg)
    option = root.find("option")
    if option is None:
        option = ET.Element("option")
        root.insert(0, option)
    # Elliptic friction cones with a high impratio: MuJoCo's advice for grasping (pyramidal cones let a held
    # object creep out of the jaws).
    option.set("cone", "elliptic")
    option.set("impratio", "10")
    if cfg.timestep is not None:
        option.set("timestep", _f(cfg.timestep))
    # A side view for videos: 0.9 m in front of the scene centre, 0.45 m up, looking at the table centre.
    ET.SubElement(world, "camera", name="side", pos="0 -0.9 0.45", xyaxes="1 0 0 0 0.447 0.894", fovy="45")
    eq = root.find("equality")
    if eq is None:
        eq = ET.SubElement(root, "equality")
    ET.SubElement(eq, "weld", name="grip_weld", body1="grip_mocap", body2="grip_hand", relpose="0 0 0 1 0 0 0",
                  solref=_f(*cfg.weld_solref))  # fmt: skip
    act = root.find("actuator")
    if act is None:
        act = ET.SubElement(root, "actuator")
    for side in ("left", "right"):
        ET.SubElement(
            act, "position", name=f"grip_{side}_act", joint=f"grip_{side}_slide", kp=_f(cfg.finger_kp),
            forcelimited="true", forcerange=_f(-cfg.grip_force_n, cfg.grip_force_n),
            ctrllimited="true", ctrlrange=_f(0, cfg.max_opening_m / 2),
        )  # fmt: skip
    return ET.tostring(root, encoding="unicode")
