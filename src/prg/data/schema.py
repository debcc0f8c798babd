"""The PRG record: one image, one instruction, one answer, the objects on the table and their grasps.

A dataset folder holds ``dataset.json`` (metadata) and ``records.jsonl`` (one :class:`PRGRecord` per line);
image, depth and mask paths inside a record are relative to the folder. ``docs/data_format.md`` is the
human-readable version of this file.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prg.grasp.rect import GraspRect
from prg.tokens import POSE_TOKEN  # the one definition, shared with the model

__all__ = [
    "FORMAT_VERSION",
    "INDUSTRIES",
    "POSE_TOKEN",
    "SPLITS",
    "DatasetInfo",
    "DocRef",
    "Grasp",
    "Intrinsics",
    "MaskRef",
    "ObjectAnnotation",
    "PRGRecord",
    "Turn",
    "VQASample",
    "count_pose_tokens",
]

FORMAT_VERSION = 1
#: The seed paper's four industries; other strings are allowed (a user's own domain), these are the known ones.
INDUSTRIES = ("electric_power", "chemical", "mechanical", "home_appliance")
#: Known split names; ``zero_shot_*`` splits hold tasks/industries never seen in training.
SPLITS = ("train", "val", "test", "zero_shot_task", "zero_shot_industry")

_POSE_RE = re.compile(re.escape(POSE_TOKEN))


def count_pose_tokens(text: str) -> int:
    return len(_POSE_RE.findall(text))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Grasp(_Model):
    """A grasp rectangle in pixels (see :class:`prg.grasp.GraspRect` for the conventions)."""

    x: float
    y: float
    width: float = Field(gt=0)
    height: float = Field(gt=0)
    angle: float = Field(ge=-3.2, le=3.2, description="radians, counter-clockwise on screen, in [-pi/2, pi/2)")
    quality: float | None = None

    @field_validator("x", "y", "width", "height", "angle")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v

    def to_rect(self) -> GraspRect:
        return GraspRect(self.x, self.y, self.width, self.height, self.angle, self.quality)

    @classmethod
    def from_rect(cls, r: GraspRect) -> Grasp:
        return cls(x=r.x, y=r.y, width=r.width, height=r.height, angle=r.angle, quality=r.quality)


class MaskRef(_Model):
    """A mask image (PNG) relative to the dataset folder; ``value`` selects one instance in a label image."""

    path: str
    value: int | None = Field(default=None, description="pixel value of this instance; None = any non-zero")


class ObjectAnnotation(_Model):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1, description="what a person calls it, e.g. 'insulated screwdriver'")
    category: str = Field(default="object", description="catalogue type, e.g. 'screwdriver_insulated'")
    mask: MaskRef | None = None
    polygon: list[tuple[float, float]] | None = Field(default=None, description="outline as (x, y) pixels")
    grasps: list[Grasp] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("polygon")
    @classmethod
    def _polygon_size(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v is not None and len(v) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return v


class Intrinsics(_Model):
    """Pinhole camera intrinsics in pixels."""

    fx: float = Field(gt=0)
    fy: float = Field(gt=0)
    cx: float
    cy: float


class DocRef(_Model):
    """A supporting passage: the document and, where known, the clause and page."""

    doc_id: str = Field(min_length=1)
    clause: str | None = None
    page: int | None = Field(default=None, ge=1)


class PRGRecord(_Model):
    """One PRG sample.

    ``answer`` contains one ``[POSE]`` per grasp the robot should make; ``targets[i]`` is the object id that the
    i-th ``[POSE]`` refers to. An answer with no ``[POSE]`` (e.g. "the required tool is not on the table") has
    no targets.
    """

    id: str = Field(min_length=1)
    image: str = Field(min_length=1, description="path relative to the dataset folder")
    depth: str | None = Field(default=None, description="PNG (uint16, scaled by depth_scale), TIFF or NPY")
    depth_scale: float = Field(default=0.001, gt=0, description="metres per unit for integer depth images")
    intrinsics: Intrinsics | None = None
    industry: str = Field(default="general")
    instruction: str = Field(min_length=1)
    answer: str
    objects: list[ObjectAnnotation] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    documents: list[DocRef] = Field(default_factory=list)
    split: str = Field(default="train")
    source: str = Field(default="prg", description="where the record came from: prg-synth, cornell, ...")
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PRGRecord:
        ids = [o.id for o in self.objects]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"object ids must be unique, repeated: {dupes}")
        n_pose = count_pose_tokens(self.answer)
        if n_pose != len(self.targets):
            raise ValueError(
                f"answer has {n_pose} {POSE_TOKEN} token(s) but {len(self.targets)} target(s); "
                f"give one target object id per {POSE_TOKEN}"
            )
        missing = [t for t in self.targets if t not in ids]
        if missing:
            raise ValueError(f"targets refer to unknown object ids {missing}; known: {ids}")
        return self

    def object(self, object_id: str) -> ObjectAnnotation:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(object_id)

    def target_objects(self) -> list[ObjectAnnotation]:
        return [self.object(t) for t in self.targets]


class DatasetInfo(_Model):
    """Contents of ``dataset.json``."""

    name: str
    format_version: int = FORMAT_VERSION
    description: str = ""
    source: str = "prg"
    industries: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class Turn(_Model):
    role: Literal["user", "assistant"]
    text: str


class VQASample(_Model):
    """A general visual conversation (LLaVA-Instruct style) mixed into training to keep VQA skills."""

    id: str
    image: str | None
    turns: list[Turn] = Field(min_length=2)
