"""Training augmentation that keeps grasps exact: the 8 rotations/flips of the pixel grid, and colour jitter.

A rotation by a multiple of 90° or a flip maps pixel centres onto pixel centres, so the image, its masks and its
grasp rectangles transform without resampling and without error: a rectangle drawn after the transform covers the
same pixels as the transformed drawing (up to ties on its boundary), the rectangle metric gives the same verdict,
and transform-then-inverse gives the rectangle back (up to float rounding, < 1e-12). Scaling, crops and arbitrary
angles are left out on purpose: they resample the image, and the processor already fixes the geometry.

Colour jitter (brightness, contrast, saturation) changes appearance only. Every random choice comes from
:func:`item_rng` (seed, source, epoch, index), so an item looks the same whichever worker or run loads it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prg.grasp.rect import GraspRect

__all__ = [
    "DIHEDRAL",
    "AugmentConfig",
    "Dihedral",
    "augment_item",
    "color_jitter",
    "item_rng",
]


@dataclass(frozen=True)
class Dihedral:
    """One symmetry of the pixel grid: mirror left-right first when ``flip``, then ``k`` quarter turns
    counter-clockwise on screen (``np.rot90``). The 8 of them are :data:`DIHEDRAL`."""

    k: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", self.k % 4)

    @property
    def name(self) -> str:
        return _NAMES[(self.k, self.flip)]

    def inverse(self) -> Dihedral:
        # A reflection undoes itself; a rotation is undone by turning back.
        return self if self.flip else Dihedral(-self.k)

    def output_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """``(H, W)`` of the transformed image."""
        return (shape[1], shape[0]) if self.k % 2 else (shape[0], shape[1])

    def array(self, a: np.ndarray) -> np.ndarray:
        """Transform an image ``[H x W x C]`` or a mask ``[H x W]`` (contiguous copy)."""
        out = np.fliplr(a) if self.flip else a
        return np.ascontiguousarray(np.rot90(out, self.k))

    def point(self, x: float, y: float, shape: tuple[int, int]) -> tuple[float, float]:
        """A pixel position (pixel-centre coordinates) in an image of ``shape`` ``(H, W)``."""
        r = self.rect(GraspRect(x, y, 1.0, 1.0, 0.0), shape)
        return r.x, r.y

    def rect(self, r: GraspRect, shape: tuple[int, int]) -> GraspRect:
        """A grasp rectangle in an image of ``shape`` ``(H, W)`` -> the same grasp in the transformed image."""
        if self.flip:
            r = r.flipped("x", shape)  # a left-right mirror keeps the shape
        return r.rot90(self.k, shape)


_NAMES = {
    (0, False): "identity",
    (1, False): "rot90",
    (2, False): "rot180",
    (3, False): "rot270",
    (0, True): "flip_h",
    (1, True): "transpose",
    (2, True): "flip_v",
    (3, True): "transverse",
}
#: The 8 symmetries, by name: identity, rot90/180/270 (counter-clockwise), flip_h/flip_v, and the two diagonals.
DIHEDRAL: dict[str, Dihedral] = {name: Dihedral(k, f) for (k, f), name in _NAMES.items()}


@dataclass(frozen=True)
class AugmentConfig:
    """What the training augmentation may do. ``transforms``: the grid symmetries drawn from (uniformly), by
    :data:`DIHEDRAL` name; ``("identity",)`` turns geometry off. ``brightness``/``contrast``/``saturation``:
    each factor is uniform in ``[1 - v, 1 + v]`` (0 = off)."""

    transforms: tuple[str, ...] = tuple(DIHEDRAL)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self) -> None:
        unknown = [t for t in self.transforms if t not in DIHEDRAL]
        if unknown or not self.transforms:
            raise ValueError(f"unknown transforms {unknown}; choose from {list(DIHEDRAL)}")
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(transforms=("identity",), brightness=0.0, contrast=0.0, saturation=0.0)

    @classmethod
    def color_only(cls) -> AugmentConfig:
        """For samples whose text names positions ("on the left"): geometry would make the answer wrong."""
        return cls(transforms=("identity",))


def item_rng(seed: int, source: str, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one item in one epoch (stable across processes: the source name is CRC-hashed)."""
    return np.random.default_rng([seed, zlib.crc32(source.encode("utf-8")), epoch, index])


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 weights, as torchvision's grayscale


def color_jitter(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Apply the three factors (1.0 = unchanged) to a ``[H x W x 3]`` uint8 image, in that order."""
    x = image.astype(np.float32) * brightness
    mean = float((x @ _LUMA).mean())
    x = (x - mean) * contrast + mean
    grey = (x @ _LUMA)[..., None]
    x = (x - grey) * saturation + grey
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def augment_item(
    image: np.ndarray,
    pose_rects: Sequence[Sequence[GraspRect]],
    config: AugmentConfig,
    rng: np.random.Generator,
    masks: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, list[list[GraspRect]], list[np.ndarray], Dihedral]:
    """Draw one transform and one set of colour factors from ``rng`` and apply them.

    ``image [H x W x 3]`` uint8, rectangles (one list per ``[POSE]``) in its pixels, optional masks ``[H x W]``.
    Returns the new image, rectangles and masks, and the transform used. The draws happen in a fixed order
    whatever the config, so turning one augmentation off does not change the others.
    """
    t = DIHEDRAL[config.transforms[int(rng.integers(len(config.transforms)))]]
    b, c, s = (1.0 + v * float(rng.uniform(-1.0, 1.0)) for v in (config.brightness, config.contrast, config.saturation))
    shape = (image.shape[0], image.shape[1])
    out = t.array(image)
    if (b, c, s) != (1.0, 1.0, 1.0):
        out = color_jitter(out, b, c, s)
    rects = [[t.rect(r, shape) for r in rs] for rs in pose_rects]
    return out, rects, [t.array(m) for m in masks], t
