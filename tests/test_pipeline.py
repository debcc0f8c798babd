"""PRGPipeline on the tiny preset: retrieval -> prompt -> model -> resolved citations, grasps, poses, timings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prg.model.checkpoint import save_pretrained
from prg.model.prg_model import build_tiny_prg_model
from prg.pipeline import (
    CitationOut,
    PRGInputError,
    PRGPipeline,
    PRGRequest,
    PRGResult,
    read_depth,
    read_image,
    read_intrinsics,
    resolve_citations,
)
from prg.retrieval.build import build_index

DOCS = {
    "EP-SAF-004.md": "# EP-SAF-004 Safe isolation\n\n## 4 Testing\n\n4.2 Before touching a busbar, verify the absence "
    "of voltage with a tested voltage detector.\n\n4.3 Prove the detector on a known live source before and after.\n",
    "CH-LAB-002.md": "# CH-LAB-002 Acids\n\n## 3 Carrying\n\n3.1 Carry acid bottles in a bottle carrier, never by "
    "the neck.\n\n3.2 Wear a face shield when decanting concentrated acids.\n",
}
INTRINSICS = {"fx": 300.0, "fy": 300.0, "cx": 40.0, "cy": 30.0}


def write_docs_index(root: Path) -> Path:
    """:data:`DOCS` as a documents folder in ``root/docs`` and its hashing-embedder index; returns the index."""
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    build_index([docs], root / "index", embedder="hashing")
    return root / "index"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pipeline")
    index = write_docs_index(root)
    save_pretrained(build_tiny_prg_model(), root / "ckpt")
    return root / "ckpt", index


@pytest.fixture(scope="module")
def pipeline(setup: tuple[Path, Path]) -> PRGPipeline:
    ckpt, index = setup
    pipe = PRGPipeline.from_pretrained(ckpt, index=index, k_docs=3)
    pipe.model.config.max_new_tokens = 80
    yield pipe
    pipe.close()


def scene(h: int = 60, w: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    depth = np.full((h, w), 0.7, np.float32)
    depth[10:20, 10:20] = np.nan  # a hole the pose lifting must cope with
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), depth


def forced(tokenizer, text: str) -> object:
    """Logits processor that makes the model say ``text`` (``[POSE]`` as one token), then stop."""
    plan = [*tokenizer.encode(" " + text, add_special_tokens=False, split_special_tokens=False)]
    plan.append(tokenizer.eos_token_id)
    step = {"i": 0}

    def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        i = step["i"]
        step["i"] += 1
        if i >= len(plan):
            return scores
        scores = torch.full_like(scores, -1e9)
        scores[:, plan[i]] = 0.0
        return scores

    return proc


def test_pipeline_returns_a_valid_result_whose_citations_resolve(pipeline: PRGPipeline) -> None:
    image, depth = scene()
    first = pipeline(image, "The breaker is off; I must touch the busbar.", depth, INTRINSICS)
    assert first.retrieved and first.retrieved[0].doc_id == "EP-SAF-004"  # the rule about busbars
    label = first.retrieved[0].id
    assert label == f"EP-SAF-004 §{first.retrieved[0].clause}"
    answer = f"Per {label} use the detector [POSE]. See also XX-NOPE-1 §9.9."
    proc = forced(pipeline.model.tokenizer, answer)
    result = pipeline(image, "The breaker is off; I must touch the busbar.", depth, INTRINSICS, logits_processor=proc)
    assert result.answer == answer
    assert [c.id for c in result.citations] == [label] and result.citations[0].cited
    assert result.citations[0].text == first.retrieved[0].text
    assert result.unresolved_citations == ["XX-NOPE-1 §9.9"]  # cited, never retrieved: flagged
    assert [c.cited for c in result.retrieved] == [c.id == label for c in result.retrieved]
    assert result.pose_count == 1 and 1 <= len(result.grasps[0]) <= pipeline.config.k_grasps
    g = result.grasps[0][0]
    assert 0 <= g.x < 80 and 0 <= g.y < 60 and g.width > 0 and g.score > 0
    (pose,) = result.poses
    assert pose is not None and pose.header["frame_id"]
    assert pose.pose["position"]["z"] == pytest.approx(0.7, abs=1e-3) or np.isnan(depth[int(g.y), int(g.x)])
    assert set(pose.pose["orientation"]) == {"x", "y", "z", "w"} and pose.width > 0
    for stage in ("retrieval", "model_prompt", "model_generate", "total"):
        assert result.timings_ms[stage] >= 0
    assert PRGResult.model_validate_json(result.model_dump_json()) == result  # JSON round trip


def test_no_poses_without_depth_and_no_documents_without_an_index(setup: tuple[Path, Path]) -> None:
    ckpt, _ = setup
    pipe = PRGPipeline.from_pretrained(ckpt)
    pipe.model.config.max_new_tokens = 40
    image, _ = scene()
    proc = forced(pipe.model.tokenizer, "Take it [POSE] and it [POSE]")
    r = pipe(image, "Hand me the detector.", logits_processor=proc)
    assert r.retrieved == [] and r.citations == []
    assert r.pose_count == 2 and r.poses == []


def test_batch_keeps_input_order_and_matches_single_calls(pipeline: PRGPipeline) -> None:
    reqs = [
        PRGRequest(scene(60, 80, 1)[0], "I need to carry the acid to the fume hood."),
        PRGRequest(scene(45, 90, 2)[0], "The breaker is off; I must touch the busbar."),
    ]
    batch = pipeline.batch(reqs)
    assert [r.instruction for r in batch] == [q.instruction for q in reqs]
    assert batch[0].retrieved[0].doc_id == "CH-LAB-002" and batch[1].retrieved[0].doc_id == "EP-SAF-004"
    for req, res in zip(reqs, batch, strict=True):
        single = pipeline(req.image, req.instruction)
        assert single.answer == res.answer and single.image_size == res.image_size
        assert [c.id for c in single.retrieved] == [c.id for c in res.retrieved]


def test_resolve_citations_by_label_by_document_and_by_position() -> None:
    docs = [
        CitationOut(id="A-B-1 §2.1", doc_id="A-B-1", clause="2.1", text="x", rank=1, score=1.0),
        CitationOut(id="C-D-7 §3", doc_id="C-D-7", clause="3", text="y", rank=2, score=0.5),
        CitationOut(id="E-F-2", doc_id="E-F-2", text="z", rank=3, score=0.1),
    ]
    cited, bad = resolve_citations("C-D-7 §3 says so, and A-B-1 §2.1 too; E-F-2 agrees; Q-Q-9 §1 does not exist", docs)
    assert [c.id for c in cited] == ["A-B-1 §2.1", "C-D-7 §3", "E-F-2"] and all(c.cited for c in cited)
    assert bad == ["Q-Q-9 §1"]
    cited, bad = resolve_citations("As [doc 2] states.", docs)
    assert [c.id for c in cited] == ["C-D-7 §3"] and bad == []
    cited, bad = resolve_citations("A-B-1 §9 is not what was retrieved", docs)
    assert cited == [] and bad == ["A-B-1 §9"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instruction": "   "}, "instruction is empty"),
        ({"image": np.zeros((0, 5, 3), np.uint8)}, "image"),
        ({"image": np.zeros((8, 8, 3), np.float32)}, "uint8"),
        ({"depth": np.ones((10, 10), np.float32)}, "depth is 10 x 10 but the image is 80 x 60"),
        ({"intrinsics": {"fx": float("nan"), "fy": 1.0, "cx": 0.0, "cy": 0.0}}, "finite"),
        ({"intrinsics": {"fx": 0.0, "fy": 1.0, "cx": 0.0, "cy": 0.0}}, "focal lengths must be > 0"),
        ({"intrinsics": {"fx": 1.0}}, "missing"),
    ],
)
def test_bad_requests_name_the_problem(pipeline: PRGPipeline, kwargs: dict, message: str) -> None:
    image, depth = scene()
    args = {"image": image, "instruction": "Hand me the detector.", "depth": depth, "intrinsics": INTRINSICS} | kwargs
    with pytest.raises(PRGInputError, match=message):
        pipeline(**args)


def test_file_readers(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((6, 9, 4), np.uint8)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").shape == (6, 9, 3)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(PRGInputError, match="unreadable image"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(PRGInputError, match="no such image"):
        read_image(tmp_path / "missing.png")
    mm = np.array([[0, 700], [1500, 65535]], np.uint16)
    Image.fromarray(mm).save(tmp_path / "d.png")
    d = read_depth(tmp_path / "d.png")
    assert np.isnan(d[0, 0]) and d[0, 1] == pytest.approx(0.7) and d[1, 0] == pytest.approx(1.5)
    np.save(tmp_path / "d.npy", np.array([[0.5, np.inf]], np.float32))
    d = read_depth(tmp_path / "d.npy")
    assert d[0, 0] == 0.5 and np.isnan(d[0, 1])
    assert read_intrinsics('{"fx": 2, "fy": 3, "cx": 1, "cy": 1}').fy == 3.0
    (tmp_path / "k.json").write_text('{"K": [[5, 0, 1], [0, 6, 2], [0, 0, 1]]}')
    assert read_intrinsics(tmp_path / "k.json").fx == 5.0
    with pytest.raises(PRGInputError, match="focal"):
        read_intrinsics('{"fx": -1, "fy": 3, "cx": 1, "cy": 1}')
    with pytest.raises(PRGInputError, match="neither a JSON file"):
        read_intrinsics("fx=1")


def test_stream_yields_retrieved_then_the_answer_piece_by_piece_then_the_result(
    pipeline: PRGPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, depth = scene()
    instruction = "The breaker is off; I must touch the busbar."
    answer = "Per EP-SAF-004 use the tested voltage detector [POSE] and prove it first."
    proc = forced(pipeline.model.tokenizer, answer)
    whole = pipeline(image, instruction, depth, INTRINSICS, logits_processor=forced(pipeline.model.tokenizer, answer))
    from transformers import TextIteratorStreamer

    # the hook behind stream(): a streamer per request, fed only while that request runs
    streamers = [TextIteratorStreamer(pipeline.model.tokenizer, skip_special_tokens=False) for _ in range(2)]
    reqs = [PRGRequest(image, instruction), PRGRequest(scene(40, 50, 3)[0], "Carry the acid.")]
    out = pipeline.batch(reqs, streamers=streamers, logits_processor=proc)
    assert "".join(streamers[0]).strip() == out[0].answer == answer
    assert "".join(streamers[1]).strip() == out[1].answer
    original = PRGPipeline.batch

    def with_forced(self, requests, **kw):  # stream() runs batch() on its worker thread
        return original(self, requests, logits_processor=forced(pipeline.model.tokenizer, answer), **kw)

    monkeypatch.setattr(PRGPipeline, "batch", with_forced)
    events = list(pipeline.stream(image, instruction, depth, INTRINSICS))
    kinds = [e.kind for e in events]
    assert kinds[0] == "retrieved" and kinds[-1] == "result" and set(kinds[1:-1]) == {"token"}
    assert len(kinds) > 4  # the answer came in several pieces, not at the end
    assert [c.id for c in events[0].documents] == [c.id for c in whole.retrieved]
    text = "".join(e.text for e in events if e.kind == "token")
    res = events[-1].result
    assert text == res.answer == whole.answer
    assert res.grasps == whole.grasps and res.poses == whole.poses and res.timings_ms["retrieval"] >= 0


def test_a_cancelled_streamer_stops_its_sample_and_the_batch_goes_on(pipeline: PRGPipeline) -> None:
    from transformers import TextIteratorStreamer

    image, _ = scene()
    answer = "Per EP-SAF-004 use the tested voltage detector [POSE] and prove it first."
    streamers = [TextIteratorStreamer(pipeline.model.tokenizer, skip_special_tokens=False) for _ in range(2)]
    streamers[1].cancelled = True  # type: ignore[attr-defined]  # its client left before the first token
    reqs = [PRGRequest(image, "The breaker is off."), PRGRequest(image, "The breaker is off.")]
    out = pipeline.batch(reqs, streamers=streamers, logits_processor=forced(pipeline.model.tokenizer, answer))
    assert out[0].answer == answer and out[0].grasps  # the other request is answered in full
    assert out[1].answer == "" and not out[1].grasps  # stopped before its first token
    assert "".join(streamers[1]) == ""  # and its streamer was ended, so a reader does not hang


def test_stream_checks_the_request_before_yielding_and_raises_worker_errors(
    pipeline: PRGPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PRGInputError, match="instruction is empty"):
        next(pipeline.stream(scene()[0], "  "))

    def broken(self, *args):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(PRGPipeline, "_batch", broken)
    events = pipeline.stream(scene()[0], "Carry the acid.")
    assert next(events).kind == "retrieved"
    with pytest.raises(RuntimeError, match="out of memory"):
        list(events)  # batch() ended the streamer although generation failed: no hang
