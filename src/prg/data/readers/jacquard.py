"""Jacquard grasping dataset -> PRG records.

Layout: nested folders holding, per scene ``<n>_<objid>``: ``<n>_<objid>_RGB.png``, ``<n>_<objid>_grasps.txt``
(lines ``x;y;theta_deg;opening;jaw``, theta clockwise on screen), ``<n>_<objid>_perfect_depth.tiff`` (float32
metres) and optionally ``<n>_<objid>_mask.png`` (the object's mask). An item is found by its grasp file.
Splits are assigned per *object* (``objid``) so that views of one object never straddle train and test.
"""

from __future__ import annotations

import math
from pathlib import Path

from prg.data.readers.common import (
    ConvertOptions,
    ItemResult,
    Reader,
    attach_depth,
    check_image,
    grasp_only_record,
    open_grasp_item,
)
from prg.data.schema import MaskRef
from prg.grasp.rect import GraspRect

__all__ = ["READER", "find_items", "parse_jacquard_grasps", "read_item"]

_GRASPS_SUFFIX = "_grasps.txt"


def parse_jacquard_grasps(path: str | Path) -> tuple[list[GraspRect], list[str]]:
    """Rectangles of one ``_grasps.txt`` and problems as ``path:line: message``.

    A bad line (wrong field count, non-number, NaN, non-positive size) is dropped; exact duplicate lines are
    kept once. Lines that differ only in jaw size are distinct ground truth and all kept.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{path}: unreadable grasp file ({e})"]
    rects: list[GraspRect] = []
    problems: list[str] = []
    seen: set[tuple[float, ...]] = set()
    for lineno, line in enumerate(raw, 1):
        text = line.strip()
        if not text:
            continue
        fields = text.split(";")
        if len(fields) != 5:
            problems.append(f"{path}:{lineno}: expected 5 fields 'x;y;theta;opening;jaw', got {len(fields)}")
            continue
        try:
            values = tuple(float(f) for f in fields)
        except ValueError:
            problems.append(f"{path}:{lineno}: not a number in {text!r}")
            continue
        if not all(math.isfinite(v) for v in values):
            problems.append(f"{path}:{lineno}: NaN or infinite value in {text!r}")
            continue
        if values in seen:
            continue
        try:
            rects.append(GraspRect.from_jacquard(*values))
        except ValueError as e:
            problems.append(f"{path}:{lineno}: invalid rectangle ({e})")
            continue
        seen.add(values)
    if not raw or not any(s.strip() for s in raw):
        problems.append(f"{path}: no grasp rectangles in file")
    return rects, problems


def find_items(src: Path, warnings: list[str] | None = None) -> list[Path]:
    """All ``*_grasps.txt`` files under ``src``."""
    return sorted(src.rglob(f"*{_GRASPS_SUFFIX}"))


def read_item(grasps: Path, options: ConvertOptions) -> ItemResult:
    """One Jacquard scene -> one record (object ``"0"`` with its rectangles, mask if present)."""
    scene = grasps.name[: -len(_GRASPS_SUFFIX)]  # "<n>_<objid>"
    object_key = scene.split("_", 1)[1] if "_" in scene else scene
    image = grasps.with_name(f"{scene}_RGB.png")
    rects, problems = parse_jacquard_grasps(grasps)
    files, warnings = open_grasp_item(grasps, image, rects, problems)
    record_id = f"jacquard-{scene}"
    depth_rel = attach_depth(grasps.with_name(f"{scene}_perfect_depth.tiff"), files, warnings, required=True)

    mask_ref = None
    mask = grasps.with_name(f"{scene}_mask.png")
    if mask.is_file():
        bad_mask = check_image(mask)
        if bad_mask is None:
            mask_ref = MaskRef(path=f"masks/{mask.name}")
            files[mask_ref.path] = mask
        else:
            warnings.append(f"{bad_mask}; record kept without mask")

    record = grasp_only_record(
        grasps,
        record_id=record_id,
        image=image,
        depth=depth_rel,
        rects=rects,
        split_key=object_key,
        options=options,
        source="jacquard",
        mask=mask_ref,
        attributes={"jacquard_object_id": object_key},
    )
    return ItemResult(records=[record], files=files, warnings=warnings)


READER = Reader(name="jacquard", find_items=find_items, read_item=read_item)
