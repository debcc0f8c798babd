"""Catalogue-style figures for the regulation documents: a top-down drawing of one tool from its parts.

This is not the scene renderer (``render.py``); it is a clean illustration of the kind printed in a manual, so the
visual cue that separates a tool from its look-alike (sleeve colour, tip colour, band) is visible in the corpus.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from prg.data.synth.types import ObjectType, Part

__all__ = ["draw_object_figure"]


def _footprint(p: Part) -> tuple[float, float, float, float]:
    """Top-down extent (x0, y0, x1, y1) of a part in metres; y points away from the viewer."""
    lx, ly = p.size[0], p.size[1]
    cx, cy = p.offset
    return cx - lx / 2, cy - ly / 2, cx + lx / 2, cy + ly / 2


def _at_least(r: tuple[float, float, float, float], px: float) -> tuple[float, float, float, float]:
    cx, cy = (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
    hw, hh = max((r[2] - r[0]) / 2, px / 2), max((r[3] - r[1]) / 2, px / 2)
    return cx - hw, cy - hh, cx + hw, cy + hh


def draw_object_figure(obj_type: ObjectType, size: int = 256, seed: int = 0) -> Image.Image:
    """Draw ``obj_type`` seen from above, fitted into a ``size`` x ``size`` RGB image.

    Colours come from the first variant of each role; ``seed`` only varies the background tint slightly so that
    figures of different documents are not byte-identical.
    """
    rng = random.Random(seed)
    tint = rng.randint(-6, 6)
    bg = (246 + min(tint, 0), 244 + tint // 2, 238 - max(tint, 0))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    boxes = [_footprint(p) for p in obj_type.parts]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    margin = 0.12 * size
    scale = (size - 2 * margin) / max(x1 - x0, y1 - y0, 1e-6)
    ox = size / 2 - scale * (x0 + x1) / 2
    oy = size / 2 + scale * (y0 + y1) / 2  # image y runs down, object y runs away from the viewer

    def to_px(b: tuple[float, float, float, float], shift: float = 0.0) -> tuple[float, float, float, float]:
        return (
            ox + scale * b[0] + shift,
            oy - scale * b[3] + shift,
            ox + scale * b[2] + shift,
            oy - scale * b[1] + shift,
        )

    # Draw low parts first so that raised parts (windows, dials, caps) end up on top, as seen from above.
    order = sorted(range(len(obj_type.parts)), key=lambda i: obj_type.parts[i].z0 + obj_type.parts[i].size[2])
    shadow = max(2.0, size / 80)
    for i in order:  # soft shadow pass
        draw.rounded_rectangle(to_px(boxes[i], shadow), radius=3, fill=(205, 203, 198))
    for i in order:
        p = obj_type.parts[i]
        colour = obj_type.colours.get(p.role, ((128, 128, 128),))[0]
        outline = tuple(max(0, c - 60) for c in colour)
        rect = _at_least(to_px(boxes[i]), 4.0)  # thin parts (shafts, straps) stay visible and drawable
        if p.shape in ("cylinder_z", "sphere"):
            draw.ellipse(rect, fill=colour, outline=outline, width=2)
        else:  # lying cylinders get round ends, boxes slightly rounded corners
            short = min(rect[2] - rect[0], rect[3] - rect[1])
            radius = (short / 2 - 1 if p.shape == "cylinder" else min(4.0, short / 4)) if short > 6 else 0
            draw.rounded_rectangle(rect, radius=radius, fill=colour, outline=outline, width=2)
    return img
