"""The HTTP API on the tiny preset, in process (FastAPI's TestClient): the contract, streaming, limits, errors."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from prg.pipeline import PRGResult
from prg.serve.app import ServeSettings, create_app
from tests.serve.conftest import FORCED, INTRINSICS, ForcedPipeline, png_bomb, png_bytes, scene


@pytest.fixture(scope="module")
def client(forced_pipeline: ForcedPipeline) -> Iterator[TestClient]:
    app = create_app(forced_pipeline, ServeSettings(max_wait_ms=5, max_instruction_chars=500))
    with TestClient(app) as c:
        yield c


def multipart(instruction: str = "The breaker is off; I must touch the busbar.", depth: bool = True, **opts: Any):
    rgb, d = scene()
    files: dict[str, Any] = {"image": ("scene.png", rgb, "image/png")}
    if depth:
        files["depth"] = ("depth.png", d, "image/png")
    body = {"instruction": instruction, "intrinsics": INTRINSICS, **opts}
    return {"files": files, "data": {"request": json.dumps(body)}}


def test_predict_multipart_returns_a_cited_answer_grasps_and_ros_poses(client: TestClient) -> None:
    r = client.post("/v1/predict", **multipart())
    assert r.status_code == 200, r.text
    res = PRGResult.model_validate(r.json())  # the response is the documented model
    assert res.answer == FORCED
    assert [c.id for c in res.citations] == ["EP-SAF-004 §4.2"] and res.citations[0].text.startswith("4.2 Before")
    assert res.retrieved[0].doc_id == "EP-SAF-004" and len(res.retrieved) == 2  # the pipeline's k_docs
    assert res.pose_count == 1 and res.grasps[0] and res.image_size == (80, 60)
    (pose,) = res.poses
    assert pose is not None and pose.header["frame_id"] and set(pose.pose) == {"position", "orientation"}
    assert pose.pose["position"]["z"] == pytest.approx(0.7, abs=1e-3)  # 700 mm in the depth PNG
    assert {"retrieval", "model_generate", "total", "batch_size"} <= set(res.timings_ms)


def test_the_request_frame_and_stamp_go_into_every_pose_header(client: TestClient) -> None:
    r = client.post("/v1/predict", **multipart(frame_id="wrist_camera_optical", stamp=1733050000.25))
    (pose,) = r.json()["poses"]
    assert pose["header"] == {"frame_id": "wrist_camera_optical", "stamp": {"sec": 1733050000, "nanosec": 250000000}}
    events = _events(client.post("/v1/predict/stream", **multipart(frame_id="cam2")).text)
    assert events[-1][1]["poses"][0]["header"]["frame_id"] == "cam2"
    default = client.post("/v1/predict", **multipart()).json()["poses"][0]["header"]
    assert default == {"frame_id": "camera_color_optical_frame", "stamp": {"sec": 0, "nanosec": 0}}
    bad = client.post("/v1/predict", **multipart(stamp=-1))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "stamp"


def test_json_with_base64_gives_the_same_result_as_multipart(client: TestClient) -> None:
    rgb, d = scene()
    body = {
        "instruction": "The breaker is off; I must touch the busbar.",
        "image_b64": base64.b64encode(rgb).decode(),
        "depth_b64": "data:image/png;base64," + base64.b64encode(d).decode(),
        "intrinsics": {"K": [[300, 0, 40], [0, 300, 30], [0, 0, 1]]},
        "k_grasps": 2,
    }
    a = client.post("/v1/predict", json=body).json()
    b = client.post("/v1/predict", **multipart(k_grasps=2)).json()
    assert a["answer"] == b["answer"] and a["grasps"] == b["grasps"] and a["poses"] == b["poses"]
    assert all(len(g) <= 2 for g in a["grasps"])
    # plain form fields work too (curl -F instruction=... -F image=@scene.png)
    c = client.post("/v1/predict", files={"image": ("s.png", rgb, "image/png")}, data={"instruction": "Busbar."})
    assert c.status_code == 200 and c.json()["poses"] == []


def _events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_stream_sends_retrieved_then_tokens_then_the_result(client: TestClient) -> None:
    r = client.post("/v1/predict/stream", **multipart())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    kinds = [k for k, _ in events]
    assert kinds[0] == "retrieved" and kinds[-1] == "result" and set(kinds[1:-1]) == {"token"} and len(kinds) > 4
    assert events[0][1]["documents"][0]["id"] == "EP-SAF-004 §4.2"
    text = "".join(d["text"] for k, d in events if k == "token")
    result = PRGResult.model_validate(events[-1][1])
    assert text == result.answer == FORCED and result.grasps


TRUNCATED = png_bytes(np.zeros((64, 64, 3), np.uint8) + 7)[:-40]
BAD: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("not an image", {"files": {"image": ("x.png", b"hello, not a picture", "image/png")},
                      "data": {"instruction": "a"}}, 415, "not_an_image", "image"),
    ("truncated PNG", {"files": {"image": ("x.png", TRUNCATED, "image/png")}, "data": {"instruction": "a"}},
     422, "corrupt_image", "image"),
    ("missing instruction", {"files": {"image": ("x.png", scene()[0], "image/png")}, "data": {"request": "{}"}},
     422, "invalid_field", "instruction"),
    ("no image part", {"data": {"instruction": "a"}, "files": {"other": ("x", b"1", "text/plain")}},
     422, "missing_image", "image"),
    ("bad request JSON", {"files": {"image": ("x.png", scene()[0], "image/png")}, "data": {"request": "{instr"}},
     400, "bad_json", "request"),
    ("unknown option", {"files": {"image": ("x.png", scene()[0], "image/png")},
                        "data": {"request": json.dumps({"instruction": "a", "temperature": 2})}},
     422, "invalid_field", "temperature"),
    ("k out of range", {"files": {"image": ("x.png", scene()[0], "image/png")},
                        "data": {"request": json.dumps({"instruction": "a", "k_grasps": 0})}},
     422, "invalid_field", "k_grasps"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs", "status", "code", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_multipart_requests_get_a_4xx_naming_the_problem(
    client: TestClient, name: str, kwargs: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    r = client.post("/v1/predict", **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["field"] == field and err["message"]
    assert client.post("/v1/predict", **multipart()).status_code == 200  # and the server keeps serving


def _json_body(**overrides: Any) -> dict[str, Any]:
    rgb, d = scene()
    body = {"instruction": "Busbar.", "image_b64": base64.b64encode(rgb).decode(), "intrinsics": INTRINSICS}
    body["depth_b64"] = base64.b64encode(d).decode()
    body.update(overrides)
    return body


def _npy(a: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, a)
    return base64.b64encode(buf.getvalue()).decode()


BAD_JSON: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("bomb", _json_body(image_b64=base64.b64encode(png_bomb()).decode(), depth_b64=None), 413, "image_too_large",
     "image"),
    ("depth of another size", _json_body(depth_b64=_npy(np.ones((30, 40), np.float32))), 422, "bad_request", "depth"),
    ("NaN intrinsics", _json_body(intrinsics={"fx": float("nan"), "fy": 300, "cx": 1, "cy": 1}), 422, "bad_request",
     "intrinsics"),
    ("negative focal length", _json_body(intrinsics={"fx": -300, "fy": 300, "cx": 1, "cy": 1}), 422, "bad_request",
     "intrinsics"),
    ("intrinsics without cy", _json_body(intrinsics={"fx": 300, "fy": 300, "cx": 1}), 422, "bad_request",
     "intrinsics"),
    ("bad base64", _json_body(image_b64="!!!not base64!!!"), 422, "bad_base64", "image_b64"),
    ("10 MB of instruction", _json_body(instruction="x" * 10_000_000), 413, "instruction_too_long", "instruction"),
    ("empty instruction", _json_body(instruction="   "), 422, "bad_request", "instruction"),
    ("object array depth", _json_body(depth_b64=_npy(np.array([[None, 1]], dtype=object))), 422, "bad_depth",
     "depth"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "status", "code", "field"), BAD_JSON, ids=[b[0] for b in BAD_JSON])
def test_bad_json_requests_get_a_4xx_naming_the_problem(
    client: TestClient, name: str, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    t0 = time.perf_counter()
    r = client.post("/v1/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["field"] == field, err
    assert time.perf_counter() - t0 < 10  # the bomb is refused from its header, not decoded
    assert client.post("/v1/predict", json=_json_body()).status_code == 200


def test_wrong_content_type_malformed_json_and_a_body_over_the_limit(forced_pipeline: ForcedPipeline) -> None:
    app = create_app(forced_pipeline, ServeSettings(max_body_bytes=64 * 1024))
    with TestClient(app) as c:
        r = c.post("/v1/predict", content=b"instruction=a", headers={"content-type": "text/plain"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        r = c.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
        big = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)  # ~270 kB as PNG
        r = c.post("/v1/predict", files={"image": ("x.png", png_bytes(big), "image/png")}, data={"instruction": "a"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        assert c.post("/v1/predict", **multipart()).status_code == 200


def test_the_api_key_guards_the_v1_routes_only(forced_pipeline: ForcedPipeline) -> None:
    app = create_app(forced_pipeline, ServeSettings(api_key="s3cret-key"))
    with TestClient(app) as c:
        r = c.post("/v1/predict", **multipart())
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/predict", headers={"Authorization": "Bearer s3cret-kez"}, **multipart()).status_code == 401
        assert c.post("/v1/predict", headers={"Authorization": "s3cret-key"}, **multipart()).status_code == 401
        ok = c.post("/v1/predict", headers={"Authorization": "Bearer s3cret-key"}, **multipart())
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/v1/scenes").status_code == 401  # every /v1/ route, the demo scenes too
        assert c.get("/v1/scenes", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200


def test_health_readiness_while_loading_and_metrics(forced_pipeline: ForcedPipeline) -> None:
    gate = {"open": False}

    def load() -> ForcedPipeline:
        while not gate["open"]:
            time.sleep(0.01)
        return forced_pipeline

    app = create_app(load, ServeSettings())
    with TestClient(app) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        r = c.post("/v1/predict", **multipart())
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        gate["open"] = True
        for _ in range(200):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        assert c.get("/readyz").json()["ready"] is True
        assert c.post("/v1/predict", **multipart()).status_code == 200
        c.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"})
        text = c.get("/metrics").text
    assert 'prg_requests_total{endpoint="/v1/predict",status="200"} 1.0' in text
    assert 'prg_requests_total{endpoint="/v1/predict",status="503"} 1.0' in text
    assert 'prg_errors_total{code="unsupported_media_type"} 1.0' in text
    assert "prg_batch_size_count 1.0" in text and "prg_request_latency_seconds_bucket" in text
    assert "prg_model_ready 1.0" in text


def test_a_model_that_fails_to_load_is_reported_by_readyz() -> None:
    def load() -> Any:
        raise FileNotFoundError("no such checkpoint: /nowhere")

    with TestClient(create_app(load)) as c:
        for _ in range(100):
            r = c.get("/readyz")
            if r.json().get("error"):
                break
            time.sleep(0.02)
        assert r.status_code == 503 and "no such checkpoint" in r.json()["error"]
        assert "no such checkpoint" in c.post("/v1/predict", **multipart()).json()["error"]["message"]


def test_openapi_documents_both_bodies_the_result_and_the_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/predict"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PRGResult")
    assert {"401", "413", "415", "422", "503"} <= set(op["responses"])
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["title"] == "PredictJSON" and {"instruction", "image_b64"} <= set(schema["required"])
    assert "/v1/predict/stream" in spec["paths"]
    assert client.get("/docs").status_code == 200
