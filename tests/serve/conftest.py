"""Fixtures for the server's tests: a tiny checkpoint, a small document index, a demo-like dataset, and a
pipeline whose answers can be forced (the tiny model's own output is random)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prg.model.checkpoint import save_pretrained
from prg.model.prg_model import build_tiny_prg_model
from prg.pipeline import PRGPipeline
from tests.test_pipeline import forced as forcing  # a logits processor: every row says the text, then stops
from tests.test_pipeline import write_docs_index

INTRINSICS = {"fx": 300.0, "fy": 300.0, "cx": 40.0, "cy": 30.0}
FORCED = "Per EP-SAF-004 §4.2 take the tested voltage detector [POSE] first."


@pytest.fixture(scope="session")
def serve_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("serve")
    index = write_docs_index(root)
    save_pretrained(build_tiny_prg_model(), root / "ckpt")
    return root / "ckpt", index


class ForcedPipeline(PRGPipeline):
    """The real pipeline, every batch made to answer :data:`FORCED` (so that grasps and citations exist), and
    the sizes of the batches it ran recorded."""

    batches: list[int]

    def batch(self, requests, k_docs=None, k_grasps=None, logits_processor=None, streamers=None):  # type: ignore[no-untyped-def]
        self.batches.append(len(requests))
        proc = forcing(self.model.tokenizer, FORCED)
        return super().batch(requests, k_docs, k_grasps, proc, streamers)


@pytest.fixture(scope="session")
def forced_pipeline(serve_files: tuple[Path, Path]) -> Iterator[ForcedPipeline]:
    ckpt, index = serve_files
    base = PRGPipeline.from_pretrained(ckpt, index=index, k_docs=2)
    pipe = ForcedPipeline(base.model, base.retriever, base.config)
    pipe.batches = []
    pipe.model.config.max_new_tokens = 160
    yield pipe
    pipe.close()


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def scene(h: int = 60, w: int = 80, seed: int = 0) -> tuple[bytes, bytes]:
    """(RGB PNG, 16-bit depth PNG in millimetres) of one random scene."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = np.full((h, w), 700, np.uint16)
    return png_bytes(rgb), png_bytes(depth)


def png_bomb(side: int = 30000) -> bytes:
    """A real ``side x side`` 1-bit PNG of zeros: ~100 kB on the wire, ``side**2`` pixels when decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + side // 8)  # filter byte + the row's bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(side // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class LiveServer:
    """A real uvicorn server on a loopback port, on a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        for _ in range(500):
            if self.server.started:
                return
            time.sleep(0.01)
        raise RuntimeError("the test server did not start")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def live(forced_pipeline: ForcedPipeline) -> Iterator[LiveServer]:
    """The app over :func:`forced_pipeline` on a live loopback port (body timeout 1 s, for the slow-client test)."""
    from prg.serve.app import ServeSettings, create_app

    server = LiveServer(create_app(forced_pipeline, ServeSettings(body_timeout_s=1.0, max_wait_ms=20)))
    yield server
    server.close()


@pytest.fixture(scope="module")
def scenes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PRG dataset (64 x 48 scenes with depth and intrinsics) for the demo-scene routes."""
    from tests.conftest import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("scenes") / "dataset", n=2)


@pytest.fixture(scope="module")
def live_scenes(forced_pipeline: ForcedPipeline, scenes_dataset: Path) -> Iterator[LiveServer]:
    """The app over :func:`forced_pipeline` on a live loopback port, offering :func:`scenes_dataset`'s scenes."""
    from prg.serve.app import ServeSettings, create_app

    server = LiveServer(create_app(forced_pipeline, ServeSettings(scenes=scenes_dataset, max_wait_ms=5)))
    yield server
    server.close()
