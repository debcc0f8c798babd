"""Fixtures for the training-data tests: a tiny dataset with a retrieval cache built by a fake retriever."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prg.data.torch.retrieval_cache import build_retrieval_cache
from tests.conftest import write_tiny_dataset

#: What the fake retriever returns: the gold clause second, behind a wrong one, as real retrieval often does.
FAKE_HITS = [
    ("CH-LAB-002 §3.1", "Carry acid bottles in a bottle carrier, never by the neck."),
    ("EP-SAF-001 §4.2.1", "Verify the absence of voltage with a tested voltage detector."),
    ("EP-SAF-004", "Safe isolation."),
]


def fake_retrieve(instruction: str, image: np.ndarray, depth: np.ndarray | None) -> list[tuple[str, str]]:
    assert image.dtype == np.uint8 and image.ndim == 3
    return list(FAKE_HITS)


@pytest.fixture
def cached_dataset(tmp_path: Path) -> Path:
    """``tests/conftest.py``'s tiny 3-record dataset with ``retrieval/default.jsonl`` (k = 3, fake hits)."""
    root = write_tiny_dataset(tmp_path / "ds")
    build_retrieval_cache(root, fake_retrieve, k=3, index="fake", progress=False)
    return root
