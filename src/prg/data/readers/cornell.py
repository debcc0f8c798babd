"""Cornell grasping dataset -> PRG records.

Layout: any folder tree (``01/``, ``02/`` ...) holding, per image ``pcdNNNN``: ``pcdNNNNr.png`` (RGB),
``pcdNNNNcpos.txt`` (positive rectangles, 4 ``x y`` lines each, first edge = opening) and optionally
``pcdNNNNd.tiff`` (float depth in metres, as GG-CNN's preprocessing writes it). Negatives (``cneg``) are
ignored. An item is found by its ``cpos`` file, so an image without annotations is not an item.
"""

from __future__ import annotations

from pathlib import Path

from prg.data.readers.common import (
    ConvertOptions,
    ItemResult,
    Reader,
    attach_depth,
    grasp_only_record,
    open_grasp_item,
    parse_corner_lines,
)
from prg.grasp.rect import GraspRect

__all__ = ["READER", "find_items", "parse_cornell_grasps", "read_item"]

_POS_SUFFIX = "cpos.txt"


def parse_cornell_grasps(path: str | Path) -> tuple[list[GraspRect], list[str]]:
    """Positive rectangles of one ``pcdNNNNcpos.txt`` and problems as ``path:line: message``."""
    return parse_corner_lines(Path(path))


def find_items(src: Path, warnings: list[str] | None = None) -> list[Path]:
    """All ``pcd*cpos.txt`` files under ``src``."""
    return sorted(src.rglob(f"pcd*{_POS_SUFFIX}"))


def read_item(cpos: Path, options: ConvertOptions) -> ItemResult:
    """One Cornell image -> one record (object ``"0"`` with all valid positive rectangles)."""
    stem = cpos.name[: -len(_POS_SUFFIX)]  # "pcd0100"
    image = cpos.with_name(f"{stem}r.png")
    rects, problems = parse_cornell_grasps(cpos)
    files, warnings = open_grasp_item(cpos, image, rects, problems)
    record_id = f"cornell-{stem}"
    depth_rel = attach_depth(cpos.with_name(f"{stem}d.tiff"), files, warnings)
    record = grasp_only_record(
        cpos,
        record_id=record_id,
        image=image,
        depth=depth_rel,
        rects=rects,
        split_key=record_id,
        options=options,
        source="cornell",
    )
    return ItemResult(records=[record], files=files, warnings=warnings)


READER = Reader(name="cornell", find_items=find_items, read_item=read_item)
