"""Which catalogue tools are visible in a scene: proposals -> canonical crops -> classifier -> tags.

The retriever appends the tagged tool names to the text query, because instructions never name the tool.

* :func:`propose_objects` finds objects without ground-truth masks. With depth: fit the table plane, keep pixels
  above it (hysteresis: seeds above ``high`` metres grown through pixels above ``low``), fill NaN holes from their
  neighbours, label connected components, drop small ones and split components that touch through a thin neck.
  Without depth: a colour-difference fallback against the table colour seen on the image border.
* :func:`canonical_crop` rotates each object to its principal axis and zeroes the background, keeping colour.
* :class:`SceneTagger` classifies crops with :class:`~prg.retrieval.image_model.TaggerNet`; saved as safetensors
  + JSON, its class list (labels and names) in the JSON, so loading needs nothing from the dataset generator.

Inference only: training lives in :mod:`prg.train.tagger`, evaluation in :mod:`prg.eval.tagger`.

Design and limits: ``docs/retrieval_image.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from prg.retrieval.image_model import TaggerConfig, TaggerNet

__all__ = [
    "OTHER",
    "Region",
    "SceneTagger",
    "Tag",
    "canonical_crop",
    "check_inputs",
    "propose_objects",
    "table_height",
]

#: Label for proposals that are no catalogue tool (clutter, table junk); never emitted as a tag.
OTHER = "_other"


@dataclass(frozen=True)
class Region:
    """One proposal: ``mask`` ``[H x W]`` bool and ``bbox`` ``(x0, y0, x1, y1)`` pixels, ends exclusive."""

    mask: np.ndarray
    bbox: tuple[int, int, int, int]


def check_inputs(rgb: np.ndarray, depth: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate ``rgb`` ``[H x W x 3|4]`` uint8 and ``depth`` ``[H x W]`` metres; RGBA loses its alpha."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(
            f"rgb must be [H x W x 3] (or RGBA), got shape {rgb.shape}; convert grey images to RGB first — "
            "the tagger relies on colour cues"
        )
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8, got {rgb.dtype}")
    rgb = rgb[..., :3]
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"depth must be [H x W] = {rgb.shape[:2]} like the image, got {depth.shape}")
    return rgb, depth


def table_height(depth: np.ndarray) -> np.ndarray | None:
    """Height above the table plane, metres ``[H x W]`` (NaN where depth is NaN); None if no plane is found.

    The table is the most common depth (1 mm histogram mode); a plane ``d = a*u + b*v + c`` is fitted by least
    squares to pixels near it and refitted on its inliers, so a slightly tilted camera works too.
    """
    finite = np.isfinite(depth)
    if finite.sum() < 0.2 * depth.size:
        return None
    vals = depth[finite]
    lo, hi = float(vals.min()), float(vals.max())
    hist, edges = np.histogram(vals, bins=max(1, int((hi - lo) / 0.001) + 1), range=(lo, hi + 1e-6))
    mode = float(edges[int(hist.argmax())]) + 0.0005
    vv, uu = np.nonzero(finite)
    d = vals  # same order as np.nonzero
    sel = np.abs(d - mode) < 0.005
    for tol in (0.005, 0.002):
        idx = np.flatnonzero(sel)
        if idx.size < 50:
            return None
        idx = idx[:: max(1, idx.size // 20000)]  # a subsample is plenty for three parameters
        a = np.stack([uu[idx], vv[idx], np.ones(idx.size)], axis=1).astype(np.float64)
        coef, *_ = np.linalg.lstsq(a, d[idx].astype(np.float64), rcond=None)
        resid = d - (coef[0] * uu + coef[1] * vv + coef[2])
        sel = np.abs(resid) < tol
    h, w = depth.shape
    yy, xx = np.mgrid[0:h, 0:w]
    plane = coef[0] * xx + coef[1] * yy + coef[2]
    return (plane - depth).astype(np.float32)  # closer to the camera = above the table


def _foreground_depth(height: np.ndarray, low: float, high: float) -> np.ndarray:
    nan = ~np.isfinite(height)
    if nan.any():
        # fill holes from the nearest valid pixel: a hole inside an object stays object, one on the table stays table
        idx = ndimage.distance_transform_edt(nan, return_distances=False, return_indices=True)
        height = height[tuple(idx)]
    return apply_hysteresis_threshold(height, low, high)


def _foreground_colour(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    b = max(2, int(0.04 * min(h, w)))
    img = rgb.astype(np.float32)
    border = np.concatenate(
        [img[:b].reshape(-1, 3), img[-b:].reshape(-1, 3), img[:, :b].reshape(-1, 3), img[:, -b:].reshape(-1, 3)]
    )
    ref = np.median(border, axis=0)
    dist_border = np.linalg.norm(border - ref, axis=1)
    # the threshold adapts to table texture (grain, grid lines) seen on the border, never below 30 levels
    thr = max(30.0, 1.2 * float(np.percentile(dist_border, 98)))
    fg = np.linalg.norm(img - ref, axis=2) > thr
    return ndimage.binary_opening(fg, iterations=2)


def _split_neck(comp: np.ndarray, radius: int, min_area: int) -> list[np.ndarray]:
    """Split a component whose erosion falls apart into big pieces (two objects touching through a neck)."""
    core = ndimage.binary_erosion(comp, iterations=radius)
    lab, n = ndimage.label(core)
    if n < 2:
        return [comp]
    sizes = ndimage.sum_labels(core, lab, index=np.arange(1, n + 1))
    # a piece must be large in absolute terms and relative to the component, so a tool's own thin shaft or
    # tip (which erosion also cuts off) does not become an object of its own
    keep = [i + 1 for i, s in enumerate(sizes) if s >= max(min_area, 0.25 * comp.sum())]
    if len(keep) < 2:
        return [comp]
    seeds = np.isin(lab, keep)
    idx = ndimage.distance_transform_edt(~seeds, return_distances=False, return_indices=True)
    nearest = lab[tuple(idx)]
    return [comp & (nearest == k) for k in keep]


def propose_objects(
    rgb: np.ndarray,
    depth: np.ndarray | None = None,
    min_area: int | None = None,
    low: float = 0.0015,
    high: float = 0.003,
    split: bool = True,
) -> list[Region]:
    """Object proposals for ``rgb`` ``[H x W x 3]`` uint8 and optional ``depth`` ``[H x W]`` metres (NaN = hole).

    ``min_area`` (pixels) defaults to 0.04 % of the image (80 px at 448²). Falls back to colour when depth is
    missing or has too few valid pixels to find the table.
    """
    rgb, depth = check_inputs(rgb, depth)
    h, w = rgb.shape[:2]
    if min_area is None:
        min_area = max(20, int(4e-4 * h * w))
    height = table_height(depth) if depth is not None else None
    fg = _foreground_depth(height, low, high) if height is not None else _foreground_colour(rgb)
    fg = ndimage.binary_fill_holes(ndimage.binary_opening(fg))
    lab, _ = ndimage.label(fg)
    radius = max(1, round(min(h, w) / 224))
    regions: list[Region] = []
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        comp = lab[sl] == k
        if comp.sum() < min_area:
            continue
        for part in _split_neck(comp, radius, min_area) if split else [comp]:
            mask = np.zeros((h, w), dtype=bool)
            mask[sl] = part
            ys, xs = np.nonzero(mask)
            regions.append(Region(mask, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    return regions


# --------------------------------------------------------------------------- crops
def canonical_crop(rgb: np.ndarray, mask: np.ndarray, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The object under ``mask`` as a ``[4 x size x size]`` uint8 crop (RGB with background zeroed, mask*255)
    rotated so its long (principal) axis is horizontal, plus ``[2]`` float32 size features (long and short
    extent / image side). The axis sign is arbitrary, so training augments with 180° turns."""
    ys, xs = np.nonzero(mask)
    if xs.size < 3:
        raise ValueError("mask has fewer than 3 pixels")
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    mean = pts.mean(axis=0)
    _, evecs = np.linalg.eigh(np.cov((pts - mean).T) + 1e-6 * np.eye(2))
    u = evecs[:, 1]  # major axis (x, y)
    v = np.array([-u[1], u[0]])  # u turned 90°: a rotation, never a mirror
    pu, pv = (pts - mean) @ u, (pts - mean) @ v
    length, width = pu.max() - pu.min() + 1, pv.max() - pv.min() + 1
    cx, cy = mean + u * (pu.max() + pu.min()) / 2 + v * (pv.max() + pv.min()) / 2
    s = 1.1 * max(length, width) / size  # source pixels per crop pixel, 10 % margin
    # output (row i, col j) -> source (row, col): col along u, row along v
    mat = s * np.array([[v[1], u[1]], [v[0], u[0]]])
    half = (size - 1) / 2
    offset = np.array([cy, cx]) - mat @ np.array([half, half])
    out = np.empty((4, size, size), dtype=np.uint8)
    m = ndimage.affine_transform(mask.astype(np.float32), mat, offset, output_shape=(size, size), order=1) > 0.5
    for c in range(3):
        ch = ndimage.affine_transform(rgb[..., c].astype(np.float32), mat, offset, output_shape=(size, size), order=1)
        out[c] = np.where(m, np.clip(ch, 0, 255), 0).astype(np.uint8)
    out[3] = m * 255
    side = float(max(mask.shape))
    return out, np.array([length / side, width / side], dtype=np.float32)


def _to_tensors(crops: np.ndarray, extra: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(crops).to(device).float() / 255.0  # [B, 4, S, S]
    return x, torch.from_numpy(extra).to(device) * 4.0  # size features scaled to about unit range


# --------------------------------------------------------------------------- tagger
@dataclass(frozen=True)
class Tag:
    """A catalogue tool seen in the scene: ``label`` (catalogue key), ``name``, ``score`` in [0, 1], ``bbox``."""

    label: str
    name: str
    score: float
    bbox: tuple[int, int, int, int]


class SceneTagger:
    """Names the catalogue tools visible in a scene image (one best label per proposal, deduped by label)."""

    def __init__(self, cfg: TaggerConfig, net: TaggerNet | None = None, device: str | None = None) -> None:
        self.cfg = cfg
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.net = (net or TaggerNet(cfg)).to(self.device).eval()

    @property
    def labels(self) -> list[str]:
        return self.cfg.labels

    @torch.no_grad()
    def predict_crops(self, rgb: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``[N x n_labels]`` for ``N`` object masks ``[H x W]`` of ``rgb`` ``[H x W x 3]``."""
        if not masks:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        pairs = [canonical_crop(rgb, m, self.cfg.crop) for m in masks]
        x, e = _to_tensors(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), self.device)
        self.net.eval()
        return torch.softmax(self.net(x, e), dim=1).cpu().numpy()

    def tag(self, rgb: np.ndarray, depth: np.ndarray | None = None, min_score: float = 0.5) -> list[Tag]:
        """Tags for ``rgb`` ``[H x W x 3]`` uint8 (+ ``depth`` ``[H x W]`` metres), best score first."""
        rgb, depth = check_inputs(rgb, depth)
        return self.tag_regions(rgb, propose_objects(rgb, depth), min_score)

    def tag_regions(self, rgb: np.ndarray, regions: Sequence[Region], min_score: float = 0.5) -> list[Tag]:
        """Tags for given proposals (e.g. from another segmenter) of ``rgb`` ``[H x W x 3]`` uint8."""
        probs = self.predict_crops(rgb, [r.mask for r in regions])
        best: dict[str, Tag] = {}
        for region, p in zip(regions, probs, strict=True):
            k = int(p.argmax())
            label, score = self.labels[k], float(p[k])
            if label == OTHER or score < min_score:
                continue
            if label not in best or score > best[label].score:
                best[label] = Tag(label, self.cfg.names.get(label, label), score, region.bbox)
        return sorted(best.values(), key=lambda t: -t.score)

    def save(self, out_dir: str | Path) -> None:
        """Write ``model.safetensors`` (weights and BN statistics) and ``config.json`` (labels, names, sizes)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(self.cfg.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> SceneTagger:
        """Load a tagger saved by :meth:`save` (no pickle involved); labels and names come from ``config.json``."""
        p = Path(path)
        for f in ("model.safetensors", "config.json"):
            if not (p / f).is_file():
                raise FileNotFoundError(f"{p / f}: missing; train a tagger with `prg index train-tagger`")
        cfg = TaggerConfig.from_json(json.loads((p / "config.json").read_text(encoding="utf-8")))
        net = TaggerNet(cfg)
        net.load_state_dict(load_file(str(p / "model.safetensors")))
        return cls(cfg, net, device)
