"""Scene questions and answers generated from a PRG record: general visual grounding on the professional scenes.

Mixed into training so the model keeps naming and locating what it sees, beside the reasoning answers that name
one tool. Each question is a one-turn :class:`VQASample` (no ``[POSE]``, no documents):

* what lies on the table -> the objects' names;
* where a named tool is -> its position in words, on a 3 x 3 grid of the image ("in the top left"), from its
  mask when the dataset folder is given;
* which tool on the table is rated for X -> its name, when the tool's facts say so (``attributes["facts"]``, else
  the PRG-Synth catalogue entry of its category) and exactly one object on the table has that rating.

Answers that name positions are true only for the untransformed image: sources built from them use colour jitter
alone (:meth:`prg.data.torch.augment.AugmentConfig.color_only`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from prg.data.dataset import load_mask
from prg.data.schema import ObjectAnnotation, PRGRecord, Turn, VQASample
from prg.data.synth.catalogue import CATALOGUE, is_plural

__all__ = ["object_centre", "position_words", "scene_qa"]

_ROWS = ("top", "middle", "bottom")
_COLS = ("left", "centre", "right")
# "rated for work up to 1000 V AC", "rated 1000 V AC"; a preceding "not" ("not fault rated") is no rating, and
# "a rated fuse puller" names a tool, not a rating
_RATED = re.compile(r"(?<!not )(?<!not fault )\brated ((?:for|to) [^.;,]+|\d[^.;,]*)")


def object_centre(
    obj: ObjectAnnotation, root: str | Path | None = None, cache: dict[str, np.ndarray] | None = None
) -> tuple[float, float] | None:
    """Where an object is, in pixels: its mask's centroid (with the dataset folder ``root``), else its polygon's
    vertex mean, else the mean of its grasp centres (on a long tool these sit on the handle: a rougher centre).
    ``cache``: decoded mask files, shared by the objects of one record (see :func:`load_mask`)."""
    if root is not None and obj.mask is not None:
        rows, cols = np.nonzero(load_mask(root, obj.mask, cache))
        if len(cols):
            return float(cols.mean()), float(rows.mean())
    if obj.polygon:
        return (sum(p[0] for p in obj.polygon) / len(obj.polygon), sum(p[1] for p in obj.polygon) / len(obj.polygon))
    if obj.grasps:
        return sum(g.x for g in obj.grasps) / len(obj.grasps), sum(g.y for g in obj.grasps) / len(obj.grasps)
    return None


def position_words(x: float, y: float, size: tuple[int, int]) -> str:
    """A pixel position in an image of ``size`` ``(H, W)`` on a 3 x 3 grid: "in the top left", "in the centre"."""
    h, w = size
    row = _ROWS[min(2, max(0, int(3 * (y + 0.5) / h)))]
    col = _COLS[min(2, max(0, int(3 * (x + 0.5) / w)))]
    if row == "middle" and col == "centre":
        return "in the centre"
    if row == "middle":
        return f"on the {col}"
    if col == "centre":
        return f"at the {row}"
    return f"in the {row} {col}"


def _article(name: str) -> str:
    if is_plural(name):
        return name
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _facts(obj: ObjectAnnotation) -> list[str]:
    facts = obj.attributes.get("facts")
    if isinstance(facts, list):
        return [str(f) for f in facts]
    t = CATALOGUE.get(obj.category)
    return list(t.facts) if t is not None else []


def _infer_size(record: PRGRecord) -> tuple[int, int] | None:
    # PRG-Synth's camera looks at the image centre; a real camera's principal point is near enough for thirds
    i = record.intrinsics
    return None if i is None else (round(2 * i.cy + 1), round(2 * i.cx + 1))


def _qa(record: PRGRecord, n: int, question: str, answer: str) -> VQASample:
    turns = [Turn(role="user", text=question), Turn(role="assistant", text=answer)]
    return VQASample(id=f"{record.id}#qa{n}", image=record.image, turns=turns)


def scene_qa(record: PRGRecord, size: tuple[int, int] | None = None, root: str | Path | None = None) -> list[VQASample]:
    """One-turn scene questions about ``record`` (see the module text). ``size`` is the image's ``(H, W)``, for
    positions; without it the camera intrinsics' principal point stands in for the centre, and without those
    no position question is asked. ``root`` (the dataset folder) lets positions come from the objects' masks
    (:func:`object_centre`). ``image`` of each sample is the record's (relative to its dataset folder)."""
    objects = record.objects
    if not objects:
        return []
    out: list[VQASample] = []
    names = [o.name for o in objects]
    out.append(_qa(record, 0, "What lies on the table?", f"On the table: {_listing([_article(n) for n in names])}."))
    size = size or _infer_size(record)
    masks: dict[str, np.ndarray] = {}  # the record's instance-mask file, decoded once for all its objects
    for o in objects:
        if size is None or names.count(o.name) > 1:  # "where is the X" needs one X
            continue
        centre = object_centre(o, root, masks)
        if centre is None:
            continue
        verb = "are" if is_plural(o.name) else "is"
        answer = f"The {o.name} {verb} {position_words(*centre, size)} of the image."
        out.append(_qa(record, len(out), f"Where {verb} the {o.name}?", answer))
    ratings: dict[str, list[str]] = {}
    for o in objects:
        for fact in _facts(o):
            for m in _RATED.finditer(fact):
                rating = m.group(1).split(" and ")[0].strip()  # "1000 V AC and are air-tested ..."
                holders = ratings.setdefault(rating, [])
                if o.name not in holders:
                    holders.append(o.name)
    for rating, holders in ratings.items():
        if len(holders) == 1:
            out.append(_qa(record, len(out), f"Which tool on the table is rated {rating}?", f"The {holders[0]}."))
    return out
