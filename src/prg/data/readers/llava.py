"""LLaVA-Instruct-150k JSON -> :class:`VQASample` for mixing general visual conversation into training.

The file is a JSON list of ``{"id", "image", "conversations": [{"from": "human"|"gpt", "value": ...}]}``.
Malformed entries are skipped; each skip is a ``FILE: entry N (id X): problem`` warning appended to the
``report`` (a :class:`ConvertReport`, the same one ``convert`` returns) and logged on ``prg.data.readers``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prg.data.readers.common import ConvertReport
from prg.data.schema import Turn, VQASample

__all__ = ["read_llava_instruct", "strip_image_placeholder"]

_ROLES = {"human": "user", "gpt": "assistant"}
# The placeholder and the whitespace around it: the model inserts its own image tokens, so the text loses it.
_IMAGE_RE = re.compile(r"\s*<image>\s*")


def strip_image_placeholder(text: str) -> str:
    """Remove ``<image>`` and the newlines around it (``"<image>\\nWhat is it?"`` -> ``"What is it?"``)."""
    return _IMAGE_RE.sub("\n", text).strip()


def _sample(entry: Any, image_root: Path | None) -> VQASample | str:
    """The sample, or a problem message."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    convs = entry.get("conversations")
    if not isinstance(convs, list) or len(convs) < 2:
        return "'conversations' must be a list of at least 2 turns"
    turns = []
    for k, c in enumerate(convs):
        if not isinstance(c, dict) or c.get("from") not in _ROLES or not isinstance(c.get("value"), str):
            return f"turn {k}: needs 'from' in {sorted(_ROLES)} and a string 'value'"
        turns.append(Turn(role=_ROLES[c["from"]], text=strip_image_placeholder(c["value"])))
    image = entry.get("image")
    if image is not None:
        if not isinstance(image, str) or not image:
            return "'image' must be a file name"
        if image_root is not None:
            path = image_root / image
            if not path.is_file():
                return f"image {path} not found"
            image = str(path)
    try:
        return VQASample(id=str(entry.get("id", "")), image=image, turns=turns)
    except ValidationError as e:
        return f"rejected by the schema ({e})"


def read_llava_instruct(
    json_path: str | Path, image_root: str | Path | None = None, report: ConvertReport | None = None
) -> Iterator[VQASample]:
    """Yield the conversations of a LLaVA-Instruct JSON file, roles mapped human->user, gpt->assistant.

    With ``image_root``, ``image`` becomes ``image_root/<image>`` and entries whose image is missing are
    skipped. Skips are counted in ``report.n_skipped``, yields in ``report.n_records``.
    A missing or non-JSON file raises ``FileNotFoundError`` / ``ValueError`` (nothing can be read at all).
    """
    json_path = Path(json_path)
    report = ConvertReport() if report is None else report
    root = Path(image_root) if image_root is not None else None
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{json_path}:{e.lineno}: invalid JSON ({e.msg})") from e
    if not isinstance(data, list):
        raise ValueError(f"{json_path}: expected a JSON list of conversations")
    for i, entry in enumerate(data):
        result = _sample(entry, root)
        if isinstance(result, str):
            eid = entry.get("id") if isinstance(entry, dict) else None
            report.warn(f"{json_path}: entry {i} (id {eid}): {result}; skipped")
            report.n_skipped += 1
            continue
        report.n_records += 1
        yield result
