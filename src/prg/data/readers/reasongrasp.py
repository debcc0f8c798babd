"""The LISA / PRG "reason grasp" layout -> PRG records.

Layout::

    ROOT/<split>/<stem>.jpg|.png          image
    ROOT/<split>/<stem>.json              {"text": str | [str], "is_sentence": bool, "shapes": [...]}
    ROOT/<split>/<stem>cpos.txt           Cornell-style rectangles (or <stem>_cpos.txt, or <stem>.txt)
    ROOT/explanatory/<split>.json         optional: [{"image": "<stem>.jpg", "query": ..., "outputs": ...}]
                                          (falls back to ROOT/explanatory/train.json)

One record per text entry (id ``<split>-<stem>-<i>``). The split folder's name becomes the record split.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon

from prg.data.readers.common import (
    ConvertOptions,
    ItemResult,
    Reader,
    SkipItem,
    check_image,
    make_record,
    parse_corner_lines,
)
from prg.data.schema import POSE_TOKEN, Grasp, ObjectAnnotation, PRGRecord

__all__ = ["READER", "ReasonGraspItem", "find_items", "load_explanations", "read_item"]

_EXPLANATORY = "explanatory"
_IMAGE_EXTS = (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG")
_SPLIT_ALIASES = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}

#: image stem -> [(query or None, explanation)]
Explanations = dict[str, list[tuple[str | None, str]]]


@dataclass(frozen=True, order=True)
class ReasonGraspItem:
    """One annotated image; ``explanations`` is shared by all items of a split."""

    json_path: Path
    split: str
    explanations: Explanations = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        return str(self.json_path)


def load_explanations(root: Path, split: str, warnings: list[str]) -> Explanations:
    """Read ``ROOT/explanatory/<split>.json`` (or ``train.json``); bad entries are skipped with a warning."""
    path = root / _EXPLANATORY / f"{split}.json"
    if not path.is_file():
        path = root / _EXPLANATORY / "train.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        warnings.append(f"{path}:{e.lineno}: invalid JSON ({e.msg}); explanations not used")
        return {}
    except (OSError, UnicodeDecodeError) as e:
        warnings.append(f"{path}: unreadable ({e}); explanations not used")
        return {}
    if not isinstance(entries, list):
        warnings.append(f"{path}: expected a JSON list of entries; explanations not used")
        return {}
    out: Explanations = {}
    for i, entry in enumerate(entries):
        entry = entry if isinstance(entry, dict) else {}
        image, outputs = entry.get("image"), entry.get("outputs")
        if not (isinstance(image, str) and isinstance(outputs, str)):
            warnings.append(f"{path}: entry {i}: needs string 'image' and 'outputs'; entry skipped")
            continue
        query = entry.get("query") if isinstance(entry.get("query"), str) else None
        out.setdefault(Path(image).stem, []).append((query, outputs.strip()))
    return out


def find_items(src: Path, warnings: list[str] | None = None) -> list[ReasonGraspItem]:
    """Every ``<split>/<stem>.json`` under ``src`` (the ``explanatory`` folder is not a split)."""
    warnings = [] if warnings is None else warnings
    items: list[ReasonGraspItem] = []
    for split_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        if split_dir.name == _EXPLANATORY or split_dir.name.startswith("."):
            continue
        explanations = load_explanations(src, split_dir.name, warnings)
        for js in sorted(split_dir.glob("*.json")):
            items.append(ReasonGraspItem(js, split_dir.name, explanations))
    return items


def _texts(js: Path, ann: dict[str, Any]) -> tuple[list[tuple[int, str]], list[str]]:
    raw = ann.get("text")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise SkipItem(f"{js}: 'text' must be a non-empty string or list of strings")
    texts, problems = [], []
    for i, t in enumerate(raw):
        if isinstance(t, str) and t.strip():
            texts.append((i, t.strip()))
        else:
            problems.append(f"{js}: text entry {i} is empty or not a string; entry skipped")
    if not texts:
        raise SkipItem(*problems, f"{js}: no usable text")
    return texts, problems


def _target_polygon(js: Path, shapes: Any) -> tuple[list[tuple[float, float]] | None, list[str]]:
    """The ``target`` polygon (the largest, if several) and problems with the shapes."""
    if shapes is None:
        return None, []
    if not isinstance(shapes, list):
        return None, [f"{js}: 'shapes' is not a list; ignored"]
    polys, problems = [], []
    for i, s in enumerate(shapes):
        if not isinstance(s, dict) or s.get("label") != "target":
            continue
        if s.get("shape_type", "polygon") != "polygon":
            problems.append(f"{js}: shape {i}: shape_type {s.get('shape_type')!r} is not a polygon; ignored")
            continue
        try:
            pts = [(float(x), float(y)) for x, y in s["points"]]
        except (KeyError, TypeError, ValueError):
            problems.append(f"{js}: shape {i}: 'points' must be a list of [x, y] numbers; ignored")
            continue
        if len(pts) < 3 or not all(math.isfinite(v) for p in pts for v in p):
            problems.append(f"{js}: shape {i}: polygon needs >= 3 finite points; ignored")
            continue
        polys.append(pts)
    if len(polys) > 1:
        problems.append(f"{js}: {len(polys)} target polygons; the largest is used")
    return (max(polys, key=lambda p: Polygon(p).area) if polys else None), problems


def _find(js: Path, names: list[str]) -> Path | None:
    return next((js.with_name(n) for n in names if js.with_name(n).is_file()), None)


def read_item(item: ReasonGraspItem, options: ConvertOptions) -> ItemResult:
    """One annotated image -> one record per text entry."""
    js, stem = item.json_path, item.json_path.stem
    split = _SPLIT_ALIASES.get(item.split, item.split)
    try:
        ann = json.loads(js.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SkipItem(f"{js}:{e.lineno}: invalid JSON ({e.msg})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise SkipItem(f"{js}: unreadable annotation ({e})") from e
    if not isinstance(ann, dict):
        raise SkipItem(f"{js}: annotation must be a JSON object")

    image = _find(js, [stem + ext for ext in _IMAGE_EXTS])
    if image is None:
        raise SkipItem(f"{js.with_suffix('.jpg')}: image file not found (tried .jpg, .png, .jpeg)")
    bad = check_image(image)
    if bad is not None:
        raise SkipItem(bad)
    grasp_file = _find(js, [f"{stem}cpos.txt", f"{stem}_cpos.txt", f"{stem}.txt"])
    if grasp_file is None:
        missing = js.with_name(f"{stem}cpos.txt")
        raise SkipItem(f"{missing}: grasp file not found (nor {stem}_cpos.txt, {stem}.txt)")
    rects, problems = parse_corner_lines(grasp_file)
    if not rects:
        raise SkipItem(*problems, f"{grasp_file}: no valid grasp rectangle")

    texts, text_problems = _texts(js, ann)
    problems += text_problems
    is_sentence = ann.get("is_sentence")
    if not isinstance(is_sentence, bool):
        problems.append(f"{js}: 'is_sentence' missing or not a bool; texts used as full instructions")
        is_sentence = True
    polygon, shape_problems = _target_polygon(js, ann.get("shapes"))
    problems += shape_problems

    image_rel = f"images/{item.split}/{image.name}"
    obj = ObjectAnnotation(
        id="0",
        name="object" if is_sentence else texts[0][1],
        category="object",
        polygon=polygon,
        grasps=[Grasp.from_rect(r) for r in rects],
    )
    explained = item.explanations.get(stem, [])
    records: list[PRGRecord] = []
    for i, text in texts:
        instruction = text if is_sentence else f"Please grasp the {text}."
        # Prefer the explanation written for this very query; else the image's first one.
        explanation = next((out for q, out in explained if q == text), explained[0][1] if explained else None)
        answer = f"{explanation} {POSE_TOKEN}" if explanation else f"Sure, {POSE_TOKEN}."
        records.append(
            make_record(
                js,
                id=f"{item.split}-{stem}-{i}",
                image=image_rel,
                industry="general",
                instruction=instruction,
                answer=answer,
                objects=[obj.model_copy(deep=True)],
                targets=["0"],
                split=split,
                source="reasongrasp",
                meta={"source_file": f"{item.split}/{js.name}", "is_sentence": is_sentence},
            )
        )
    return ItemResult(records=records, files={image_rel: image}, warnings=problems)


READER = Reader(name="reasongrasp", find_items=find_items, read_item=read_item)
