"""PRG-Synth end to end: corpus, scenes, renders, grasps, questions and answers, splits -> a PRG dataset folder.

Every record ``i`` is made from its own seeds (``(seed, i)``), so the result does not depend on the number of
worker processes or the order they finish in, and an interrupted run resumes where it stopped:

* finished records are appended to ``.synth/progress.jsonl`` (one line each, written after the record's files);
* on restart with the same settings, records already listed there are skipped;
* ``records.jsonl`` and ``dataset.json`` are written only at the very end (``DatasetWriter``), so a half-made
  folder never validates.

Splits: the held-out industry (``zero_shot_industry``) gives the ``zero_shot_industry`` split; rules marked
``zero_shot`` give ``zero_shot_task``; the rest is divided into train / val / test by a hash of the record id.
``splits.json`` lists which documents each split may see, so a retrieval index for training never holds a
zero-shot rule.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import shutil
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prg.data.dataset import INFO_FILE, DatasetWriter, remove_dataset
from prg.data.schema import INDUSTRIES, DatasetInfo, DocRef, Intrinsics, PRGRecord
from prg.fsutil import atomic_write_text, fsync_dir, fsync_tree

__all__ = ["SynthConfig", "SynthReport", "generate", "industry_prefix", "make_record"]

GENERATOR_VERSION = 3
"""Bumped when the same seed gives other records. 2: grasp labels whose finger footprint covers any object (the
target's own other parts too) are dropped (prg.data.synth.grasps._jaws_free)."""
_PROGRESS_DIR = ".synth"
_PROGRESS = "progress.jsonl"
_CONFIG = "config.json"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_PREFIX = {"electric_power": "ep", "chemical": "ch", "mechanical": "me", "home_appliance": "ha"}


def industry_prefix(industry: str) -> str:
    return _PREFIX.get(industry, industry[:2])


@dataclass(frozen=True)
class SynthConfig:
    """Settings of one PRG-Synth dataset; everything that changes the output is here (and saved with it)."""

    n: int = 200  # number of records (one scene each)
    seed: int = 0
    industries: tuple[str, ...] = INDUSTRIES
    size: int = 448  # image side in pixels
    zero_shot_industry: str | None = "home_appliance"  # held out entirely; None = no held-out industry
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    absent_fraction: float = 0.08  # records whose required tool is not on the table
    min_objects: int = 3
    max_objects: int = 8
    max_opening_m: float = 0.14  # the gripper's maximum opening (a 2F-140-class parallel gripper)
    backend: str = "auto"  # renderer: "auto" | "raster" | "mujoco"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if not 64 <= self.size <= 2048:
            raise ValueError(f"size must be between 64 and 2048 pixels, got {self.size}")
        unknown = [i for i in self.industries if i not in INDUSTRIES]
        if unknown or not self.industries:
            raise ValueError(f"unknown industries {unknown}; choose from {list(INDUSTRIES)}")
        if self.zero_shot_industry is not None and self.zero_shot_industry not in INDUSTRIES:
            raise ValueError(f"zero_shot_industry must be one of {list(INDUSTRIES)} or None")
        if not (
            0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1
        ):
            raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
        if not 0 <= self.absent_fraction < 1:
            raise ValueError("absent_fraction must be in [0, 1)")
        if not 1 <= self.min_objects <= self.max_objects <= 12:
            raise ValueError("need 1 <= min_objects <= max_objects <= 12")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["industries"] = list(self.industries)
        d["generator_version"] = GENERATOR_VERSION
        return d


@dataclass
class SynthReport:
    out: Path
    n_records: int
    n_resumed: int
    splits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# --------------------------------------------------------------------------- one record


@dataclass(frozen=True)
class _Job:
    index: int
    cfg: SynthConfig
    out: str


def _split_for(record_id: str, rule_zero_shot: bool, industry: str, cfg: SynthConfig) -> str:
    if cfg.zero_shot_industry is not None and industry == cfg.zero_shot_industry:
        return "zero_shot_industry"
    if rule_zero_shot:
        return "zero_shot_task"
    u = (zlib.crc32(record_id.encode()) % 10_000) / 10_000
    if u < cfg.test_fraction:
        return "test"
    if u < cfg.test_fraction + cfg.val_fraction:
        return "val"
    return "train"


def _plan(index: int, cfg: SynthConfig) -> tuple[str, Any, bool]:
    """(industry, rule, absent) for record ``index``; cheap and deterministic."""
    from prg.data.synth.rules import rules_for_industry

    industry = cfg.industries[index % len(cfg.industries)]
    rng = random.Random(zlib.crc32(f"{cfg.seed}:{index}:plan".encode()))
    rule = rng.choice(rules_for_industry(industry))
    absent = rng.random() < cfg.absent_fraction
    return industry, rule, absent


_CITATIONS: dict[int, dict[str, list[tuple[str, str]]]] = {}


def _citations(seed: int) -> dict[str, list[tuple[str, str]]]:
    """Rule -> [(doc_id, clause)], built once per process (the corpus is deterministic for a seed)."""
    if seed not in _CITATIONS:
        from prg.data.synth.corpus import build_corpus, rule_citations

        _CITATIONS[seed] = rule_citations(build_corpus(seed))
    return _CITATIONS[seed]


def make_record(index: int, cfg: SynthConfig, out: Path) -> PRGRecord:
    """Generate record ``index``: sample, render and annotate its scene, write its files under ``out``."""
    from prg.data.synth.annotate import object_annotations, render_graspable, write_scene_files
    from prg.data.synth.catalogue import CATALOGUE, types_for_industry
    from prg.data.synth.qa import make_qa
    from prg.data.synth.scene import sample_scene
    from prg.data.synth.types import SceneSpec

    industry, rule, absent = _plan(index, cfg)
    rid = f"{industry_prefix(industry)}-{index:06d}"
    text_rng = random.Random(zlib.crc32(f"{cfg.seed}:{index}:text".encode()))

    required = list(rule.required)
    if absent:
        # drop one required tool from the table (the answer must then say it is missing)
        drop_rng = random.Random(zlib.crc32(f"{cfg.seed}:{index}:absent".encode()))
        required.pop(drop_rng.randrange(len(required)))
    pool = [t.key for t in types_for_industry(industry) if t.key not in rule.required]
    clutter = [k for k in CATALOGUE if k.startswith("clutter_")]

    def sample(attempt: int) -> SceneSpec:
        # The seeds stay a function of (seed, index, attempt): a re-sampled scene is still deterministic.
        rng = np.random.default_rng([cfg.seed, index, attempt])
        n_obj = int(rng.integers(max(cfg.min_objects, len(required)), cfg.max_objects + 1))
        return sample_scene(rng, CATALOGUE, required, n_obj, pool, clutter, image_size=cfg.size, seed=cfg.seed + index)

    # A required tool must be graspable in the picture (a neighbour can block every grasp).
    spec, res, grasps = render_graspable(sample, required, cfg.max_opening_m, cfg.backend, what=f"record {rid}")
    write_scene_files(out, rid, spec, res)
    objects = object_annotations(spec, grasps, rid)
    first_instance: dict[str, str] = {}
    for obj in objects:
        first_instance.setdefault(obj.category, obj.id)
    scene_keys = [p.type_key for p in spec.objects]
    qa = make_qa(rule, scene_keys, _citations(cfg.seed), text_rng)
    fx_, fy_, cx_, cy_ = res.intrinsics
    return PRGRecord(
        id=rid,
        image=f"images/{rid}.png",
        depth=f"depth/{rid}.png",
        depth_scale=0.001,
        intrinsics=Intrinsics(fx=fx_, fy=fy_, cx=cx_, cy=cy_),
        industry=industry,
        instruction=qa.instruction,
        answer=qa.answer,
        objects=objects,
        targets=[first_instance[k] for k in qa.targets],
        documents=[DocRef(doc_id=d, clause=c) for d, c in qa.documents],
        split=_split_for(rid, rule.zero_shot, industry, cfg),
        source="prg-synth",
        meta={
            "rule": rule.id,
            "kind": qa.kind,
            "required": list(rule.required),
            "forbidden": list(rule.forbidden),
            "scene": f"scenes/{rid}.json",
            "mjcf": f"scenes/{rid}.xml",
            "camera_height_m": spec.camera_height,
        },
    )


def _run_job(job: _Job) -> tuple[int, str]:
    rec = make_record(job.index, job.cfg, Path(job.out))
    return job.index, rec.model_dump_json(exclude_none=True)


# --------------------------------------------------------------------------- the whole dataset


def _prepare(out: Path, cfg: SynthConfig, overwrite: bool) -> dict[int, str]:
    """Create/resume the output folder; returns records already made (index -> JSON line)."""
    prog_dir = out / _PROGRESS_DIR
    cfg_json = json.dumps(cfg.to_json(), sort_keys=True)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a folder; choose a folder for the dataset")
    if (out / INFO_FILE).exists() or prog_dir.exists():
        if overwrite:  # only a folder holding a dataset or a generation in progress is ever deleted
            remove_dataset(out)
        elif (out / INFO_FILE).exists():
            raise FileExistsError(f"{out} already holds a finished dataset; pass --overwrite to replace it")
        else:
            old = (prog_dir / _CONFIG).read_text() if (prog_dir / _CONFIG).exists() else ""
            if old and json.loads(old) != json.loads(cfg_json):
                raise FileExistsError(
                    f"{out} holds an interrupted generation with other settings; pass --overwrite to restart"
                )
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another folder")
    for sub in ("images", "depth", "masks", "scenes", "documents", _PROGRESS_DIR):
        (out / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_text(prog_dir / _CONFIG, cfg_json)
    done: dict[int, str] = {}
    p = prog_dir / _PROGRESS
    if p.exists():
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                idx, rec_json = line.split("\t", 1)
                PRGRecord.model_validate_json(rec_json)  # a torn last line (killed mid-write) is redone
                done[int(idx)] = rec_json
            except ValueError:
                continue
    return done


def _splits_manifest(cfg: SynthConfig, docs: Sequence[Any]) -> dict[str, Any]:
    """Which documents each split may retrieve from; training never sees a zero-shot rule's document."""
    held_industry = cfg.zero_shot_industry
    train_docs = [d.doc_id for d in docs if not d.zero_shot and d.industry != held_industry]
    zs_task = [d.doc_id for d in docs if d.zero_shot and d.industry != held_industry]
    zs_ind = [d.doc_id for d in docs if d.industry == held_industry]
    return {
        "zero_shot_industry": held_industry,
        "documents": {
            "train": train_docs,
            "val": train_docs,
            "test": train_docs,
            "zero_shot_task": train_docs + zs_task,
            "zero_shot_industry": train_docs + zs_ind,
        },
    }


def generate(
    out: str | Path, cfg: SynthConfig, workers: int | None = None, overwrite: bool = False, progress: bool = True
) -> SynthReport:
    """Make (or resume) a PRG-Synth dataset in ``out``."""
    import time

    from tqdm import tqdm

    from prg.data.synth.corpus import build_corpus, write_corpus

    t0 = time.perf_counter()
    out = Path(out)
    _check_gripper(cfg)
    done = _prepare(out, cfg, overwrite)
    n_resumed = len(done)
    docs = [d for d in build_corpus(cfg.seed) if d.industry in cfg.industries]
    if not (out / "documents" / "index.json").exists():
        tmp_docs = out / _PROGRESS_DIR / "documents"
        shutil.rmtree(tmp_docs, ignore_errors=True)
        write_corpus(docs, tmp_docs)
        fsync_tree(tmp_docs)
        shutil.rmtree(out / "documents", ignore_errors=True)
        os.replace(tmp_docs, out / "documents")  # the corpus appears whole or not at all
        fsync_dir(out)
    todo = [i for i in range(cfg.n) if i not in done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    prog_path = out / _PROGRESS_DIR / _PROGRESS
    with (
        open(prog_path, "a", encoding="utf-8") as prog,
        tqdm(total=cfg.n, initial=n_resumed, desc="PRG-Synth", unit="scene", disable=None if progress else True) as bar,
    ):
        for idx, rec_json in _map(workers, [_Job(i, cfg, str(out)) for i in todo]):
            prog.write(f"{idx}\t{rec_json}\n")
            prog.flush()
            done[idx] = rec_json
            bar.update(1)
    info = DatasetInfo(
        name=f"prg-synth-s{cfg.seed}-n{cfg.n}",
        description="PRG-Synth: procedural four-industry professional reasoning grasping data",
        source="prg-synth",
        industries=list(cfg.industries),
        extra={"config": cfg.to_json()},
    )
    atomic_write_text(out / "splits.json", json.dumps(_splits_manifest(cfg, docs), indent=2))
    splits: dict[str, int] = {}
    with DatasetWriter(out, info) as w:
        for i in range(cfg.n):
            rec = PRGRecord.model_validate_json(done[i])
            splits[rec.split] = splits.get(rec.split, 0) + 1
            w.add(rec)
    shutil.rmtree(out / _PROGRESS_DIR, ignore_errors=True)
    return SynthReport(out, cfg.n, n_resumed, splits, time.perf_counter() - t0)


def _check_gripper(cfg: SynthConfig) -> None:
    """Refuse settings under which some rule's tool can never be grasped (it would fail deep inside a worker)."""
    from prg.data.synth.catalogue import CATALOGUE
    from prg.data.synth.grasps import min_opening_m
    from prg.data.synth.rules import rules_for_industry

    too_big = sorted(
        {k for ind in cfg.industries for r in rules_for_industry(ind) for k in r.required
         if (m := min_opening_m(CATALOGUE[k])) is None or m > cfg.max_opening_m}
    )  # fmt: skip
    if too_big:
        raise ValueError(f"a gripper opening of {cfg.max_opening_m} m cannot hold {too_big}; raise max_opening_m")


def _map(workers: int, jobs: list[_Job]) -> Iterator[tuple[int, str]]:
    if workers == 1:
        yield from map(_run_job, jobs)
        return
    # spawn, not fork: a forked child inherits whatever GL/thread state the parent holds (MuJoCo, BLAS), which
    # can hang; the cost is a second of imports per worker.
    # One BLAS thread per worker: the workers already fill the cores, and each numpy matmul spreading over all of
    # them again oversubscribes the machine (measured: 2 workers on 2 cores went from 1.1x to 1.55x one worker).
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            # chunks keep the per-task overhead small; results come back in order, which keeps progress simple
            yield from ex.map(_run_job, jobs, chunksize=max(1, min(8, len(jobs) // (4 * workers) or 1)))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
