"""Types shared by the PRG-Synth generator: object catalogue, rules, tasks, documents and scenes.

The generator is split by concern: ``catalogue`` (what exists), ``corpus`` (the documents that say which tool a
task needs), ``scene``/``render`` (what the camera sees), ``grasps`` (where a gripper can hold each object),
``qa`` (instructions and answers) and ``generate`` (the whole dataset). These dataclasses are their contract.

Units: metres and radians in the object/world frame (x right, y away from the viewer on the table, z up);
pixels only after rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Clause", "Document", "ObjectType", "Part", "PlacedObject", "Rule", "SceneSpec"]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Part:
    """One primitive of an object, in the object's frame (its long axis is +x, it lies on the table at z=0).

    ``size`` is the full extent: box ``(lx, ly, lz)``; cylinder lying along x ``(length, diameter, diameter)``;
    upright cylinder (``shape="cylinder_z"``) ``(diameter, diameter, height)``; sphere ``(d, d, d)``.
    ``offset`` is the part centre ``(dx, dy)`` in metres; its base rests on the table unless ``z0`` lifts it.
    ``role`` picks the colour from :attr:`ObjectType.colours`; ``graspable`` marks parts a gripper may close on.
    """

    shape: Literal["box", "cylinder", "cylinder_z", "sphere"]
    size: tuple[float, float, float]
    offset: tuple[float, float] = (0.0, 0.0)
    z0: float = 0.0
    role: str = "body"
    graspable: bool = True


@dataclass(frozen=True)
class ObjectType:
    """A kind of professional tool or piece of equipment."""

    key: str  # stable identifier, e.g. "screwdriver_insulated"
    industry: str  # one of prg.data.schema.INDUSTRIES
    name: str  # what a person calls it: "insulated screwdriver"
    aliases: tuple[str, ...]
    parts: tuple[Part, ...]
    colours: dict[str, tuple[RGB, ...]]  # role -> colour variants
    scale: tuple[float, float] = (0.9, 1.1)  # uniform scale range applied to all parts
    material: str = "plastic"  # friction/density hint for the physics engine
    mass: float = 0.2  # kg
    lookalikes: tuple[str, ...] = ()  # keys of objects a camera could confuse it with
    facts: tuple[str, ...] = ()  # professional facts, written into the corpus


@dataclass(frozen=True)
class Rule:
    """A professional rule: for ``task`` use ``required`` (in order), never ``forbidden``.

    The rule is stated only in the corpus; instructions describe the situation, not the tool.
    """

    id: str  # e.g. "EP-07"
    industry: str
    task: str  # short description of the situation, e.g. "verify a de-energised low-voltage busbar"
    required: tuple[str, ...]  # object keys, one per [POSE]; two for two-step tasks
    forbidden: tuple[str, ...]  # look-alikes that must not be used
    reason: str  # why, in one clause of text
    instructions: tuple[str, ...]  # implicit instructions (the tool is never named)
    zero_shot: bool = False  # True: stated only in held-out documents (zero_shot_task split)
    # Where the rule applies, in regulation wording (situations, equipment, places, synonyms); the corpus writes
    # 2-3 of them next to each statement so that a described situation can be matched to the rule.
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clause:
    number: str  # "4.2.1"
    text: str
    rule_id: str | None = None  # the rule this clause states; None for context and distractor clauses
    heading_path: tuple[str, ...] = ()


@dataclass
class Document:
    doc_id: str  # e.g. "EP-SAF-012"
    industry: str
    title: str
    clauses: list[Clause]
    markdown: str
    figures: list[str] = field(default_factory=list)  # relative paths of figure images
    pdf: bool = False  # also exported as PDF
    zero_shot: bool = False  # held out of the training corpus


@dataclass(frozen=True)
class PlacedObject:
    """An object instance on the table."""

    instance_id: int  # 1..N, also the value in the instance mask
    type_key: str
    x: float  # metres, table frame, centre
    y: float
    yaw: float  # radians about +z
    scale: float
    colours: dict[str, RGB]


@dataclass
class SceneSpec:
    """Everything needed to render a scene or load it into a physics engine."""

    seed: int
    objects: list[PlacedObject]
    table_colour: RGB
    table_texture: str  # "plain" | "wood" | "mat" | "grid"
    light_dir: tuple[float, float, float]
    light_intensity: float
    camera_height: float  # metres above the table, looking straight down
    fov_deg: float
    image_size: int
    clutter: list[PlacedObject] = field(default_factory=list)  # non-target small items (type keys "clutter_*")
