"""One PRG-Synth scene with exactly the tools a user names, written as a one-record dataset folder.

``prg data compose --objects "voltage detector,continuity tester" --out DIR`` calls :func:`compose_scene`. The
scene goes through the same sampler (:func:`~prg.data.synth.scene.sample_scene`, with no extra distractors and no
clutter), renderer, grasp annotator and :class:`~prg.data.DatasetWriter` as ``prg data synth``.

What the record asks for (:func:`choose_rule`):

* if a PRG-Synth rule's required tools are all on the table, its implicit instruction and cited answer
  (:func:`~prg.data.synth.qa.make_qa`); of several such rules, the one whose tools come earliest in the list the
  user gave, then a two-step rule before a one-step rule, then a training rule before a zero-shot one, then the
  order of ``RULES``. Citations come from the PRG-Synth corpus of ``corpus_seed`` (``prg data synth --seed``);
  the corpus itself is not written into the folder;
* otherwise a neutral instruction that names the first tool ("Pick up the voltage detector.") with that tool as
  the only target and no documents.

Deterministic: the same arguments give the same bytes (records, images, depth, masks, scene files).
"""

from __future__ import annotations

import difflib
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from prg.data.dataset import INFO_FILE, RECORDS_FILE, DatasetWriter, remove_dataset
from prg.data.schema import INDUSTRIES, POSE_TOKEN, DatasetInfo, DocRef, Intrinsics, PRGRecord
from prg.data.synth.catalogue import CATALOGUE, is_plural
from prg.data.synth.generate import GENERATOR_VERSION, SynthConfig
from prg.data.synth.rules import RULES
from prg.data.synth.scene import MAX_OBJECTS, SceneSamplingError
from prg.data.synth.types import Rule, SceneSpec

__all__ = ["ComposeError", "ComposePlan", "choose_rule", "compose_scene", "plan_scene", "resolve_tool"]

MIN_SIZE, MAX_SIZE = 64, 2048  # image side in pixels, as for ``prg data synth``
_BACKENDS = ("auto", "raster", "mujoco")


class ComposeError(ValueError):
    """A request that cannot be composed (unknown tool, too many objects, bad size, ...); one line, for the user."""


def _norm(name: str) -> str:
    """Case- and whitespace-insensitive form of a tool name; ``_`` counts as a space, so keys match too."""
    return " ".join(name.replace("_", " ").lower().split())


@lru_cache(maxsize=1)
def _lookup() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(name or key -> type key, alias -> type keys) over the tools of the four industries (no clutter)."""
    names: dict[str, str] = {}
    aliases: dict[str, list[str]] = {}
    for key, t in CATALOGUE.items():
        if t.industry not in INDUSTRIES:
            continue
        names[_norm(key)] = key
        names[_norm(t.name)] = key
        for a in t.aliases:
            aliases.setdefault(_norm(a), []).append(key)
    return names, {a: tuple(dict.fromkeys(ks)) for a, ks in aliases.items()}


def resolve_tool(name: str) -> str:
    """The catalogue key of a tool given by its name, an alias or its key (any case, any spacing).

    A name or key wins over another tool's alias ("combination pliers" is a tool's name and another's alias).

    Raises:
        ComposeError: unknown (the message lists close matches) or an alias shared by several tools.
    """
    names, aliases = _lookup()
    n = _norm(name)
    if n in names:
        return names[n]
    if n in aliases:
        keys = aliases[n]
        if len(keys) == 1:
            return keys[0]
        raise ComposeError(f"{name.strip()!r} is an alias of several tools: "
                           f"{', '.join(CATALOGUE[k].name for k in keys)}; use one of those names")  # fmt: skip
    close = difflib.get_close_matches(n, [*names, *aliases], n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "no close match"
    hint += " (prg data compose --list shows every tool)"
    raise ComposeError(f"unknown tool {name.strip()!r}; {hint}")


def _split_names(objects: str | Sequence[str]) -> list[str]:
    """``"a, b,c"`` or ``["a", "b"]`` -> names; blank entries (a trailing comma) are dropped."""
    items = objects.split(",") if isinstance(objects, str) else [p for o in objects for p in o.split(",")]
    return [o for o in items if o.strip()]


def choose_rule(keys: Sequence[str]) -> Rule | None:
    """The rule the composed record asks for, or None when no rule has all its required tools in ``keys``.

    Preference (see the module doc): earliest-listed tool, two-step, training before zero-shot, ``RULES`` order.
    """
    first = {k: i for i, k in reversed(list(enumerate(keys)))}  # key -> first position in the user's list
    fits = [(i, r) for i, r in enumerate(RULES) if all(k in first for k in r.required)]
    if not fits:
        return None
    _, best = min(fits, key=lambda ir: (min(first[k] for k in ir[1].required), -len(ir[1].required),
                                        ir[1].zero_shot, ir[0]))  # fmt: skip
    return best


@dataclass(frozen=True)
class ComposePlan:
    """What a composed record will hold, decided before anything is rendered."""

    keys: tuple[str, ...]  # catalogue keys in the user's order (instance ids 1..n follow it)
    industry: str  # the tools' industry, or "mixed"
    rule: Rule | None
    instruction: str
    answer: str
    target_keys: tuple[str, ...]  # one per [POSE], in order
    documents: tuple[tuple[str, str], ...]  # (doc_id, clause)
    kind: str  # "single" | "two_step" (a rule's QA) or "named" (the neutral instruction)


def plan_scene(objects: str | Sequence[str], seed: int = 0, corpus_seed: int = 0) -> ComposePlan:
    """Resolve the tool names and choose the instruction, answer and targets (no rendering, no files).

    Raises:
        ComposeError: no names, an unknown name, more than ``MAX_OBJECTS`` objects.
    """
    names = _split_names(objects)
    if not names:
        raise ComposeError(f"no objects given; name 1 to {MAX_OBJECTS} catalogue tools separated by commas")
    if len(names) > MAX_OBJECTS:
        raise ComposeError(
            f"{len(names)} objects do not fit a PRG-Synth table; at most {MAX_OBJECTS} fit "
            "(a repeated tool counts once per mention)"
        )
    keys = tuple(resolve_tool(n) for n in names)
    inds = list(dict.fromkeys(CATALOGUE[k].industry for k in keys))
    industry = inds[0] if len(inds) == 1 else "mixed"
    rule = choose_rule(keys)
    if rule is None:
        name = CATALOGUE[keys[0]].name
        answer = f"Here {'are' if is_plural(name) else 'is'} the {name} {POSE_TOKEN}."
        return ComposePlan(keys, industry, None, f"Pick up the {name}.", answer, (keys[0],), (), "named")
    from prg.data.synth.corpus import build_corpus, rule_citations
    from prg.data.synth.qa import make_qa

    text_rng = random.Random(zlib.crc32(f"{seed}:compose:text".encode()))
    qa = make_qa(rule, keys, rule_citations(build_corpus(corpus_seed)), text_rng, missing_ok=False)
    return ComposePlan(keys, industry, rule, qa.instruction, qa.answer, tuple(qa.targets), tuple(qa.documents),
                       qa.kind)  # fmt: skip


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ComposeError(f"{out} is a file, not a folder; choose a folder for the dataset")
    holds_dataset = (out / INFO_FILE).exists() or (out / RECORDS_FILE).exists()
    if holds_dataset and not overwrite:
        raise ComposeError(f"{out} already holds a dataset; pass --overwrite to replace it")
    if not holds_dataset and out.exists() and any(out.iterdir()):
        raise ComposeError(f"{out} exists, is not empty and holds no dataset; choose another folder")


def compose_scene(
    objects: str | Sequence[str],
    seed: int = 0,
    size: int = 448,
    *,
    out: str | Path,
    overwrite: bool = False,
    corpus_seed: int = 0,
    backend: str = "auto",
) -> PRGRecord:
    """Render one scene holding exactly ``objects`` (names, aliases or keys; a comma-separated string or a list)
    and write it to ``out`` as a one-record PRG dataset; returns the record.

    The folder gets ``images/``, ``depth/``, ``masks/``, ``scenes/`` (spec JSON and MJCF), ``records.jsonl`` and
    ``dataset.json``, exactly as ``prg data synth`` writes them. A bad request is refused before anything is
    written (an existing dataset in ``out`` is removed only once the new scene has been rendered).

    Raises:
        ComposeError: bad names or numbers, objects that do not fit on the table or cannot be grasped, or an
            ``out`` that is a file, a non-empty non-dataset folder, or a dataset without ``overwrite``.
    """
    from prg.data.synth.annotate import object_annotations, render_graspable, write_scene_files
    from prg.data.synth.grasps import min_opening_m
    from prg.data.synth.scene import sample_scene

    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ComposeError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    if seed < 0 or corpus_seed < 0:
        raise ComposeError(f"seeds must be non-negative integers, got seed={seed}, corpus_seed={corpus_seed}")
    if backend not in _BACKENDS:
        raise ComposeError(f"unknown render backend {backend!r}; choose from {', '.join(_BACKENDS)}")
    plan = plan_scene(objects, seed, corpus_seed)
    max_opening = SynthConfig().max_opening_m
    for k in plan.target_keys:
        need = min_opening_m(CATALOGUE[k])
        if need is None or need > max_opening:
            raise ComposeError(f"a {max_opening} m gripper cannot hold the {CATALOGUE[k].name}, the target")
    out = Path(out)
    _check_out(out, overwrite)

    def sample(attempt: int) -> SceneSpec:
        rng = np.random.default_rng([seed, zlib.crc32(b"compose"), attempt])
        return sample_scene(rng, CATALOGUE, plan.keys, len(plan.keys), (), (), image_size=size, seed=seed)

    rid = f"compose-s{seed}"
    try:  # render before touching the disk, so a failure leaves nothing behind
        spec, res, grasps = render_graspable(sample, plan.target_keys, max_opening, backend, what=rid)
    except (SceneSamplingError, RuntimeError) as e:
        raise ComposeError(str(e)) from None
    objects_ann = object_annotations(spec, grasps, rid)
    first_instance: dict[str, str] = {}
    for obj in objects_ann:
        first_instance.setdefault(obj.category, obj.id)
    fx, fy, cx, cy = res.intrinsics
    rule = plan.rule
    record = PRGRecord(
        id=rid,
        image=f"images/{rid}.png",
        depth=f"depth/{rid}.png",
        depth_scale=0.001,
        intrinsics=Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy),
        industry=plan.industry,
        instruction=plan.instruction,
        answer=plan.answer,
        objects=objects_ann,
        targets=[first_instance[k] for k in plan.target_keys],
        documents=[DocRef(doc_id=d, clause=c) for d, c in plan.documents],
        split="zero_shot_task" if rule is not None and rule.zero_shot else "test",
        source="prg-synth",
        meta={
            "composed": list(plan.keys),
            "rule": rule.id if rule else None,
            "kind": plan.kind,
            "required": list(rule.required) if rule else [],
            "forbidden": list(rule.forbidden) if rule else [],
            "corpus_seed": corpus_seed,
            "scene": f"scenes/{rid}.json",
            "mjcf": f"scenes/{rid}.xml",
            "camera_height_m": spec.camera_height,
        },
    )
    settings = {"objects": list(plan.keys), "seed": seed, "size": size, "corpus_seed": corpus_seed,
                "backend": backend, "generator_version": GENERATOR_VERSION}  # fmt: skip
    info = DatasetInfo(
        name=f"prg-compose-s{seed}",
        description="PRG-Synth: one scene composed from named tools (prg data compose)",
        source="prg-synth",
        industries=list(dict.fromkeys(CATALOGUE[k].industry for k in plan.keys)),
        extra={"compose": settings},
    )
    if out.exists() and ((out / INFO_FILE).exists() or (out / RECORDS_FILE).exists()):
        remove_dataset(out)  # overwrite (checked above): invalid first, then gone; no old files linger
    with DatasetWriter(out, info) as w:
        for sub in ("images", "depth", "masks", "scenes"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        write_scene_files(out, rid, spec, res)
        w.add(record)
    return record
