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
       instr: tuple[str, ...], zs: bool = False, scope: tuple[str, ...] = ()) -> Rule:  # fmt: skip
    return Rule(id_, ind, task, req, forb, reason, instr, zero_shot=zs, scope=scope)


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
        scope=(
            "proving a circuit dead before work starts",
            "checking that no voltage remains on terminals, cabinets or enclosures before they are opened or touched",
            "outgoing circuits after the breaker or switch has been opened",
            "confirming the absence of voltage",
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
        scope=(
            "loose terminals or connections in live panels",
            "screwed connections on energised terminal blocks",
            "busbar feeds that remain switched on",
            "re-tightening connection screws while in service",
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
        scope=(
            "blown fuses in live fuse bases",
            "replacement of NH fuse links",
            "switchboards that remain in service",
            "withdrawing or inserting fuse links under voltage",
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
        scope=(
            "cutting, trimming or stripping wires and cable ends",
            "bending conductors back into position",
            "work next to live bars or neighbouring energised circuits",
            "conductors adjacent to live parts",
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
        scope=(
            "locking isolators and switch handles in the off position",
            "preventing re-energisation by others during maintenance",
            "isolation points left open for the duration of the work",
            "lock-out/tag-out of opened isolators",
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
        scope=(
            "hand protection where conductors may be live",
            "moving or touching cables whose state is not known",
            "reaching into live sections of boards and panels",
            "contact with energised cables",
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
        scope=(
            "broken or open-circuit cores in isolated cables",
            "testing disconnected leads along their length",
            "fault finding on cables already proven dead",
            "interrupted conductors and damaged cable runs",
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
        scope=(
            "earthing and short-circuiting of busbars before work",
            "switchgear sections prepared for maintenance",
            "connecting de-energised bars to earth",
            "proving dead before grounding",
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
        scope=(
            "motor circuits of pumps, fans and conveyors",
            "drives taken out of service for maintenance",
            "securing the isolation point and then checking that the supply is gone",
            "isolation of machinery supplies",
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
        scope=(
            "failed or blown fuses in distribution boards kept in service",
            "fuse replacement while the board stays energised",
            "protection of both hands and tool for live fuse work",
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
        scope=(
            "loose neutral connections and lugs",
            "metering cabinets and meter boxes",
            "supplies that cannot be disconnected",
            "tightening lugs under voltage",
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
        scope=(
            "concentrated sulfuric, hydrochloric and nitric acid",
            "pouring from carboys into beakers or other vessels",
            "hand protection when acids are decanted or transferred",
            "concentrated mineral acids",
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
        scope=(
            "acetone, methyl ethyl ketone and similar solvents",
            "wiping down or cleaning reactors, vessels and parts with solvents",
            "prolonged hand contact with ketones",
            "solvent degreasing",
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
        scope=(
            "HF and fluoride etching baths and tanks",
            "retrieving samples, coupons or parts from hydrofluoric acid",
            "lifting items out of etch baths",
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
        scope=(
            "muffle furnaces and kilns",
            "crucibles at high temperature, e.g. 900 degrees",
            "removing hot items from a furnace floor or hearth",
            "work above several hundred degrees",
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
        scope=(
            "rinsing of beakers, vessels and surfaces after hydrofluoric acid etching",
            "washing down HF residues",
            "rinse water applied to etched surfaces",
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
        scope=(
            "eye and face protection against splashes",
            "caustic soda and other alkaline solutions",
            "topping up corrosive baths",
            "transfer of acids or alkalis between bottles and containers",
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
        scope=(
            "benzoyl peroxide and other organic peroxides",
            "permanganates, chlorates and other strong oxidisers",
            "weighing and scooping crystals or powders on a balance or into weighing boats",
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
        scope=(
            "fuming nitric acid and oleum",
            "acids that give off vapour when opened",
            "protection of face and hands in that order",
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
        scope=(
            "acid spills on benches and floors",
            "spilled battery acid",
            "clean-up and neutralisation of spills",
            "confirming that a neutralised spill is safe",
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
        scope=(
            "silicon wafers in BOE baths",
            "buffered oxide etch and other HF-containing etchants",
            "hand protection before items are lifted from the etchant",
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
        scope=(
            "final rinse water after clean-in-place (CIP) cycles",
            "alkaline or caustic washing",
            "discharge of rinse water to drain",
            "checking effluent against discharge limits",
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
        scope=(
            "cylinder head bolts, flange bolts and wheel nuts",
            "fasteners with a specified tightening torque in newton metres",
            "bolt values given on drawings or in the manual",
            "final tightening passes",
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
        scope=(
            "Zone 1 and Zone 2 hazardous areas",
            "areas around solvent tanks, fuel lines and gas valves",
            "where flammable gas or vapour may be present",
            "loosening flange bolts and bolted covers in hazardous areas",
            "avoiding sparks and other sources of ignition",
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
        scope=(
            "fitting bearings onto shafts or into housings",
            "polished shafts, machined covers and other finished surfaces",
            "tapping parts gently into place or alignment without leaving marks",
            "striking components that must not be dented",
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
        scope=(
            "valve lash and rocker clearances on each cylinder",
            "gaps between rockers and valve stems",
            "bearing clearances",
            "checking small gaps of a few hundredths of a millimetre",
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
        scope=(
            "freshly sheared or laser-cut sheet metal",
            "carrying panels and blanks with sharp edges",
            "unloading cutting tables and presses",
            "burrs and sharp edges",
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
        scope=(
            "circlips and snap rings on shafts or in bores",
            "internal and external retaining rings",
            "ring grooves in shafts and bores",
            "removing or fitting snap-in rings",
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
        scope=(
            "grinding, riveting and other noisy operations",
            "noise levels above 85 dB(A)",
            "hearing protection for the whole shift",
            "work beside angle grinders",
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
        scope=(
            "reassembly of gearbox output shafts",
            "shafts secured by a ring and an end nut",
            "end nuts tightened to specification after the ring is seated",
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
        scope=(
            "tappet and valve gap adjustment",
            "locking of adjusters with a lock nut",
            "engine valve clearances that are set and then secured",
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
        scope=(
            "trimming and deburring blanks or panels",
            "press brakes and other noisy bending stations",
            "stations with both noise and sharp edges",
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
        scope=(
            "pump and motor shaft alignment",
            "coupling halves and coupling faces",
            "angular and parallel misalignment",
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
        scope=(
            "control boards, main PCBs and inverter modules of appliances",
            "electrostatic discharge from the body to electronics",
            "swapping or picking up the electronics of washing machines, fridges and similar appliances",
            "handling electronic modules",
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
        scope=(
            "high and low side (suction and discharge) pressures",
            "both sides of a refrigeration circuit",
            "refrigerant charge of split air conditioners, fridges and freezers",
            "appliances that do not cool properly",
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
        scope=(
            "high-voltage capacitors in microwave ovens",
            "stored or residual charge after unplugging",
            "bleeding stored energy before contact",
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
        scope=(
            "clipped covers and snap-fit panels",
            "plastic clips on appliance housings",
            "opening housings without scratching or gouging",
            "coffee machines and control panels",
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
        scope=(
            "230 V mains supply terminals",
            "terminal blocks of ovens, washing machines and other appliances",
            "voltage measurements at the appliance supply",
            "overvoltage category III circuits",
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
        scope=(
            "finding where refrigerant escapes from a sealed system",
            "fridges, freezers and air conditioners that keep losing refrigerant charge",
            "evaporator, condenser and brazed joints",
            "leak searches",
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
        scope=(
            "heating elements and grill racks",
            "ovens that have just been switched off",
            "hot metal parts of cooking appliances",
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
        scope=(
            "magnetron replacement",
            "high-voltage sections of microwave ovens",
            "draining stored charge and then proving absence of voltage",
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
        scope=(
            "sealed-system repairs such as a new drier or compressor",
            "brazed joints after repair",
            "pressure checks followed by joint checks",
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
        scope=(
            "electronics modules of washers and dishwashers",
            "control units behind clipped covers",
            "static protection and opening of clips",
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
        scope=(
            "inner door glass of ovens",
            "baking trays after cooking",
            "glass and trays that stay hot after switching off",
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
    all_instructions = [t for r in rules for t in r.instructions]  # scope may copy no instruction of any rule
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
        problems += _check_scope(r, industry_names, all_instructions)
    return problems


MAX_SHARED_WORDS = 4  # a scope phrase may share at most this many consecutive words with any instruction


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def _check_scope(r: Rule, industry_names: list[str], instructions: list[str]) -> list[str]:
    """Scope phrases: 3-5 per rule, no tool named, no run of more than MAX_SHARED_WORDS words from an instruction.

    The corpus prints scope phrases next to the rule, so a copied instruction would hand retrieval the query.
    """
    problems = [] if 3 <= len(r.scope) <= 5 else [f"{r.id}: needs 3-5 scope phrases, has {len(r.scope)}"]
    n = MAX_SHARED_WORDS + 1
    instr_grams = set().union(*(_ngrams(t, n) for t in instructions)) if instructions else set()
    for text in r.scope:
        problems += [f"{r.id}: scope names {name!r}: {text!r}" for name in industry_names if _mentions(text, name)]
        shared = _ngrams(text, n) & instr_grams
        problems += [f"{r.id}: scope copies instruction words {' '.join(g)!r}: {text!r}" for g in sorted(shared)]
    return problems
