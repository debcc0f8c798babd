"""Professional rules of PRG-Synth: for a task use these tools, never their look-alikes.

A rule lives only in the corpus (``corpus.py`` writes it into documents); its ``instructions`` describe the
situation without naming the tool, so a model has to read the documents to pick the right object. Rules marked
``zero_shot`` are stated only in held-out documents (the zero_shot_task split); their objects also appear in
training rules, so what is new is the task, not the tool.
"""

from __future__ import annotations

import random
import re

from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.types import Rule

__all__ = ["RULES", "check_rules", "paraphrase", "rules_for_industry"]

_EP, _CH, _ME, _HA = "electric_power", "chemical", "mechanical", "home_appliance"


def _r(id_: str, ind: str, task: str, req: tuple[str, ...], forb: tuple[str, ...], reason: str,
       instr: tuple[str, ...], zs: bool = False) -> Rule:  # fmt: skip
    return Rule(id_, ind, task, req, forb, reason, instr, zero_shot=zs)


RULES: list[Rule] = [
    # ------------------------------------------------------------------ electric power
    _r(
        "EP-01",
        _EP,
        "verify that a low-voltage circuit is de-energised",
        ("voltage_detector",),
        ("continuity_tester",),
        "only a detector to IEC 61243-3 reliably indicates the presence of voltage",
        (
            "I need to confirm this cabinet is dead before I open it.",
            "Make sure there is no voltage left on these terminals before I touch them.",
            "The breaker is off; now prove the outgoing circuit is really dead.",
        ),
    ),
    _r(
        "EP-02",
        _EP,
        "tighten terminal screws in a panel that may be energised",
        ("screwdriver_insulated",),
        ("screwdriver_plain",),
        "a bare shaft can bridge live parts and the worker",
        (
            "One terminal in the live panel is loose; hand me something to tighten it.",
            "The busbar feed is still on and a connection screw needs a quarter turn.",
            "Tighten the screw on that energised terminal block, please.",
        ),
    ),
    _r(
        "EP-03",
        _EP,
        "remove or insert a fuse link in an energised fuse base",
        ("fuse_puller_rated",),
        ("fuse_puller_plain",),
        "exposed metal jaws can draw an arc across the fuse base",
        (
            "The fuse in that live base has blown; get me what I use to pull it out.",
            "I have to swap an NH fuse link while the switchboard stays in service.",
        ),
    ),
    _r(
        "EP-04",
        _EP,
        "cut or strip a conductor close to live parts",
        ("pliers_insulated",),
        ("pliers_plain",),
        "dipped grips are not rated insulation",
        (
            "I need to trim this wire right next to the live bars.",
            "Strip the end of this cable; the neighbouring circuit is still energised.",
            "Bend this conductor back; the parts beside it are live.",
        ),
    ),
    _r(
        "EP-05",
        _EP,
        "secure an isolator in the open position",
        ("lockout_padlock",),
        ("padlock_plain",),
        "only a personal, individually keyed lock prevents someone else from switching on",
        (
            "I've opened the isolator; make sure nobody can switch it back on while I work.",
            "Secure this switch handle in the off position for my maintenance job.",
        ),
    ),
    _r(
        "EP-06",
        _EP,
        "handle low-voltage conductors that may be live",
        ("insulating_gloves",),
        ("leather_gloves",),
        "leather gives no rated protection against electric shock",
        (
            "I have to move these conductors and I'm not sure they are dead; protect my hands.",
            "Give me hand protection for reaching into the live section of the board.",
            "Before I touch those energised cables, what should I put on my hands?",
        ),
    ),
    _r(
        "EP-07",
        _EP,
        "check continuity of an isolated, de-energised cable",
        ("continuity_tester",),
        ("voltage_detector",),
        "a voltage indicator cannot show whether a dead conductor is continuous",
        (
            "This cable is already isolated and proven dead; check whether the core is broken.",
            "Find out if the disconnected lead is open somewhere along its length.",
        ),
    ),
    _r(
        "EP-08",
        _EP,
        "apply temporary earthing to a de-energised busbar",
        ("voltage_detector", "earthing_clamp"),
        ("continuity_tester", "jumper_clamp"),
        "earthing is only applied after absence of voltage is proven, and only fault-rated equipment may carry "
        "the short-circuit current",
        (
            "Prepare the busbar for work: it must be proven dead and then connected to earth.",
            "We're about to work on the de-energised bars; do the two safety steps before we start.",
            "Get the switchgear section ready for maintenance: confirm it's dead and short it to ground.",
        ),
    ),
    _r(
        "EP-09",
        _EP,
        "isolate a motor circuit and prove it dead",
        ("lockout_padlock", "voltage_detector"),
        ("padlock_plain", "continuity_tester"),
        "the isolation point is secured first, then the absence of voltage is proven at the work location",
        (
            "I'm about to work on the pump motor: secure the isolation and then check the supply is gone.",
            "Isolate the conveyor drive for me and prove that nothing is live.",
        ),
    ),
    _r(
        "EP-10",
        _EP,
        "replace a fuse in a live distribution board by hand",
        ("insulating_gloves", "fuse_puller_rated"),
        ("leather_gloves", "fuse_puller_plain"),
        "both hands and tool must be rated for the voltage of the board",
        zs=True,
        instr=(
            "A fuse in the live distribution board has failed; protect me and then take it out.",
            "I must change a blown fuse without shutting the board down. What first, what second?",
        ),
    ),
    _r(
        "EP-11",
        _EP,
        "tighten a loose neutral lug in a live meter cabinet",
        ("screwdriver_insulated",),
        ("screwdriver_plain",),
        "the neutral can carry current and rise in voltage when it is loose",
        zs=True,
        instr=(
            "The neutral connection in the metering cabinet is loose and we cannot disconnect the supply.",
            "A lug in the live meter box needs tightening.",
        ),
    ),
    # ------------------------------------------------------------------ chemical
    _r(
        "CH-01",
        _CH,
        "decant concentrated mineral acid",
        ("gloves_nitrile",),
        ("gloves_cotton",),
        "fabric soaks up acid and holds it against the skin",
        (
            "I'm going to pour sulfuric acid from the carboy into the beaker; protect my hands.",
            "What do I wear on my hands to transfer concentrated hydrochloric acid?",
            "Hand me what I need on my hands before I decant this nitric acid.",
        ),
    ),
    _r(
        "CH-02",
        _CH,
        "handle acetone or other ketone solvents",
        ("gloves_butyl",),
        ("gloves_cotton", "gloves_nitrile"),
        "ketones break through nitrile within minutes and soak through fabric at once",
        (
            "I'll be wiping the reactor down with acetone for half an hour; what protects my hands?",
            "We are cleaning parts in methyl ethyl ketone; give me suitable hand protection.",
        ),
    ),
    _r(
        "CH-03",
        _CH,
        "lift items out of a hydrofluoric acid bath",
        ("tongs_ptfe",),
        ("tongs_steel",),
        "hydrofluoric acid attacks steel and contaminates the bath",
        (
            "Take the sample coupon out of the HF etch bath.",
            "Something needs fishing out of the hydrofluoric acid; what do I lift it with?",
            "Retrieve the part from the fluoride etching tank.",
        ),
    ),
    _r(
        "CH-04",
        _CH,
        "remove a crucible from a hot furnace",
        ("tongs_steel",),
        ("tongs_ptfe",),
        "fluoropolymer tips soften and release toxic fumes above 260 °C",
        (
            "The crucible has been at 900 degrees in the muffle furnace; take it out.",
            "Lift the hot crucible off the furnace floor for me.",
        ),
    ),
    _r(
        "CH-05",
        _CH,
        "rinse residues containing hydrofluoric acid",
        ("wash_bottle_ptfe",),
        ("wash_bottle_glass",),
        "hydrofluoric acid dissolves glass",
        (
            "Rinse the HF residue off this beaker wall.",
            "I need to squirt rinse water over a surface that was just etched with hydrofluoric acid.",
        ),
    ),
    _r(
        "CH-06",
        _CH,
        "pour or transfer corrosive liquids",
        ("safety_goggles",),
        ("reading_glasses",),
        "only sealed eye protection keeps splashes out from the sides",
        (
            "I'm about to pour caustic soda solution; what protects my eyes?",
            "Protect my eyes, I'm going to transfer concentrated acid between bottles.",
            "Before I top up the corrosive bath, what goes on my face?",
        ),
    ),
    _r(
        "CH-07",
        _CH,
        "weigh out strong oxidisers or peroxides",
        ("spatula_ptfe",),
        ("spatula_steel",),
        "metal contact can start the decomposition of peroxides",
        (
            "I need to scoop benzoyl peroxide onto the balance.",
            "Measure out some potassium permanganate crystals for me.",
            "Transfer a few grams of the organic peroxide to the weighing boat.",
        ),
    ),
    _r(
        "CH-08",
        _CH,
        "transfer fuming acids",
        ("safety_goggles", "gloves_nitrile"),
        ("reading_glasses", "gloves_cotton"),
        "fuming acids splash and vaporise, so eyes are protected first and hands second",
        (
            "I'm going to transfer fuming nitric acid; get me protected in the right order.",
            "Set me up to decant oleum safely: face first, then hands.",
        ),
    ),
    _r(
        "CH-09",
        _CH,
        "neutralise an acid spill and confirm neutralisation",
        ("gloves_nitrile", "ph_meter"),
        ("gloves_cotton", "digital_thermometer"),
        "hands are protected before touching the spill, and neutral pH is measured, not guessed",
        (
            "There's an acid spill on the bench; I'll neutralise it, then we must confirm it's safe.",
            "Clean up the spilled battery acid and then verify it has been neutralised.",
        ),
    ),
    _r(
        "CH-10",
        _CH,
        "retrieve a wafer from a buffered oxide etch bath",
        ("gloves_butyl", "tongs_ptfe"),
        ("gloves_nitrile", "tongs_steel"),
        "buffered oxide etch contains hydrofluoric acid",
        zs=True,
        instr=(
            "The silicon wafer is done in the BOE bath; protect my hands and then get it out.",
            "Get the wafer out of the buffered oxide etch, safely and in the right order.",
        ),
    ),
    _r(
        "CH-11",
        _CH,
        "check the rinse water after a caustic cleaning cycle",
        ("ph_meter",),
        ("digital_thermometer",),
        "discharge limits are set on pH, which only a calibrated electrode measures",
        zs=True,
        instr=(
            "The caustic clean-in-place is done; check that the final rinse water can go to drain.",
            "Is the last rinse after the alkaline wash acceptable for discharge? Measure it.",
        ),
    ),
    # ------------------------------------------------------------------ mechanical
    _r(
        "ME-01",
        _ME,
        "tighten cylinder-head or flange bolts to a specified value",
        ("torque_wrench",),
        ("spanner_plain",),
        "under- or over-tightened bolts leak or fail in fatigue",
        (
            "The cylinder head bolts must be tightened to 90 newton metres.",
            "Tighten these flange bolts to the value on the drawing.",
            "Do the final pass on the wheel nuts to the specified figure.",
        ),
    ),
    _r(
        "ME-02",
        _ME,
        "loosen or tighten bolts in a potentially explosive atmosphere",
        ("wrench_bronze",),
        ("wrench_steel",),
        "a steel tool can strike sparks that ignite the atmosphere",
        (
            "We're in the zone 1 area near the solvent tank; undo this flange bolt.",
            "There may be gas around this valve; open the bolted cover without any risk of ignition.",
        ),
    ),
    _r(
        "ME-03",
        _ME,
        "seat a bearing or strike a finished surface",
        ("mallet_soft_face",),
        ("hammer_steel",),
        "a hardened steel face dents races and finished surfaces",
        (
            "Tap the new bearing home onto the shaft.",
            "Knock the polished shaft into alignment without marking it.",
            "Persuade this machined cover into place gently.",
        ),
    ),
    _r(
        "ME-04",
        _ME,
        "measure a valve or bearing clearance",
        ("feeler_gauge",),
        ("steel_ruler",),
        "clearances are hundredths of a millimetre, far below what a rule resolves",
        (
            "Check the valve lash on cylinder two.",
            "How big is the gap between the rocker and the valve stem? Measure it.",
        ),
    ),
    _r(
        "ME-05",
        _ME,
        "handle freshly cut sheet metal",
        ("gloves_cut_resistant",),
        ("gloves_knit",),
        "sheared edges cut through ordinary knitted fabric",
        (
            "I have to carry the freshly sheared sheet panels to the press; protect my hands.",
            "Unload the laser-cut blanks from the table for me.",
        ),
    ),
    _r(
        "ME-06",
        _ME,
        "remove or fit a retaining ring",
        ("circlip_pliers",),
        ("combination_pliers",),
        "flat jaws deform the ring and let it fly off",
        (
            "Take the snap-in ring off the end of this shaft.",
            "Fit the new internal ring into the bore groove.",
        ),
    ),
    _r(
        "ME-07",
        _ME,
        "work next to grinding or other loud operations",
        ("ear_defenders",),
        ("headphones",),
        "only rated attenuation protects hearing above 85 dB(A)",
        (
            "The angle grinder next to me is screaming; protect my hearing.",
            "I'll be standing by the riveting station all shift; what do I put over my ears?",
        ),
    ),
    _r(
        "ME-08",
        _ME,
        "reassemble a gearbox output shaft",
        ("circlip_pliers", "torque_wrench"),
        ("combination_pliers", "spanner_plain"),
        "the ring must sit fully in its groove before the nut is brought to its specified torque",
        (
            "Put the gearbox output shaft back together: ring first, then the nut to spec.",
            "Finish reassembling the shaft: secure the ring, then tighten the end nut to the right value.",
        ),
    ),
    _r(
        "ME-09",
        _ME,
        "adjust tappet clearance and lock the adjuster",
        ("feeler_gauge", "torque_wrench"),
        ("steel_ruler", "spanner_plain"),
        "the gap is set first and the lock nut then tightened to its value",
        (
            "Set the tappets and lock them; the manual gives a clearance and a lock nut torque.",
            "Adjust the valve gap on this engine and then secure the adjuster properly.",
        ),
    ),
    _r(
        "ME-10",
        _ME,
        "trim sheet metal next to a noisy press brake",
        ("ear_defenders", "gloves_cut_resistant"),
        ("headphones", "gloves_knit"),
        "both noise and sharp edges are hazards of this station",
        zs=True,
        instr=(
            "I'm trimming sharp blanks next to the loud press brake; kit me out.",
            "Get me ready for deburring panels at the noisy bending station, ears then hands.",
        ),
    ),
    _r(
        "ME-11",
        _ME,
        "check the gap between pump coupling halves during alignment",
        ("feeler_gauge",),
        ("steel_ruler",),
        "coupling gaps are specified to a few hundredths of a millimetre",
        zs=True,
        instr=(
            "We're aligning the pump and motor; check the gap between the coupling halves.",
            "Measure the angular misalignment at the coupling faces.",
        ),
    ),
    # ------------------------------------------------------------------ home appliance
    _r(
        "HA-01",
        _HA,
        "handle an electronic control board",
        ("anti_static_strap",),
        ("rubber_band",),
        "static discharge destroys control electronics without visible damage",
        (
            "I'm swapping the control board of this washing machine; protect the electronics from me.",
            "Before I pick up the fridge's main PCB, what do I put on?",
            "Keep my body charge from killing the new inverter board.",
        ),
    ),
    _r(
        "HA-02",
        _HA,
        "check the pressures of a refrigeration circuit",
        ("manifold_gauge",),
        ("tyre_gauge",),
        "only a refrigerant manifold reads both sides with the right fittings and scales",
        (
            "The freezer isn't getting cold; read the suction and discharge pressures.",
            "Check the charge of this split air conditioner on both sides.",
        ),
    ),
    _r(
        "HA-03",
        _HA,
        "discharge a high-voltage capacitor",
        ("discharge_tool",),
        ("screwdriver_household",),
        "a dead short arcs, damages terminals and can leave a residual charge",
        (
            "The microwave is unplugged but the big capacitor may still hold a charge; make it safe.",
            "Bleed the stored energy out of the high-voltage capacitor before I touch it.",
        ),
    ),
    _r(
        "HA-04",
        _HA,
        "open a snap-fit plastic housing",
        ("spudger_plastic",),
        ("pry_tool_metal",),
        "metal gouges the plastic and can bridge contacts",
        (
            "Open the clipped-on control panel cover without scratching it.",
            "Release the plastic clips on the coffee machine's side panel.",
        ),
    ),
    _r(
        "HA-05",
        _HA,
        "measure mains voltage at an appliance supply",
        ("multimeter_cat3",),
        ("multimeter_basic",),
        "mains transients can flash over an instrument without a category rating",
        (
            "Measure the mains voltage arriving at the oven's terminal block.",
            "Is there 230 V at the supply terminals of this washing machine? Measure it.",
        ),
    ),
    _r(
        "HA-06",
        _HA,
        "locate a refrigerant leak",
        ("leak_detector",),
        ("penlight",),
        "a refrigerant leak is invisible and must be sensed",
        (
            "The fridge keeps losing its charge; find where it escapes.",
            "Sweep the evaporator joints and find the leak.",
        ),
    ),
    _r(
        "HA-07",
        _HA,
        "handle hot oven parts",
        ("gloves_heat_resistant",),
        ("gloves_dishwashing",),
        "thin latex melts and sticks to hot metal",
        (
            "The oven was on until a minute ago; take the heating element out.",
            "Lift the hot grill rack out for me.",
        ),
    ),
    _r(
        "HA-08",
        _HA,
        "replace a microwave magnetron",
        ("discharge_tool", "multimeter_cat3"),
        ("screwdriver_household", "multimeter_basic"),
        "stored charge is bled first and the absence of voltage then measured",
        (
            "I'm replacing the magnetron; make the high-voltage section safe and confirm it.",
            "Open up the microwave's HV circuit safely: first drain it, then prove it.",
        ),
    ),
    _r(
        "HA-09",
        _HA,
        "verify a repaired sealed refrigeration system",
        ("manifold_gauge", "leak_detector"),
        ("tyre_gauge", "penlight"),
        "the system pressure is confirmed first, then each joint is sniffed",
        (
            "I've brazed the new drier in; check the system pressure and then the joints.",
            "After the sealed-system repair, confirm the pressures and look for escapes.",
        ),
    ),
    _r(
        "HA-10",
        _HA,
        "replace a washing-machine control board",
        ("anti_static_strap", "spudger_plastic"),
        ("rubber_band", "pry_tool_metal"),
        "the body is earthed first and the clipped cover opened without damage",
        zs=True,
        instr=(
            "Swap the washer's electronics module: protect it from static and open the clipped cover.",
            "I'll change the dishwasher control unit; ground me and then pop the clips.",
        ),
    ),
    _r(
        "HA-11",
        _HA,
        "lift a hot oven door glass or tray",
        ("gloves_heat_resistant",),
        ("gloves_dishwashing",),
        "oven glass stays above 100 °C long after switching off",
        zs=True,
        instr=(
            "The inner door glass is still hot; take it off for cleaning.",
            "Take the baking tray out, the oven has just finished.",
        ),
    ),
]

# Paraphrase vocabulary: fixed phrases only, checked by check_rules() so no tool name can slip in.
_PREFIXES = ("", "", "Please, ", "Quick one: ", "Could you help? ", "Excuse me, ", "Hey, ")
_CONTEXTS = (
    "",
    "",
    "We're on site and ",
    "Right now ",
    "For the next job ",
    "On this shift ",
    "At this bench ",
)
_SUFFIXES = ("", "", " Thanks.", " Be quick, please.", " Safety first.", " Thank you.")
_SWAPS = (("I need to", "I have to"), ("for me", "for me please"), ("Check", "Verify"), ("Measure", "Check"),
          ("hand me", "give me"), ("protect my hands", "keep my hands safe"), ("Take", "Get"))  # fmt: skip


def paraphrase(text: str, rng: random.Random) -> str:
    """Vary an instruction's surface form (prefix, context, synonym swaps, suffix) without naming any tool."""
    out = text
    for a, b in _SWAPS:
        if a in out and rng.random() < 0.4:
            out = out.replace(a, b, 1)
    ctx = rng.choice(_CONTEXTS)
    if ctx:  # "We're on site and the crucible ..." reads naturally only with a lower-case continuation
        out = ctx + (out if _keeps_capital(out) else out[0].lower() + out[1:])
    prefix = rng.choice(_PREFIXES)
    if prefix.endswith(", ") and not _keeps_capital(out):
        out = out[0].lower() + out[1:]
    return prefix + out + rng.choice(_SUFFIXES)


def _keeps_capital(text: str) -> bool:
    first = text.split(" ", 1)[0]
    return first in ("I", "I'm", "I've", "I'll") or first.isupper()


def rules_for_industry(industry: str, zero_shot: bool | None = None) -> list[Rule]:
    """Rules of one industry; ``zero_shot`` filters held-out (True) or training (False) rules."""
    return [r for r in RULES if r.industry == industry and (zero_shot is None or r.zero_shot == zero_shot)]


def _names(key: str) -> list[str]:
    t = CATALOGUE[key]
    return [t.name, *t.aliases]


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, flags=re.IGNORECASE) is not None


def check_rules(rules: list[Rule] | None = None) -> list[str]:
    """Problems in the rule set (empty when it is sound): unknown keys, named tools, leaks, duplicates."""
    rules = RULES if rules is None else rules
    problems: list[str] = []
    ids = [r.id for r in rules]
    problems += [f"duplicate rule id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    all_names = [n for k, t in CATALOGUE.items() if not k.startswith("clutter_") for n in _names(k)]
    vocab = [*_PREFIXES, *_CONTEXTS, *_SUFFIXES, *(b for _, b in _SWAPS)]
    problems += [f"paraphrase phrase {v!r} names {n!r}" for v in vocab for n in all_names if v and _mentions(v, n)]
    train_objects = {k for r in rules if not r.zero_shot for k in r.required}
    for r in rules:
        keys = (*r.required, *r.forbidden)
        unknown = [k for k in keys if k not in CATALOGUE]
        problems += [f"{r.id}: unknown object key {k!r}" for k in unknown]
        if not r.required or len(r.required) > 2:
            problems.append(f"{r.id}: needs 1 or 2 required objects, has {len(r.required)}")
        if set(r.required) & set(r.forbidden):
            problems.append(f"{r.id}: an object is both required and forbidden")
        if not r.forbidden:
            problems.append(f"{r.id}: no forbidden look-alike")
        if not r.instructions:
            problems.append(f"{r.id}: no instructions")
        for k in keys:
            if k in CATALOGUE and CATALOGUE[k].industry != r.industry:
                problems.append(f"{r.id}: {k} belongs to {CATALOGUE[k].industry}, not {r.industry}")
        if r.zero_shot:
            problems += [f"{r.id}: zero-shot object {k} appears in no training rule" for k in r.required
                         if k not in train_objects]  # fmt: skip
        # Any tool of the industry, not only this rule's: naming a neighbour would give the answer away too.
        industry_names = [n for k, t in CATALOGUE.items() if t.industry == r.industry for n in _names(k)]
        for text in r.instructions:
            problems += [f"{r.id}: instruction names {n!r}: {text!r}" for n in industry_names if _mentions(text, n)]
    return problems
