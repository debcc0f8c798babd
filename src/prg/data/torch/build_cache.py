"""``python -m prg.data.torch.build_cache DATASET --index INDEX -k 5``: a dataset's retrieval cache, built with the
pipeline's own retrieval step (``PRGPipeline.retrieve``, image-aware when the index has a scene tagger).

An entry point, kept out of the package's imports: only it needs the retriever; the datasets never import it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from prg.data.torch.retrieval_cache import build_retrieval_cache, cache_path
from prg.pipeline import PipelineConfig, PRGPipeline
from prg.retrieval.retriever import Retriever

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Build ``<DATASET>/retrieval/<name>.jsonl`` from the index; prints its path."""
    p = argparse.ArgumentParser(prog="python -m prg.data.torch.build_cache", description=__doc__)
    p.add_argument("dataset", type=Path)
    p.add_argument("--index", type=Path, required=True, help="document index folder (prg index build)")
    p.add_argument("-k", type=int, default=5, help="chunks per record (the pipeline's k_docs)")
    p.add_argument("--name", default="default", help="cache name: <dataset>/retrieval/<name>.jsonl")
    p.add_argument("--text-only", action="store_true", help="ignore the scene tagger")
    args = p.parse_args(argv)
    pipe = PRGPipeline(None, Retriever.open(args.index), PipelineConfig(image_aware=not args.text_only))
    try:
        out = build_retrieval_cache(
            args.dataset,
            lambda q, img, d: pipe.retrieve(q, img, d, k=args.k),
            args.k,
            cache_path(args.dataset, args.name),
            index=str(args.index.resolve()),
        )
    finally:
        pipe.close()
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
