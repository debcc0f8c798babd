"""Instruction / answer pairs for a rule and a scene: the answer cites the clause and puts [POSE] after each tool.

The answer names the document clause that states the rule ("Under EP-SAF-012 §4.2.1 ..."), the tool, and a
``[POSE]`` token right after each required tool that is on the table; ``targets`` lists those tools' type keys in
``[POSE]`` order. A required tool that is not on the table is named without ``[POSE]`` (kind ``"absent"``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from prg.data.schema import POSE_TOKEN
from prg.data.synth.catalogue import CATALOGUE, is_plural
from prg.data.synth.rules import paraphrase
from prg.data.synth.types import Rule

__all__ = ["QA", "make_qa"]

Citation = tuple[str, str]  # (doc_id, clause number)


@dataclass
class QA:
    instruction: str
    answer: str
    targets: list[str]  # object type keys, one per [POSE], in order
    documents: list[Citation] = field(default_factory=list)  # the cited clause first
    kind: Literal["single", "two_step", "absent"] = "single"
    rule_id: str = ""


_SINGLE = (
    "Under {ref}, the task to {task} calls for the {tool} {pose}.",
    "{Ref} requires the {tool} {pose} for this, because {reason}.",
    "According to {ref}, use the {tool} {pose}; {reason}.",
    "The {tool} {pose} {is_} the right choice here ({ref}).",
)
_TWO_STEP = (
    "Under {ref}, first the {tool1} {pose1}, then the {tool2} {pose2}.",
    "{Ref} sets the order: the {tool1} {pose1} first, and after it the {tool2} {pose2}.",
    "Following {ref}, I take the {tool1} {pose1}, then the {tool2} {pose2}, because {reason}.",
)
_ABSENT = (
    "{Ref} requires the {missing}, but {it} {is_} not on the table, so I will not grasp a substitute.",
    "According to {ref} this needs the {missing}, which {is_} not on the table; please bring {one}.",
    "I cannot do this safely: {ref} calls for the {missing} and {it} {is_} not among the objects here.",
)
_LOOKALIKE = (" Not the {forb} next to {obj}.", " The {forb} on the table {f_is_} not permitted.",
              " Do not use the {forb}, even though {f_it} {f_looks} similar.")  # fmt: skip


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _agree(name: str) -> dict[str, str]:
    """Verb/pronoun agreement for a tool name ("the pliers are", "the detector is")."""
    if is_plural(name):
        return {"is_": "are", "it": "they", "obj": "them", "one": "a pair", "looks": "look"}
    return {"is_": "is", "it": "it", "obj": "it", "one": "one", "looks": "looks"}


def make_qa(
    rule: Rule,
    scene_type_keys: Sequence[str],
    citations: Mapping[str, Sequence[Citation]] | Sequence[Citation],
    rng: random.Random,
    missing_ok: bool = True,
) -> QA:
    """Build one instruction/answer for ``rule`` in a scene holding objects of ``scene_type_keys``.

    ``citations`` is :func:`prg.data.synth.corpus.rule_citations` output (or this rule's list of (doc_id, clause)).
    With ``missing_ok=False`` a required tool missing from the scene raises ValueError instead of giving an
    ``"absent"`` answer.
    """
    cites = list(citations.get(rule.id, ()) if isinstance(citations, Mapping) else citations)
    if not cites:
        raise ValueError(f"rule {rule.id} is stated in no document; build the corpus before the QA")
    missing = [k for k in rule.required if k not in scene_type_keys]
    if missing and not missing_ok:
        raise ValueError(f"rule {rule.id}: required {missing} not in the scene")
    cited = rng.choice(cites)
    ref = f"{cited[0]} §{cited[1]}"
    others = [c for c in cites if c != cited]
    documents = [cited, *rng.sample(others, k=min(len(others), rng.randint(0, 1)))]
    instruction = paraphrase(rng.choice(rule.instructions), rng)
    names = [CATALOGUE[k].name for k in rule.required]
    reason = rule.reason
    fmt = {"ref": ref, "Ref": _cap(ref), "reason": reason, "task": rule.task}

    if missing:
        present = [k for k in rule.required if k not in missing]
        name = CATALOGUE[missing[0]].name
        text = rng.choice(_ABSENT).format(missing=name, **fmt, **_agree(name))
        if len(missing) > 1:
            other = CATALOGUE[missing[1]].name
            text += f" The {other} {_agree(other)['is_']} missing as well."
        if present:  # two-step task with one tool present: grasp what is there, say what is missing
            text += f" I can hand you the {CATALOGUE[present[0]].name} {POSE_TOKEN} for the other step."
        return QA(instruction, text, present, documents, "absent", rule.id)

    if len(rule.required) == 2:
        text = rng.choice(_TWO_STEP).format(tool1=names[0], tool2=names[1], pose1=POSE_TOKEN, pose2=POSE_TOKEN, **fmt)
        kind: Literal["single", "two_step"] = "two_step"
    else:
        text = rng.choice(_SINGLE).format(tool=names[0], pose=POSE_TOKEN, **fmt, **_agree(names[0]))
        kind = "single"
    # Naming the look-alike only makes sense when the camera actually sees it.
    seen = [k for k in rule.forbidden if k in scene_type_keys]
    if seen and rng.random() < 0.5:
        forb = CATALOGUE[rng.choice(seen)].name
        f = {f"f_{k}": v for k, v in _agree(forb).items()}
        text += rng.choice(_LOOKALIKE).format(forb=forb, **f, **_agree(names[-1]))
    return QA(instruction, text, list(rule.required), documents, kind, rule.id)
