"""Captions under pictures: wrapped to the picture's width as the font draws it, quotes cut after whole words."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from prg.viz import CAPTION_MARGIN, caption, caption_font, shorten, wrap_to_width

# capitals and digits are wider than the average letter: a caption wrapped by counting characters ran off the edge
LONG = (
    "Retrieved rule (rank 2 of 5) EP-GUI-016 §4.2.1: WORKERS SHALL VERIFY THE ABSENCE OF VOLTAGE with a two-pole "
    "detector (see Figure 1) before touching a busbar; the manual gives a 1000 V rating for MMMM WWWW tools."
)


@pytest.mark.parametrize("width", [96, 160, 448])
def test_wrapped_lines_fit_the_width_and_keep_every_word(width: int) -> None:
    font = caption_font()
    lines = wrap_to_width(LONG, width, font)
    assert len(lines) > 1
    assert all(font.getlength(line) <= width for line in lines), [(line, font.getlength(line)) for line in lines]
    assert " ".join(lines) == LONG  # broken only at spaces: nothing lost, no word cut
    # each line is as full as it can be: the next line's first word would not have fitted
    for line, nxt in itertools.pairwise(lines):
        assert font.getlength(f"{line} {nxt.split()[0]}") > width


def test_a_word_wider_than_the_line_is_the_one_thing_broken() -> None:
    font = caption_font()
    word = "https://example.org/regulations/EP-SAF-001/section-4/clause-4.2.1"
    lines = wrap_to_width(f"see {word} now", 80, font)
    assert all(font.getlength(line) <= 80 for line in lines)
    assert len(lines) > 2 and "".join(lines).replace(" ", "") == f"see{word}now"  # pieces in order, none lost


def test_no_caption_text_runs_off_the_picture() -> None:
    """Measured on the pixels: ink in the band stays inside its margins."""
    w = 160
    img = Image.new("RGB", (w, 30), (40, 40, 40))
    out = caption(img, [LONG, "", "Short line."])
    assert out.width == w and out.height > 30 + 6 * 15  # the long line took many lines
    band = np.asarray(out.convert("L"))[30:]
    ink = band < 200
    assert ink.any()
    cols = np.flatnonzero(ink.any(axis=0))
    assert cols.max() < w - CAPTION_MARGIN // 2, f"ink reaches column {cols.max()} of {w}"


def test_shorten_cuts_after_a_whole_word_with_an_ellipsis() -> None:
    text = "Workers shall verify the absence of voltage with a two-pole detector before touching a busbar."
    for limit in (20, 41, 60):
        short = shorten(text, limit)
        assert len(short) <= limit and short.endswith(" …"), short
        head = short[: -len(" …")]
        assert text.startswith(head) and text[len(head)] == " ", short  # the cut is at a space, not inside a word
    assert shorten(text, 500) == text
    assert shorten("a  quote\nover two lines", 100) == "a quote over two lines"  # one line for a caption
    assert shorten("Überprüfungsverfahrensvorschrift", 10) == "Überprüfu…"  # one word longer than the limit
