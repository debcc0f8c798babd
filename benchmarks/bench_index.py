"""Benchmark the embedded vector store: ingest and ANN build time, query latency ANN vs exact, recall@10, size.

    .venv/bin/python benchmarks/bench_index.py              # 100k random 384-d unit vectors
    .venv/bin/python benchmarks/bench_index.py --n 1000000  # 1M

ANN and exact search run on the same table in the same process, so their latencies compare directly. Random
unit vectors are the hardest case for an ANN index (no clusters to exploit): recall on real embeddings is higher.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from prg.retrieval.store_lancedb import LanceDBStore
from prg.retrieval.types import Chunk


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``[n x dim]`` float32 random unit vectors."""
    v = rng.standard_normal((n, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def clustered_rows(rng: np.random.Generator, n: int, centers: np.ndarray, spread: float) -> np.ndarray:
    """``[n x dim]`` unit vectors around random topic centres (cosine to the centre ~ 1/sqrt(1 + spread^2))."""
    c = centers[rng.integers(0, len(centers), n)]
    v = c + spread * unit_rows(rng, n, centers.shape[1])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def timed_queries(fn, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:  # type: ignore[no-untyped-def]
    """Run ``fn(q, k)`` per query; returns the hit ids and the latencies in ms ``[n_queries]``."""
    fn(queries[0], k)  # warm caches (index load) outside the timing
    out, lat = [], []
    for q in queries:
        t = time.perf_counter()
        hits = fn(q, k)
        lat.append((time.perf_counter() - t) * 1e3)
        out.append([h.chunk.id for h in hits])
    return out, np.asarray(lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="rows")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--index-type", default="IVF_HNSW_SQ", choices=["IVF_HNSW_SQ", "IVF_PQ"])
    ap.add_argument(
        "--data",
        default="uniform",
        choices=["uniform", "clustered"],
        help="uniform random unit vectors (worst case) or vectors around 1000 topic centres (embedding-like)",
    )
    ap.add_argument("--batch", type=int, default=50_000, help="rows per upsert")
    ap.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp folder, removed)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/index.json"))
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    centers = unit_rows(rng, 1000, args.dim)

    def sample(n: int) -> np.ndarray:
        return unit_rows(rng, n, args.dim) if args.data == "uniform" else clustered_rows(rng, n, centers, 1.0)

    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_index_"))
    industries = ["chemical", "electric_power", "manufacturing", "construction", "food"]
    store = LanceDBStore(work / "db", args.dim, index_type=args.index_type, ann_threshold=1)
    try:
        t0 = time.perf_counter()
        for start in range(0, args.n, args.batch):
            stop = min(args.n, start + args.batch)
            chunks = [
                Chunk(
                    id=f"c{i:08d}",
                    doc_id=f"doc{i // 200}",
                    text=f"Clause {i % 97}.{i % 13}: synthetic regulation text number {i}.",
                    industry=industries[i % len(industries)],
                    section="1 Scope > 1.2 Terms",
                    clause=f"{i % 97}.{i % 13}",
                    page=1 + i % 300,
                )
                for i in range(start, stop)
            ]
            store.upsert(chunks, sample(stop - start))
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.build_ann_index()
        build_s = time.perf_counter() - t0
        disk = sum(p.stat().st_size for p in (work / "db").rglob("*") if p.is_file())

        queries = sample(args.queries)
        truth, lat_exact = timed_queries(store.search_exact, queries, args.k)
        rows = [{"mode": "exact (brute force)", **_lat(lat_exact), "recall@k": 1.0}]
        # search-time settings from fast to accurate; nprobes matters for IVF, ef for HNSW, refine for PQ
        settings = [
            {"nprobes": 20, "ef": 30},
            {"nprobes": 20, "ef": 100},
            {"nprobes": 20, "ef": 100, "refine_factor": 5},  # the store's default
            {"nprobes": 50, "ef": 300, "refine_factor": 10},
        ]
        for s in settings:
            store.nprobes, store.ef, store.refine_factor = s["nprobes"], s.get("ef"), s.get("refine_factor")
            got, lat = timed_queries(store.search, queries, args.k)
            recall = np.mean([len(set(g) & set(t)) / args.k for g, t in zip(got, truth, strict=True)])
            rows.append({"mode": f"ANN {args.index_type} {s}", **_lat(lat), "recall@k": float(recall)})
    finally:
        store.close()
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)

    result = {
        "n": args.n,
        "dim": args.dim,
        "k": args.k,
        "queries": args.queries,
        "data": args.data,
        "index_type": args.index_type,
        "ingest_s": ingest_s,
        "ann_build_s": build_s,
        "bytes_on_disk": disk,
        "bytes_per_chunk": disk / args.n,
        "search": rows,
        "machine": {"cpus": _cpus(), "platform": platform.platform()},
    }
    print(
        f"n={args.n} dim={args.dim} ingest {ingest_s:.1f} s, {args.index_type} build {build_s:.1f} s, "
        f"{disk / 2**20:.0f} MiB on disk = {disk / args.n:.0f} B/chunk"
    )
    print(f"{'mode':<62} {'p50 ms':>8} {'p95 ms':>8} {'recall@' + str(args.k):>10}")
    for r in rows:
        print(f"{r['mode']:<62} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['recall@k']:>10.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


def _lat(ms: np.ndarray) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
