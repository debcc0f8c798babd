"""Fusion quality: dense-only, BM25-only, RRF (the earlier default) and the default fusion, on two corpora.

    .venv/bin/prg data synth --out /tmp/prg_fusion_synth --n 200 --seed 0
    .venv/bin/prg index build /tmp/prg_fusion_synth/documents --out /tmp/prg_fusion_synth_index
    .venv/bin/python benchmarks/bench_fusion.py --synth /tmp/prg_fusion_synth --synth-index /tmp/prg_fusion_synth_index

Corpora: the Works Safety Code (``tests/retrieval/fixtures/safety_code``: 20 hand-written documents in plain
regulatory prose, 64 instructions, clause level; its MiniLM index is built into ``--wsc-index`` when missing) and
PRG-Synth (rule level, as ``prg eval retrieval`` scores by default, and clause level). Each is split into a tuning
half, on which the default was chosen (Works Safety Code ``tune``; PRG-Synth ``train`` + ``val``), and a held-out
half (``heldout``; ``test`` + ``zero_shot_task`` + ``zero_shot_industry``). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prg.eval.retrieval import evaluate_queries, evaluate_retrieval, load_queries
from prg.retrieval.build import build_index, open_embedder
from prg.retrieval.fusion import FusionConfig
from prg.retrieval.index import DocumentIndex
from prg.retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent
WSC = ROOT / "tests" / "retrieval" / "fixtures" / "safety_code"
SYNTH_HALVES = {"tune": ["train", "val"], "heldout": ["test", "zero_shot_task", "zero_shot_industry"]}
RANKERS = {
    "dense": FusionConfig("dense"),
    "bm25": FusionConfig("lexical"),
    "rrf (old default)": FusionConfig("rrf", (1.0, 1.0), 60),
    "default": FusionConfig(),
}
METRICS = ("MRR", "R@1", "R@5", "R@10")


def _row(corpus: str, level: str, half: str, ranker: str, m: dict[str, float]) -> dict[str, Any]:
    return {"corpus": corpus, "level": level, "half": half, "ranker": ranker, "queries": int(m["num_queries"]),
            **{k: m[k] for k in METRICS}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wsc-index", type=Path, default=Path("/tmp/prg_fusion_wsc_index"))
    ap.add_argument("--synth", type=Path, required=True, help="PRG-Synth dataset folder")
    ap.add_argument("--synth-index", type=Path, required=True, help="its MiniLM index")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fusion.json"))
    a = ap.parse_args()
    t0 = time.perf_counter()
    if not (a.wsc_index / "CURRENT").exists():
        build_index([WSC / "documents"], a.wsc_index, embedder="minilm")
    rows: list[dict[str, Any]] = []
    queries = load_queries(WSC / "queries.jsonl")
    for path, corpus in ((a.wsc_index, "works-safety-code"), (a.synth_index, "prg-synth")):
        with DocumentIndex.open(path) as index:
            emb = open_embedder(index.manifest["embedder"])
            for name, cfg in RANKERS.items():
                r = Retriever(index, emb, fusion=cfg)
                if corpus == "works-safety-code":
                    res = evaluate_queries(queries, r)
                    rows += [_row(corpus, "clause", half, name, res[half]) for half in ("tune", "heldout")]
                    continue
                for level in ("rule", "clause"):
                    for half, splits in SYNTH_HALVES.items():
                        ev = evaluate_retrieval(a.synth, r, splits=splits, level=level, progress=False)
                        rows.append(_row(corpus, level, half, name, ev.overall))
    print(
        f"{'corpus':>18} {'level':>6} {'half':>7} {'ranker':>18} {'queries':>7}" + "".join(f"{m:>7}" for m in METRICS)
    )
    for row in rows:
        print(f"{row['corpus']:>18} {row['level']:>6} {row['half']:>7} {row['ranker']:>18} {row['queries']:>7}"
              + "".join(f"{row[m]:>7.3f}" for m in METRICS))  # fmt: skip
    checks = {}
    for corpus, level in (("works-safety-code", "clause"), ("prg-synth", "rule"), ("prg-synth", "clause")):
        got = {r["ranker"]: r for r in rows if (r["corpus"], r["level"], r["half"]) == (corpus, level, "heldout")}
        for m in ("MRR", "R@5"):
            best = max(got["dense"][m], got["bm25"][m])
            checks[f"{corpus}/{level}/{m}"] = {"default": got["default"][m], "best_single": best,
                                               "ok": got["default"][m] >= best}  # fmt: skip
    print("held-out, default >= better single ranker:")
    for key, c in checks.items():
        print(f"  {key:>28}: {c['default']:.3f} vs {c['best_single']:.3f} {'ok' if c['ok'] else 'BELOW'}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"synth": str(a.synth), "synth_index": str(a.synth_index), "wsc_index": str(a.wsc_index),
            "default": asdict(FusionConfig()), "halves": SYNTH_HALVES, "seconds": time.perf_counter() - t0,
            "cpu_count": os.cpu_count(), "platform": platform.platform()}  # fmt: skip
    a.out.write_text(json.dumps({"meta": meta, "rows": rows, "checks": checks}, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
