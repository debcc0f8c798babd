"""Small hand-made object types for the scene/render/grasp tests (independent of the real catalogue)."""

from __future__ import annotations

from prg.data.synth.types import ObjectType, Part


def make_types() -> dict[str, ObjectType]:
    """Four objects covering every part shape: two lying cylinders, a box, an upright bottle, a ball-topped tool."""
    screwdriver = ObjectType(
        key="screwdriver",
        industry="electric_power",
        name="screwdriver",
        aliases=(),
        parts=(
            Part("cylinder", (0.10, 0.028, 0.028), offset=(-0.05, 0.0), role="handle"),
            Part("cylinder", (0.09, 0.006, 0.006), offset=(0.045, 0.0), role="shaft"),
        ),
        colours={"handle": ((220, 40, 30), (240, 200, 20)), "shaft": ((170, 170, 175),)},
        material="plastic",
        mass=0.08,
        lookalikes=("screwdriver_plain",),
    )
    screwdriver_plain = ObjectType(
        key="screwdriver_plain",
        industry="mechanical",
        name="plain screwdriver",
        aliases=(),
        parts=screwdriver.parts,
        colours={"handle": ((30, 60, 200),), "shaft": ((170, 170, 175),)},
        material="plastic",
        mass=0.08,
        lookalikes=("screwdriver",),
    )
    case = ObjectType(
        key="meter_case",
        industry="electric_power",
        name="meter case",
        aliases=(),
        parts=(Part("box", (0.12, 0.07, 0.04)),),
        colours={"body": ((240, 180, 20), (40, 40, 40))},
        material="plastic",
        mass=0.3,
    )
    bottle = ObjectType(
        key="bottle",
        industry="chemical",
        name="reagent bottle",
        aliases=(),
        parts=(Part("cylinder_z", (0.05, 0.05, 0.10)),),
        colours={"body": ((90, 60, 30), (230, 230, 240))},
        material="glass",
        mass=0.25,
    )
    probe = ObjectType(
        key="probe",
        industry="electric_power",
        name="ball-headed probe",
        aliases=(),
        parts=(
            Part("box", (0.09, 0.02, 0.02), offset=(-0.02, 0.0), role="handle"),
            Part("sphere", (0.035, 0.035, 0.035), offset=(0.04, 0.0), role="head", graspable=False),
        ),
        colours={"handle": ((20, 20, 20),), "head": ((200, 30, 30),)},
        material="metal",
        mass=0.15,
    )
    clutter = ObjectType(
        key="clutter_nut",
        industry="mechanical",
        name="nut",
        aliases=(),
        parts=(Part("cylinder_z", (0.015, 0.015, 0.008)),),
        colours={"body": ((150, 150, 150),)},
        material="metal",
        mass=0.01,
    )
    return {t.key: t for t in (screwdriver, screwdriver_plain, case, bottle, probe, clutter)}


POOL = ("screwdriver_plain", "meter_case", "bottle", "probe")
