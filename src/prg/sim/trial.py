"""One simulated grasp trial: a 6-DoF gripper pose executed on a PRG-Synth MuJoCo scene, with its outcome.

The trial, in simulated time: the hand appears ``approach_m`` above the grasp along its approach axis with the
jaws open to the pose's opening (plus a margin) and the scene settles; the hand descends at ``speed_mps``
(a guarded move: the first contact of a gripper geom with anything stops it, the outcome is ``collided``); the jaws
close with their force limit; the hand lifts ``lift_m`` straight up and holds for ``hold_s``.

Depth. A pose from :func:`prg.grasp.pose.rect_to_pose` sits on the surface the depth camera saw, so the
controller closes ``close_depth_m`` deeper along the approach axis, but never commands the fingertips lower than
``min_tip_height_m`` above the table plane: the table is calibrated workspace, as in a real robot cell.

Outcome (:data:`OUTCOMES`): ``success`` when the target rose more than ``lift_threshold_m``, both finger pads
still touch it at the end, and no other object rose; ``lifted_two`` the target and another object rose;
``wrong_object`` another object rose, the target did not; ``slipped`` both pads touched the target after closing
(or it rose at some moment) but it is not held at the end; ``missed`` otherwise; ``collided`` the descent touched
something; ``invalid`` the input could not be run (scene does not load, NaN in the pose, pose below the table,
opening wider than the gripper, unknown target). MuJoCo is deterministic, and the only random part
(``position_noise_m``, ``yaw_noise_rad``, off by default) is drawn from ``seed``: one seed, one result.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from prg.sim.gripper import FINGERS, GripperConfig, attach_gripper

__all__ = ["OUTCOMES", "GraspPose6D", "TrialConfig", "TrialResult", "camera_to_world", "load_scene", "run_trial"]

OUTCOMES = ("success", "missed", "slipped", "collided", "wrong_object", "lifted_two", "invalid")
_INST = re.compile(r"^inst(\d+)$")

FrameHook = Callable[[Any, Any], None]  # (model, data) -> None, called every video frame


@dataclass(frozen=True)
class GraspPose6D:
    """A gripper pose: ``position`` (m), ``quaternion`` ``(x, y, z, w)``, ``opening_m``; frame as
    :class:`prg.grasp.pose.GraspPose` (z = approach, x = opening). Anything with these fields works too."""

    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]
    opening_m: float


@dataclass(frozen=True)
class TrialConfig:
    """How a trial runs (metres, seconds)."""

    gripper: GripperConfig = field(default_factory=GripperConfig)
    approach_m: float = 0.10  # start this far back along the approach axis
    close_depth_m: float = 0.03  # fingertips this far beyond the pose point (the seen surface)
    min_tip_height_m: float = 0.003  # fingertips never commanded lower than this above the table
    # a pose this little below the table is the table seen through millimetre depth (a grasp across two bars sees
    # the table between them); lower is invalid
    below_table_tolerance_m: float = 0.002
    open_margin_m: float = 0.006  # jaws open this much wider than the pose's opening (capped at the maximum)
    speed_mps: float = 0.10  # descent and lift speed
    settle_s: float = 0.2
    close_s: float = 0.6
    lift_m: float = 0.10
    hold_s: float = 1.0
    lift_threshold_m: float = 0.05  # an object "rose" when its centre of mass is this much above its rest height
    position_noise_m: float = 0.0  # optional execution noise (std, horizontal), drawn from the seed
    yaw_noise_rad: float = 0.0
    camera: str = "top"  # the scene camera whose optical frame a pose is in


@dataclass
class TrialResult:
    """What happened. ``lifted``: instance ids that rose; ``penetration_m``: deepest gripper-table overlap."""

    outcome: str
    reason: str
    target: int
    lifted: list[int] = field(default_factory=list)
    target_rise_m: float = 0.0
    penetration_m: float = 0.0
    touched: int | None = None  # collided: instance id the descent touched (0 = the table or anything else)
    sim_s: float = 0.0
    wall_s: float = 0.0

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SceneError(ValueError):
    """A scene that MuJoCo cannot load; the message is one line: the file and MuJoCo's words."""


def load_scene(scene: str | Path, cfg: GripperConfig) -> tuple[Any, Any]:
    """``(MjModel, MjData)`` of a scene file (or MJCF text) with the gripper attached.

    Raises:
        SceneError: the scene does not load.
    """
    from prg.data.synth.render import import_mujoco

    mujoco = import_mujoco(physics_only=True)  # physics only: no GL library needed
    name = str(scene) if isinstance(scene, Path) else "<mjcf text>"
    try:
        text = scene.read_text(encoding="utf-8") if isinstance(scene, Path) else scene
        model = mujoco.MjModel.from_xml_string(attach_gripper(text, cfg))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        msg = str(e)
        if isinstance(scene, Path) and isinstance(e, ValueError):
            try:  # the scene alone: MuJoCo's message about the user's file, not about the merged one
                mujoco.MjModel.from_xml_path(str(scene))
            except ValueError as e2:
                msg = str(e2)
        raise SceneError(f"{name}: {' '.join(msg.split())}") from None
    return model, mujoco.MjData(model)


def camera_to_world(model: Any, data: Any, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """``(R [3 x 3], t [3])`` taking points in the camera's optical frame (x right, y down, z forward) to the
    world. MuJoCo cameras look along their -z with y up, hence the flip of y and z."""
    cam = model.camera(camera).id
    rot = data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
    return rot, data.cam_xpos[cam].copy()


@dataclass
class _Ids:
    grip_geoms: np.ndarray  # bool [ngeom]
    pads: tuple[int, int]
    table: int
    bodies: dict[int, int]  # instance id -> body id
    body_of_geom: np.ndarray  # [ngeom]


def _ids(model: Any) -> _Ids:
    from prg.data.synth.render import import_mujoco

    mujoco = import_mujoco(physics_only=True)  # physics only: no GL library needed

    grip_bodies = {model.body(n).id for n in ("grip_hand", "grip_left", "grip_right")}
    body_of_geom = np.asarray(model.geom_bodyid)
    table = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "table")
    bodies = {}
    for b in range(model.nbody):
        m = _INST.match(model.body(b).name)
        if m:
            bodies[int(m.group(1))] = b
    return _Ids(
        np.isin(body_of_geom, list(grip_bodies)),
        (model.geom(FINGERS[0]).id, model.geom(FINGERS[1]).id),
        table,
        bodies,
        body_of_geom,
    )


def _invalid(target: int, reason: str, t0: float) -> TrialResult:
    return TrialResult("invalid", reason, target, wall_s=time.perf_counter() - t0)


def _check_pose(pose: Any, max_opening: float) -> tuple[np.ndarray, np.ndarray, float] | str:
    try:
        pos = np.asarray(pose.position, dtype=float).reshape(3)
        quat = np.asarray(pose.quaternion, dtype=float).reshape(4)
        opening = float(pose.opening_m)
    except (AttributeError, TypeError, ValueError) as e:
        return f"not a pose ({e})"
    if not (np.isfinite(pos).all() and np.isfinite(quat).all() and math.isfinite(opening)):
        return "pose has NaN or infinite values"
    if np.linalg.norm(quat) < 1e-6:
        return "pose quaternion is zero"
    if opening <= 0:
        return f"opening {opening:.4f} m is not positive"
    if opening > max_opening + 1e-9:
        return f"opening {opening:.4f} m is wider than the gripper's maximum {max_opening:.4f} m"
    return pos, quat / np.linalg.norm(quat), opening


def run_trial(
    scene: str | Path,
    pose: Any,
    target: int,
    cfg: TrialConfig | None = None,
    seed: int = 0,
    on_frame: FrameHook | None = None,
    frame_every_s: float = 0.05,
) -> TrialResult:
    """Execute ``pose`` (in camera ``cfg.camera``'s optical frame) on ``scene``, aiming at instance ``target``.

    Never raises for bad input: a scene that does not load or a bad pose gives an ``invalid`` result whose
    ``reason`` says why. ``on_frame(model, data)`` (videos) is called every ``frame_every_s`` of simulated time.
    """
    from prg.data.synth.render import import_mujoco

    mujoco = import_mujoco(physics_only=True)  # physics only: no GL library needed

    cfg = cfg or TrialConfig()
    t0 = time.perf_counter()
    checked = _check_pose(pose, cfg.gripper.max_opening_m)
    if isinstance(checked, str):
        return _invalid(target, checked, t0)
    pos_c, quat_c, opening = checked
    try:
        src = scene if isinstance(scene, str) and scene.lstrip().startswith("<") else Path(scene)
        model, data = load_scene(src, cfg.gripper)
    except SceneError as e:
        return _invalid(target, str(e), t0)
    ids = _ids(model)
    if target not in ids.bodies:
        return _invalid(target, f"no object inst{target} in the scene", t0)
    mujoco.mj_forward(model, data)
    try:
        r_wc, t_wc = camera_to_world(model, data, cfg.camera)
    except KeyError:
        return _invalid(target, f"the scene has no camera {cfg.camera!r}", t0)
    table_z = float(data.geom_xpos[ids.table][2]) if ids.table >= 0 else 0.0

    rng = np.random.default_rng(seed)
    r_wh = r_wc @ Rotation.from_quat(quat_c).as_matrix()
    p_w = r_wc @ pos_c + t_wc
    if cfg.position_noise_m > 0:
        p_w[:2] += rng.normal(0.0, cfg.position_noise_m, 2)
    if cfg.yaw_noise_rad > 0:
        r_wh = Rotation.from_rotvec([0.0, 0.0, rng.normal(0.0, cfg.yaw_noise_rad)]).as_matrix() @ r_wh
    if p_w[2] < table_z - cfg.below_table_tolerance_m:
        return _invalid(target, f"pose is {table_z - p_w[2]:.4f} m below the table surface", t0)
    approach = r_wh[:, 2]
    grasp = p_w + cfg.close_depth_m * approach
    if approach[2] < -1e-6:  # tips lowest at the TCP while approaching downwards: clamp along the approach axis
        floor = table_z + cfg.min_tip_height_m
        if grasp[2] < floor:
            grasp = p_w + max((floor - p_w[2]) / approach[2], 0.0) * approach if p_w[2] > floor else p_w.copy()
    start = grasp - cfg.approach_m * approach

    quat_wh = Rotation.from_matrix(r_wh).as_quat()[[3, 0, 1, 2]]  # MuJoCo is scalar first
    half_open = min((opening + cfg.open_margin_m) / 2, cfg.gripper.max_opening_m / 2)
    hand_q = model.jnt_qposadr[model.joint("grip_free").id]
    data.mocap_pos[0], data.mocap_quat[0] = start, quat_wh
    data.qpos[hand_q : hand_q + 3], data.qpos[hand_q + 3 : hand_q + 7] = start, quat_wh
    for side in ("left", "right"):
        data.qpos[model.jnt_qposadr[model.joint(f"grip_{side}_slide").id]] = half_open
        data.ctrl[model.actuator(f"grip_{side}_act").id] = half_open
    mujoco.mj_forward(model, data)

    dt = model.opt.timestep
    frame_steps = max(round(frame_every_s / dt), 1)
    state = {"step": 0, "pen": 0.0}
    inst_bodies = np.array(list(ids.bodies.values()))

    def step() -> None:
        mujoco.mj_step(model, data)
        state["step"] += 1
        n = data.ncon
        if n:
            g1, g2 = data.contact.geom1[:n], data.contact.geom2[:n]
            on_table = (ids.grip_geoms[g1] & (g2 == ids.table)) | (ids.grip_geoms[g2] & (g1 == ids.table))
            if on_table.any():
                state["pen"] = max(state["pen"], float(-data.contact.dist[:n][on_table].min()))
        if on_frame is not None and state["step"] % frame_steps == 0:
            on_frame(model, data)

    def grip_contacts() -> list[tuple[int, int]]:
        """(gripper geom, other geom) pairs now in contact."""
        n = data.ncon
        out = []
        for g1, g2 in zip(data.contact.geom1[:n], data.contact.geom2[:n], strict=True):
            a, b = bool(ids.grip_geoms[g1]), bool(ids.grip_geoms[g2])
            if a != b:
                out.append((int(g1), int(g2)) if a else (int(g2), int(g1)))
        return out

    def held_by_both() -> bool:
        touching = {(g, ids.body_of_geom[o]) for g, o in grip_contacts()}
        return all((pad, ids.bodies[target]) in touching for pad in ids.pads)

    def result(
        outcome: str, reason: str, lifted: list[int] | None = None, rise: float = 0.0, touched: int | None = None
    ) -> TrialResult:
        return TrialResult(outcome, reason, target, lifted or [], rise, state["pen"], touched, state["step"] * dt,
                           time.perf_counter() - t0)  # fmt: skip

    for _ in range(round(cfg.settle_s / dt)):
        step()
    rest_z = data.xipos[inst_bodies, 2].copy()

    # Descent: a straight line at constant speed; the first contact stops the hand where it is.
    n_desc = max(math.ceil(cfg.approach_m / cfg.speed_mps / dt), 1)
    for k in range(1, n_desc + 1):
        data.mocap_pos[0] = start + (grasp - start) * (k / n_desc)
        step()
        hits = grip_contacts()
        if hits:
            other = model.geom(hits[0][1]).name or f"geom {hits[0][1]}"
            body = model.body(ids.body_of_geom[hits[0][1]]).name
            data.mocap_pos[0] = data.xpos[model.body("grip_hand").id]  # stop: command where the hand is
            for _ in range(round(0.2 / dt)):
                step()
            what = "the table" if hits[0][1] == ids.table else f"{body} ({other})"
            part = model.geom(hits[0][0]).name or f"geom {hits[0][0]}"  # which gripper geom: palm or a finger
            m = _INST.match(body)
            early = cfg.approach_m * (1 - k / n_desc)
            return result("collided", f"descent touched {what} with {part} {early:.3f} m early",
                          touched=int(m.group(1)) if m else 0)  # fmt: skip

    for side in ("left", "right"):
        data.ctrl[model.actuator(f"grip_{side}_act").id] = 0.0
    for _ in range(round(cfg.close_s / dt)):
        step()
    gripped = held_by_both()

    top = grasp + np.array([0.0, 0.0, cfg.lift_m])
    n_lift = max(math.ceil(cfg.lift_m / cfg.speed_mps / dt), 1)
    target_idx = list(ids.bodies).index(target)
    max_rise = 0.0
    for k in range(1, n_lift + round(cfg.hold_s / dt) + 1):
        data.mocap_pos[0] = grasp + (top - grasp) * min(k / n_lift, 1.0)
        step()
        max_rise = max(max_rise, float(data.xipos[ids.bodies[target], 2] - rest_z[target_idx]))

    rise = data.xipos[inst_bodies, 2] - rest_z
    lifted = [i for i, r in zip(ids.bodies, rise, strict=True) if r > cfg.lift_threshold_m]
    others = [i for i in lifted if i != target]
    t_rise = float(rise[target_idx])
    held = target in lifted and held_by_both()
    if held and not others:
        return result("success", f"target held {t_rise:.3f} m up", lifted, t_rise)
    if target in lifted and others:
        return result("lifted_two", f"target lifted with inst{others[0]}", lifted, t_rise)
    if others:
        return result("wrong_object", f"lifted inst{others[0]}, not the target", lifted, t_rise)
    if gripped or max_rise > cfg.lift_threshold_m:
        return result("slipped", f"target gripped, then lost (highest {max_rise:.3f} m)", lifted, t_rise)
    return result("missed", "the jaws closed without holding the target", lifted, t_rise)
