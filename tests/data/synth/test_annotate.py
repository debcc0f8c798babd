"""The scene-to-record helpers shared by ``generate`` and ``compose``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prg.data.synth import annotate
from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.scene import sample_scene


def test_scene_files_are_fsynced_before_the_record_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # generate's parent marks a record done (and a resumed run skips it) once the worker returns: its files must
    # be on disk by then, not only in the page cache
    synced: list[Path] = []
    monkeypatch.setattr(annotate, "fsync_file", synced.append)
    for sub in ("images", "depth", "masks", "scenes"):
        (tmp_path / sub).mkdir()

    def sample(attempt: int):  # type: ignore[no-untyped-def]
        return sample_scene(np.random.default_rng([0, attempt]), CATALOGUE, ["ph_meter"], 1, (), image_size=96)

    spec, res, grasps = annotate.render_graspable(sample, ["ph_meter"], 0.14)
    written = annotate.write_scene_files(tmp_path, "r0", spec, res)
    assert sorted(written) == sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(synced)
    (obj,) = annotate.object_annotations(spec, grasps, "r0")
    assert obj.category == "ph_meter" and obj.grasps and obj.mask is not None and obj.mask.value == 1


def test_no_graspable_scene_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(annotate, "object_grasps", lambda *a, **k: [])

    def sample(attempt: int):  # type: ignore[no-untyped-def]
        return sample_scene(np.random.default_rng(attempt), CATALOGUE, ["ph_meter"], 1, (), image_size=64)

    with pytest.raises(RuntimeError, match=f"rec-7: no scene in {annotate.MAX_ATTEMPTS} attempts"):
        annotate.render_graspable(sample, ["ph_meter"], 0.14, what="rec-7")


def test_a_layout_that_cannot_be_placed_is_resampled_not_fatal() -> None:
    # PRG-Synth seed 1, n=6000 stopped at one record whose objects did not fit its table
    from prg.data.synth.scene import SceneSamplingError

    tried: list[int] = []

    def sample(attempt: int):  # type: ignore[no-untyped-def]
        tried.append(attempt)
        if attempt < 2:
            raise SceneSamplingError(f"could not place 'torque_wrench' (attempt {attempt})")
        return sample_scene(np.random.default_rng([0, attempt]), CATALOGUE, ["ph_meter"], 1, (), image_size=96)

    spec, _, grasps = annotate.render_graspable(sample, ["ph_meter"], 0.14)
    assert tried == [0, 1, 2] and spec.objects[0].type_key == "ph_meter" and grasps[spec.objects[0].instance_id]

    def never(attempt: int):  # type: ignore[no-untyped-def]
        raise SceneSamplingError("could not place 'torque_wrench'")

    with pytest.raises(RuntimeError, match=r"attempts .*last: could not place 'torque_wrench'"):
        annotate.render_graspable(never, ["ph_meter"], 0.14, what="rec-9")
