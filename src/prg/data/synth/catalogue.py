"""The PRG-Synth object catalogue: professional tools per industry, built from primitives.

Every tool is a handful of :class:`~prg.data.synth.types.Part` primitives (metres, long axis +x). Look-alike pairs
share their geometry and differ only in a small visual cue (sleeve colour, tip colour, a band) that
:data:`VISUAL_CUES` describes for document figure captions: the camera sees two near-identical tools, and only
the documents say which one the task allows.
"""

from __future__ import annotations

from prg.data.synth.types import RGB, ObjectType, Part

__all__ = ["CATALOGUE", "VISUAL_CUES", "get_type", "is_plural", "types_for_industry"]

# A few reusable colours (RGB).
STEEL: RGB = (168, 170, 176)
CHROME: RGB = (196, 198, 204)
BLACK: RGB = (35, 35, 38)
RED: RGB = (200, 35, 35)
YELLOW: RGB = (232, 190, 25)
ORANGE: RGB = (235, 120, 30)
BLUE: RGB = (40, 80, 190)
GREEN: RGB = (40, 150, 70)
WHITE: RGB = (238, 238, 235)
BRASS: RGB = (190, 150, 60)
BRONZE: RGB = (176, 110, 60)
TAN: RGB = (180, 135, 90)
GREY: RGB = (120, 122, 128)

Seg = tuple[str, float, float, float, str, bool]  # (shape, length, width, height, role, graspable)


def _axial(*segs: Seg) -> tuple[Part, ...]:
    """Lay segments end to end along +x, centred on the origin (handles, shafts, probes, tips)."""
    total = sum(s[1] for s in segs)
    x = -total / 2
    parts = []
    for shape, length, width, height, role, graspable in segs:
        size = (length, width, width) if shape == "cylinder" else (length, width, height)
        parts.append(Part(shape, size, (x + length / 2, 0.0), role=role, graspable=graspable))  # type: ignore[arg-type]
        x += length
    return tuple(parts)


def _screwdriver(shaft_role: str, shaft_len: float = 0.1, band: bool = False) -> tuple[Part, ...]:
    segs: list[Seg] = [("cylinder", 0.11, 0.032, 0.032, "handle", True)]
    if band:
        segs.append(("cylinder", 0.02, 0.014, 0.014, "band", False))
    segs += [
        ("cylinder", shaft_len, 0.008, 0.008, shaft_role, False),
        ("cylinder", 0.015, 0.006, 0.006, "tip", False),
    ]
    return _axial(*segs)


def _pen(body_len: float, body_d: float, probe_len: float, window: bool = True) -> tuple[Part, ...]:
    parts = list(
        _axial(
            ("cylinder", body_len, body_d, body_d, "body", True),
            ("cylinder", probe_len, 0.009, 0.009, "tip", False),
        )
    )
    if window:  # a small display/LED window on top of the body
        parts.append(
            Part("box", (0.025, body_d * 0.55, 0.004), (-0.01, 0.0), z0=body_d, role="window", graspable=False)
        )
    return tuple(parts)


def _pliers(length: float, guard: bool, head_w: float = 0.032) -> tuple[Part, ...]:
    hl = length * 0.62
    parts = [
        Part("box", (hl, 0.016, 0.014), (-length / 2 + hl / 2, 0.013), role="handle"),
        Part("box", (hl, 0.016, 0.014), (-length / 2 + hl / 2, -0.013), role="handle"),
        Part(
            "box",
            (length - hl, head_w, 0.016),
            (length / 2 - (length - hl) / 2, 0.0),
            role="head",
            graspable=False,
        ),
    ]
    if guard:  # finger guards where handle meets head: the cue of an insulated tool
        parts.append(Part("box", (0.008, 0.058, 0.018), (-length / 2 + hl - 0.004, 0.0), role="guard", graspable=False))
    return tuple(parts)


def _glove() -> tuple[Part, ...]:
    return (
        Part("box", (0.09, 0.1, 0.012), (-0.075, 0.0), role="cuff"),
        Part("box", (0.11, 0.11, 0.014), (0.025, 0.0), role="body"),
        Part("box", (0.08, 0.085, 0.01), (0.12, 0.0), role="body", graspable=False),
        Part("box", (0.05, 0.024, 0.01), (0.02, 0.068), role="body", graspable=False),  # thumb
    )


def _bottle(d: float, h: float) -> tuple[Part, ...]:
    return (
        Part("cylinder_z", (d, d, h), role="body"),
        Part("cylinder_z", (d * 0.45, d * 0.45, 0.02), z0=h, role="cap", graspable=False),
        Part("box", (d * 0.8, 0.006, 0.006), (d * 0.55, 0.0), z0=h + 0.012, role="cap", graspable=False),
    )


def _tongs(length: float) -> tuple[Part, ...]:
    arm = length - 0.05
    return (
        Part("box", (arm, 0.01, 0.008), (-0.025, 0.011), role="body"),
        Part("box", (arm, 0.01, 0.008), (-0.025, -0.011), role="body"),
        Part("box", (0.05, 0.014, 0.01), (length / 2 - 0.025, 0.014), role="tip", graspable=False),
        Part("box", (0.05, 0.014, 0.01), (length / 2 - 0.025, -0.014), role="tip", graspable=False),
        Part("box", (0.02, 0.034, 0.012), (-length / 2 + 0.01, 0.0), role="body", graspable=False),
    )


def _eyewear(strap: bool) -> tuple[Part, ...]:
    parts = [
        Part("box", (0.055, 0.045, 0.03), (-0.032, 0.0), role="lens"),
        Part("box", (0.055, 0.045, 0.03), (0.032, 0.0), role="lens"),
        Part("box", (0.012, 0.012, 0.012), (0.0, 0.01), role="frame", graspable=False),
        Part(
            "box",
            (0.006, 0.11, 0.008),
            (-0.064, -0.06),
            role="frame" if not strap else "strap",
            graspable=False,
        ),
        Part(
            "box",
            (0.006, 0.11, 0.008),
            (0.064, -0.06),
            role="frame" if not strap else "strap",
            graspable=False,
        ),
    ]
    return tuple(parts)


def _wrench(length: float, width: float, thick: float) -> tuple[Part, ...]:
    return (
        Part("box", (length - 2 * width, width, thick), role="body"),
        Part(
            "box",
            (width * 1.6, width * 1.9, thick * 1.2),
            (length / 2 - width * 0.8, 0.0),
            role="head",
            graspable=False,
        ),
        Part(
            "box",
            (width * 1.3, width * 1.6, thick * 1.1),
            (-length / 2 + width * 0.65, 0.0),
            role="head",
            graspable=False,
        ),
        Part("box", (0.02, width * 1.05, thick * 1.05), (0.0, 0.0), role="band", graspable=False),
    )


def _hammer(face: str) -> tuple[Part, ...]:
    return (
        Part("cylinder", (0.28, 0.03, 0.03), (-0.02, 0.0), role="handle"),
        Part("box", (0.05, 0.08, 0.042), (0.14, 0.0), role="head", graspable=False),
        Part("box", (0.048, 0.02, 0.04), (0.14, 0.05), role=face, graspable=False),
        Part("box", (0.048, 0.02, 0.04), (0.14, -0.05), role=face, graspable=False),
    )


def _cups() -> tuple[Part, ...]:
    return (
        Part("cylinder_z", (0.08, 0.08, 0.05), (-0.075, 0.0), role="body"),
        Part("cylinder_z", (0.08, 0.08, 0.05), (0.075, 0.0), role="body"),
        Part("box", (0.08, 0.03, 0.02), (0.0, 0.0), role="band"),
    )


def _meter() -> tuple[Part, ...]:
    return (
        Part("box", (0.16, 0.085, 0.04), role="body"),
        Part("box", (0.05, 0.06, 0.004), (0.045, 0.0), z0=0.04, role="window", graspable=False),
        Part("cylinder_z", (0.04, 0.04, 0.008), (-0.03, 0.0), z0=0.04, role="dial", graspable=False),
        Part("box", (0.02, 0.03, 0.004), (-0.068, 0.0), z0=0.04, role="label", graspable=False),
    )


def _t(
    key: str,
    industry: str,
    name: str,
    aliases: tuple[str, ...],
    parts: tuple[Part, ...],
    colours: dict[str, tuple[RGB, ...]],
    *,
    material: str = "plastic",
    mass: float = 0.2,
    lookalikes: tuple[str, ...] = (),
    facts: tuple[str, ...] = (),
) -> ObjectType:
    return ObjectType(key, industry, name, aliases, parts, colours, material=material, mass=mass,
                      lookalikes=lookalikes, facts=facts)  # fmt: skip


_EP, _CH, _ME, _HA, _GEN = "electric_power", "chemical", "mechanical", "home_appliance", "general"

_TYPES: list[ObjectType] = [
    # ---------------------------------------------------------------- electric power
    _t(
        "screwdriver_insulated",
        _EP,
        "insulated screwdriver",
        ("VDE screwdriver", "1000 V screwdriver"),
        _screwdriver("sleeve"),
        {"handle": (RED, YELLOW), "sleeve": (RED, YELLOW), "tip": (STEEL,)},
        mass=0.08,
        lookalikes=("screwdriver_plain",),
        facts=(
            "An insulated screwdriver is tested to IEC 60900 at 10 kV and rated for work up to 1000 V AC.",
            "Its shaft is covered by an insulating sleeve up to the tip.",
        ),
    ),
    _t(
        "screwdriver_plain",
        _EP,
        "plain screwdriver",
        ("standard screwdriver", "uninsulated screwdriver"),
        _screwdriver("shaft"),
        {"handle": (RED, YELLOW), "shaft": (CHROME,), "tip": (STEEL,)},
        mass=0.07,
        lookalikes=("screwdriver_insulated",),
        facts=("A plain screwdriver has a bare steel shaft that conducts along its whole length.",),
    ),
    _t(
        "voltage_detector",
        _EP,
        "voltage detector",
        ("two-pole voltage tester", "voltage tester"),
        _pen(0.15, 0.034, 0.04),
        {"body": (YELLOW, ORANGE), "tip": (RED,), "window": (RED,)},
        mass=0.15,
        lookalikes=("continuity_tester",),
        facts=(
            "A two-pole voltage detector to IEC 61243-3 indicates voltage without a battery-dependent reading.",
            "It is checked on a known live source before and after use.",
        ),
    ),
    _t(
        "continuity_tester",
        _EP,
        "continuity tester",
        ("buzzer tester", "continuity buzzer"),
        _pen(0.15, 0.034, 0.04),
        {"body": (YELLOW, ORANGE), "tip": (RED,), "window": (GREEN,)},
        mass=0.12,
        lookalikes=("voltage_detector",),
        facts=(
            "A continuity tester drives a small current from its own battery and beeps on a closed circuit.",
            "It is not designed to be connected to a live circuit.",
        ),
    ),
    _t(
        "fuse_puller_rated",
        _EP,
        "rated fuse puller",
        ("insulated fuse puller", "NH fuse handle"),
        _axial(
            ("box", 0.12, 0.03, 0.022, "handle", True),
            ("box", 0.012, 0.055, 0.026, "band", False),
            ("box", 0.06, 0.045, 0.03, "jaw", False),
        ),
        {"handle": (BLACK,), "band": (RED,), "jaw": (GREY,)},
        mass=0.25,
        lookalikes=("fuse_puller_plain",),
        facts=(
            "A rated fuse puller has an insulated jaw and a red hand guard and is rated for the switchgear voltage.",
        ),
    ),
    _t(
        "fuse_puller_plain",
        _EP,
        "unrated fuse puller",
        ("plain fuse puller", "fuse grip"),
        _axial(
            ("box", 0.12, 0.03, 0.022, "handle", True),
            ("box", 0.012, 0.055, 0.026, "band", False),
            ("box", 0.06, 0.045, 0.03, "jaw", False),
        ),
        {"handle": (BLACK,), "band": (BLACK,), "jaw": (STEEL,)},
        mass=0.22,
        lookalikes=("fuse_puller_rated",),
        facts=("An unrated fuse puller has exposed metal jaws and no hand guard.",),
    ),
    _t(
        "pliers_insulated",
        _EP,
        "insulated pliers",
        ("VDE pliers", "1000 V pliers"),
        _pliers(0.2, guard=True),
        {"handle": (RED, YELLOW), "head": (STEEL,), "guard": (RED,)},
        material="steel",
        mass=0.25,
        lookalikes=("pliers_plain",),
        facts=("Insulated pliers carry the double-triangle symbol and finger guards at the end of the grips.",),
    ),
    _t(
        "pliers_plain",
        _EP,
        "plain pliers",
        ("combination pliers", "dipped-grip pliers"),
        _pliers(0.2, guard=False),
        {"handle": (RED, YELLOW), "head": (STEEL,)},
        material="steel",
        mass=0.23,
        lookalikes=("pliers_insulated",),
        facts=("Dipped plastic grips on plain pliers give comfort, not electrical insulation.",),
    ),
    _t(
        "earthing_clamp",
        _EP,
        "earthing clamp",
        ("grounding clamp", "earthing set"),
        _axial(
            ("cylinder", 0.2, 0.028, 0.028, "handle", True),
            ("cylinder", 0.02, 0.034, 0.034, "band", False),
            ("box", 0.07, 0.06, 0.04, "clamp", False),
        ),
        {"handle": (YELLOW,), "band": (GREEN,), "clamp": (BRONZE,)},
        material="metal",
        mass=0.6,
        lookalikes=("jumper_clamp",),
        facts=(
            "An earthing clamp to IEC 61230 is sized for the prospective short-circuit current.",
            "It carries a green/yellow marking band.",
        ),
    ),
    _t(
        "jumper_clamp",
        _EP,
        "jumper clamp",
        ("bonding jumper", "bypass jumper clamp"),
        _axial(
            ("cylinder", 0.2, 0.028, 0.028, "handle", True),
            ("cylinder", 0.02, 0.034, 0.034, "band", False),
            ("box", 0.07, 0.06, 0.04, "clamp", False),
        ),
        {"handle": (YELLOW,), "band": (RED,), "clamp": (BRONZE,)},
        material="metal",
        mass=0.55,
        lookalikes=("earthing_clamp",),
        facts=("A jumper clamp keeps a conductor continuous while a section is opened; it is not fault rated.",),
    ),
    _t(
        "lockout_padlock",
        _EP,
        "lockout padlock",
        ("safety padlock", "LOTO padlock"),
        (
            Part("box", (0.045, 0.04, 0.02), role="body"),
            Part("box", (0.03, 0.03, 0.006), (0.036, 0.0), role="shackle"),
            Part("box", (0.012, 0.03, 0.004), (-0.012, 0.0), z0=0.02, role="label", graspable=False),
        ),
        {"body": (RED, BLUE), "shackle": (WHITE,), "label": (WHITE,)},
        mass=0.06,
        lookalikes=("padlock_plain",),
        facts=(
            "A lockout padlock is keyed individually and carries the name of the person who applied it.",
            "Its shackle is non-conductive.",
        ),
    ),
    _t(
        "padlock_plain",
        _EP,
        "plain padlock",
        ("brass padlock", "store padlock"),
        (
            Part("box", (0.045, 0.04, 0.02), role="body"),
            Part("box", (0.03, 0.03, 0.006), (0.036, 0.0), role="shackle"),
            Part("box", (0.012, 0.03, 0.004), (-0.012, 0.0), z0=0.02, role="label", graspable=False),
        ),
        {"body": (BRASS, RED), "shackle": (STEEL,), "label": (BRASS,)},
        material="metal",
        mass=0.09,
        lookalikes=("lockout_padlock",),
        facts=("A plain padlock often shares its key with others of the same batch.",),
    ),
    _t(
        "insulating_gloves",
        _EP,
        "insulating gloves",
        ("rubber insulating gloves", "class 0 gloves"),
        _glove(),
        {"body": (ORANGE, RED, BLACK), "cuff": (YELLOW,)},
        material="rubber",
        mass=0.35,
        lookalikes=("leather_gloves",),
        facts=("Class 0 insulating gloves to IEC 60903 are rated 1000 V AC and are air-tested before each use.",),
    ),
    _t(
        "leather_gloves",
        _EP,
        "leather work gloves",
        ("rigger gloves", "work gloves"),
        _glove(),
        {"body": (TAN, ORANGE), "cuff": (TAN,)},
        material="leather",
        mass=0.2,
        lookalikes=("insulating_gloves",),
        facts=("Leather work gloves protect against abrasion only.",),
    ),
    # ---------------------------------------------------------------- chemical
    _t(
        "gloves_nitrile",
        _CH,
        "nitrile gloves",
        ("chemical-resistant gloves", "nitrile gauntlets"),
        _glove(),
        {"body": (BLUE, (120, 70, 170), WHITE), "cuff": (BLUE,)},
        material="rubber",
        mass=0.05,
        lookalikes=("gloves_cotton", "gloves_butyl"),
        facts=(
            "Nitrile resists dilute and concentrated mineral acids, alkalis and oils.",
            "Nitrile has a breakthrough time of minutes for ketones such as acetone.",
        ),
    ),
    _t(
        "gloves_butyl",
        _CH,
        "butyl gloves",
        ("butyl rubber gloves", "butyl gauntlets"),
        _glove(),
        {"body": (BLACK, (60, 60, 70)), "cuff": (BLACK,)},
        material="rubber",
        mass=0.12,
        lookalikes=("gloves_nitrile", "gloves_cotton"),
        facts=("Butyl rubber resists ketones, esters and hydrofluoric acid far longer than nitrile.",),
    ),
    _t(
        "gloves_cotton",
        _CH,
        "cotton gloves",
        ("fabric gloves", "cotton liners"),
        _glove(),
        {"body": (WHITE, (225, 225, 215)), "cuff": (BLUE, GREY)},
        material="cloth",
        mass=0.03,
        lookalikes=("gloves_nitrile", "gloves_butyl"),
        facts=("Cotton gloves absorb liquids and hold them against the skin.",),
    ),
    _t(
        "tongs_ptfe",
        _CH,
        "PTFE-tipped tongs",
        ("PTFE tongs", "Teflon tongs"),
        _tongs(0.25),
        {"body": (STEEL,), "tip": (WHITE,)},
        material="steel",
        mass=0.15,
        lookalikes=("tongs_steel",),
        facts=("PTFE is inert to hydrofluoric acid and most reagents but softens above 260 °C.",),
    ),
    _t(
        "tongs_steel",
        _CH,
        "steel crucible tongs",
        ("crucible tongs", "stainless tongs"),
        _tongs(0.25),
        {"body": (STEEL,), "tip": (STEEL,)},
        material="steel",
        mass=0.17,
        lookalikes=("tongs_ptfe",),
        facts=("Stainless steel tongs withstand furnace temperatures but are attacked by hydrofluoric acid.",),
    ),
    _t(
        "wash_bottle_ptfe",
        _CH,
        "PTFE wash bottle",
        ("FEP wash bottle", "fluoropolymer wash bottle"),
        _bottle(0.07, 0.16),
        {"body": ((235, 235, 228),), "cap": (RED,)},
        mass=0.1,
        lookalikes=("wash_bottle_glass",),
        facts=("A fluoropolymer wash bottle can hold hydrofluoric acid solutions and hot solvents.",),
    ),
    _t(
        "wash_bottle_glass",
        _CH,
        "glass wash bottle",
        ("borosilicate wash bottle", "glass rinse bottle"),
        _bottle(0.07, 0.16),
        {"body": ((200, 225, 235),), "cap": (BLUE,)},
        material="glass",
        mass=0.3,
        lookalikes=("wash_bottle_ptfe",),
        facts=("Borosilicate glass is dissolved by hydrofluoric acid and by hot concentrated alkali.",),
    ),
    _t(
        "safety_goggles",
        _CH,
        "safety goggles",
        ("chemical splash goggles", "goggles"),
        _eyewear(strap=True),
        {"lens": ((210, 230, 235),), "frame": (GREY,), "strap": (BLUE, BLACK)},
        mass=0.08,
        lookalikes=("reading_glasses",),
        facts=("Splash goggles to EN 166 (marking 3) seal around the eyes against liquid droplets.",),
    ),
    _t(
        "reading_glasses",
        _CH,
        "reading glasses",
        ("spectacles", "prescription glasses"),
        _eyewear(strap=False),
        {"lens": ((210, 230, 235),), "frame": (GREY, BLACK)},
        mass=0.03,
        lookalikes=("safety_goggles",),
        facts=("Corrective spectacles leave gaps at the sides and top of the eyes.",),
    ),
    _t(
        "spatula_ptfe",
        _CH,
        "PTFE spatula",
        ("PTFE-coated spatula", "Teflon spatula"),
        _axial(("box", 0.12, 0.012, 0.005, "handle", True), ("box", 0.05, 0.022, 0.003, "blade", False)),
        {"handle": (STEEL,), "blade": (WHITE,)},
        mass=0.03,
        lookalikes=("spatula_steel",),
        facts=("A PTFE-coated spatula does not catalyse the decomposition of oxidisers.",),
    ),
    _t(
        "spatula_steel",
        _CH,
        "steel spatula",
        ("stainless spatula", "metal spatula"),
        _axial(("box", 0.12, 0.012, 0.005, "handle", True), ("box", 0.05, 0.022, 0.003, "blade", False)),
        {"handle": (STEEL,), "blade": (CHROME,)},
        material="steel",
        mass=0.04,
        lookalikes=("spatula_ptfe",),
        facts=("Metal ions from a steel spatula can trigger decomposition of peroxides.",),
    ),
    _t(
        "ph_meter",
        _CH,
        "pH meter",
        ("pH pen", "pH probe"),
        _pen(0.14, 0.03, 0.045),
        {"body": (WHITE, BLUE), "tip": ((180, 220, 235),), "window": (GREY,)},
        mass=0.1,
        lookalikes=("digital_thermometer",),
        facts=("A pH pen is calibrated with buffer 4 and 7 before each series.",),
    ),
    _t(
        "digital_thermometer",
        _CH,
        "digital thermometer",
        ("probe thermometer", "stem thermometer"),
        _pen(0.14, 0.03, 0.045),
        {"body": (WHITE, BLUE), "tip": (STEEL,), "window": (GREY,)},
        mass=0.06,
        lookalikes=("ph_meter",),
        facts=("A stem thermometer measures temperature only.",),
    ),
    # ---------------------------------------------------------------- mechanical
    _t(
        "torque_wrench",
        _ME,
        "torque wrench",
        ("click wrench", "torque spanner"),
        _axial(
            ("cylinder", 0.12, 0.032, 0.032, "handle", True),
            ("cylinder", 0.24, 0.024, 0.024, "body", True),
            ("cylinder", 0.03, 0.026, 0.026, "band", False),
            ("box", 0.045, 0.04, 0.022, "head", False),
        ),
        {"handle": (BLACK,), "body": (CHROME,), "band": (RED, BLUE), "head": (STEEL,)},
        material="steel",
        mass=1.2,
        lookalikes=("spanner_plain",),
        facts=(
            "A click torque wrench is set on its scale and signals when the set torque is reached.",
            "Its calibration is checked every 5000 cycles or yearly to ISO 6789.",
        ),
    ),
    _t(
        "spanner_plain",
        _ME,
        "combination spanner",
        ("plain spanner", "ring spanner"),
        _wrench(0.2, 0.022, 0.007),
        {"body": (CHROME,), "head": (CHROME,), "band": (CHROME,)},
        material="steel",
        mass=0.2,
        lookalikes=("torque_wrench",),
        facts=("A spanner gives no indication of the applied torque.",),
    ),
    _t(
        "wrench_bronze",
        _ME,
        "spark-proof wrench",
        ("bronze wrench", "non-sparking spanner"),
        _wrench(0.22, 0.026, 0.008),
        {"body": (BRONZE,), "head": (BRONZE,), "band": (YELLOW,)},
        material="metal",
        mass=0.35,
        lookalikes=("wrench_steel",),
        facts=("Beryllium copper and aluminium bronze tools do not produce incendive sparks.",),
    ),
    _t(
        "wrench_steel",
        _ME,
        "steel wrench",
        ("chrome vanadium spanner", "steel spanner"),
        _wrench(0.22, 0.026, 0.008),
        {"body": (CHROME,), "head": (CHROME,), "band": (BLUE,)},
        material="steel",
        mass=0.3,
        lookalikes=("wrench_bronze",),
        facts=("Steel striking steel can throw sparks hot enough to ignite a flammable atmosphere.",),
    ),
    _t(
        "mallet_soft_face",
        _ME,
        "soft-face mallet",
        ("nylon mallet", "dead-blow mallet"),
        _hammer("face"),
        {"handle": (BLACK, YELLOW), "head": (GREY,), "face": (WHITE, YELLOW)},
        mass=0.5,
        lookalikes=("hammer_steel",),
        facts=("Nylon faces deliver force without marring hardened or finished surfaces.",),
    ),
    _t(
        "hammer_steel",
        _ME,
        "steel hammer",
        ("engineer's hammer", "ball-pein hammer"),
        _hammer("face"),
        {"handle": (BLACK, YELLOW), "head": (GREY,), "face": (STEEL,)},
        material="steel",
        mass=0.6,
        lookalikes=("mallet_soft_face",),
        facts=("A hardened steel face can brinell bearing races and chip hardened parts.",),
    ),
    _t(
        "feeler_gauge",
        _ME,
        "feeler gauge",
        ("thickness gauge", "feeler blades"),
        _axial(("box", 0.06, 0.02, 0.012, "handle", True), ("box", 0.1, 0.013, 0.006, "blade", False)),
        {"handle": (RED, BLUE), "blade": (STEEL,)},
        material="steel",
        mass=0.08,
        lookalikes=("steel_ruler",),
        facts=("Feeler blades are ground to thicknesses from 0.02 mm to 1 mm.",),
    ),
    _t(
        "steel_ruler",
        _ME,
        "steel ruler",
        ("steel rule", "scale rule"),
        _axial(("box", 0.06, 0.02, 0.004, "handle", True), ("box", 0.1, 0.016, 0.002, "blade", False)),
        {"handle": (STEEL,), "blade": (STEEL,)},
        material="steel",
        mass=0.05,
        lookalikes=("feeler_gauge",),
        facts=("A steel rule resolves 0.5 mm at best.",),
    ),
    _t(
        "gloves_cut_resistant",
        _ME,
        "cut-resistant gloves",
        ("cut level D gloves", "HPPE gloves"),
        _glove(),
        {"body": (GREY,), "cuff": (ORANGE, GREEN)},
        material="cloth",
        mass=0.06,
        lookalikes=("gloves_knit",),
        facts=("EN 388 level D gloves resist a 10 N blade cut.",),
    ),
    _t(
        "gloves_knit",
        _ME,
        "knitted work gloves",
        ("knit gloves", "string gloves"),
        _glove(),
        {"body": (GREY,), "cuff": (GREY, BLUE)},
        material="cloth",
        mass=0.04,
        lookalikes=("gloves_cut_resistant",),
        facts=("Knitted gloves keep hands clean; a sheet edge cuts straight through.",),
    ),
    _t(
        "circlip_pliers",
        _ME,
        "circlip pliers",
        ("snap ring pliers", "retaining ring pliers"),
        _pliers(0.18, guard=False, head_w=0.016),
        {"handle": (RED, BLUE), "head": (STEEL,)},
        material="steel",
        mass=0.15,
        lookalikes=("combination_pliers",),
        facts=("Circlip pliers have pins that engage the lug holes of a retaining ring.",),
    ),
    _t(
        "combination_pliers",
        _ME,
        "combination pliers",
        ("linesman pliers", "general pliers"),
        _pliers(0.18, guard=False, head_w=0.03),
        {"handle": (RED, BLUE), "head": (STEEL,)},
        material="steel",
        mass=0.2,
        lookalikes=("circlip_pliers",),
        facts=("Flat serrated jaws grip; they cannot open a ring evenly.",),
    ),
    _t(
        "ear_defenders",
        _ME,
        "ear defenders",
        ("ear muffs", "hearing protectors"),
        _cups(),
        {"body": (YELLOW, GREEN, RED), "band": (BLACK,)},
        mass=0.25,
        lookalikes=("headphones",),
        facts=("Ear defenders to EN 352-1 state their attenuation as an SNR value in dB.",),
    ),
    _t(
        "headphones",
        _ME,
        "headphones",
        ("headset", "audio headphones"),
        _cups(),
        {"body": (BLACK, WHITE), "band": (GREY,)},
        mass=0.22,
        lookalikes=("ear_defenders",),
        facts=("Audio headphones add sound; they are not rated for attenuation.",),
    ),
    # ---------------------------------------------------------------- home appliance
    _t(
        "anti_static_strap",
        _HA,
        "anti-static wrist strap",
        ("ESD wrist strap", "grounding wrist strap"),
        (
            Part("box", (0.2, 0.025, 0.004), role="body"),
            Part("box", (0.025, 0.03, 0.012), (0.09, 0.0), role="clip"),
        ),
        {"body": (BLACK, BLUE), "clip": (GREEN,)},
        mass=0.03,
        lookalikes=("rubber_band",),
        facts=("An ESD strap bleeds charge through a 1 megohm resistor to the earth point.",),
    ),
    _t(
        "rubber_band",
        _HA,
        "rubber band",
        ("elastic band", "rubber strap"),
        (
            Part("box", (0.2, 0.025, 0.004), role="body"),
            Part("box", (0.025, 0.03, 0.006), (0.09, 0.0), role="clip"),
        ),
        {"body": (BLACK, BLUE), "clip": (BLACK,)},
        material="rubber",
        mass=0.01,
        lookalikes=("anti_static_strap",),
        facts=("A rubber band is an insulator and drains no charge.",),
    ),
    _t(
        "manifold_gauge",
        _HA,
        "refrigerant manifold gauge",
        ("manifold gauge set", "AC gauge set"),
        (
            Part("box", (0.16, 0.05, 0.04), role="body"),
            Part("cylinder_z", (0.07, 0.07, 0.03), (-0.045, 0.0), z0=0.04, role="dial", graspable=False),
            Part("cylinder_z", (0.07, 0.07, 0.03), (0.045, 0.0), z0=0.04, role="dial2", graspable=False),
        ),
        {"body": (GREY,), "dial": (BLUE,), "dial2": (RED,)},
        material="metal",
        mass=0.9,
        lookalikes=("tyre_gauge",),
        facts=("A manifold reads low and high side pressures with saturation scales.",),
    ),
    _t(
        "tyre_gauge",
        _HA,
        "tyre pressure gauge",
        ("tire gauge", "tyre inflator gauge"),
        (
            Part("box", (0.16, 0.05, 0.04), role="body"),
            Part("cylinder_z", (0.07, 0.07, 0.03), (-0.045, 0.0), z0=0.04, role="dial", graspable=False),
            Part("cylinder_z", (0.07, 0.07, 0.03), (0.045, 0.0), z0=0.04, role="dial2", graspable=False),
        ),
        {"body": (GREY,), "dial": (BLACK,), "dial2": (BLACK,)},
        material="metal",
        mass=0.4,
        lookalikes=("manifold_gauge",),
        facts=("A tyre gauge has a Schrader chuck and reads up to about 10 bar.",),
    ),
    _t(
        "discharge_tool",
        _HA,
        "capacitor discharge tool",
        ("discharge probe", "capacitor discharger"),
        _screwdriver("shaft", 0.09, band=True),
        {"handle": (RED, BLACK), "band": (ORANGE,), "shaft": (CHROME,), "tip": (STEEL,)},
        mass=0.12,
        lookalikes=("screwdriver_household",),
        facts=("A discharge tool bleeds the stored charge through a built-in power resistor.",),
    ),
    _t(
        "screwdriver_household",
        _HA,
        "household screwdriver",
        ("flat screwdriver", "slotted screwdriver"),
        _screwdriver("shaft", 0.09, band=True),
        {"handle": (RED, BLACK), "band": (RED, BLACK), "shaft": (CHROME,), "tip": (STEEL,)},
        mass=0.07,
        lookalikes=("discharge_tool",),
        facts=("Shorting a charged capacitor with a screwdriver causes an arc that pits the blade and terminals.",),
    ),
    _t(
        "spudger_plastic",
        _HA,
        "plastic spudger",
        ("nylon pry tool", "plastic opening tool"),
        _axial(("box", 0.11, 0.012, 0.006, "handle", True), ("box", 0.04, 0.01, 0.003, "tip", False)),
        {"handle": (BLACK, BLUE), "tip": (BLACK, BLUE)},
        mass=0.01,
        lookalikes=("pry_tool_metal",),
        facts=("Nylon spudgers are softer than appliance plastics and conduct no current.",),
    ),
    _t(
        "pry_tool_metal",
        _HA,
        "metal pry tool",
        ("steel pry bar", "metal spudger"),
        _axial(("box", 0.11, 0.012, 0.006, "handle", True), ("box", 0.04, 0.01, 0.003, "tip", False)),
        {"handle": (BLACK, BLUE), "tip": (STEEL,)},
        material="steel",
        mass=0.04,
        lookalikes=("spudger_plastic",),
        facts=("A steel blade gouges plastic housings and can bridge live contacts.",),
    ),
    _t(
        "multimeter_cat3",
        _HA,
        "CAT III multimeter",
        ("CAT III meter", "mains-rated multimeter"),
        _meter(),
        {"body": (YELLOW,), "window": (GREY,), "dial": (BLACK,), "label": (RED,)},
        mass=0.4,
        lookalikes=("multimeter_basic",),
        facts=("A CAT III 600 V meter withstands mains transients at the distribution level.",),
    ),
    _t(
        "multimeter_basic",
        _HA,
        "basic multimeter",
        ("hobby multimeter", "unrated multimeter"),
        _meter(),
        {"body": (YELLOW,), "window": (GREY,), "dial": (BLACK,), "label": (YELLOW,)},
        mass=0.3,
        lookalikes=("multimeter_cat3",),
        facts=("Hobby meters without a category rating may arc over on a transient.",),
    ),
    _t(
        "leak_detector",
        _HA,
        "electronic leak detector",
        ("refrigerant sniffer", "halogen leak detector"),
        _pen(0.16, 0.032, 0.12, window=True),
        {"body": (ORANGE, BLUE), "tip": (BLACK,), "window": (RED,)},
        mass=0.3,
        lookalikes=("penlight",),
        facts=("A heated-diode sniffer detects HFC leaks of about 3 g per year.",),
    ),
    _t(
        "penlight",
        _HA,
        "gooseneck inspection light",
        ("inspection torch", "flexible penlight"),
        _pen(0.16, 0.032, 0.12, window=True),
        {"body": (ORANGE, BLUE), "tip": (BLACK,), "window": (WHITE,)},
        mass=0.15,
        lookalikes=("leak_detector",),
        facts=("An inspection light only illuminates.",),
    ),
    _t(
        "gloves_heat_resistant",
        _HA,
        "heat-resistant gloves",
        ("oven gauntlets", "aramid gloves"),
        _glove(),
        {"body": (YELLOW,), "cuff": (BLACK,)},
        material="cloth",
        mass=0.1,
        lookalikes=("gloves_dishwashing",),
        facts=("Aramid gloves to EN 407 resist contact heat of 250 °C for 15 s.",),
    ),
    _t(
        "gloves_dishwashing",
        _HA,
        "household rubber gloves",
        ("dishwashing gloves", "washing-up gloves"),
        _glove(),
        {"body": (YELLOW,), "cuff": (YELLOW,)},
        material="rubber",
        mass=0.05,
        lookalikes=("gloves_heat_resistant",),
        facts=("Thin latex softens and sticks to hot metal.",),
    ),
    # ---------------------------------------------------------------- generic clutter
    _t(
        "clutter_cup",
        _GEN,
        "cup",
        (),
        (Part("cylinder_z", (0.08, 0.08, 0.09), role="body"),),
        {"body": (WHITE, RED, BLUE)},
        material="ceramic",
        mass=0.25,
    ),
    _t(
        "clutter_notebook",
        _GEN,
        "notebook",
        (),
        (Part("box", (0.21, 0.15, 0.012), role="body"),),
        {"body": (BLUE, GREEN, BLACK)},
        material="paper",
        mass=0.2,
    ),
    _t(
        "clutter_marker",
        _GEN,
        "marker pen",
        (),
        _pen(0.12, 0.016, 0.015, window=False),
        {"body": (BLACK, WHITE), "tip": (RED, BLUE, BLACK)},
        mass=0.02,
    ),
    _t(
        "clutter_tape",
        _GEN,
        "roll of tape",
        (),
        (Part("cylinder_z", (0.09, 0.09, 0.05), role="body"),),
        {"body": (YELLOW, GREY, BLUE)},
        mass=0.1,
    ),
]

CATALOGUE: dict[str, ObjectType] = {t.key: t for t in _TYPES}

#: What tells a look-alike apart in a picture; used for document figure captions.
VISUAL_CUES: dict[str, str] = {
    "screwdriver_insulated": "note the coloured insulating sleeve covering the shaft up to the tip",
    "screwdriver_plain": "note the bare steel shaft",
    "voltage_detector": "note the red indicator window",
    "continuity_tester": "note the green indicator window",
    "fuse_puller_rated": "note the red hand guard between grip and jaw",
    "fuse_puller_plain": "note the black collar and bare steel jaw",
    "pliers_insulated": "note the red finger guards at the end of the grips",
    "pliers_plain": "note that the grips end without finger guards",
    "earthing_clamp": "note the green marking band behind the clamp",
    "jumper_clamp": "note the red marking band behind the clamp",
    "lockout_padlock": "note the white name tag and plastic shackle",
    "padlock_plain": "note the metal shackle",
    "insulating_gloves": "note the yellow cuff of the rubber glove",
    "leather_gloves": "note the tan leather cuff",
    "gloves_nitrile": "note the blue cuff",
    "gloves_butyl": "note the black rubber throughout",
    "gloves_cotton": "note the woven fabric",
    "tongs_ptfe": "note the white PTFE tips",
    "tongs_steel": "note the bare steel tips",
    "wash_bottle_ptfe": "note the red cap and opaque white body",
    "wash_bottle_glass": "note the blue cap and clear body",
    "safety_goggles": "note the elastic strap in place of side arms",
    "reading_glasses": "note the thin side arms",
    "spatula_ptfe": "note the white blade",
    "spatula_steel": "note the polished steel blade",
    "ph_meter": "note the clear glass bulb at the probe",
    "digital_thermometer": "note the thin steel probe",
    "torque_wrench": "note the coloured scale band on the tube",
    "spanner_plain": "note the plain forged body",
    "wrench_bronze": "note the bronze colour and yellow identification band",
    "wrench_steel": "note the chrome finish",
    "mallet_soft_face": "note the white nylon faces",
    "hammer_steel": "note the steel faces",
    "feeler_gauge": "note the coloured blade holder",
    "steel_ruler": "note the plain steel end",
    "gloves_cut_resistant": "note the coloured cuff that marks the cut level",
    "gloves_knit": "note the plain grey cuff",
    "circlip_pliers": "note the narrow head with pins",
    "combination_pliers": "note the wide flat jaws",
    "ear_defenders": "note the high-visibility cups",
    "headphones": "note the plain dark cups",
    "anti_static_strap": "note the green earth clip",
    "rubber_band": "note that there is no earth clip",
    "manifold_gauge": "note the blue low-side and red high-side dials",
    "tyre_gauge": "note the two black dials",
    "discharge_tool": "note the orange resistor band on the shaft",
    "screwdriver_household": "note that the band matches the handle",
    "spudger_plastic": "note the dark nylon tip",
    "pry_tool_metal": "note the steel tip",
    "multimeter_cat3": "note the red CAT III label",
    "multimeter_basic": "note that there is no category label",
    "leak_detector": "note the red sensor indicator",
    "penlight": "note the white lamp window",
    "gloves_heat_resistant": "note the black heat-proof cuff",
    "gloves_dishwashing": "note the plain yellow cuff",
}


def types_for_industry(industry: str) -> list[ObjectType]:
    """All catalogue types of one industry (``"general"`` gives the clutter types), in catalogue order."""
    return [t for t in _TYPES if t.industry == industry]


def get_type(key: str) -> ObjectType:
    """The catalogue entry for ``key``; a clear KeyError names close keys when it is unknown."""
    try:
        return CATALOGUE[key]
    except KeyError:
        close = [k for k in CATALOGUE if key.split("_")[0] in k][:8]
        raise KeyError(
            f"unknown object type {key!r}; similar keys: {close or 'none'} ({len(CATALOGUE)} known)"
        ) from None


_PLURALS = ("pliers", "gloves", "tongs", "goggles", "glasses", "defenders", "headphones")


def is_plural(name: str) -> bool:
    """Whether a tool name takes a plural verb ("the insulated pliers are"), for generated text."""
    return name.endswith(_PLURALS)
