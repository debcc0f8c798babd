"""The main job on the embedded default, through the pipeline (:class:`prg.pipeline.PRGPipeline`).

1. PRG-Synth makes a few workspace scenes with implicit professional instructions, and the regulation corpus.
2. The corpus is indexed (MiniLM + BM25 on the embedded LanceDB engine) and each instruction retrieves its rule
   through the pipeline's retrieval step, exactly as a full request would.
3. With a checkpoint (``checkpoint=``, by default the one that ships in ``prg/weights/prg-small``), the whole
   pipeline answers each scene: the picture shows the model's grasps beside the annotated ones and its cited
   answer, and ``result.json`` holds each ``PRGResult`` and its scores. Without one (``checkpoint=None`` where
   none ships, or ``annotations_only``), the picture shows the target tool's annotated grasps, encoded to grasp
   maps and decoded back (the decoder the model uses), scored with the rectangle metric and lifted to a pose.

The scenes come from PRG-Synth seed :data:`DEMO_SEED`, which the shipped checkpoint never saw: it was trained on
seeds 0 and 1 (scenes, documents and instructions all differ with the seed).

Every figure printed is computed here; nothing is canned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["DEMO_SEED", "TOP_K", "DemoResult", "demo_cache_dir", "prepare_demo_data", "rule_rank", "run_demo"]

DEMO_SEED = 2
"""PRG-Synth seed of the demo's scenes: not one the shipped checkpoint was trained on (0 and 1)."""
TOP_K = 5
"""Clauses retrieved per instruction; a record is a retrieval hit (``gold_in_top5``) when one states its rule."""


@dataclass
class DemoResult:
    out_dir: Path
    records: list[dict[str, Any]]
    pictures: list[Path]
    result_json: Path

    @property
    def retrieval_hit_rate(self) -> float:
        return float(np.mean([r["gold_in_top5"] for r in self.records])) if self.records else 0.0


def run_demo(
    out_dir: str | Path = "outputs/demo",
    n: int = 8,
    embedder: str = "minilm",
    seed: int = DEMO_SEED,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> DemoResult:
    """Run the demo into ``out_dir``; the dataset and index are reused when they are already there (and made
    again when they were made for another ``n`` or ``seed``)."""
    from prg.data.dataset import iter_records, load_depth
    from prg.eval.model import score as score_record
    from prg.fsutil import atomic_write_text
    from prg.grasp.maps import maps_to_rects, rects_to_maps
    from prg.grasp.metrics import grasp_success
    from prg.grasp.pose import rect_to_pose
    from prg.pipeline import PRGPipeline
    from prg.retrieval.retriever import Retriever
    from prg.retrieval.rules import clause_groups, clause_key
    from prg.viz import caption, draw_grasps, result_overlay

    out = Path(out_dir)
    # every argument is checked before minutes are spent making data
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    from prg.retrieval.embed import text_embedder_names

    if embedder.split("-")[0] not in text_embedder_names():
        raise ValueError(f"unknown text embedder {embedder!r}; known: {text_embedder_names()}")
    if checkpoint is not None:
        from prg.model.checkpoint import read_checkpoint_config

        read_checkpoint_config(checkpoint)
    ds, idx = prepare_demo_data(out, n=n, embedder=embedder, seed=seed, progress=progress)

    # a rule is stated in several documents: any clause stating the record's rule is a correct retrieval
    groups = clause_groups(ds)
    if checkpoint is not None:
        pipe = PRGPipeline.from_pretrained(checkpoint, index=idx)  # as many documents as it was trained with
    else:  # retrieval only: the pipeline's own retrieval step, no model
        pipe = PRGPipeline(model=None, retriever=Retriever.open(idx))
    rows: list[dict[str, Any]] = []
    pictures: list[Path] = []
    try:
        for rec in iter_records(ds):
            with Image.open(ds / rec.image) as im:
                img = im.convert("RGB")
            depth = load_depth(ds, rec)
            hits, _ = pipe.retrieve(rec.instruction, np.asarray(img), depth, k=TOP_K)
            gold = {_rule_of(groups, clause_key(d.doc_id, d.clause)) for d in rec.documents}
            rank = rule_rank(gold, [_rule_of(groups, clause_key(h.doc_id, h.clause)) for h in hits])
            row: dict[str, Any] = {
                "id": rec.id,
                "split": rec.split,
                "instruction": rec.instruction,
                "retrieved": [h.id for h in hits],
                "gold": sorted(gold),
                "gold_in_top5": rank is not None,  # the record's rule, from any document
                "rule_rank": rank,  # 1-based rank of the first retrieved clause stating it
                "rule_clause": hits[rank - 1].id if rank is not None else None,
                "answer": rec.answer,
                "targets": [o.name for o in rec.target_objects()],
            }
            if pipe.model is not None:
                result = pipe(
                    np.asarray(img), rec.instruction, depth, rec.intrinsics.model_dump() if rec.intrinsics else None
                )
                row["prediction"] = result.model_dump(mode="json")
                s = score_record(ds, rec, result, groups, k=5)
                row["score"] = {
                    "on_target": s.recognised,  # every [POSE]'s top-1 centre on its target (mask or hull), in order
                    "grasp_success": s.grasp_success,  # ... and passes the rectangle metric on the target's grasps
                    "landed_on": s.chosen,
                    "cites_rule": s.cites_rule,
                }
                pic = out / f"{rec.id}.png"
                annotated = img
                for obj in rec.target_objects():  # the annotation beside the prediction, in green
                    annotated = draw_grasps(annotated, [g.to_rect() for g in obj.grasps][:3], colour=(0, 170, 0))
                verdict = "yes" if s.recognised else "no"
                lines = [
                    f"[{rec.industry} / {rec.split}] {rec.id}",
                    f"Reference answer: {rec.answer}",
                    f"Green: annotated target grasps. Top-1 on the target: {verdict}; rectangle metric:"
                    f" {'pass' if s.grasp_success else 'fail'}.",
                ]
                caption(result_overlay(annotated, result), lines).save(pic)
                pictures.append(pic)
                rows.append(row)
                continue
            h, w = img.height, img.width
            for obj in rec.target_objects():
                gts = [g.to_rect() for g in obj.grasps]
                decoded = maps_to_rects(rects_to_maps(gts, (h, w), width_scale=w / 3), k=1, width_scale=w / 3)
                img = draw_grasps(img, gts[:3], colour=(255, 0, 0))
                if decoded and depth is not None and rec.intrinsics is not None:
                    pose = rect_to_pose(decoded[0], depth, rec.intrinsics)
                    row.setdefault("grasps", []).append(
                        {
                            "object": obj.name,
                            "decoded_matches_annotation": grasp_success(decoded[0], gts),
                            "pose": pose.to_ros_dict(),
                        }
                    )
            lines = [
                f"[{rec.industry} / {rec.split}] {rec.id}",
                f"Instruction: {rec.instruction}",
                _retrieval_line(hits, rank),
                f"Reference answer: {rec.answer}",
                "Red: the target's annotated grasps (annotations only; prg demo --checkpoint CKPT draws a model's).",
            ]
            pic = out / f"{rec.id}.png"
            caption(img, lines).save(pic)
            pictures.append(pic)
            rows.append(row)
    finally:
        pipe.close()
    result_path = out / "result.json"
    atomic_write_text(result_path, json.dumps({"records": rows}, indent=2, ensure_ascii=False))
    return DemoResult(out, rows, pictures, result_path)


def demo_cache_dir() -> Path:
    """Where ``prg serve`` and ``prg chat`` keep the demo's scenes and index: ``$PRG_CACHE_DIR/demo``, by
    default ``~/.cache/prg/demo``."""
    import os

    return Path(os.environ.get("PRG_CACHE_DIR") or Path.home() / ".cache" / "prg") / "demo"


def prepare_demo_data(
    out_dir: str | Path | None = None,
    n: int = 8,
    embedder: str = "minilm",
    seed: int = DEMO_SEED,
    progress: bool = True,
) -> tuple[Path, Path]:
    """The demo's scenes and their document index: ``(OUT/dataset, OUT/index)``, made when missing (or made
    for another ``n`` / ``seed``, or by another generator version) and validated. ``out_dir`` None:
    ``$PRG_CACHE_DIR/demo`` (``~/.cache/prg/demo``), where ``prg serve`` and ``prg chat`` find their demo scenes
    and documents."""
    import shutil

    from prg.data.synth.generate import SynthConfig, generate
    from prg.data.validate import validate_dataset
    from prg.retrieval.build import build_index

    out = Path(out_dir) if out_dir is not None else demo_cache_dir()
    ds, idx = out / "dataset", out / "index"
    from prg.data.synth.generate import GENERATOR_VERSION

    if (ds / "dataset.json").exists() and _made_with(ds) != (n, seed, GENERATOR_VERSION):
        shutil.rmtree(ds)  # the demo's own folders, made for another n or seed
        shutil.rmtree(idx, ignore_errors=True)
    if not (ds / "dataset.json").exists():
        generate(ds, SynthConfig(n=n, seed=seed), progress=progress)
    report = validate_dataset(ds)
    if not report.ok:
        raise RuntimeError("the generated dataset does not validate:\n" + "\n".join(map(str, report.errors[:20])))
    if not (idx / "CURRENT").exists():
        build_index([ds / "documents"], idx, embedder=embedder)
    return ds, idx


def _made_with(ds: Path) -> tuple[int, int, int] | None:
    """(n, seed, generator version) a PRG-Synth folder was generated with, from its dataset.json (None if it
    does not say)."""
    try:
        config = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))["extra"]["config"]
        return int(config["n"]), int(config["seed"]), int(config.get("generator_version", 1))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def rule_rank(gold: set[str], ranked: list[str]) -> int | None:
    """1-based rank of the first retrieved rule in ``gold`` (``ranked``: the hits' rules, best first), else None."""
    return next((i for i, r in enumerate(ranked, start=1) if r in gold), None)


def _retrieval_line(hits: list[Any], rank: int | None) -> str:
    """The caption's quote: the retrieved clause that states the instruction's rule, with its rank (what the CLI's
    check mark means), or, when none does, the top hit saying it is another rule."""
    from prg.viz import shorten

    if not hits:
        return "Retrieved: nothing."
    if rank is None:
        top = hits[0]
        return f"The rule is not among the {len(hits)} retrieved clauses; top hit {top.id}: {shorten(top.text, 300)}"
    hit = hits[rank - 1]
    return f"Retrieved rule (rank {rank} of {len(hits)}) {hit.id}: {shorten(hit.text, 400)}"


def _rule_of(groups: dict[str, str], key: str) -> str:
    """The rule a clause states (``rule:<id>``) where the corpus index says so, else the clause itself."""
    return groups.get(key, key)
