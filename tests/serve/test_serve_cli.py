"""``prg serve`` through the CLI, uvicorn replaced by a recorder: options reach the app's settings, bad ones
are refused before anything loads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.cli_run import run_main


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kw: Any) -> None:
        seen["app"], seen["kw"] = app, kw

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def test_options_reach_the_server_and_the_model_loads_after_start(
    served: dict[str, Any], serve_files: tuple[Path, Path], tmp_path: Path, capsys, monkeypatch
) -> None:
    ckpt, index = serve_files
    key = tmp_path / "key"
    key.write_text("0123456789abcdef-key\n")
    code, _, err = run_main(
        ["serve", "-c", str(ckpt), "--index", str(index), "--scenes", str(tmp_path), "--port", "9123",
         "--max-batch", "4", "--max-wait-ms", "3", "--max-body-mb", "2", "--api-key-file", str(key),
         "--cors-origin", "http://robot.local", "--k-docs", "1"],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert served["kw"]["port"] == 9123 and served["kw"]["host"] == "127.0.0.1"
    app = served["app"]
    settings = app.state.prg.settings
    assert (settings.max_batch, settings.max_wait_ms, settings.max_body_bytes) == (4, 3.0, 2 * 2**20)
    assert settings.api_key == "0123456789abcdef-key" and settings.cors_origins == ["http://robot.local"]
    with TestClient(app) as c:
        for _ in range(300):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        ready = c.get("/readyz").json()
        assert ready["ready"] and ready["k_docs"] == 1 and ready["max_batch"] == 4
        assert c.post("/v1/predict", files={"image": ("x", b"1")}).status_code == 401  # the key is required
        r = c.options("/v1/predict", headers={"Origin": "http://robot.local", "Access-Control-Request-Method": "POST"})
        assert r.headers.get("access-control-allow-origin") == "http://robot.local"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--index", "/nonexistent", "--docs", "/nonexistent"], "not both"),
        (["--index", "/nonexistent/idx"], "no such folder"),
        (["--api-key-file", "KEYFILE"], "at least 16 characters"),
        (["--api-key-file", "/nonexistent/key"], "--api-key-file"),
    ],
)
def test_bad_options_are_refused_before_loading(
    served: dict[str, Any], tmp_path: Path, capsys, monkeypatch, args: list[str], message: str
) -> None:
    (tmp_path / "key").write_text("short")
    args = [str(tmp_path / "key") if a == "KEYFILE" else a for a in args]
    code, out, err = run_main(["serve", *args], capsys, monkeypatch)
    assert code != 0 and message in out + err and "app" not in served


def test_a_public_address_without_a_key_warns(served: dict[str, Any], serve_files, capsys, monkeypatch) -> None:
    ckpt, index = serve_files
    code, _, err = run_main(["serve", "-c", str(ckpt), "--index", str(index), "--host", "0.0.0.0"], capsys, monkeypatch)
    assert code == 0 and "without --api-key-file" in err and served["kw"]["host"] == "0.0.0.0"
