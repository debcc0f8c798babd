"""``prg predict`` through the command line: text, JSON, overlay, JSONL batches, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prg.model.checkpoint import save_pretrained
from prg.model.prg_model import build_tiny_prg_model
from tests.cli_run import run_main

INTRINSICS = '{"fx": 300, "fy": 300, "cx": 40, "cy": 30}'


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    model = build_tiny_prg_model()
    model.config.max_new_tokens = 6
    save_pretrained(model, root / "ckpt")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(root / "scene.png")
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "other.png")
    Image.fromarray(np.full((60, 80), 700, np.uint16)).save(root / "depth.png")
    Image.fromarray(np.full((10, 10), 700, np.uint16)).save(root / "small_depth.png")
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    docs = root / "docs"
    docs.mkdir()
    (docs / "EP-SAF-004.md").write_text(
        "# EP-SAF-004 Safe isolation\n\n## 4 Testing\n\n4.2 Verify the absence of voltage with a tested detector.\n"
    )
    (root / "requests.jsonl").write_text(
        json.dumps({"image": "scene.png", "instruction": "Hand me the detector.", "depth": "depth.png",
                    "intrinsics": json.loads(INTRINSICS)}) + "\n\n"
        + json.dumps({"image": str(root / "other.png"), "instruction": "And now the screwdriver."}) + "\n"
    )  # fmt: skip
    (root / "bad_requests.jsonl").write_text('{"image": "scene.png", "instruction": "ok"}\n{"image": "scene.png"}\n')
    return {p.stem if p.is_file() else p.name: p for p in root.iterdir()} | {"root": root}


def call(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run ``prg ARGS`` in this process through the real entry point (its error handling included)."""
    return run_main(args, capsys, monkeypatch)


def test_predict_json_overlay_and_docs(files, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRG_CACHE_DIR", str(tmp_path / "cache"))
    overlay = tmp_path / "out" / "overlay.png"
    args = ["predict", "--image", str(files["scene"]), "--instruction", "Hand me the detector.",
            "--depth", str(files["depth"]), "--intrinsics", INTRINSICS, "--checkpoint", str(files["ckpt"]),
            "--docs", str(files["docs"]), "--embedder", "hashing", "--json", "--overlay", str(overlay)]  # fmt: skip
    code, out, err = call(args, capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    for key in ("answer", "citations", "grasps", "poses", "retrieved", "timings_ms"):
        assert key in result
    assert result["retrieved"][0]["doc_id"] == "EP-SAF-004" and result["retrieved"][0]["clause"] == "4.2"
    assert {"doc_id", "clause", "text"} <= set(result["retrieved"][0])
    assert len(result["poses"]) == len(result["grasps"])
    with Image.open(overlay) as im:
        assert im.width == 80 and im.height > 60  # the image plus its caption
    cached = list((tmp_path / "cache" / "indexes").iterdir())
    assert len(cached) == 1 and (cached[0] / "CURRENT").exists()
    code, out2, _ = call(args, capsys, monkeypatch)  # the second run reuses the cached index
    assert code == 0 and json.loads(out2)["retrieved"] == result["retrieved"]
    assert list((tmp_path / "cache" / "indexes").iterdir()) == cached


def test_predict_text_output(files, capsys, monkeypatch) -> None:
    args = ["predict", "-i", str(files["scene"]), "-t", "Hand me the detector.", "-c", str(files["ckpt"])]
    code, out, err = call(args, capsys, monkeypatch)
    assert code == 0, err
    assert out.startswith("answer:") and "time:" in out


def test_predict_requests_file_answers_in_input_order(files, capsys, monkeypatch) -> None:
    args = ["predict", "--requests", str(files["requests"]), "--checkpoint", str(files["ckpt"]), "--batch-size", "1"]
    code, out, err = call(args, capsys, monkeypatch)
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["instruction"] for x in lines] == ["Hand me the detector.", "And now the screwdriver."]
    assert lines[0]["image_size"] == [80, 60] and lines[1]["image_size"] == [50, 40]
    code, batched, _ = call([*args[:-2], "--batch-size", "8"], capsys, monkeypatch)
    assert code == 0
    assert [json.loads(x)["answer"] for x in batched.splitlines()] == [x["answer"] for x in lines]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "{broken}", "--instruction", "x"], "unreadable image"),
        (["--image", "{missing}", "--instruction", "x"], "no such image file"),
        (["--image", "{scene}", "--instruction", "  "], "the instruction is empty"),
        (["--image", "{scene}", "--instruction", "x", "--depth", "{small_depth}"], "depth is 10 x 10 but the image"),
        (["--image", "{scene}", "--instruction", "x", "--intrinsics", '{"fx": NaN, "fy": 1, "cx": 0, "cy": 0}'],
         "finite"),
        (["--image", "{scene}", "--instruction", "x", "--intrinsics", '{"fx": 0, "fy": 1, "cx": 0, "cy": 0}'],
         "focal lengths must be > 0"),
        (["--requests", "{bad_requests}"], "bad_requests.jsonl:2: a request needs 'image' and 'instruction'"),
        (["--image", "{scene}", "--instruction", "x", "--checkpoint", "{docs}"], "is not a PRG model checkpoint"),
        (["--image", "{scene}", "--instruction", "x", "--checkpoint", "{missing}"], "is not a PRG model checkpoint"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_without_traceback(files, capsys, monkeypatch, args: list[str], message: str) -> None:
    paths = {k: str(v) for k, v in files.items()} | {"missing": str(files["root"] / "missing.png")}
    argv = ["predict", *[paths.get(a[1:-1], a) if a.startswith("{") and a.endswith("}") else a for a in args]]
    if "--checkpoint" not in argv:
        argv += ["--checkpoint", str(files["ckpt"])]
    code, out, err = call(argv, capsys, monkeypatch)
    assert code != 0
    assert message in err, err
    assert "Traceback" not in out + err
    assert len([line for line in err.splitlines() if line.startswith("error")]) == 1


def test_no_checkpoint_names_what_to_pass(files, capsys, monkeypatch, tmp_path) -> None:
    # an install without the shipped checkpoint (a source tree without its weights)
    monkeypatch.setattr("prg.pipeline.SHIPPED_CHECKPOINT", tmp_path / "no-weights")
    code, _, err = call(["predict", "-i", str(files["scene"]), "-t", "x"], capsys, monkeypatch)
    assert code == 1 and "pass --checkpoint DIR" in err and "Traceback" not in err


def test_predict_as_a_user_runs_it(files) -> None:
    """One real subprocess: the installed entry point, its exit status and stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "prg.cli.main", "predict", "-i", str(files["scene"]), "-t", "Hand me the detector.",
         "-c", str(files["ckpt"]), "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["image_size"] == [80, 60]
