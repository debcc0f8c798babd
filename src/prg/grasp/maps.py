"""GG-CNN / GR-ConvNet style grasp maps: rectangles -> four per-pixel maps -> ranked rectangles.

The four ``[H x W]`` float32 maps:

* ``quality``: 1 inside the *centre third* of each rectangle (same centre, angle and jaw size, opening / 3:
  GG-CNN's "compact polygon"), 0 elsewhere.
* ``cos2``, ``sin2``: ``cos(2a)``, ``sin(2a)`` of the grasp angle inside the same region; 0 elsewhere. The
  doubled angle makes ``a`` and ``a + pi`` (the same parallel-jaw grasp) encode identically. A zero background
  (rather than GG-CNN's ``cos(0) = 1``) means "no angle": blurring the maps then shrinks the vector near edges
  but never turns it toward angle 0.
* ``width``: opening in pixels divided by ``width_scale`` and clipped to ``[0, 1]``; ``width_scale`` is the
  opening (pixels) that maps to 1.0 (GG-CNN uses 150). Openings above ``width_scale`` saturate.

Pixel coordinates follow scikit-image: integer ``(x, y)`` is the centre of pixel ``[row y, col x]``. Where
rectangles overlap, later rectangles overwrite earlier ones in all four maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.draw import polygon as draw_polygon
from skimage.feature import peak_local_max

from prg.grasp.rect import GraspRect

__all__ = ["GraspMaps", "compact_rect", "find_peaks", "maps_to_rects", "rects_to_maps"]

DEFAULT_WIDTH_SCALE = 150.0
# GG-CNN's post-processing blurs (pixels).
QUALITY_SIGMA = 2.0
ANGLE_SIGMA = 2.0
WIDTH_SIGMA = 1.0


@dataclass
class GraspMaps:
    """Four float32 grasp maps of the same ``[H x W]`` shape (see the module docstring for the encoding)."""

    quality: np.ndarray
    cos2: np.ndarray
    sin2: np.ndarray
    width: np.ndarray

    def __post_init__(self) -> None:
        arrays = [np.asarray(a, dtype=np.float32) for a in (self.quality, self.cos2, self.sin2, self.width)]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise ValueError(f"grasp maps must be four 2-D arrays of one shape, got {[a.shape for a in arrays]}")
        self.quality, self.cos2, self.sin2, self.width = arrays

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.quality.shape
        return (h, w)

    def stack(self) -> np.ndarray:
        """The maps as one ``[4 x H x W]`` float32 array in the order quality, cos2, sin2, width."""
        return np.stack([self.quality, self.cos2, self.sin2, self.width])

    @classmethod
    def from_stack(cls, stacked: np.ndarray) -> GraspMaps:
        """Inverse of :meth:`stack`: ``[4 x H x W]`` -> maps (e.g. a model's output head)."""
        arr = np.asarray(stacked)
        if arr.ndim != 3 or arr.shape[0] != 4:
            raise ValueError(f"expected a [4 x H x W] array, got shape {arr.shape}")
        return cls(arr[0], arr[1], arr[2], arr[3])


def compact_rect(rect: GraspRect) -> GraspRect:
    """The centre third of ``rect`` along the opening axis (GG-CNN's compact polygon)."""
    return GraspRect(rect.x, rect.y, rect.width / 3.0, rect.height, rect.angle, rect.quality)


def _check_width_scale(width_scale: float) -> None:
    if not (math.isfinite(width_scale) and width_scale > 0):
        raise ValueError(f"width_scale must be a positive number of pixels, got {width_scale}")


def rects_to_maps(
    rects: Sequence[GraspRect], shape: tuple[int, int], width_scale: float = DEFAULT_WIDTH_SCALE
) -> GraspMaps:
    """Rasterise grasp rectangles into :class:`GraspMaps` of ``shape = (H, W)``.

    Parts of a rectangle outside the image are clipped; later rectangles overwrite earlier ones.
    """
    _check_width_scale(width_scale)
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f"shape must be (H, W) with H, W > 0, got {shape}")
    h, w = int(shape[0]), int(shape[1])
    quality = np.zeros((h, w), dtype=np.float32)
    cos2 = np.zeros((h, w), dtype=np.float32)
    sin2 = np.zeros((h, w), dtype=np.float32)
    width = np.zeros((h, w), dtype=np.float32)
    for rect in rects:
        corners = compact_rect(rect).corners()  # [4 x 2] (x, y)
        rr, cc = draw_polygon(corners[:, 1], corners[:, 0], shape=(h, w))
        quality[rr, cc] = 1.0
        cos2[rr, cc] = math.cos(2 * rect.angle)
        sin2[rr, cc] = math.sin(2 * rect.angle)
        width[rr, cc] = min(rect.width / width_scale, 1.0)
    return GraspMaps(quality, cos2, sin2, width)


def maps_to_rects(
    maps: GraspMaps,
    k: int = 5,
    width_scale: float = DEFAULT_WIDTH_SCALE,
    jaw_ratio: float = 0.5,
    min_distance: int = 20,
    threshold: float = 0.2,
    smooth: bool = True,
    min_width: float = 1.0,
    smoothed_quality: np.ndarray | None = None,
    peaks: np.ndarray | None = None,
) -> list[GraspRect]:
    """Decode grasp maps into at most ``k`` rectangles, best quality first.

    Args:
        maps: the four ``[H x W]`` maps.
        k: how many rectangles to return at most.
        width_scale: the opening in pixels that a width value of 1.0 stands for (as in :func:`rects_to_maps`).
        jaw_ratio: jaw size (rectangle height) as a fraction of the opening, since the maps do not encode it.
        min_distance: minimum pixel distance between two quality peaks (peak_local_max's suppression).
        threshold: minimum (smoothed) quality of a peak.
        smooth: apply GG-CNN's Gaussian blurs (quality 2.0, angle 2.0, width 1.0 px) before decoding.
        min_width: openings below this many pixels are raised to it (a rectangle needs width > 0).
        smoothed_quality, peaks: the blurred quality map and its peaks (``[N x 2]`` rows/cols, best first, as
            :func:`find_peaks` gives them) when computed elsewhere, e.g. on a GPU; both or neither.
    """
    _check_width_scale(width_scale)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if jaw_ratio <= 0:
        raise ValueError(f"jaw_ratio must be > 0, got {jaw_ratio}")
    if (smoothed_quality is None) != (peaks is None):
        raise ValueError("give both smoothed_quality and peaks, or neither")
    if smoothed_quality is not None:
        q = smoothed_quality
    else:
        q = ndimage.gaussian_filter(maps.quality, QUALITY_SIGMA) if smooth else maps.quality
        peaks = find_peaks(q, min_distance, threshold)

    def smoothed(values: np.ndarray, sigma: float, row: int, col: int) -> float:
        # Angle and width are read at a few peaks only. The blurred value at a pixel depends on the pixels within
        # scipy's kernel radius (4 sigma) of it, so blurring a region one pixel wider than that gives exactly the
        # whole-map blur's value there (true image borders reflect as before), at a fraction of the cost.
        if not smooth:
            return float(values[row, col])
        r = int(4.0 * sigma + 0.5) + 1
        r0, c0 = max(row - r, 0), max(col - r, 0)
        region = values[r0 : row + r + 1, c0 : col + r + 1]
        return float(ndimage.gaussian_filter(region, sigma)[row - r0, col - c0])

    assert peaks is not None
    rects: list[GraspRect] = []
    seen_plateaus: set[int] = set()
    h, w = q.shape
    for row, col in peaks:  # peak_local_max returns peaks sorted by decreasing value
        centre, key = _plateau_centre(q, int(row), int(col))
        if key in seen_plateaus:  # several peaks on one flat top: keep the first
            continue
        seen_plateaus.add(key)
        cx, cy = centre
        # Read angle and width at the pixel nearest the refined centre if it is still on the plateau.
        pr, pc = round(cy), round(cx)
        if not (0 <= pr < h and 0 <= pc < w and _on_top(q[pr, pc], q[row, col])):
            pr, pc = int(row), int(col)
        opening = max(smoothed(maps.width, WIDTH_SIGMA, pr, pc) * width_scale, min_width)
        c2 = smoothed(maps.cos2, ANGLE_SIGMA, pr, pc)
        s2 = smoothed(maps.sin2, ANGLE_SIGMA, pr, pc)
        angle = 0.5 * math.atan2(s2, c2)
        rects.append(GraspRect(cx, cy, opening, jaw_ratio * opening, angle, quality=float(q[row, col])))
        if len(rects) == k:
            break
    return rects


def find_peaks(q: np.ndarray, min_distance: int = 20, threshold: float = 0.2) -> np.ndarray:
    """Peaks of a (smoothed) quality map, ``[N x 2]`` (row, col), highest first: local maxima over a
    ``(2 min_distance + 1)``-pixel square, above ``threshold``, at least ``min_distance`` apart (scikit-image's
    ``peak_local_max``, borders included)."""
    return np.asarray(peak_local_max(q, min_distance=min_distance, threshold_abs=threshold, exclude_border=False))


# Pixels within this relative distance of a peak's value count as the same flat top. Rasterised maps are
# binary (exact plateaus) and even a blurred box is flat to float32 precision far from its edges.
_PLATEAU_RTOL = 1e-3


def _on_top(values: np.ndarray | float, peak: float) -> np.ndarray | bool:
    """Whether ``values`` are within the plateau tolerance of ``peak`` (abs so negative peaks work too)."""
    return values >= peak - _PLATEAU_RTOL * abs(peak)


def _plateau_centre(q: np.ndarray, row: int, col: int, radius: int = 32) -> tuple[tuple[float, float], int]:
    """Centroid ``(x, y)`` of the flat top containing a peak, and a key identifying that flat top.

    peak_local_max returns an arbitrary pixel of a plateau (often a corner), up to half a rectangle away
    from its centre; no scikit-image function refines it, so this labels the plateau and takes its centroid.
    Labelling starts in a window around the peak and grows it while the plateau touches a window edge that lies
    inside the image: a plateau that touches none is entirely in the window, so the result is that of labelling
    the whole map, without its cost on large maps.
    """
    h, w = q.shape
    while True:
        r0, r1, c0, c1 = max(row - radius, 0), min(row + radius + 1, h), max(col - radius, 0), min(col + radius + 1, w)
        labels, _ = ndimage.label(_on_top(q[r0:r1, c0:c1], q[row, col]))
        comp = labels == labels[row - r0, col - c0]
        cut = (r0 > 0 and comp[0].any()) or (r1 < h and comp[-1].any())
        cut = cut or (c0 > 0 and comp[:, 0].any()) or (c1 < w and comp[:, -1].any())
        if not cut:
            break
        radius *= 4
    ys, xs = np.nonzero(comp)
    ys, xs = ys + r0, xs + c0
    # np.nonzero is in raster order (also within the window), so the first pixel identifies the component.
    key = int(ys[0]) * w + int(xs[0])
    return (float(xs.mean()), float(ys.mean())), key
