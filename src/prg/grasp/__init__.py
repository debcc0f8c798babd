"""Grasp geometry: rectangles, the rectangle metric, GG-CNN style grasp maps and 6-DoF lifting.

numpy/shapely/scikit-image/scipy only: no torch, no models, no files.
"""

from prg.grasp.maps import GraspMaps, compact_rect, maps_to_rects, rects_to_maps
from prg.grasp.metrics import (
    MatchDetails,
    grasp_success,
    match_details,
    rect_iou,
    success_rate,
    top_k_success,
)
from prg.grasp.pose import CameraIntrinsics, GraspPose, IntrinsicsLike, grasp_depth, rect_to_pose
from prg.grasp.rect import GraspRect, angle_diff, normalize_angle

__all__ = [
    "CameraIntrinsics",
    "GraspMaps",
    "GraspPose",
    "GraspRect",
    "IntrinsicsLike",
    "MatchDetails",
    "angle_diff",
    "compact_rect",
    "grasp_depth",
    "grasp_success",
    "maps_to_rects",
    "match_details",
    "normalize_angle",
    "rect_iou",
    "rect_to_pose",
    "rects_to_maps",
    "success_rate",
    "top_k_success",
]
