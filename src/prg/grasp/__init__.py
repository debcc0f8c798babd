"""Grasp geometry: rectangles, the rectangle metric, GG-CNN style grasp maps and 6-DoF lifting.

numpy/shapely/scikit-image/scipy only: no torch, no models, no files. Submodules are imported on first use
(PEP 562), so code that needs only rectangles (the PRG-Synth generator on a bare GPU machine) does not pull in
scipy and scikit-image.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prg.grasp.rect import GraspRect, angle_diff, normalize_angle

if TYPE_CHECKING:
    from prg.grasp.maps import GraspMaps, compact_rect, maps_to_rects, rects_to_maps
    from prg.grasp.metrics import MatchDetails, grasp_success, match_details, rect_iou, success_rate, top_k_success
    from prg.grasp.pose import CameraIntrinsics, GraspPose, IntrinsicsLike, grasp_depth, rect_to_pose

_LAZY = {
    "maps": ("GraspMaps", "compact_rect", "maps_to_rects", "rects_to_maps"),
    "metrics": ("MatchDetails", "grasp_success", "match_details", "rect_iou", "success_rate", "top_k_success"),
    "pose": ("CameraIntrinsics", "GraspPose", "IntrinsicsLike", "grasp_depth", "rect_to_pose"),
}
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"prg.grasp.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'prg.grasp' has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - grouped by submodule
    "GraspRect", "angle_diff", "normalize_angle",
    "GraspMaps", "compact_rect", "maps_to_rects", "rects_to_maps",
    "MatchDetails", "grasp_success", "match_details", "rect_iou", "success_rate", "top_k_success",
    "CameraIntrinsics", "GraspPose", "IntrinsicsLike", "grasp_depth", "rect_to_pose",
]  # fmt: skip
