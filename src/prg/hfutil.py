"""Loading Hugging Face weights quietly: transformers' own progress bars off while PRG reads its local files.

transformers draws a "Loading weights" bar (tqdm, on stderr) in every ``from_pretrained``. PRG loads only local
files that take a second or two (MiniLM for retrieval, the cached SmolLM2, a LLaVA folder), up to three times per
command, so the bars are noise between a command and its answer. The switch is transformers' own
(``transformers.utils.logging.disable_progress_bar``), turned off only around PRG's loads and back on afterwards
if it was on, so a program that embeds PRG keeps its bars elsewhere.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["quiet_loading"]

_lock = threading.Lock()
_depth = 0  # loads in progress (nested, or in several threads): the bars come back when the last one ends
_was_enabled = False


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No transformers progress bars inside the block (the state before it is restored after the last exit)."""
    global _depth, _was_enabled
    from transformers.utils import logging as hf_logging

    with _lock:
        if _depth == 0:
            _was_enabled = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                hf_logging.enable_progress_bar()
