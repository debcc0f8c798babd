"""One PRG-Synth scene to a record's parts: render until the targets can be grasped, write the files, annotate.

Shared by :mod:`prg.data.synth.generate` (a whole dataset) and :mod:`prg.data.synth.compose` (one scene with
given tools), so both produce the same files and the same object annotations. Every file written here is fsynced
before the function returns: a generator may record the scene as done (and a resumed run skip it) only once its
files are on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from prg.data.dataset import save_depth_png
from prg.data.schema import Grasp, MaskRef, ObjectAnnotation
from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.grasps import object_grasps
from prg.data.synth.mjcf import scene_to_mjcf
from prg.data.synth.render import RenderResult, render_scene
from prg.data.synth.scene import scene_to_json
from prg.data.synth.types import SceneSpec
from prg.fsutil import fsync_file
from prg.grasp.rect import GraspRect

__all__ = ["MAX_ATTEMPTS", "Grasps", "object_annotations", "render_graspable", "write_scene_files"]

MAX_ATTEMPTS = 20
Grasps = dict[int, list[GraspRect]]  # instance id -> ground-truth grasp rectangles (pixels)


def render_graspable(
    sample: Callable[[int], SceneSpec],
    must_grasp: Collection[str],
    max_opening_m: float,
    backend: str = "auto",
    what: str = "scene",
) -> tuple[SceneSpec, RenderResult, Grasps]:
    """Sample (``sample(attempt)``), render and grasp-annotate scenes until every object whose type key is in
    ``must_grasp`` has a grasp.

    A neighbour can block every grasp of a tool, so a scene is re-sampled from the next attempt number; the caller
    derives the attempt's random state from its own seeds, which keeps the result deterministic. A sample that
    cannot place its objects (``SceneSamplingError``) is re-sampled the same way.

    Raises:
        RuntimeError: no scene in :data:`MAX_ATTEMPTS` attempts (``what`` names the record in the message).
    """
    from prg.data.synth.scene import SceneSamplingError

    failure = ""
    for attempt in range(MAX_ATTEMPTS):
        try:
            spec = sample(attempt)
        except SceneSamplingError as e:  # an unlucky layout (n_objects, table size) is re-sampled like a blocked one
            failure = f" (last: {e})"
            continue
        res = render_scene(spec, CATALOGUE, backend=backend)
        max_open_px = max_opening_m * res.intrinsics[0] / spec.camera_height
        heights = spec.camera_height - res.depth  # metres above the table (depth: from the camera plane)
        grasps = {p.instance_id: object_grasps(p, CATALOGUE[p.type_key], spec, res.instances, max_open_px,
                                               heights=heights)
                  for p in spec.objects}  # fmt: skip
        if all(grasps[p.instance_id] for p in spec.objects if p.type_key in must_grasp):
            return spec, res, grasps
    raise RuntimeError(f"{what}: no scene in {MAX_ATTEMPTS} attempts gives every required tool a grasp{failure}")


def write_scene_files(out: Path, rid: str, spec: SceneSpec, res: RenderResult) -> list[Path]:
    """Write ``images/``, ``depth/``, ``masks/`` (PNG) and ``scenes/`` (JSON spec, MJCF) for record ``rid`` under
    ``out`` (the folders must exist); every file is fsynced. Returns the paths written."""
    paths = {
        "image": out / "images" / f"{rid}.png",
        "depth": out / "depth" / f"{rid}.png",
        "mask": out / "masks" / f"{rid}.png",
        "scene": out / "scenes" / f"{rid}.json",
        "mjcf": out / "scenes" / f"{rid}.xml",
    }
    Image.fromarray(res.rgb).save(paths["image"], compress_level=1)
    save_depth_png(paths["depth"], res.depth)
    Image.fromarray(res.instances.astype(np.uint8)).save(paths["mask"], compress_level=1)
    paths["scene"].write_text(scene_to_json(spec))
    paths["mjcf"].write_text(scene_to_mjcf(spec, CATALOGUE))
    for p in paths.values():
        fsync_file(p)
    return list(paths.values())


def object_annotations(spec: SceneSpec, grasps: Mapping[int, Sequence[GraspRect]], rid: str) -> list[ObjectAnnotation]:
    """One annotation per object (not clutter), in instance-id order: catalogue name and key, instance mask in
    ``masks/<rid>.png``, grasps, and its industry and look-alikes as attributes."""
    objects: list[ObjectAnnotation] = []
    for placed in spec.objects:
        t = CATALOGUE[placed.type_key]
        objects.append(
            ObjectAnnotation(
                id=str(placed.instance_id),
                name=t.name,
                category=t.key,
                mask=MaskRef(path=f"masks/{rid}.png", value=placed.instance_id),
                grasps=[Grasp.from_rect(r) for r in grasps[placed.instance_id]],
                attributes={"industry": t.industry, "lookalikes": list(t.lookalikes)},
            )
        )
    return objects
