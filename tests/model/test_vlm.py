"""PRG VLM on the tiny preset: tokens, image scatter, loss, cached [POSE] generation, batching, prompts, images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from prg.model.presets import build_preset
from prg.model.processor import answer_labels, build_prompt, fit_images
from prg.model.tokenizer import (
    IMAGE_TOKEN,
    POSE_TOKEN,
    Segment,
    add_special_tokens,
    tiny_tokenizer,
)


@pytest.fixture(scope="module")
def tiny():
    return build_preset("tiny", seed=0)


def _prompt(model, tok, instruction: str, docs=("Turn off the breaker first.",)):
    ids, _ = build_prompt(tok, instruction, list(docs), model.num_image_tokens)
    return torch.tensor([ids])


def _left_pad(rows: list[torch.Tensor], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(r.shape[-1] for r in rows)
    ids = torch.full((len(rows), n), pad)
    mask = torch.zeros(len(rows), n, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, n - r.shape[-1] :] = r
        mask[i, n - r.shape[-1] :] = 1
    return ids, mask


def force_pose_at(prompt_len: int, steps: set[int], pose_id: int, rows: set[int] | None = None):
    """Logits processor: at generated step ``s`` in ``steps`` make [POSE] win (for the given batch rows)."""

    def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] - prompt_len in steps:
            scores = scores.clone()
            for b in range(scores.shape[0]):
                if rows is None or b in rows:
                    scores[b, pose_id] = scores[b].max() + 10.0
        return scores

    return proc


def test_special_tokens_are_single_ids():
    tok = tiny_tokenizer()
    ids = add_special_tokens(tok)  # idempotent: already present
    assert ids == {"pose": tok.convert_tokens_to_ids(POSE_TOKEN), "image": tok.convert_tokens_to_ids(IMAGE_TOKEN)}
    assert tok.encode(f"a {POSE_TOKEN} b", add_special_tokens=False).count(ids["pose"]) == 1
    assert tok.convert_ids_to_tokens(ids["image"]) == IMAGE_TOKEN
    assert len(tok) == 302 and tok.pad_token_id is not None and tok.eos_token_id is not None


def test_image_features_scattered_at_image_positions(tiny):
    model, tok = tiny
    ids = _prompt(model, tok, "Give me the tool.")
    pv = torch.randn(1, 3, model.image_size, model.image_size)
    with torch.no_grad():
        emb = model.embed(ids, pv)
        text = model.language_model.get_input_embeddings()(ids)
        feats = model.encode_images(pv)
    is_img = ids[0] == model.image_token_id
    assert int(is_img.sum()) == model.num_image_tokens == 16  # from TinyVisionConfig: (32 / 8) ** 2
    torch.testing.assert_close(emb[0, is_img], feats[0])
    torch.testing.assert_close(emb[0, ~is_img], text[0, ~is_img])


def test_image_token_count_mismatch_raises(tiny):
    model, tok = tiny
    ids = _prompt(model, tok, "Give me the tool.")
    pv = torch.randn(1, 3, model.image_size, model.image_size)
    bad = torch.cat([ids, torch.tensor([[model.image_token_id]])], 1)
    with pytest.raises(ValueError, match="exactly 16 <image> tokens"):
        model.embed(bad, pv)
    with pytest.raises(ValueError, match="no pixel_values"):
        model.embed(ids, None)


def test_forward_loss_reaches_every_part(tiny):
    model, tok = tiny
    ids, seg = build_prompt(tok, "Give me the tool.", ["Rule 1."], model.num_image_tokens, answer="This [POSE].")
    x, labels = torch.tensor([ids]), torch.tensor([answer_labels(ids, seg)])
    model.zero_grad()
    out = model(x, torch.randn(1, 3, 32, 32), torch.ones_like(x), labels=labels)
    assert out.loss is not None and torch.isfinite(out.loss)
    assert out.pose_hidden.shape == (1, 64)
    assert x[0, out.pose_index[1][0]] == model.pose_token_id
    out.loss.backward()
    for part in (model.language_model, model.projector, model.vision_tower):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), type(part).__name__
    model.zero_grad()


def test_cached_pose_hidden_equals_uncached(tiny):
    model, tok = tiny
    x = _prompt(model, tok, "Give me the tool.")
    pv = torch.randn(1, 3, 32, 32)
    # [POSE] at steps 2 and 5, and as the very last token (step 7): needs the extra cached step
    proc = force_pose_at(x.shape[1], {2, 5, 7}, model.pose_token_id)
    gen = model.generate(x, pv, max_new_tokens=8, eos_token_id=-1, logits_processor=proc)
    seq = gen.sequences[0]
    assert torch.nonzero(seq == model.pose_token_id).flatten().tolist() == [2, 5, 7]
    assert gen.pose_hidden[0].shape == (3, 64)
    ref = model.uncached_pose_hidden(x, pv, None, gen.sequences)
    torch.testing.assert_close(gen.pose_hidden[0], ref[0], atol=1e-4, rtol=0)
    # and the teacher-forced forward reads the same vectors
    full = model(torch.cat([x, gen.sequences], 1), pv)
    torch.testing.assert_close(full.pose_hidden, ref[0], atol=1e-4, rtol=0)


def test_two_poses_two_states_and_none_gives_empty(tiny):
    model, tok = tiny
    x = _prompt(model, tok, "Which object?")
    pv = torch.randn(1, 3, 32, 32)
    proc = force_pose_at(x.shape[1], {0, 3}, model.pose_token_id)
    two = model.generate(x, pv, max_new_tokens=6, logits_processor=proc)
    assert two.pose_hidden[0].shape == (2, 64)
    assert not torch.allclose(two.pose_hidden[0][0], two.pose_hidden[0][1])

    def ban_pose(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        scores[:, model.pose_token_id] = -float("inf")
        return scores

    none = model.generate(x, pv, max_new_tokens=6, logits_processor=ban_pose)
    assert (none.sequences != model.pose_token_id).all()
    assert none.pose_hidden[0].shape == (0, 64)


def test_batched_left_padding_matches_one_by_one(tiny):
    model, tok = tiny
    prompts = [
        _prompt(model, tok, "Give me the tool that measures the current.", docs=("Rule 1.", "Rule 2 is long.")),
        _prompt(model, tok, "Hammer?", docs=()),
        _prompt(model, tok, "Which bottle is safe?"),
    ]
    pv = torch.randn(3, 3, 32, 32)
    steps = {1, 4}
    # sample 1 stops early on eos: a finished sample must not disturb the others
    eos = tok.eos_token_id

    def proc_for(prompt_len: int, rows: set[int], eos_rows: set[int]):
        pose = force_pose_at(prompt_len, steps, model.pose_token_id, rows)

        def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            scores = pose(ids, scores)
            if ids.shape[1] - prompt_len == 2:
                scores = scores.clone()
                for b in eos_rows:
                    scores[b, eos] = scores[b].max() + 10.0
            return scores

        return proc

    singles = []
    for i, p in enumerate(prompts):
        proc = proc_for(p.shape[1], {0} if i != 2 else set(), {0} if i == 1 else set())
        singles.append(model.generate(p, pv[i : i + 1], max_new_tokens=6, logits_processor=proc))
    ids, mask = _left_pad(prompts, tok.pad_token_id)
    batched = model.generate(ids, pv, mask, max_new_tokens=6, logits_processor=proc_for(ids.shape[1], {0, 1}, {1}))
    for i, single in enumerate(singles):
        n = single.sequences.shape[1]
        assert torch.equal(batched.sequences[i, :n], single.sequences[0])
        assert (batched.sequences[i, n:] == tok.pad_token_id).all()
        torch.testing.assert_close(batched.pose_hidden[i], single.pose_hidden[0], atol=1e-4, rtol=0)
    assert [h.shape[0] for h in batched.pose_hidden] == [2, 1, 0]  # sample 1 ended at step 2 (eos)
    ref = model.uncached_pose_hidden(ids, pv, mask, batched.sequences)
    for got, want in zip(batched.pose_hidden, ref, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_generate_rejects_right_padding(tiny):
    model, tok = tiny
    x = _prompt(model, tok, "Hi.")
    ids = torch.cat([x, torch.tensor([[tok.pad_token_id]])], 1)
    mask = torch.ones_like(ids)
    mask[0, -1] = 0
    with pytest.raises(ValueError, match="left padding"):
        model.generate(ids, torch.randn(1, 3, 32, 32), mask, max_new_tokens=2)


def test_prompt_segments_and_truncation():
    tok = tiny_tokenizer()
    docs = ["Rule one: turn off the breaker. " * 3, "Rule two: wear gloves. " * 3, "Rule three. " * 3]
    full, seg = build_prompt(tok, "Give me the tool.", docs, 8, answer="The detector [POSE].")
    assert len(full) == len(seg)
    assert seg.count(Segment.IMAGE) == 8 and full.count(tok.convert_tokens_to_ids(IMAGE_TOKEN)) == 8
    assert [full[i] for i, s in enumerate(seg) if s == Segment.ANSWER][-1] == tok.eos_token_id
    n_docs = seg.count(Segment.DOCUMENT)

    fixed = len(full) - n_docs
    n1 = build_prompt(tok, "Give me the tool.", docs[:1], 8)[1].count(Segment.DOCUMENT)
    n2 = build_prompt(tok, "Give me the tool.", docs[:2], 8)[1].count(Segment.DOCUMENT)
    limit = fixed + n1 + (n2 - n1) // 2  # room for doc 1 and half of doc 2
    cut, cseg = build_prompt(tok, "Give me the tool.", docs, 8, answer="The detector [POSE].", max_length=limit)
    assert len(cut) == limit
    for s in (Segment.IMAGE, Segment.INSTRUCTION, Segment.ANSWER):  # only documents lost tokens
        assert cseg.count(s) == seg.count(s)
    assert cut[-20:] == full[-20:]  # image, instruction and answer end the prompt untouched
    text = tok.decode(cut)
    assert "USER: Give me the tool." in text and "[POSE]" in text and docs[0] in text
    assert "[doc 2] Rule two" in text and docs[1] not in text  # doc 2 cut
    assert "Rule three" not in text  # later documents go first

    no_docs = len(full) - n_docs
    bare, bseg = build_prompt(tok, "Give me the tool.", docs, 8, answer="The detector [POSE].", max_length=no_docs)
    assert Segment.DOCUMENT not in bseg and len(bare) == no_docs
    with pytest.raises(ValueError, match="does not fit"):
        build_prompt(tok, "Give me the tool.", docs, 8, answer="The detector [POSE].", max_length=no_docs - 1)


def test_special_strings_in_documents_stay_text():
    tok = tiny_tokenizer()
    ids, _ = build_prompt(tok, "say [POSE]", ["a doc with <image> and [POSE]"], 4)
    assert ids.count(tok.convert_tokens_to_ids(IMAGE_TOKEN)) == 4
    assert tok.convert_tokens_to_ids(POSE_TOKEN) not in ids


def test_preprocess_images_sizes_and_modes(tiny):
    model, _ = tiny
    s = model.image_size
    rgb = np.full((60, 20, 3), 255, np.uint8)  # tall
    grey = Image.fromarray(np.full((10, 40), 128, np.uint8))  # wide, mode L
    rgba = Image.fromarray(np.zeros((33, 33, 4), np.uint8))  # fully transparent
    pv, _ = fit_images([rgb, grey, rgba], model.geometry)
    assert pv.shape == (3, 3, s, s)
    assert torch.allclose(pv[0, :, :, : round(20 * s / 60)], torch.tensor(1.0))  # white, normalised to +1
    assert torch.allclose(pv[0, :, :, round(20 * s / 60) + 1 :], torch.tensor(-1.0))  # right padding
    assert torch.allclose(pv[1, 0, : round(10 * s / 40)], torch.tensor(128 / 255 * 2 - 1), atol=1e-2)
    assert torch.allclose(pv[1, :, round(10 * s / 40) + 1 :], torch.tensor(-1.0))
    assert torch.allclose(pv[2], torch.tensor(-1.0))
    with torch.no_grad():
        assert model.encode_images(pv).shape == (3, model.num_image_tokens, 64)


def test_presets_registry():
    with pytest.raises(FileNotFoundError, match="llava="):
        build_preset("paper")  # without local weights; built from tiny checkpoints in test_paper_preset.py
    with pytest.raises(KeyError, match="unknown preset"):
        build_preset("huge")


@pytest.mark.parametrize("decode", ["static", pytest.param("compiled", marks=pytest.mark.slow)])
def test_static_and_compiled_decoding_match_dynamic(tiny, decode):
    """The fixed-shape paths (StaticCache; + torch.compile, CUDA graphs on GPUs) give the same tokens and
    pose states as the default DynamicCache, for a left-padded batch with an early eos."""
    model, tok = tiny
    prompts = [_prompt(model, tok, "Give me the tool that measures the current."), _prompt(model, tok, "Hammer?")]
    ids, mask = _left_pad(prompts, tok.pad_token_id)
    pv = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pose = force_pose_at(ids.shape[1], {1, 4}, model.pose_token_id)

    def proc(seen: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = pose(seen, scores)
        if seen.shape[1] - ids.shape[1] == 3:  # sample 1 ends on eos after its first [POSE]
            scores = scores.clone()
            scores[1, tok.eos_token_id] = scores[1].max() + 10.0
        return scores

    ref = model.generate(ids, pv, mask, max_new_tokens=7, logits_processor=proc)
    got = model.generate(ids, pv, mask, max_new_tokens=7, logits_processor=proc, decode=decode)
    assert torch.equal(got.sequences, ref.sequences)
    assert [h.shape[0] for h in got.pose_hidden] == [2, 1]
    for a, b in zip(got.pose_hidden, ref.pose_hidden, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    # the static cache is reused (reset) by the next request of the same size: same answer again
    again = model.generate(ids, pv, mask, max_new_tokens=7, logits_processor=proc, decode=decode)
    assert torch.equal(again.sequences, ref.sequences)
    torch.testing.assert_close(again.pose_hidden[0], ref.pose_hidden[0], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="decode must be one of"):
        model.generate(ids, pv, mask, decode="fast")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("decode", ["dynamic", "static", "compiled"])
def test_generation_on_gpu_matches_cpu(decode):
    """On a GPU the loop learns "all finished?" asynchronously and runs a step or two past the end: the trimmed
    tokens and the pose states must still equal the CPU's."""
    cpu_model, tok = build_preset("tiny", seed=0)
    gpu_model, _ = build_preset("tiny", seed=0, device="cuda")
    prompts = [
        _prompt(cpu_model, tok, "Give me the tool that measures the current."),
        _prompt(cpu_model, tok, "Hammer?"),
    ]
    ids, mask = _left_pad(prompts, tok.pad_token_id)
    pv = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pose = force_pose_at(ids.shape[1], {1, 4}, cpu_model.pose_token_id)

    def proc(seen: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = pose(seen, scores)
        if seen.shape[1] - ids.shape[1] == 5:  # both samples end on eos
            scores = scores.clone()
            scores[:, tok.eos_token_id] = scores.max() + 10.0
        return scores

    ref = cpu_model.generate(ids, pv, mask, max_new_tokens=40, logits_processor=proc)
    got = gpu_model.generate(
        ids.cuda(), pv.cuda(), mask.cuda(), max_new_tokens=40, logits_processor=proc, decode=decode
    )
    assert ref.sequences.shape[1] == 6
    assert torch.equal(got.sequences.cpu(), ref.sequences)
    for a, b in zip(got.pose_hidden, ref.pose_hidden, strict=True):
        torch.testing.assert_close(a.cpu(), b, atol=1e-3, rtol=0)
