"""``prg chat``: the session (turns, history, retrieval of follow-ups, stopping, commands, transcripts) and the
command line driven through stdin, in-process and as a user runs it (a subprocess, Ctrl-C included)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prg.model.checkpoint import save_pretrained
from prg.model.prg_model import build_tiny_prg_model
from prg.model.processor import PRGProcessor
from prg.pipeline import PRGInputError, PRGPipeline, PRGResult
from prg.serve.chat import COMMANDS, ChatSession, TurnStopped
from tests.cli_run import run_main
from tests.test_pipeline import forced, write_docs_index

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INTRINSICS = '{"fx": 300, "fy": 300, "cx": 40, "cy": 30}'
ANSWER = "Per EP-SAF-004 §4.2 use the detector [POSE]."


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat")
    write_docs_index(root)
    # seeded: the random weights do not depend on the tests run before
    torch.manual_seed(0)
    model = build_tiny_prg_model()
    model.config.max_new_tokens = 40  # room for the forced answers
    save_pretrained(model, root / "ckpt")
    model.config.max_new_tokens = 900  # a turn long enough to be stopped (random weights: no eos before that)
    save_pretrained(model, root / "long_ckpt")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(root / "scene.png")
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "other.png")
    Image.fromarray(np.full((60, 80), 700, np.uint16)).save(root / "depth.png")
    other_docs = root / "other_docs"
    other_docs.mkdir()
    (other_docs / "ME-TOOL-001.md").write_text(
        "# ME-TOOL-001 Torque\n\n## 2 Bolts\n\n2.1 Tighten flange bolts with a calibrated torque wrench.\n"
    )
    return {p.stem if p.is_file() else p.name: p for p in root.iterdir()} | {"root": root}


@pytest.fixture(scope="module")
def pipeline(files: dict[str, Path]) -> PRGPipeline:
    pipe = PRGPipeline.from_pretrained(files["ckpt"], index=files["index"], k_docs=2)
    yield pipe
    pipe.close()


def force(monkeypatch: pytest.MonkeyPatch, tokenizer, *answers: str) -> None:
    """Make the model say ``answers`` in turn, one per generation (it runs on the session's worker thread)."""
    queue = list(answers)
    original = PRGPipeline.batch

    def batch(self, requests, **kw):
        text = queue.pop(0) if len(queue) > 1 else queue[0]
        return original(self, requests, logits_processor=forced(tokenizer, text), **kw)

    monkeypatch.setattr(PRGPipeline, "batch", batch)


def prompts_seen(monkeypatch: pytest.MonkeyPatch, tokenizer) -> list[str]:
    """The decoded prompt of every generation from now on."""
    seen: list[str] = []
    original = PRGProcessor.encode_prompts

    def encode(self, *args, **kw):
        batch = original(self, *args, **kw)
        rows = zip(batch["input_ids"], batch["attention_mask"], strict=True)
        seen.extend(tokenizer.decode(ids[mask.bool()]) for ids, mask in rows)
        return batch

    monkeypatch.setattr(PRGProcessor, "encode_prompts", encode)
    return seen


def session_for(pipeline: PRGPipeline, files: dict[str, Path], tmp_path: Path, **kw) -> ChatSession:
    s = ChatSession(pipeline, overlay=tmp_path / "overlay.png", **kw)
    s.set_image(files["scene"])
    return s


def test_a_turn_streams_the_answer_keeps_the_turn_and_draws_its_grasps(pipeline, files, tmp_path, monkeypatch):
    force(monkeypatch, pipeline.model.tokenizer, ANSWER)
    session = session_for(pipeline, files, tmp_path)
    events = list(session.ask("The breaker is off; I must touch the busbar."))
    kinds = [e.kind for e in events]
    assert kinds[0] == "retrieved" and kinds[-1] == "result" and set(kinds[1:-1]) == {"token"}
    assert len(kinds) > 4  # word by word, not all at the end
    res = events[-1].result
    assert "".join(e.text for e in events if e.kind == "token") == res.answer == ANSWER
    assert [c.id for c in events[0].documents] == [c.id for c in res.retrieved]
    assert res.retrieved[0].doc_id == "EP-SAF-004" and [c.id for c in res.citations] == ["EP-SAF-004 §4.2"]
    assert res.pose_count == 1 and res.grasps[0] and res.poses == []  # no depth yet: no 6-DoF pose
    assert res.timings_ms["retrieval"] > 0 and res.timings_ms["total"] >= res.timings_ms["retrieval"]
    (turn,) = session.turns
    assert turn.answer == ANSWER and turn.image == str(files["scene"])
    assert turn.overlay == str(tmp_path / "overlay.png")
    with Image.open(turn.overlay) as im:
        assert im.width == 80 and im.height > 60  # the scene and the caption under it


def test_a_follow_up_carries_the_conversation_and_retrieves_with_the_previous_question(
    pipeline, files, tmp_path, monkeypatch
):
    tok = pipeline.model.tokenizer
    force(monkeypatch, tok, "Use the detector [POSE].", "Prove it on a live source.", "Yes.", "Fine.")
    prompts = prompts_seen(monkeypatch, tok)
    queries: list[str] = []
    original = PRGPipeline.retrieve
    monkeypatch.setattr(PRGPipeline, "retrieve", lambda self, q, *a: queries.append(q) or original(self, q, *a))
    session = session_for(pipeline, files, tmp_path)
    list(session.ask("I must touch the busbar."))
    *_, last = session.ask("And after that?")
    assert queries == ["I must touch the busbar.", "And after that?\nI must touch the busbar."]
    assert last.result.retrieved[0].doc_id == "EP-SAF-004"  # the busbar rule, though the follow-up names none
    assert prompts[0].count("USER:") == 1 and prompts[1].count("USER:") == 2  # the first turn had no history
    before = prompts[1].rsplit("And after that?", 1)[0]
    assert "I must touch the busbar." in before and "Use the detector [POSE]." in before
    assert session.history() == [("I must touch the busbar.", "Use the detector [POSE]."),
                                 ("And after that?", "Prove it on a live source.")]  # fmt: skip
    *_, last = session.ask("Both times?")  # a follow-up of a follow-up still finds the busbar rule
    assert queries[2] == "Both times?\nAnd after that?\nI must touch the busbar."
    assert last.result.retrieved[0].doc_id == "EP-SAF-004" and prompts[2].count("USER:") == 3
    list(session.ask("Really?"))
    assert queries[3] == "Really?\nBoth times?\nAnd after that?"  # the two questions before it, newest first
    assert session.command("/reset") == "forgot 4 earlier turn(s); the image and documents stay"
    list(session.ask("Carry the acid."))
    assert prompts[4].count("USER:") == 1 and queries[-1] == "Carry the acid."


def test_a_long_conversation_is_cut_in_the_documents_first(pipeline, files, tmp_path, monkeypatch):
    tok = pipeline.model.tokenizer
    force(monkeypatch, tok, "Use the detector [POSE] as the rule says.")
    prompts = prompts_seen(monkeypatch, tok)
    session = session_for(pipeline, files, tmp_path)
    list(session.ask("I must touch the busbar."))
    full = len(tok.encode(prompts[0], add_special_tokens=False))
    monkeypatch.setattr(pipeline.model.config, "max_prompt_length", full + 8)  # less than the turn adds
    list(session.ask("And after that?"))
    assert "USER: I must touch the busbar.\nASSISTANT: Use the detector [POSE] as the rule says." in prompts[1]
    documents = [len(tok.encode(p.split("<image>")[0], add_special_tokens=False)) for p in prompts]
    assert documents[1] < documents[0]  # the documents gave way to the earlier turn
    assert session.turns[0].documents_kept == 1.0 and 0 < session.turns[1].documents_kept < 1  # and it says so
    assert len(tok.encode(prompts[1], add_special_tokens=False)) <= full + 8


def test_stopping_a_turn_ends_generation_at_once_and_keeps_nothing(pipeline, files, tmp_path, monkeypatch):
    steps = {"n": 0}
    eos = pipeline.model.tokenizer.eos_token_id

    def never_stop(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        steps["n"] += 1
        scores[:, eos] = -1e9
        return scores

    original = PRGPipeline.batch
    monkeypatch.setattr(
        PRGPipeline, "batch", lambda self, r, **kw: original(self, r, logits_processor=never_stop, **kw)
    )
    monkeypatch.setattr(pipeline.config, "max_new_tokens", 500)
    session = session_for(pipeline, files, tmp_path)
    events = session.ask("I must touch the busbar.")
    assert next(events).kind == "retrieved" and next(events).kind == "token"
    at_first_word = steps["n"]
    events.close()  # the reader lets go (what Ctrl-C does in prg chat)
    assert session._worker is not None and not session._worker.is_alive()
    assert steps["n"] - at_first_word < 50 and steps["n"] < 500  # stopped a few steps after, not at the end
    assert session.turns == []
    events = session.ask("I must touch the busbar.")
    next(events), next(events)
    session.cancel()  # from elsewhere: a signal handler, a server
    with pytest.raises(TurnStopped):
        list(events)
    assert session.turns == []
    monkeypatch.setattr(PRGPipeline, "batch", original)
    monkeypatch.setattr(pipeline.config, "max_new_tokens", None)
    *_, last = session.ask("I must touch the busbar.")  # the model is free again
    assert last.kind == "result" and len(session.turns) == 1


def test_commands_change_the_inputs_and_bad_ones_leave_the_session_as_it_was(pipeline, files, tmp_path):
    session = ChatSession(pipeline, overlay=None)
    with pytest.raises(PRGInputError, match="no image yet"):
        next(session.ask("Hand me the detector."))
    help_text = session.command("/help")
    assert all(c.split()[0] in help_text for c in COMMANDS)
    with pytest.raises(PRGInputError, match="no such image file"):
        session.command(f"/image {files['root'] / 'missing.png'}")
    assert session.image is None
    assert session.command(f'/image "{files["scene"]}"').endswith("(80 x 60 pixels)")  # quotes dropped
    with pytest.raises(PRGInputError, match="usage: /image PATH"):
        session.command("/image")
    session.command(f"/image {files['other']}")
    with pytest.raises(PRGInputError, match="depth is 80 x 60 but the image is 50 x 40"):
        session.command(f"/depth {files['depth']}")
    session.command(f"/image {files['scene']}")
    assert "poses also need /intrinsics" in session.command(f"/depth {files['depth']}")
    with pytest.raises(PRGInputError, match="neither a JSON file"):
        session.command("/intrinsics fx=300")
    assert session.intrinsics is None
    assert session.command(f"/intrinsics {INTRINSICS}") == "intrinsics: fx=300 fy=300 cx=40 cy=30"
    assert "the depth was the old image's" in session.command(f"/image {files['other']}")
    assert session.depth is None and session.intrinsics is not None  # one camera, another picture
    assert session.command("/depth") == "no depth: grasps in pixels only"
    with pytest.raises(PRGInputError, match="unknown command /frobnicate"):
        session.command("/frobnicate now")
    assert not session.quit_requested and session.command("/QUIT") == "bye" and session.quit_requested


def test_save_writes_the_transcript_with_every_result(pipeline, files, tmp_path, monkeypatch):
    force(monkeypatch, pipeline.model.tokenizer, ANSWER)
    session = session_for(pipeline, files, tmp_path, checkpoint=str(files["ckpt"]), documents="docs")
    session.command(f"/depth {files['depth']}")
    session.command(f"/intrinsics {INTRINSICS}")
    list(session.ask("I must touch the busbar."))
    assert session.command(f"/save {tmp_path / 't' / 'chat.json'}").startswith("saved 1 turn(s) to")
    data = json.loads((tmp_path / "t" / "chat.json").read_text())
    assert data["checkpoint"] == str(files["ckpt"]) and data["documents"] == "docs"
    (turn,) = data["turns"]
    assert turn["instruction"] == "I must touch the busbar." and turn["depth"] == str(files["depth"])
    assert PRGResult.model_validate(turn["result"]) == session.turns[0].result
    assert turn["result"]["poses"][0]["pose"]["position"]["z"] == pytest.approx(0.7, abs=1e-3)  # depth + intrinsics
    session.command(f"/save {tmp_path / 'chat.md'}")
    md = (tmp_path / "chat.md").read_text()
    assert "## 1. I must touch the busbar." in md and f"**PRG:** {ANSWER}" in md
    assert "- cites **EP-SAF-004 §4.2**: 4.2 Before touching a busbar" in md and "- grasp 1.1: x=" in md
    with pytest.raises(PRGInputError, match="is a folder"):
        session.command(f"/save {tmp_path}")


def test_docs_switches_the_documents(files, tmp_path, monkeypatch):
    monkeypatch.setenv("PRG_CACHE_DIR", str(tmp_path / "cache"))
    pipe = PRGPipeline.from_pretrained(files["ckpt"], index=files["index"], k_docs=2)
    session = ChatSession(pipe, overlay=None, embedder="hashing")
    session.set_image(files["scene"])
    with pytest.raises(PRGInputError, match="no such documents folder"):
        session.command(f"/docs {tmp_path / 'nothing'}")
    assert "documents:" in session.command(f"/docs {files['other_docs']}")
    first = next(session.ask("Tighten the bolts."))
    assert {c.doc_id for c in first.documents} == {"ME-TOOL-001"}
    session.close()


# -- the command line -----------------------------------------------------------------------------------------


def chat(files, capsys, monkeypatch, stdin: str, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    argv = ["chat", "--checkpoint", str(files["ckpt"]), *args]
    return run_main(argv, capsys, monkeypatch)


def test_chat_reads_questions_and_commands_from_stdin(files, capsys, monkeypatch, tmp_path, pipeline):
    force(monkeypatch, pipeline.model.tokenizer, ANSWER, "Then prove it\x1b[2J [POSE].")  # ESC: clear screen
    transcript = tmp_path / "chat.json"
    stdin = (f"/image {files['root'] / 'missing.png'}\nHand me the detector.\n/image {files['scene']}\n"
             f"I must touch the busbar.\n\nAnd after that?\n/save {transcript}\n/quit\nNever asked.\n")  # fmt: skip
    overlay = tmp_path / "o" / "turn-{turn}.png"
    code, out, err = chat(files, capsys, monkeypatch, stdin, "--index", str(files["index"]), "--overlay", str(overlay))
    assert code == 0, err
    assert "no such image file" in err and "no image yet: give one with /image PATH" in err  # and it went on
    assert out.count("retrieved: EP-SAF-004 §") == 2
    assert f"answer: {ANSWER}\n" in out and "answer: Then prove it\ufffd[2J [POSE].\n" in out  # shown, not obeyed
    assert "cites EP-SAF-004 §4.2: 4.2 Before touching a busbar" in out and "grasp 1.1: x=" in out
    assert f"overlay: {tmp_path / 'o' / 'turn-1.png'}" in out and (tmp_path / "o" / "turn-2.png").is_file()
    assert "> Never asked." not in out and "\x1b[" not in out + err  # not a terminal: plain text
    assert [t["answer"] for t in json.loads(transcript.read_text())["turns"]] == [
        ANSWER,
        "Then prove it\x1b[2J [POSE].",
    ]


def test_chat_ends_cleanly_at_eof_and_checks_its_arguments_first(files, capsys, monkeypatch, tmp_path):
    code, out, err = chat(files, capsys, monkeypatch, "", "--no-docs", "--image", str(files["scene"]))
    assert code == 0 and out == "", err
    code, _, err = chat(files, capsys, monkeypatch, "", "--no-docs", "--image", str(tmp_path / "missing.png"))
    assert code == 1 and "no such image file" in err and "Traceback" not in err
    code, _, err = chat(files, capsys, monkeypatch, "", "--no-docs", "--index", str(files["index"]))
    assert code == 2 and "give one of --index, --docs and --no-docs" in err


def test_chat_without_documents_uses_the_demo_regulations(files, capsys, monkeypatch, tmp_path):
    calls = []

    def demo_data(out_dir=None, **kw):
        calls.append(out_dir)
        return tmp_path / "demo" / "dataset", files["index"]

    monkeypatch.setattr("prg.demo.prepare_demo_data", demo_data)
    code, out, err = chat(
        files, capsys, monkeypatch, "Hand me the detector.\n", "--image", str(files["scene"]), "--no-overlay"
    )
    assert code == 0, err
    assert calls == [None]  # the user cache's demo folder
    assert "demo's regulations" in err and "retrieved: EP-SAF-004" in out


def test_ctrl_c_stops_the_turn_and_the_session_goes_on(files, tmp_path):
    """As a user runs it: a subprocess with piped stdin (no terminal), SIGINT while the answer is streamed."""
    transcript = tmp_path / "t.json"
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "PRG_DEBUG")}
    (tmp_path / "stdin.txt").write_text(f"I must touch the busbar.\n/save {transcript}\n")  # then EOF: the end
    with open(tmp_path / "stdin.txt", "rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prg.cli.main", "chat", "-c", str(files["long_ckpt"]), "--no-docs",
             "--image", str(files["scene"]), "--overlay", str(tmp_path / "o.png")],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            # a user's terminal delivers Ctrl-C; a test run started in the background (`make test &`) ignores
            # SIGINT, and an ignored signal stays ignored across exec: the child then finished the turn and kept it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 240
    # "retrieved:" is printed as generation starts. Waiting for "answer: " instead raced: the streamer holds text
    # back until a space, and the random model's 900 tokens (1.6 s on an idle machine) may have none before the end.
    while b"retrieved: " not in seen and time.monotonic() < deadline:
        chunk = proc.stdout.read1(4096)
        if not chunk:
            break
        seen += chunk
    assert b"retrieved: " in seen, seen
    # "retrieved:" is flushed as generation starts (it once waited for the first word, which a random model may
    # not produce before its 900 tokens end: then the signal came after the turn and it was kept)
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    out = (seen + rest).decode()
    assert proc.returncode == 0, err.decode()
    # "(stopped: this turn is not kept)" once text was shown, "(stopped)" before: either way the turn is dropped
    assert "(stopped" in out and time.monotonic() - stopped_at < 30
    assert json.loads(transcript.read_text())["turns"] == []  # and the /save after it ran
    assert "\x1b[" not in out + err.decode() and "Traceback" not in err.decode()
