"""The API over a real socket: a slow client, concurrent clients batched together, SSE over the wire."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import FORCED, INTRINSICS, ForcedPipeline, LiveServer, scene


def _post(url: str, i: int = 0) -> httpx.Response:
    rgb, depth = scene(seed=i)
    files = {"image": ("s.png", rgb, "image/png"), "depth": ("d.png", depth, "image/png")}
    data = {
        "request": json.dumps({"instruction": "The breaker is off; I must touch the busbar.", "intrinsics": INTRINSICS})
    }
    return httpx.post(f"{url}/v1/predict", files=files, data=data, timeout=120)


def test_a_client_that_never_finishes_its_body_gets_408_and_others_are_served(live: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        head = (
            "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        s.sendall(head.encode() + b'{"instruction": "slow')  # ... and then nothing more
        t0 = time.perf_counter()
        reply = s.recv(65536).decode()
        waited = time.perf_counter() - t0
        while "}}" not in reply:  # the JSON body may come in a second packet
            more = s.recv(65536).decode()
            if not more:
                break
            reply += more
    assert reply.startswith("HTTP/1.1 408"), reply[:200]
    assert '"body_timeout"' in reply and 0.5 < waited < 8
    assert _post(live.url).status_code == 200


def test_concurrent_clients_share_batches_and_each_gets_its_own_answer(
    live: LiveServer, forced_pipeline: ForcedPipeline
) -> None:
    forced_pipeline.batches.clear()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: _post(live.url, i), range(8)))
    assert [r.status_code for r in replies] == [200] * 8
    assert all(r.json()["answer"] == FORCED for r in replies)
    sizes = [r.json()["timings_ms"]["batch_size"] for r in replies]
    assert max(sizes) > 1 and sum(forced_pipeline.batches) == 8  # some requests shared a generation
    assert len(forced_pipeline.batches) < 8


def test_the_stream_arrives_as_events_over_the_wire(live: LiveServer) -> None:
    rgb, _ = scene()
    kinds = []
    with httpx.stream(
        "POST", f"{live.url}/v1/predict/stream", files={"image": ("s.png", rgb, "image/png")},
        data={"instruction": "Busbar."}, timeout=60,
    ) as r:  # fmt: skip
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[7:])
    assert kinds[0] == "retrieved" and kinds[-1] == "result" and kinds.count("token") >= 3


def test_a_stream_may_last_longer_than_the_body_timeout(live: LiveServer, forced_pipeline: ForcedPipeline) -> None:
    # after the body, Starlette waits on receive() for a disconnect while it streams: that wait has no timeout
    original = forced_pipeline.batch

    def slow(*args, **kw):  # type: ignore[no-untyped-def]
        time.sleep(1.5)  # longer than the fixture's 1 s body timeout
        return original(*args, **kw)

    forced_pipeline.batch = slow  # type: ignore[method-assign]
    try:
        rgb, _ = scene()
        r = httpx.post(f"{live.url}/v1/predict/stream", files={"image": ("s.png", rgb, "image/png")},
                       data={"instruction": "Busbar."}, timeout=60)  # fmt: skip
    finally:
        del forced_pipeline.batch
    assert r.status_code == 200 and "event: result" in r.text and "event: error" not in r.text


def test_a_client_that_leaves_mid_stream_stops_its_generation(
    live: LiveServer, forced_pipeline: ForcedPipeline
) -> None:
    import threading

    import torch

    steps = {"n": 0}
    returned = threading.Event()
    word = forced_pipeline.model.tokenizer.encode(" a", add_special_tokens=False)[0]

    def endless(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:  # " a" for ever, 30 ms a token
        steps["n"] += 1
        time.sleep(0.03)
        scores = torch.full_like(scores, -1e9)
        scores[:, word] = 0.0
        return scores

    def batch(requests, k_docs=None, k_grasps=None, logits_processor=None, streamers=None):  # type: ignore[no-untyped-def]
        try:
            return super(ForcedPipeline, forced_pipeline).batch(requests, k_docs, k_grasps, endless, streamers)
        finally:
            returned.set()

    forced_pipeline.batch = batch  # type: ignore[method-assign]
    try:
        rgb, _ = scene()
        with httpx.stream("POST", f"{live.url}/v1/predict/stream", files={"image": ("s.png", rgb, "image/png")},
                          data={"instruction": "Busbar."}, timeout=60) as r:  # fmt: skip
            assert r.status_code == 200
            for line in r.iter_lines():
                if line == "event: token":
                    break  # ... and the client hangs up
        # uncancelled, the 160-token limit takes >= 4.8 s; stopped, it ends a few tokens after the hang-up
        assert returned.wait(20)
        assert steps["n"] < 60, steps
    finally:
        del forced_pipeline.batch
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'prg_errors_total{code="disconnected"} 1.0' in metrics
    assert _post(live.url).status_code == 200  # and the server serves on


@pytest.mark.slow
def test_memory_stays_flat_over_many_requests(forced_pipeline: ForcedPipeline) -> None:
    """RSS after warm-up does not grow with the number of requests (a service runs for weeks)."""
    import gc

    from fastapi.testclient import TestClient

    from prg.serve.app import ServeSettings, create_app

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    rgb, depth = scene()
    files = {"image": ("s.png", rgb, "image/png"), "depth": ("d.png", depth, "image/png")}
    data = {"request": json.dumps({"instruction": "Busbar.", "intrinsics": INTRINSICS})}
    with TestClient(create_app(forced_pipeline, ServeSettings(max_wait_ms=0))) as c:
        for _ in range(30):  # warm-up: allocator pools, caches, lazy imports
            assert c.post("/v1/predict", files=files, data=data).status_code == 200
        gc.collect()
        before = rss_mb()
        for _ in range(150):
            assert c.post("/v1/predict", files=files, data=data).status_code == 200
        gc.collect()
        grown = rss_mb() - before
    assert grown < 8.0, f"RSS grew by {grown:.1f} MB over 150 requests"
