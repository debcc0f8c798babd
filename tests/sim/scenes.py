"""Hand-built MuJoCo scenes for the sim tests, in the PRG-Synth layout: table plane ``table`` at z = 0, free
bodies ``inst<N>``, camera ``top`` looking straight down from ``CAM_H``."""

from __future__ import annotations

from prg.sim.trial import GraspPose6D

CAM_H = 0.6


def box(
    inst: int, x: float, y: float, size: tuple[float, float, float], z: float = 0.0, mass: float = 0.2, yaw: float = 0.0
) -> str:
    """A free box of full extents ``size`` whose base is ``z`` above the table, turned ``yaw`` about +z."""
    sx, sy, sz = (v / 2 for v in size)
    return (
        f'<body name="inst{inst}" pos="{x} {y} {z}" euler="0 0 {yaw}"><freejoint/>'
        f'<geom name="inst{inst}_p0" type="box" size="{sx} {sy} {sz}" pos="0 0 {sz}" mass="{mass}" '
        'friction="0.6 0.005 0.0001"/></body>'
    )


def scene(*bodies: str) -> str:
    return (
        '<mujoco><compiler angle="radian"/><option timestep="0.002"/><worldbody>'
        '<geom name="table" type="plane" size="0.5 0.5 0.05" friction="0.8 0.005 0.0001"/>'
        f'<camera name="top" pos="0 0 {CAM_H}" fovy="60"/>{"".join(bodies)}</worldbody></mujoco>'
    )


def top_down(x: float, y: float, z: float, opening: float, yaw: float = 0.0) -> GraspPose6D:
    """A top-down pose at world point ``(x, y, z)`` in the camera's optical frame (x right, y down, z forward),
    opening along world ``(cos yaw, sin yaw)``: a rotation of ``-yaw`` about the optical z, as ``rect_to_pose``."""
    import math

    return GraspPose6D((x, -y, CAM_H - z), (0.0, 0.0, math.sin(-yaw / 2), math.cos(-yaw / 2)), opening)
