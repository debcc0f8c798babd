"""Ingestion throughput on the PRG-Synth corpus: Markdown and PDF side by side, with and without figure crops,
plus embedding throughput of the text embedders (reported separately, as the issue asks).

    .venv/bin/python benchmarks/bench_ingest.py --out benchmarks/results/ingest.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from prg.data.synth.corpus import build_corpus, write_corpus
from prg.retrieval.build import embed_chunks, open_embedder
from prg.retrieval.ingest import ingest_path


def _split_corpus(root: Path, pattern: str, dst: Path) -> Path:
    for f in root.glob(f"*/{pattern}"):
        (dst / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst / f.parent.name / f.name)
        if pattern == "*.md":
            shutil.copytree(f.parent / "figures", dst / f.parent.name / "figures", dirs_exist_ok=True)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ingest.json"))
    ap.add_argument("--embedders", nargs="+", default=["minilm", "hashing"])
    ap.add_argument("--embed-n", type=int, default=512, help="chunks embedded per embedder")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        write_corpus(build_corpus(0), corpus)
        chunks = []
        for label, pattern in (("markdown", "*.md"), ("pdf", "*.pdf")):
            src = _split_corpus(corpus, pattern, Path(tmp) / label)
            for figures in (False, True):
                fig_dir = Path(tmp) / f"fig-{label}-{figures}" if figures else None
                t0, c0 = time.perf_counter(), time.process_time()
                res = ingest_path(src, figure_dir=fig_dir)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                pages = sum(d.pages or 0 for d in res.documents)
                rows.append({"input": label, "figure_crops": figures, "files": len(res.documents),
                             "chunks": len(res.chunks), "pages": pages, "seconds": wall, "cpu_seconds": cpu,
                             "chunks_per_s": len(res.chunks) / wall, "pages_per_s": pages / wall if pages else None,
                             "skipped": len(res.skipped)})  # fmt: skip
                chunks = chunks or res.chunks
    emb_rows = []
    sample = chunks[: a.embed_n]
    for name in a.embedders:
        emb = open_embedder(name)
        embed_chunks(emb, sample[:8])  # warm-up (model load, first-call overheads)
        t0 = time.perf_counter()
        embed_chunks(emb, sample)
        wall = time.perf_counter() - t0
        q0 = time.perf_counter()
        for _ in range(20):
            emb.embed_query("the breaker is off; what do I need before I touch the busbar?")
        emb_rows.append({"embedder": name, "chunks": len(sample), "chunks_per_s": len(sample) / wall,
                         "query_ms": 1000 * (time.perf_counter() - q0) / 20})  # fmt: skip
    print(f"{'input':>9} {'crops':>5} {'files':>5} {'chunks':>6} {'pages':>5} {'chunks/s':>9} {'pages/s':>8}")
    for r in rows:
        pps = f"{r['pages_per_s']:.1f}" if r["pages_per_s"] else "-"
        print(f"{r['input']:>9} {r['figure_crops']!s:>5} {r['files']:>5} {r['chunks']:>6} {r['pages']:>5} "
              f"{r['chunks_per_s']:>9.0f} {pps:>8}")  # fmt: skip
    print(f"\n{'embedder':>9} {'chunks/s':>9} {'query ms':>9}")
    for r in emb_rows:
        print(f"{r['embedder']:>9} {r['chunks_per_s']:>9.1f} {r['query_ms']:>9.1f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_avg_1min": os.getloadavg()[0]}
    a.out.write_text(json.dumps({"meta": meta, "ingest": rows, "embed": emb_rows}, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
