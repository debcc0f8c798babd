"""Drawing grasps, masks and captions over images (PIL only, so it runs anywhere the data code runs).

One drawing code path serves ``prg data show``, the demo, evaluation reports and the HTTP API.
"""

from __future__ import annotations

import functools
import importlib.util
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from prg.grasp.rect import GraspRect

__all__ = [
    "PALETTE",
    "caption",
    "caption_font",
    "contact_sheet",
    "draw_grasps",
    "draw_masks",
    "record_overlay",
    "result_overlay",
    "shorten",
    "wrap_to_width",
]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
)  # fmt: skip


def draw_grasps(
    image: Image.Image,
    rects: Sequence[GraspRect],
    colour: tuple[int, int, int] = (255, 0, 0),
    jaw_colour: tuple[int, int, int] = (0, 90, 255),
    line_width: int = 2,
) -> Image.Image:
    """Draw rectangles the Cornell way: opening edges in ``colour``, the jaw plates in ``jaw_colour``."""
    out = image.convert("RGB").copy()
    d = ImageDraw.Draw(out)
    for r in rects:
        c = [tuple(p) for p in r.corners().tolist()]
        d.line([c[0], c[1]], fill=colour, width=line_width)
        d.line([c[2], c[3]], fill=colour, width=line_width)
        d.line([c[1], c[2]], fill=jaw_colour, width=line_width + 1)
        d.line([c[3], c[0]], fill=jaw_colour, width=line_width + 1)
        cx, cy = r.x, r.y
        d.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colour)
    return out


def draw_masks(
    image: Image.Image,
    masks: Sequence[np.ndarray],
    colours: Sequence[tuple[int, int, int]],
    alpha: float = 0.4,
) -> Image.Image:
    """Blend boolean ``[H x W]`` masks over the image in the given colours."""
    arr = np.asarray(image.convert("RGB")).astype(np.float32)
    for m, col in zip(masks, colours, strict=False):
        if m.shape != arr.shape[:2]:
            continue  # a mismatched mask is reported by `prg data validate`; drawing skips it
        arr[m] = (1 - alpha) * arr[m] + alpha * np.asarray(col, np.float32)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (matplotlib ships it; Debian has it): Pillow's own fonts lack §, – and ° that citations use."""
    candidates = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    candidates.append(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    for c in candidates:
        if c.is_file():
            return ImageFont.truetype(str(c), size)
    return ImageFont.load_default(size=size)


CAPTION_FONT_SIZE = 12
CAPTION_MARGIN = 4  # pixels between the text and the band's edges
_LINE_HEIGHT = 15


def caption_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font captions are drawn in (what :func:`wrap_to_width` measures with)."""
    return _font(CAPTION_FONT_SIZE)


def wrap_to_width(text: str, width: float, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width`` pixels as ``font`` draws them.

    Measured with the font (``getlength``), not counted in characters: a proportional font fits ~40 narrow letters
    or ~20 capitals in the same width, so a character count either wastes the band or runs off its edge. A single
    word wider than a line (a long URL or id) is the one thing broken between letters: it could not fit otherwise.
    """
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if font.getlength(trial) <= width:
            line = trial
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and font.getlength(word) > width:
            cut = 1  # the longest head that fits, at least one letter
            while cut < len(word) - 1 and font.getlength(word[: cut + 1]) <= width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines or [""]


def shorten(text: str, max_chars: int) -> str:
    """``text`` on one line (whitespace runs collapsed), cut after a whole word with " …" when longer than
    ``max_chars``; a first word longer than that is the one case cut inside a word (else nothing would be left)."""
    short = textwrap.shorten(text, max_chars, placeholder=" …", break_on_hyphens=False)  # "two-pole" is one word
    if short == "…" and text.strip():
        return " ".join(text.split())[: max_chars - 1] + "…"
    return short


def caption(image: Image.Image, lines: Sequence[str]) -> Image.Image:
    """Append a white caption band under the image: each of ``lines`` wrapped to the image's width."""
    font = caption_font()
    w = image.width
    wrapped: list[str] = []
    for line in lines:
        wrapped += wrap_to_width(line, w - 2 * CAPTION_MARGIN, font)
    band = Image.new("RGB", (w, _LINE_HEIGHT * len(wrapped) + 2 * CAPTION_MARGIN), (255, 255, 255))
    d = ImageDraw.Draw(band)
    for i, t in enumerate(wrapped):
        d.text((CAPTION_MARGIN, CAPTION_MARGIN + i * _LINE_HEIGHT), t, fill=(0, 0, 0), font=font)
    out = Image.new("RGB", (w, image.height + band.height), (255, 255, 255))
    out.paste(image.convert("RGB"), (0, 0))
    out.paste(band, (0, image.height))
    return out


def result_overlay(image: Image.Image | np.ndarray, result: object, show_text: bool = True) -> Image.Image:
    """A pipeline result drawn on its image: each ``[POSE]``'s grasps in its own colour (best thickest), then a
    caption with the instruction, the answer and the cited clauses (``result``: a ``prg.pipeline.PRGResult``)."""
    from prg.pipeline import PRGResult

    assert isinstance(result, PRGResult)
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image.convert("RGB")
    for i, grasps in enumerate(result.grasps):
        colour = PALETTE[i % len(PALETTE)]
        rects = [g.to_rect() for g in grasps]
        if rects[1:]:
            img = draw_grasps(img, rects[1:], colour=colour, jaw_colour=colour, line_width=1)
        if rects:
            img = draw_grasps(img, rects[:1], colour=colour, line_width=3)
    if not show_text:
        return img
    lines = [f"Instruction: {result.instruction}", f"Answer: {result.answer}"]
    for c in result.citations:
        lines.append(f"Cited {c.id}: {shorten(c.text, 300)}")
    if result.unresolved_citations:
        lines.append("Cited but not retrieved: " + ", ".join(result.unresolved_citations))
    if not result.grasps:
        lines.append("No grasp: the answer has no [POSE].")
    for i, grasps in enumerate(result.grasps, start=1):
        if not grasps:
            lines.append(f"[POSE] {i}: no grasp scored above the decoder's threshold.")
    return caption(img, lines)


def record_overlay(root: str | Path, record: object, show_text: bool = True) -> Image.Image:
    """Image of a PRG record with masks, polygons and grasps; targets bright, other objects thin and grey."""
    from prg.data.dataset import load_image, load_mask
    from prg.data.schema import PRGRecord

    assert isinstance(record, PRGRecord)
    img = Image.fromarray(load_image(root, record))
    masks, cols = [], []
    for i, o in enumerate(record.objects):
        if o.mask is not None:
            masks.append(load_mask(root, o.mask))
            cols.append(PALETTE[i % len(PALETTE)])
    img = draw_masks(img, masks, cols)
    d = ImageDraw.Draw(img)
    for i, o in enumerate(record.objects):
        if o.polygon:
            d.polygon([tuple(p) for p in o.polygon], outline=PALETTE[i % len(PALETTE)])
    targets = set(record.targets)
    for o in record.objects:
        rects = [g.to_rect() for g in o.grasps]
        if o.id in targets:
            img = draw_grasps(img, rects, line_width=2)
        else:
            img = draw_grasps(img, rects, colour=(150, 150, 150), jaw_colour=(110, 110, 110), line_width=1)
    if show_text:
        lines = [
            f"[{record.industry} / {record.split}] {record.id}",
            f"Q: {record.instruction}",
            f"A: {record.answer}",
        ]
        names = {o.id: o.name for o in record.objects}
        if record.targets:
            lines.append("targets: " + ", ".join(f"{t} ({names.get(t, '?')})" for t in record.targets))
        img = caption(img, lines)
    return img


def contact_sheet(images: Sequence[Image.Image], cols: int = 4, cell: int = 256) -> Image.Image:
    """Tile images (each fitted into ``cell`` x ``cell`` keeping aspect) into one sheet."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * cell), (255, 255, 255))
    for i, im in enumerate(images):
        t = im.copy()
        t.thumbnail((cell, cell))
        sheet.paste(t, ((i % cols) * cell, (i // cols) * cell))
    return sheet
