"""Videos of trials: the scene's own top camera (its intrinsics) beside the ``side`` view, as an animated GIF.

Rendering is MuJoCo's offscreen renderer (OSMesa on CPU, EGL on NVIDIA machines; ``import_mujoco`` picks). GIF
because imageio writes it with Pillow alone; MP4 needs imageio-ffmpeg, which this environment does not ship.
A trial with a video is run again, deterministically, with a frame hook, so the video shows the recorded outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prg.sim.trial import GraspPose6D, TrialConfig, TrialResult, run_trial

__all__ = ["record_trial", "write_trial_videos"]


def record_trial(
    scene: str | Path, pose: Any, target: int, path: Path, cfg: TrialConfig | None = None, seed: int = 0,
    size: int = 240, fps: int = 20,
) -> TrialResult:  # fmt: skip
    """Run one trial and write ``path`` (GIF): top and side views side by side, ``fps`` frames per simulated second."""
    import imageio.v3 as iio

    from prg.data.synth.render import import_mujoco

    mujoco = import_mujoco()
    frames: list[np.ndarray] = []
    renderer: Any = None

    def hook(model: Any, data: Any) -> None:
        nonlocal renderer
        if renderer is None:
            renderer = mujoco.Renderer(model, size, size)
        views = []
        for cam in ("top", "side"):
            renderer.update_scene(data, cam)
            views.append(renderer.render().copy())
        frames.append(np.concatenate(views, axis=1))

    try:
        result = run_trial(scene, pose, target, cfg, seed, on_frame=hook, frame_every_s=1.0 / fps)
    finally:
        if renderer is not None:
            renderer.close()
    if frames:
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    return result


def write_trial_videos(trials: Sequence[dict[str, Any]], cfg: TrialConfig, folder: Path) -> dict[str, Path]:
    """One GIF per trial row of :func:`prg.sim.evaluate.evaluate_sim` that has a pose; returns name -> path."""
    out: dict[str, Path] = {}
    for t in trials:
        if t.get("pose") is None:
            continue
        name = f"{t['record']}_{t['method']}_{t['target']}_{t['index']}_{t['outcome']}"
        path = folder / f"{name}.gif"
        record_trial(Path(t["scene"]), GraspPose6D(*t["pose"]), t["target"], path, cfg, t["seed"])
        out[name] = path
    return out
