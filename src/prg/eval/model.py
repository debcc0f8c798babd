"""Evaluate a PRG checkpoint on a dataset through the pipeline: every metric per record, then per split and industry.

```
records of the chosen splits ──documents (retrieved | cache | none)──► PRGPipeline.batch ──► PRGResult
   └─ per record: grasping (target recognition, grasp success top-1/top-k, object-agnostic quality, the IoU of the
      top-1 grasp, the object it landed on), citations (cites the rule, hallucinated ids), format, latency
   └─ per split: the same averaged, text metrics (BLEU-4, ROUGE-L, CIDEr-D against the reference answers),
      per industry
```

Documents (the ablation axis): ``retrieved`` runs the pipeline's own retrieval over an index; ``cache`` uses the
dataset's retrieval cache (what the real retriever returned for each record, as in training: no index needed);
``oracle`` gives the record's gold clauses (chunked from ``<dataset>/documents`` as the index would chunk them);
``none`` gives empty documents (the no-retrieval ablation). Report writing is :mod:`prg.eval.report`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DOCS_MODES",
    "ModelEval",
    "RecordEval",
    "evaluate_model",
    "image_scale_mismatch",
    "summarise_records",
    "unreachable_gold",
]

DOCS_MODES = ("retrieved", "cache", "oracle", "none")
ANGLE_LIMIT_DEG = 30.0


@dataclass
class RecordEval:
    """One record's scores and what produced them (enough to draw it again in a gallery)."""

    id: str
    split: str
    industry: str
    n_targets: int
    n_poses: int
    abstention: bool  # the record has no target
    masks: bool  # every target has a mask (target recognition is defined)
    recognised: bool | None  # None: no masks
    grasp_success: bool  # top-1 of every target passes the rectangle metric
    grasp_success_topk: bool  # some of the top k of every target passes
    any_object_success: bool  # every top-1 passes against some object's grasps (object-agnostic quality)
    format_ok: bool
    iou: list[float]  # per target: best IoU of its top-1 among the target grasps within 30 degrees (0: none)
    chosen: list[str]  # per [POSE] in order: the object its top-1 centre lies on ("background", "none")
    targets: list[str]
    cites_rule: bool
    hallucinated: int
    answer: str
    reference: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelEval:
    """A whole evaluation: its settings, the per-record rows, and summaries per split and per (split, industry)."""

    settings: dict[str, Any]
    records: list[RecordEval]
    splits: dict[str, dict[str, float]]
    industries: dict[str, dict[str, dict[str, float]]]
    seconds: float
    results: list[Any] = field(default_factory=list, repr=False)  # the PRGResults, in record order (galleries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "seconds": self.seconds,
            "splits": self.splits,
            "industries": self.industries,
            "records": [r.to_dict() for r in self.records],
        }


def _on(root: Path, obj: Any, x: float, y: float, masks: dict[str, np.ndarray]) -> bool:
    """Whether pixel (x, y), rounded, lies in ``obj``'s instance mask (masks loaded once per record)."""
    from prg.data.dataset import load_mask

    if obj.mask is None:
        return False
    if obj.id not in masks:
        masks[obj.id] = load_mask(root, obj.mask)
    m = masks[obj.id]
    r, c = round(y), round(x)
    return bool(0 <= r < m.shape[0] and 0 <= c < m.shape[1] and m[r, c])


def _on_target(root: Path, record: Any, obj: Any, x: float, y: float, masks: dict[str, np.ndarray]) -> bool:
    """Whether a grasp centre (x, y) lands on the target ``obj``: in its instance mask, or in the mask's convex
    hull and on no other object's mask. The hull counts because a grasp across a tool's two bars (pliers, tongs:
    PRG-Synth labels v3) is centred in the gap between them: 16% of the v3 val labels' centres lie off their own
    mask, none off its hull. A twin of the tool, or a neighbour inside the hull, does not count."""
    if _on(root, obj, x, y, masks):
        return True
    if obj.mask is None:
        return False
    key = f"hull:{obj.id}"
    if key not in masks:
        from skimage.morphology import convex_hull_image

        m = masks[obj.id]
        masks[key] = convex_hull_image(m) if m.any() else m
    hull = masks[key]
    r, c = round(y), round(x)
    if not (0 <= r < hull.shape[0] and 0 <= c < hull.shape[1] and hull[r, c]):
        return False
    return not any(_on(root, o, x, y, masks) for o in record.objects if o.id != obj.id)


def _object_at(root: Path, record: Any, x: float, y: float, masks: dict[str, np.ndarray]) -> str:
    return next((o.name for o in record.objects if _on(root, o, x, y, masks)), "background")


def score(root: Path, record: Any, result: Any, groups: dict[str, str], k: int) -> RecordEval:
    """All per-record metrics of one pipeline result."""
    from prg.eval.citations import citation_score
    from prg.grasp.metrics import grasp_success, match_details, top_k_success
    from prg.grasp.rect import angle_diff

    targets = record.target_objects()
    masks: dict[str, np.ndarray] = {}
    grasps = [[g.to_rect() for g in gs] for gs in result.grasps]
    chosen = [_object_at(root, record, gs[0].x, gs[0].y, masks) if gs else "none" for gs in grasps]
    all_gts = [g.to_rect() for o in record.objects for g in o.grasps]
    have_masks = all(o.mask is not None for o in targets)
    hits, top1, topk, ious = [], [], [], []
    for i, obj in enumerate(targets):
        preds = grasps[i] if i < len(grasps) else []
        gts = [g.to_rect() for g in obj.grasps]
        if not preds:
            hits.append(False)
            top1.append(False)
            topk.append(False)
            ious.append(0.0)
            continue
        hits.append(_on_target(root, record, obj, preds[0].x, preds[0].y, masks))  # a twin of the tool does not count
        top1.append(bool(gts) and grasp_success(preds[0], gts))
        topk.append(bool(gts) and top_k_success(preds, gts, k=k))
        ok = [g for g in gts if math.degrees(angle_diff(preds[0].angle, g.angle)) < ANGLE_LIMIT_DEG]
        ious.append(match_details(preds[0], ok).best_iou if ok else 0.0)
    agnostic = bool(grasps) and all(bool(gs) and grasp_success(gs[0], all_gts) for gs in grasps)
    abstention = not targets
    # A tool-absent record is answered correctly when no grasp is offered: no [POSE], or [POSE]s whose grasp maps
    # decode nothing (F_dec trained with absent-category prompts says "not here"); a robot executes neither.
    # ``n_poses == 0`` (the strict reading, no [POSE] at all) is summarised separately as abstention_no_pose.
    recognised: bool | None = (not any(grasps)) if abstention else (all(hits) if have_masks else None)
    c = citation_score(result, record.documents, groups)
    return RecordEval(
        id=record.id,
        split=record.split,
        industry=record.industry,
        n_targets=len(targets),
        n_poses=len(grasps),
        abstention=abstention,
        masks=have_masks,
        recognised=recognised,
        grasp_success=bool(targets) and all(top1),
        grasp_success_topk=bool(targets) and all(topk),
        any_object_success=agnostic,
        format_ok=len(grasps) == len(targets),
        iou=ious,
        chosen=chosen,
        targets=[o.name for o in targets],
        cites_rule=c.cites_rule,
        hallucinated=c.hallucinated,
        answer=result.answer,
        reference=record.answer,
        timings_ms=dict(result.timings_ms),
    )


def summarise_records(rows: Sequence[RecordEval], text: bool = True) -> dict[str, float]:
    """Rates over records (``target_recognition`` is left out when no record has masks; grasp rates count the
    records with targets; ``abstention_correct`` the records without)."""
    from prg.eval.text import text_scores

    if not rows:
        return {"n": 0.0}
    with_targets = [r for r in rows if not r.abstention]
    known = [r for r in rows if r.recognised is not None]
    out: dict[str, float] = {"n": float(len(rows)), "format_ok": float(np.mean([r.format_ok for r in rows]))}
    if known:
        out["target_recognition"] = float(np.mean([bool(r.recognised) for r in known]))
    if with_targets:
        for key in ("grasp_success", "grasp_success_topk", "any_object_success"):
            out[key] = float(np.mean([getattr(r, key) for r in with_targets]))
    absent = [r for r in rows if r.abstention]
    if absent:
        out["abstention_correct"] = float(np.mean([bool(r.recognised) for r in absent]))
        out["abstention_no_pose"] = float(np.mean([r.n_poses == 0 for r in absent]))
    out["cites_rule"] = float(np.mean([r.cites_rule for r in rows]))
    out["hallucinated_any"] = float(np.mean([r.hallucinated > 0 for r in rows]))
    total = [sum(r.timings_ms.values()) for r in rows if r.timings_ms]
    if total:
        out["latency_ms_p50"] = float(np.median(total))
    if text:
        out.update(text_scores([r.answer for r in rows], [[r.reference] for r in rows]))
    return out


def _documents(mode: str, root: Path, records: Sequence[Any], k: int) -> list[list[Any] | None]:
    """Per record: the documents to give the pipeline (``None``: let it retrieve)."""
    from prg.pipeline import CitationOut

    if mode == "retrieved":
        return [None] * len(records)
    if mode == "none":
        return [[] for _ in records]
    if mode == "oracle":
        return _oracle(root, records)
    from prg.data.torch.retrieval_cache import cache_path, read_retrieval_cache

    path = cache_path(root, "default")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: --docs cache needs the dataset's retrieval cache (prg data retrieval-cache DS "
            "--index IDX), or use --docs retrieved with --index"
        )
    cache = read_retrieval_cache(path)
    out: list[list[Any] | None] = []
    for rec in records:
        docs = cache.documents(rec)[:k]
        out.append([CitationOut.from_label(d["id"], d["text"], r) for r, d in enumerate(docs, start=1)])
    return out


def unreachable_gold(indexed: set[str], records: Sequence[Any]) -> float:
    """The share of the records' gold documents that the index does not hold (0: all reachable)."""
    gold = {d.doc_id for r in records for d in r.documents}
    return len(gold - indexed) / len(gold) if gold else 0.0


def _warn_unreachable(retriever: Any, records: Sequence[Any]) -> None:
    import sys

    index = getattr(retriever, "index", None)
    if index is None:
        return
    missing = unreachable_gold(set(index.documents()), records)
    if missing > 0:
        print(
            f"warning: the index lacks {100 * missing:.0f}% of the gold documents of these records (was it built "
            "from another corpus?); their clauses cannot be retrieved, so citations and recognition suffer",
            file=sys.stderr,
        )


def image_scale_mismatch(model: Any, root: Path, records: Sequence[Any], tolerance: float = 1.5) -> str | None:
    """A warning when the records' images are much larger or smaller than the encoder input the checkpoint was
    built for (``map_size``): the processor resizes them, so tools appear at another scale than in training."""
    from PIL import Image

    size = getattr(model, "map_size", None)
    if not size or not records:
        return None
    with Image.open(root / records[0].image) as im:  # the header only
        w, h = im.size
    scale = max(w, h) / size
    if 1 / tolerance <= scale <= tolerance:
        return None
    return (f"warning: the dataset's images are {w}x{h}, the checkpoint's encoder sees {size}x{size}: images are "
            f"resized by {1 / scale:.2f}, so tools appear at another scale than in training")  # fmt: skip


def _oracle(root: Path, records: Sequence[Any]) -> list[list[Any] | None]:
    """The gold clauses of each record as the prompt's documents (a clause the corpus lacks is left out)."""
    from prg.pipeline import CitationOut, citation_label
    from prg.retrieval.ingest import ingest_path

    folder = root / "documents"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: --docs oracle reads the gold clauses from the corpus there")
    chunks: dict[tuple[str, str | None], Any] = {}
    for c in ingest_path(folder).chunks:
        if c.kind != "figure":  # clauses are paragraphs or table rows (a rule table's item is its clause)
            chunks.setdefault((c.doc_id, c.clause), c)
    out: list[list[Any] | None] = []
    for rec in records:
        gold = [chunks[(d.doc_id, d.clause)] for d in rec.documents if (d.doc_id, d.clause) in chunks]
        out.append(
            [
                CitationOut(id=citation_label(c), doc_id=c.doc_id, clause=c.clause, title=c.title, text=c.text,
                            rank=r, score=1.0)
                for r, c in enumerate(gold, start=1)
            ]
        )  # fmt: skip
    return out


def evaluate_model(
    pipeline: Any,
    dataset: str | Path,
    splits: Sequence[str] | None = None,
    docs: str = "retrieved",
    limit: int | None = None,
    batch_size: int = 8,
    k_docs: int = 3,
    k_grasps: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> ModelEval:
    """Run ``pipeline`` (a :class:`prg.pipeline.PRGPipeline` with a model) on the records of ``splits`` (default:
    every split but train) and score them. ``limit``: at most this many records per split."""
    from prg.data.dataset import iter_records, load_image
    from prg.pipeline import PRGRequest
    from prg.retrieval.rules import clause_groups

    if docs not in DOCS_MODES:
        raise ValueError(f"docs must be one of {DOCS_MODES}, got {docs!r}")
    if docs == "retrieved" and getattr(pipeline, "retriever", None) is None:
        raise ValueError("docs='retrieved' needs a pipeline with a retriever (give an index)")
    root = Path(dataset)
    all_records = list(iter_records(root))
    wanted = list(splits) if splits else sorted({r.split for r in all_records} - {"train"})
    chosen: list[Any] = []
    for split in wanted:
        recs = [r for r in all_records if r.split == split]
        if not recs:
            raise ValueError(
                f"{root}: split {split!r} has no records (it has: {sorted({r.split for r in all_records})})"
            )
        chosen += recs[:limit] if limit else recs
    if docs == "retrieved":
        _warn_unreachable(pipeline.retriever, chosen)
    mismatch = image_scale_mismatch(getattr(pipeline, "model", None), root, chosen)
    if mismatch:
        import sys

        print(mismatch, file=sys.stderr)
    documents = _documents(docs, root, chosen, k_docs)
    groups = clause_groups(root)
    rows: list[RecordEval] = []
    results: list[Any] = []
    t0 = time.perf_counter()
    for i in range(0, len(chosen), batch_size):
        part = chosen[i : i + batch_size]
        docs_part = documents[i : i + batch_size]
        reqs = [
            PRGRequest(load_image(root, r), r.instruction, documents=d) for r, d in zip(part, docs_part, strict=True)
        ]
        batch = pipeline.batch(reqs, k_docs=k_docs, k_grasps=k_grasps)
        rows += [score(root, r, res, groups, k_grasps) for r, res in zip(part, batch, strict=True)]
        results += batch
        if progress is not None:
            progress(len(rows), len(chosen))
    seconds = time.perf_counter() - t0
    by_split: dict[str, list[RecordEval]] = defaultdict(list)
    by_ind: dict[str, dict[str, list[RecordEval]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_split[r.split].append(r)
        by_ind[r.split][r.industry].append(r)
    settings = {"dataset": str(root), "splits": wanted, "docs": docs, "limit": limit, "k_docs": k_docs,
                "k_grasps": k_grasps, "batch_size": batch_size}  # fmt: skip
    return ModelEval(
        settings=settings,
        records=rows,
        splits={s: summarise_records(v) for s, v in by_split.items()},
        industries={s: {ind: summarise_records(v, text=False) for ind, v in d.items()} for s, d in by_ind.items()},
        seconds=seconds,
        results=results,
    )
