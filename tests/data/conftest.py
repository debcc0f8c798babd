"""Fixture writers: tiny synthetic Cornell / Jacquard / reasongrasp source folders written into tmp_path.

The helpers are handed to tests through the ``fx`` fixture (a namespace) rather than imported, so the tests do
not depend on ``tests/data`` being a package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

# One rectangle as 4 Cornell corners, hand-checked: centre (25, 15), width 30, height 10, angle 0.
SQUARE_CORNERS = [(10.0, 10.0), (40.0, 10.0), (40.0, 20.0), (10.0, 20.0)]


def write_png(path: Path, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Path:
    """A small random image of ``size`` (width, height); the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def write_corrupt(path: Path) -> Path:
    """A file with an image name whose bytes are not an image (a PNG signature, then garbage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    return path


def write_tiff(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full((size[1], size[0]), 0.7, dtype=np.float32))
    return path


def corner_text(rects: Sequence[Sequence[tuple[float, float]]]) -> str:
    return "".join(f"{x} {y}\n" for r in rects for x, y in r)


@pytest.fixture
def fx() -> SimpleNamespace:
    """The helpers above: ``fx.SQUARE_CORNERS``, ``fx.write_png(...)``, ``fx.corner_text(...)`` ..."""
    return SimpleNamespace(
        SQUARE_CORNERS=SQUARE_CORNERS,
        write_png=write_png,
        write_corrupt=write_corrupt,
        write_tiff=write_tiff,
        corner_text=corner_text,
    )


@pytest.fixture
def cornell_item(tmp_path: Path) -> Callable[..., Path]:
    """``cornell_item(num, cpos_text, image=True, depth=False, folder="01")`` -> the source root."""
    root = tmp_path / "cornell"

    def make(
        num: int,
        cpos_text: str | None = None,
        image: bool | str = True,
        depth: bool = False,
        folder: str = "01",
    ) -> Path:
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        stem = f"pcd{num:04d}"
        (d / f"{stem}cpos.txt").write_text(corner_text([SQUARE_CORNERS]) if cpos_text is None else cpos_text)
        (d / f"{stem}cneg.txt").write_text("1 1\n2 2\n")  # negatives: ignored, even malformed
        if image == "corrupt":
            write_corrupt(d / f"{stem}r.png")
        elif image:
            write_png(d / f"{stem}r.png")
        if depth:
            write_tiff(d / f"{stem}d.tiff")
        return root

    return make


@pytest.fixture
def jacquard_item(tmp_path: Path) -> Callable[..., Path]:
    """``jacquard_item(scene, lines, depth=True, mask=True, image=True)`` -> the source root."""
    root = tmp_path / "jacquard"

    def make(scene: str, lines: Sequence[str], depth: bool = True, mask: bool = True, image: bool | str = True) -> Path:
        d = root / "Jacquard_Dataset_0" / scene.split("_", 1)[1]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{scene}_grasps.txt").write_text("".join(line + "\n" for line in lines))
        if image == "corrupt":
            write_corrupt(d / f"{scene}_RGB.png")
        elif image:
            write_png(d / f"{scene}_RGB.png")
        if depth:
            write_tiff(d / f"{scene}_perfect_depth.tiff")
        if mask:
            write_png(d / f"{scene}_mask.png", mode="L")
        return root

    return make


@pytest.fixture
def reasongrasp_item(tmp_path: Path) -> Callable[..., Path]:
    """``reasongrasp_item(split, stem, ann, grasp_text, grasp_name=None, image_ext=".jpg")`` -> the root."""
    root = tmp_path / "reasongrasp"

    def make(
        split: str,
        stem: str,
        ann: dict[str, Any] | str,
        grasp_text: str | None = None,
        grasp_name: str | None = None,
        image_ext: str | None = ".jpg",
    ) -> Path:
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{stem}.json").write_text(ann if isinstance(ann, str) else json.dumps(ann))
        if image_ext is not None:
            write_png(d / f"{stem}{image_ext}")  # PIL picks the format from the suffix
        if grasp_text is not None:
            (d / (grasp_name or f"{stem}cpos.txt")).write_text(grasp_text)
        return root

    return make
