"""Simulated grasp success over a PRG-Synth dataset: annotated, random and predicted grasps on the same scenes.

Methods (each target of each record, i.e. each ``[POSE]`` of the answer):

* ``annotated``: every annotated grasp of the target (the upper bound; it also checks PRG-Synth's labels);
* ``random``: ``n_random`` grasps with a centre drawn uniformly from the target's mask, a uniform angle and an
  opening uniform in ``[0.02 m, max opening]`` (the lower bound: right object, no grasp knowledge);
* ``model``: the top-1 rectangle a predictor returns for that ``[POSE]``. The predictor is a plain function
  (``record, image, depth, intrinsics -> one rectangle or None per [POSE]``) so this module never sees a model.

Every rectangle becomes a pose through :func:`prg.grasp.pose.rect_to_pose` on the record's depth and intrinsics,
as the pipeline does, then one :func:`prg.sim.trial.run_trial`. Rates count an ``invalid`` trial as a failure
(a missing or unusable prediction is the model's failure); the tables show how many there were. Each trial's
seed comes from the run's seed, the record id and the trial's index, so a run is reproducible in any order and
with any number of worker processes.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prg.sim.trial import OUTCOMES, TrialConfig, TrialResult, run_trial

__all__ = ["METHODS", "Predictor", "SimEvaluation", "evaluate_sim", "plan_trials", "wilson", "write_sim_report"]

METHODS = ("annotated", "random", "model")
Predictor = Callable[[Any, np.ndarray, np.ndarray, Any], Sequence[Any]]  # -> GraspRect | None per [POSE]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (95% for z = 1.96); ``(0, 1)`` when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclass(frozen=True)
class Job:
    """One trial to run: picklable, so worker processes can take it."""

    record: str
    split: str
    industry: str
    method: str
    target: int
    index: int  # which grasp of this method on this target
    scene: str
    pose: tuple[tuple[float, float, float], tuple[float, float, float, float], float] | None
    seed: int
    note: str = ""  # why there is no pose (invalid without running)


@dataclass
class SimEvaluation:
    trials: list[dict[str, Any]]
    settings: dict[str, Any]
    seconds: float
    summary: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # method -> group -> numbers


def _seed(seed: int, *parts: object) -> int:
    return zlib.crc32(":".join(str(p) for p in (seed, *parts)).encode()) & 0x7FFFFFFF


def _random_rect(mask: np.ndarray, depth: np.ndarray, fx: float, max_open: float, rng: np.random.Generator) -> Any:
    from prg.grasp.rect import GraspRect

    vv, uu = np.nonzero(mask)
    k = int(rng.integers(len(vv)))
    d = float(depth[vv[k], uu[k]]) if np.isfinite(depth[vv[k], uu[k]]) else float(np.nanmedian(depth))
    width_px = rng.uniform(0.02, max_open) * fx / d
    return GraspRect(
        float(uu[k]), float(vv[k]), width_px, 0.5 * width_px, float(rng.uniform(-math.pi / 2, math.pi / 2))
    )


def plan_trials(
    dataset: Path,
    methods: Sequence[str] = ("annotated", "random"),
    predictor: Predictor | None = None,
    splits: Sequence[str] | None = None,
    n: int | None = None,
    seed: int = 0,
    n_random: int = 1,
    max_opening_m: float = 0.14,
) -> list[Job]:
    """The trials of a run, record by record (``n``: at most this many records after the split filter)."""
    from prg.data.dataset import iter_records, load_depth, load_image, load_mask
    from prg.grasp.pose import rect_to_pose

    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if "model" in methods and predictor is None:
        raise ValueError("the model method needs a predictor")
    jobs: list[Job] = []
    taken = 0
    for rec in iter_records(dataset):
        if splits and rec.split not in splits:
            continue
        if n is not None and taken >= n:
            break
        if not rec.targets:
            continue
        taken += 1
        scene = str(dataset / rec.meta.get("mjcf", f"scenes/{rec.id}.xml"))
        depth = load_depth(dataset, rec)
        base = {"record": rec.id, "split": rec.split, "industry": rec.industry, "scene": scene}

        def add(
            method: str, target: int, i: int, rect: Any, note: str = "", rec: Any = rec, base: Any = base,
            depth: Any = depth,
        ) -> None:  # fmt: skip
            pose = None
            if rect is not None and depth is not None and rec.intrinsics is not None:
                try:
                    p = rect_to_pose(rect, depth, rec.intrinsics)
                    pose = (p.position, p.quaternion, p.opening_m)
                except ValueError as e:
                    note = f"no pose: {e}"
            elif not note:
                note = "the record has no depth or intrinsics"
            jobs.append(Job(**base, method=method, target=target, index=i, pose=pose,
                            seed=_seed(seed, rec.id, method, target, i), note=note))  # fmt: skip

        preds: Sequence[Any] = []
        if "model" in methods and predictor is not None and depth is not None:
            preds = predictor(rec, load_image(dataset, rec), depth, rec.intrinsics)
        for t_idx, tid in enumerate(rec.targets):
            obj = rec.object(tid)
            target = int(tid)
            if "annotated" in methods:
                for i, g in enumerate(obj.grasps):
                    add("annotated", target, i, g.to_rect())
            if "random" in methods and obj.mask is not None and depth is not None and rec.intrinsics is not None:
                mask = load_mask(dataset, obj.mask)
                rng = np.random.default_rng(_seed(seed, rec.id, "random-rect", tid))
                for i in range(n_random):
                    add("random", target, i, _random_rect(mask, depth, rec.intrinsics.fx, max_opening_m, rng))
            if "model" in methods:
                rect = preds[t_idx] if t_idx < len(preds) else None
                add("model", target, 0, rect, "" if rect is not None else "the model gave no grasp for this [POSE]")
    return jobs


def _run(job: Job, cfg: TrialConfig) -> TrialResult:
    if job.pose is None:
        return TrialResult("invalid", job.note or "no pose", job.target)
    from prg.sim.trial import GraspPose6D

    return run_trial(Path(job.scene), GraspPose6D(*job.pose), job.target, cfg, seed=job.seed)


def _run_star(args: tuple[Job, TrialConfig]) -> TrialResult:
    return _run(*args)


def run_jobs(
    jobs: Sequence[Job], cfg: TrialConfig, workers: int = 1, progress: Callable[[int, int], None] | None = None
) -> list[TrialResult]:
    """Run trials in order, in ``workers`` processes (1: here)."""
    out: list[TrialResult] = []
    if workers <= 1:
        for j in jobs:
            out.append(_run(j, cfg))
            if progress:
                progress(len(out), len(jobs))
        return out
    with ProcessPoolExecutor(workers) as ex:
        for r in ex.map(_run_star, [(j, cfg) for j in jobs], chunksize=4):
            out.append(r)
            if progress:
                progress(len(out), len(jobs))
    return out


def summarise(trials: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """method -> group (``all``, ``split=...``, ``industry=...``) -> n, successes, rate, Wilson 95% CI, outcomes."""
    groups: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for t in trials:
        for g in ("all", f"split={t['split']}", f"industry={t['industry']}"):
            groups[t["method"]][g][t["outcome"]] += 1
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method in [m for m in METHODS if m in groups]:
        out[method] = {}
        for g, counts in sorted(groups[method].items(), key=lambda kv: (kv[0] != "all", kv[0])):
            n = sum(counts.values())
            k = counts["success"]
            lo, hi = wilson(k, n)
            out[method][g] = {"n": n, "successes": k, "rate": k / n if n else 0.0, "ci95": [lo, hi],
                              "outcomes": {o: counts[o] for o in OUTCOMES if counts[o]}}  # fmt: skip
    return out


def evaluate_sim(
    dataset: str | Path,
    methods: Sequence[str] = ("annotated", "random"),
    predictor: Predictor | None = None,
    splits: Sequence[str] | None = None,
    n: int | None = None,
    cfg: TrialConfig | None = None,
    seed: int = 0,
    n_random: int = 1,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SimEvaluation:
    """Plan and run every trial; the result carries each trial's row and the summary."""
    cfg = cfg or TrialConfig()
    t0 = time.perf_counter()
    jobs = plan_trials(Path(dataset), methods, predictor, splits, n, seed, n_random, cfg.gripper.max_opening_m)
    results = run_jobs(jobs, cfg, workers, progress)
    trials = [{"record": j.record, "split": j.split, "industry": j.industry, "method": j.method, "target": j.target,
               "index": j.index, "seed": j.seed, "scene": j.scene, "pose": j.pose, **r.to_json()}
              for j, r in zip(jobs, results, strict=True)]  # fmt: skip
    settings = {"dataset": str(dataset), "methods": list(methods), "splits": list(splits) if splits else None,
                "n_records": len({j.record for j in jobs}), "seed": seed, "n_random": n_random, "workers": workers,
                "trial": _jsonable(cfg)}  # fmt: skip
    return SimEvaluation(trials, settings, time.perf_counter() - t0, summarise(trials))


def _jsonable(cfg: Any) -> Any:
    from dataclasses import asdict

    return asdict(cfg)


def summary_rows(summary: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    """A header and one row per method and group: n, success rate with its 95% Wilson interval, outcomes."""
    rows = [["method", "group", "n", "success", "95% CI", "outcomes"]]
    for method, groups in summary.items():
        for g, m in groups.items():
            lo, hi = m["ci95"]
            outs = ", ".join(f"{k} {v}" for k, v in m["outcomes"].items())
            rows.append([method, g, str(m["n"]), f"{100 * m['rate']:.1f}%", f"{100 * lo:.1f}-{100 * hi:.1f}%", outs])
    return rows


def markdown_table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """:func:`summary_rows` as a Markdown table."""
    header, *rows = summary_rows(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_sim_report(ev: SimEvaluation, out: str | Path) -> dict[str, Path]:
    """``sim.json`` (settings, summary, every trial) and ``sim.md`` (the table) in ``out``."""
    import json

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "sim.json", "md": folder / "sim.md"}
    payload = {"settings": ev.settings, "seconds": ev.seconds, "summary": ev.summary, "trials": ev.trials}
    paths["json"].write_text(json.dumps(payload, indent=2), encoding="utf-8")
    n = len(ev.trials)
    paths["md"].write_text(
        "# Simulated grasp success (MuJoCo, PRG-Synth: synthetic)\n\n"
        f"{ev.settings['n_records']} records, {n} trials, {ev.seconds:.0f} s. Success: the target is lifted above "
        "the threshold, held by both fingers at the end, nothing else lifted; invalid trials count as failures.\n\n"
        f"{markdown_table(ev.summary)}\n",
        encoding="utf-8",
    )
    return paths
