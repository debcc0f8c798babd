"""Scene rendering speed: every available backend, 1 and 2 worker processes, in one run.

Each scene is the per-scene work of the generator: sample a layout from the catalogue, render RGB + depth +
instances, and (``--grasps``) compute every object's grasps. Prints a table and writes JSON.

    .venv/bin/python benchmarks/bench_render.py --scenes 60 --size 448 --out benchmarks/results/render.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np

from prg.data.synth.catalogue import CATALOGUE
from prg.data.synth.grasps import object_grasps
from prg.data.synth.render import available_backends, render_scene
from prg.data.synth.scene import SceneSamplingError, metres_to_pixels, sample_scene

OBJECTS = [k for k in CATALOGUE if not k.startswith("clutter_")]
CLUTTER = [k for k in CATALOGUE if k.startswith("clutter_")]


def one_scene(args: tuple[int, str, int, bool]) -> float:
    """Sample, render and (optionally) annotate one scene; returns the CPU seconds this process spent."""
    cpu0 = time.process_time()
    seed, backend, size, grasps = args
    rng = np.random.default_rng(seed)
    required = [OBJECTS[int(rng.integers(len(OBJECTS)))]]
    try:
        spec = sample_scene(rng, CATALOGUE, required, int(rng.integers(3, 9)), OBJECTS, CLUTTER, size, seed=seed)
    except SceneSamplingError:  # counted as work done: the generator would draw another seed
        return time.process_time() - cpu0
    result = render_scene(spec, CATALOGUE, backend)
    if grasps:
        max_px = metres_to_pixels(spec, 0.1)
        for o in spec.objects:
            object_grasps(o, CATALOGUE[o.type_key], spec, result.instances, max_px)
    assert result.depth.shape == (size, size)
    return time.process_time() - cpu0


def run(backend: str, processes: int, scenes: int, size: int, grasps: bool) -> dict[str, float | int | str | bool]:
    jobs = [(seed, backend, size, grasps) for seed in range(scenes)]
    warm = [(10_000 + i, backend, size, grasps) for i in range(2 * processes)]
    if processes == 1:
        for j in warm:
            one_scene(j)
        start = time.perf_counter()
        cpu = sum(one_scene(j) for j in jobs)
        elapsed = time.perf_counter() - start
    else:
        # spawn, not fork: a forked child can inherit a held lock of the parent's BLAS or GL threads and hang
        with mp.get_context("spawn").Pool(processes) as pool:
            pool.map(one_scene, warm, chunksize=1)
            start = time.perf_counter()
            cpu = sum(pool.map(one_scene, jobs, chunksize=2))
            elapsed = time.perf_counter() - start
    return {
        "backend": backend,
        "processes": processes,
        "grasps": grasps,
        "scenes": scenes,
        "image_size": size,
        "scenes_per_s": scenes / elapsed,
        "ms_per_scene": 1000 * elapsed / scenes,
        # CPU time of the workers: what a scene costs when the machine is not shared with other jobs
        "cpu_ms_per_scene": 1000 * cpu / scenes,
        "scenes_per_s_from_cpu": processes * scenes / cpu,
        "load_avg_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--mujoco-scenes", type=int, default=20, help="MuJoCo on CPU is slow; fewer scenes")
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=None, help="default: every available backend")
    parser.add_argument("--grasps", action="store_true", help="also time the grasp annotation")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/render.json"))
    args = parser.parse_args()

    backends = args.backends or available_backends()
    rows = []
    for backend in backends:
        n = args.mujoco_scenes if backend == "mujoco" else args.scenes
        for procs in args.processes:
            rows.append(run(backend, procs, n, args.size, args.grasps))
            r = rows[-1]
            print(f"{backend:8s} {procs:3d} proc  {r['scenes_per_s']:7.2f} scenes/s  {r['ms_per_scene']:8.1f} ms/scene")

    head = f"{'backend':8s} | {'processes':9s} | {'scenes/s':>8s} | {'ms/scene':>8s} | {'cpu ms/scene':>12s} | load"
    print(f"\n{head}   ({args.size}x{args.size}, wall clock; cpu = worker CPU time)")
    for r in rows:
        print(
            f"{r['backend']:8s} | {r['processes']:9d} | {r['scenes_per_s']:8.2f} | {r['ms_per_scene']:8.1f} | "
            f"{r['cpu_ms_per_scene']:12.1f} | {r['load_avg_1min']:.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "grasps": args.grasps,
    }
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
