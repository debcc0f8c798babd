"""A user's own evaluation cases: instruction + target tool + distractors -> composed scenes -> the same metrics.

``CASES.jsonl``, one case per line (docs/evaluation.md)::

    {"instruction": "The breaker is off; hand me what I need before I touch the busbar.",
     "target": "voltage detector", "distractors": ["multimeter", "insulated screwdriver"],
     "gold": "EP-SAF-004 §4.2", "answer": "Per EP-SAF-004 §4.2, the voltage detector [POSE].", "id": "busbar-1",
     "seed": 3}

``target`` and ``distractors`` are catalogue tool names or aliases (``prg data compose --list``); ``gold`` (one
clause or a list, ``DOC-ID §clause``), ``answer``, ``id`` and ``seed`` (the scene's layout) are optional. Each
case's scene is rendered with :func:`prg.data.synth.compose.compose_scene` (the target first, then the distractors),
its instruction, target, gold clauses and reference answer replaced by the case's, and all cases written as one
dataset whose split is ``cases``: :func:`prg.eval.model.evaluate_model` then scores them exactly as it scores
PRG-Synth's splits (target recognition needs no gold clause; citation and text metrics need ``gold`` and ``answer``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["CASES_SPLIT", "Case", "CaseError", "build_case_dataset", "read_cases"]

CASES_SPLIT = "cases"


class CaseError(ValueError):
    """A cases file that cannot be used; the message names the file, the line and the problem."""


class Case(BaseModel):
    """One evaluation case (a line of ``CASES.jsonl``)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(..., min_length=1)
    target: str = Field(..., min_length=1, description="the tool the answer must grasp")
    distractors: list[str] = Field(default_factory=list, description="other tools on the table")
    gold: list[str] = Field(default_factory=list, description="clauses that state the rule: 'DOC-ID §clause'")
    answer: str | None = Field(None, description="a reference answer, for BLEU / ROUGE-L / CIDEr")
    id: str | None = None
    seed: int | None = Field(None, ge=0, description="the scene's layout seed (default: the case's line number)")

    @field_validator("gold", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("instruction")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the instruction is empty")
        return v.strip()


def read_cases(path: str | Path) -> list[Case]:
    """Parse ``CASES.jsonl``; :class:`CaseError` names the first bad line (blank lines are skipped)."""
    p = Path(path)
    if not p.is_file():
        raise CaseError(f"{p}: no such cases file")
    cases: list[Case] = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaseError(f"{p}:{n}: not JSON ({e.msg})") from None
        try:
            case = Case.model_validate(obj)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "the case"
            raise CaseError(f"{p}:{n}: {where}: {err['msg']}") from None
        cases.append(
            case.model_copy(update={"id": case.id or f"case-{n}", "seed": n if case.seed is None else case.seed})
        )
    if not cases:
        raise CaseError(f"{p}: no cases in the file")
    ids = [c.id for c in cases]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise CaseError(f"{p}: case id {dup!r} appears twice")
    return cases


def _doc_ref(label: str) -> tuple[str, str | None]:
    doc_id, _, clause = label.partition("§")
    return doc_id.strip(), clause.strip() or None


def build_case_dataset(
    cases: Sequence[Case],
    out: str | Path,
    size: int = 448,
    corpus_seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render each case's scene and write all of them as one PRG dataset (split ``cases``) in ``out``.

    :class:`CaseError` names the case when its tools are unknown, do not fit on the table or cannot be grasped.
    """
    from prg.data.dataset import DatasetWriter, iter_records
    from prg.data.schema import DatasetInfo, DocRef, PRGRecord
    from prg.data.synth.compose import ComposeError, compose_scene, resolve_tool
    from prg.tokens import POSE_TOKEN

    out = Path(out)
    work = Path(tempfile.mkdtemp(prefix="prg-cases-"))
    industries: list[str] = []
    try:
        with DatasetWriter(out, DatasetInfo(name="prg-cases", description="prg eval cases", source="prg-synth"),
                           overwrite=overwrite) as writer:  # fmt: skip
            for i, case in enumerate(cases):
                try:
                    target_key = resolve_tool(case.target)
                    one = work / f"case-{i}"
                    compose_scene([case.target, *case.distractors], seed=int(case.seed or 0), size=size, out=one,
                                  corpus_seed=corpus_seed)  # fmt: skip
                except ComposeError as e:
                    raise CaseError(f"case {case.id}: {e}") from None
                (rec,) = list(iter_records(one))
                target = next(o.id for o in rec.objects if o.category == target_key)  # listed first: its first copy
                rid = str(case.id)
                moved: dict[str, str] = {}
                for rel in {rec.image, rec.depth, *(o.mask.path for o in rec.objects if o.mask), rec.meta.get("mjcf"),
                            rec.meta.get("scene")}:  # fmt: skip
                    if not rel:
                        continue
                    new = rel.replace(rec.id, rid)
                    shutil.copyfile(one / rel, writer.path(new))
                    moved[rel] = new
                objects = [o.model_copy(update={"mask": o.mask.model_copy(update={"path": moved[o.mask.path]})})
                           if o.mask else o for o in rec.objects]  # fmt: skip
                meta = {**rec.meta, "case": case.model_dump(exclude_none=True)}
                for key in ("mjcf", "scene"):  # the scene files, renamed with the record
                    meta[key] = moved.get(str(rec.meta.get(key)))
                docs = [DocRef(doc_id=d, clause=c) for d, c in map(_doc_ref, case.gold)]
                name = rec.object(target).name
                answer = case.answer or f"The {name} {POSE_TOKEN}."  # no reference: text metrics mean little
                try:
                    record = PRGRecord.model_validate({
                        **rec.model_dump(), "id": rid, "image": moved[rec.image],
                        "depth": moved.get(rec.depth) if rec.depth else None, "instruction": case.instruction,
                        "answer": answer, "objects": [o.model_dump() for o in objects], "targets": [target],
                        "documents": [d.model_dump() for d in docs], "split": CASES_SPLIT, "meta": meta,
                    })  # fmt: skip
                except ValidationError as e:
                    raise CaseError(f"case {case.id}: {e.errors()[0]['msg']}") from None
                writer.add(record)
                industries.append(rec.industry)
                if progress is not None:
                    progress(i + 1, len(cases))
            writer.info = writer.info.model_copy(update={"industries": sorted(set(industries) - {"mixed"})})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
