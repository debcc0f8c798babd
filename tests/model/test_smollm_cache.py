"""The SmolLM2 cache folder (``prg.model.weights.smollm``): written atomically, checked cheaply, rebuilt when broken.

The fast tests run the cache logic on a 1-layer Llama with a byte-level tokenizer that has SmolLM2's three special
tokens at SmolLM2's ids, standing in for the GGUF loader. The slow ones build the real cache from the packaged GGUF
into a temporary ``$PRG_CACHE_DIR`` (~20-40 s once) and check it gives the GGUF's weights and tokenizer exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from prg.model.presets import build_preset
from prg.model.weights import smollm
from prg.model.weights.smollm import CacheError, SmolLMCacheWarning

Pair = tuple[PreTrainedModel, PreTrainedTokenizerBase]
TEXTS = [
    "Hello world",
    "<|im_start|>user\nHand me the tester.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>Überprüfe die Spannung: 230 V!\t  ok",
]


def _fake_pair() -> Pair:
    """A 1-layer Llama and a tokenizer with ``<|endoftext|>`` = 0, ``<|im_start|>`` = 1, ``<|im_end|>`` = 2."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=[smollm.PAD_TOKEN, smollm.BOS_TOKEN, smollm.EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(["Hand me the tester.", "Hello world, check the voltage."], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=len(tokenizer), tie_word_embeddings=True)  # fmt: skip
    model = LlamaForCausalLM(config)
    smollm.set_special_tokens(model, tokenizer)
    return model, tokenizer


@pytest.fixture
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """``tmp/model.gguf`` (a few bytes) with ``_load_gguf`` returning the fake pair; yields the list of its calls."""
    (tmp_path / "model.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 4)
    calls: list[int] = []

    def load(path: Path, dtype: torch.dtype) -> Pair:
        calls.append(1)
        return _fake_pair()

    monkeypatch.setattr(smollm, "_load_gguf", load)
    yield calls


def _load(tmp_path: Path) -> Pair:
    return smollm.load_smollm2(gguf_path=tmp_path / "model.gguf", cache_dir=tmp_path / "cache")


def _folder(tmp_path: Path) -> Path:
    digest = hashlib.sha256((tmp_path / "model.gguf").read_bytes()).hexdigest()
    return tmp_path / "cache" / smollm.CACHE_SUBDIR / digest[:16]


def _assert_same(a: Pair, b: Pair) -> None:
    sa, sb = a[0].state_dict(), b[0].state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    for text in TEXTS:
        assert a[1].encode(text) == b[1].encode(text), text
    for tok in (a[1], b[1]):
        assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (
            smollm.BOS_TOKEN_ID, smollm.EOS_TOKEN_ID, smollm.PAD_TOKEN_ID)  # fmt: skip


def test_tokenizer_decodes_without_the_wordpiece_clean_up(tmp_path: Path, fake_gguf: list[int]) -> None:
    """A GGUF conversion may set clean_up_tokenization_spaces (transformers 5.17 did): it would strip the space
    before punctuation on versions that apply it, and newer ones warn on every decode. PRG turns it off, and the
    cache folder keeps it off."""
    model, tokenizer = _fake_pair()
    tokenizer.clean_up_tokenization_spaces = True
    smollm.set_special_tokens(model, tokenizer)
    assert tokenizer.clean_up_tokenization_spaces is False
    text = "Hello world , check the voltage ."
    assert tokenizer.decode(tokenizer.encode(text)) == text
    _load(tmp_path)
    _, cached = _load(tmp_path)  # the second load reads the cache folder
    assert fake_gguf == [1] and cached.clean_up_tokenization_spaces is False
    assert cached.decode(cached.encode(text)) == text


def test_second_load_reads_the_cache(tmp_path: Path, fake_gguf: list[int]) -> None:
    first = _load(tmp_path)
    folder = _folder(tmp_path)
    assert (folder / "model.safetensors").is_file() and (folder / smollm.MANIFEST).is_file()
    assert not [p for p in folder.parent.iterdir() if ".partial-" in p.name]
    second = _load(tmp_path)
    assert len(fake_gguf) == 1  # the second load did not touch the "GGUF"
    _assert_same(first, second)
    assert second[0].config.pad_token_id == smollm.PAD_TOKEN_ID
    assert second[0].get_input_embeddings().padding_idx == smollm.PAD_TOKEN_ID


@pytest.mark.parametrize("damage", ["truncate", "missing", "garbage", "manifest", "format"])
def test_corrupt_folder_is_rebuilt_with_a_warning(tmp_path: Path, fake_gguf: list[int], damage: str) -> None:
    reference = _load(tmp_path)
    folder = _folder(tmp_path)
    weights = folder / "model.safetensors"
    if damage == "truncate":
        os.truncate(weights, weights.stat().st_size // 2)
    elif damage == "missing":
        (folder / "tokenizer.json").unlink()
    elif damage == "garbage":  # same size, so only loading it can tell
        weights.write_bytes(b"\xff" * weights.stat().st_size)
    elif damage == "manifest":
        (folder / smollm.MANIFEST).write_text("{not json")
    else:
        manifest = json.loads((folder / smollm.MANIFEST).read_text())
        (folder / smollm.MANIFEST).write_text(json.dumps({**manifest, "format": smollm.CACHE_FORMAT - 1}))
    with pytest.warns(SmolLMCacheWarning, match="corrupt"):
        rebuilt = _load(tmp_path)
    assert len(fake_gguf) == 2
    _assert_same(reference, rebuilt)
    smollm.check_cache(folder, json.loads((folder / smollm.MANIFEST).read_text())["gguf_sha256"])
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(folder.name + ".")]  # no debris
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _load(tmp_path)  # and the rebuilt folder is used silently
    assert len(fake_gguf) == 2


def test_partial_folder_is_never_used(tmp_path: Path, fake_gguf: list[int]) -> None:
    """A process killed while writing leaves ``<key>.partial-*``: ignored, and removed once stale."""
    _load(tmp_path)
    folder = _folder(tmp_path)
    partial = folder.with_name(f"{folder.name}.partial-1-dead")
    os.rename(folder, partial)
    old = partial.stat().st_mtime - 2 * smollm._STALE_PARTIAL_S
    os.utime(partial, (old, old))
    _load(tmp_path)
    assert len(fake_gguf) == 2 and folder.is_dir() and not partial.exists()


def test_racing_writers_leave_one_valid_folder(tmp_path: Path) -> None:
    model, tokenizer = _fake_pair()
    folder, digest = tmp_path / "smollm2" / "k", "0" * 64
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            barrier.wait()
            smollm.write_cache(folder, model, tokenizer, digest)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in folder.parent.iterdir()) == ["k"]
    _assert_same((model, tokenizer), smollm.load_cached(folder, digest))


def test_a_valid_folder_is_kept_when_another_writer_finishes(tmp_path: Path) -> None:
    model, tokenizer = _fake_pair()
    folder, digest = tmp_path / "k", "0" * 64
    smollm.write_cache(folder, model, tokenizer, digest)
    before = (folder / smollm.MANIFEST).stat().st_ino
    smollm.write_cache(folder, model, tokenizer, digest)
    assert (folder / smollm.MANIFEST).stat().st_ino == before
    with pytest.raises(CacheError, match="another GGUF"):
        smollm.load_cached(folder, "1" * 64)


def test_hash_memo(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"a" * 1000)
    root = tmp_path / "cache"
    assert smollm.gguf_sha256(gguf, root) == hashlib.sha256(b"a" * 1000).hexdigest()
    memo_file = root / smollm.HASH_MEMO
    memo = json.loads(memo_file.read_text())
    memo[str(gguf.resolve())]["sha256"] = "memoised"
    memo_file.write_text(json.dumps(memo))
    assert smollm.gguf_sha256(gguf, root) == "memoised"  # same (path, size, mtime, probe): the file is not read
    st = gguf.stat()
    gguf.write_bytes(b"b" * 1000)  # same size, and the mtime put back: the head/tail probe still sees it
    os.utime(gguf, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert smollm.gguf_sha256(gguf, root) == hashlib.sha256(b"b" * 1000).hexdigest()
    memo_file.write_text("[broken")
    assert smollm.gguf_sha256(gguf, root) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_unwritable_cache_falls_back_to_the_gguf(tmp_path: Path, fake_gguf: list[int]) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.warns(SmolLMCacheWarning, match="unusable"):
        _load(tmp_path)
    assert len(fake_gguf) == 1


def test_tiny_preset_keeps_its_own_special_tokens() -> None:
    vlm, tokenizer = build_preset("tiny")
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token) == ("<pad>", "<s>", "</s>")
    assert vlm.pad_token_id == tokenizer.pad_token_id and vlm.eos_token_ids == [tokenizer.eos_token_id]


# -- the real GGUF ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf_and_cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Pair, Path]]:
    """SmolLM2 loaded from the GGUF (writing the cache into a temporary ``$PRG_CACHE_DIR``), then from the cache."""
    pytest.importorskip("gguf")
    cache = tmp_path_factory.mktemp("prg_cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRG_CACHE_DIR", str(cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        cold = smollm.load_smollm2()
        real = smollm._load_gguf
        mp.setattr(smollm, "_load_gguf", lambda *a: pytest.fail("the cache was not used"))
        warm = smollm.load_smollm2()
        mp.setattr(smollm, "_load_gguf", real)
        yield cold, warm, cache
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_cached_weights_are_bit_identical(gguf_and_cached: tuple[Pair, Pair, Path]) -> None:
    (gguf_model, _), (cached_model, _), _ = gguf_and_cached
    assert cached_model.lm_head.weight is cached_model.get_input_embeddings().weight  # tied, as the GGUF's
    assert getattr(gguf_model, "hf_quantizer", None) is None and "quantization_config" not in gguf_model.config
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size", "num_hidden_layers"):
        assert getattr(gguf_model.config, name) == getattr(cached_model.config, name), name
    _assert_same(gguf_and_cached[0], gguf_and_cached[1])


@pytest.mark.slow
def test_cached_tokenizer_is_identical(gguf_and_cached: tuple[Pair, Pair, Path]) -> None:
    (_, gguf_tok), (_, cached_tok), _ = gguf_and_cached
    assert gguf_tok.get_vocab() == cached_tok.get_vocab() and len(cached_tok) == 49152
    for text in TEXTS:
        for kw in ({}, {"add_special_tokens": False}, {"split_special_tokens": True}):
            assert gguf_tok.encode(text, **kw) == cached_tok.encode(text, **kw), (text, kw)
        assert cached_tok.decode(cached_tok.encode(text)) == text
    chat = [{"role": "user", "content": "Hand me the tester."}]
    assert gguf_tok.apply_chat_template(chat, add_generation_prompt=True) == cached_tok.apply_chat_template(
        chat, add_generation_prompt=True
    )
    assert cached_tok.encode(TEXTS[1])[:3] == [smollm.BOS_TOKEN_ID, 4093, 198]  # <|im_start|> user \n


@pytest.mark.slow
def test_truncated_real_cache_is_rebuilt(
    gguf_and_cached: tuple[Pair, Pair, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cold, _, cache = gguf_and_cached
    [folder] = [p for p in (cache / smollm.CACHE_SUBDIR).iterdir() if p.is_dir()]
    os.truncate(folder / "model.safetensors", 1000)
    monkeypatch.setenv("PRG_CACHE_DIR", str(cache))
    monkeypatch.setattr(smollm, "_load_gguf", lambda *a: cold)  # the GGUF path itself is tested above
    with pytest.warns(SmolLMCacheWarning, match="model.safetensors has 1000 bytes"):
        smollm.load_smollm2()
    monkeypatch.setattr(smollm, "_load_gguf", lambda *a: pytest.fail("the rebuilt cache was not used"))
    _assert_same(cold, smollm.load_smollm2())
