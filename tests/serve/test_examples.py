"""examples/robot_client.py against a live server on loopback (run as a robot would: a subprocess), and the ROS 2
node's message conversions with fake messages (rclpy itself is not faked: its main only says it is missing)."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prg.serve.app import ServeSettings, create_app
from tests.conftest import make_record
from tests.serve.conftest import FORCED, ForcedPipeline, LiveServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "examples-test-key-0123456789"


def client(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "robot_client.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def printed_poses(out: str) -> list[dict[str, Any]]:
    """The [POSE] blocks of the client's report, read back as numbers."""
    blocks = re.findall(
        r"\[POSE (\d+)\] frame (\S+)\n  position m:  x=(\S+) y=(\S+) z=(\S+)\n"
        r"  quaternion:  x=(\S+) y=(\S+) z=(\S+) w=(\S+)\n  opening:     (\S+) mm   score (\S+)",
        out,
    )
    return [
        {"index": int(b[0]), "frame": b[1], "position": [float(v) for v in b[2:5]],
         "quaternion": [float(v) for v in b[5:9]], "opening_mm": float(b[9]), "score": float(b[10])}
        for b in blocks
    ]  # fmt: skip


def test_a_dataset_record_prints_the_servers_pose_and_cited_rule(
    live_scenes: LiveServer, scenes_dataset: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "result.json"
    r = client("--url", live_scenes.url, "--record", scenes_dataset, "--record-id", "r1", "--save-json", saved)
    assert r.returncode == 0, r.stderr
    result = json.loads(saved.read_text())
    assert result["answer"] == FORCED and result["instruction"] == make_record(1).instruction
    assert f"answer: {FORCED}" in r.stdout
    assert "rule: EP-SAF-004 §4.2\n  4.2 Before touching a busbar, verify the absence of voltage" in r.stdout

    (printed,) = printed_poses(r.stdout)
    (pose,) = result["poses"]
    t, q = pose["pose"]["position"], pose["pose"]["orientation"]
    assert printed["frame"] == pose["header"]["frame_id"] == "camera_color_optical_frame"
    assert printed["position"] == pytest.approx([t["x"], t["y"], t["z"]], abs=6e-5)
    assert printed["quaternion"] == pytest.approx([q["x"], q["y"], q["z"], q["w"]], abs=6e-5)
    assert printed["opening_mm"] == pytest.approx(pose["width"] * 1000, abs=0.06)
    assert printed["score"] == pytest.approx(pose["quality"], abs=6e-4)
    assert t["z"] == pytest.approx(0.6, abs=1e-3)  # the record's depth PNG, sent with its scale and intrinsics


def test_files_on_the_command_line_give_the_same_pose_as_the_record(
    live_scenes: LiveServer, scenes_dataset: Path
) -> None:
    rec = make_record(0)
    by_record = client("--url", live_scenes.url, "--record", scenes_dataset)  # the first record: r0
    by_files = client(
        "--url", live_scenes.url, "--image", scenes_dataset / rec.image, "--depth", scenes_dataset / (rec.depth or ""),
        "--intrinsics", json.dumps({"fx": 300, "fy": 300, "cx": 32, "cy": 24}), "--instruction", rec.instruction,
    )  # fmt: skip
    assert by_record.returncode == by_files.returncode == 0, by_files.stderr
    assert printed_poses(by_files.stdout) == printed_poses(by_record.stdout) != []


def test_a_refused_request_exits_non_zero_with_the_servers_message(
    live_scenes: LiveServer, scenes_dataset: Path
) -> None:
    r = client("--url", live_scenes.url, "--record", scenes_dataset, "--instruction", "   ")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == "error: HTTP 422 bad_request (instruction): the instruction is empty"
    r = client("--url", live_scenes.url, "--record", scenes_dataset, "--intrinsics", '{"fx": 300, "fy": 300}')
    assert r.returncode == 1 and "HTTP 422 bad_request (intrinsics)" in r.stderr and "missing ['cx', 'cy']" in r.stderr


def test_no_depth_means_no_pose_and_exit_status_3(live_scenes: LiveServer, scenes_dataset: Path) -> None:
    r = client("--url", live_scenes.url, "--image", scenes_dataset / "images/r0.png", "--instruction", "Busbar.")
    assert r.returncode == 3 and "no pose: no depth or intrinsics were sent" in r.stdout


@pytest.fixture(scope="module")
def keyed(forced_pipeline: ForcedPipeline) -> Iterator[LiveServer]:
    server = LiveServer(create_app(forced_pipeline, ServeSettings(api_key=KEY, max_wait_ms=5)))
    yield server
    server.close()


def test_the_api_key_file_is_sent_as_a_bearer_key(keyed: LiveServer, scenes_dataset: Path, tmp_path: Path) -> None:
    r = client("--url", keyed.url, "--record", scenes_dataset)
    assert r.returncode == 1 and "HTTP 401 unauthorized: missing or wrong API key" in r.stderr
    key = tmp_path / "key"
    key.write_text(KEY + "\n")
    r = client("--url", keyed.url, "--record", scenes_dataset, "--api-key-file", key)
    assert r.returncode == 0, r.stderr


def test_an_unreachable_server_and_bad_arguments(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = client("--url", f"http://127.0.0.1:{port}", "--image", __file__, "--instruction", "x")
    assert r.returncode == 4 and "cannot reach" in r.stderr
    r = client("--image", tmp_path / "missing.png", "--instruction", "x")
    assert r.returncode == 2 and "missing.png" in r.stderr
    r = client("--instruction", "x")
    assert r.returncode == 2 and "give --image" in r.stderr


# ---------------------------------------------------------------------------------------------------------------
# The ROS 2 node, without ROS


@pytest.fixture(scope="module")
def node_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ros2_grasp_node", EXAMPLES / "ros2_grasp_node.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_msg(a: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False, stamp: float = 10.0) -> Any:
    """A sensor_msgs/Image's fields: rows padded by ``pad`` bytes, as some drivers send them."""
    h, w = a.shape[:2]
    data = a.astype(a.dtype.newbyteorder(">" if big_endian else "<")).reshape(h, -1).view(np.uint8)
    data = np.concatenate([data, np.full((h, pad), 0xEE, np.uint8)], axis=1)
    sec = int(stamp)
    header = SimpleNamespace(
        frame_id="camera_color_optical_frame_x", stamp=SimpleNamespace(sec=sec, nanosec=int((stamp - sec) * 1e9))
    )
    return SimpleNamespace(header=header, height=h, width=w, encoding=encoding, is_bigendian=int(big_endian),
                           step=data.shape[1], data=data.tobytes())  # fmt: skip


class _Fields:
    """A message's fields, strict as rclpy's generated classes: no new attributes, floats must be floats."""

    _names: set[str]

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_names", set(fields))
        for k, v in fields.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._names:
            raise AttributeError(f"no field {name}")
        if isinstance(getattr(self, name), float) and type(value) is not float:
            raise AssertionError(f"the '{name}' field must be of type 'float'")
        object.__setattr__(self, name, value)


def fake_pose_stamped() -> _Fields:
    return _Fields(
        header=_Fields(frame_id="", stamp=None),
        pose=_Fields(position=_Fields(x=0.0, y=0.0, z=0.0), orientation=_Fields(x=0.0, y=0.0, z=0.0, w=1.0)),
    )


def test_images_of_every_encoding_become_arrays(node_module: ModuleType) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    m = node_module
    assert np.array_equal(m.image_to_array(image_msg(rgb, "rgb8", pad=3)), rgb)
    assert np.array_equal(m.image_to_array(image_msg(rgb[..., ::-1].copy(), "bgr8")), rgb)
    rgba = np.dstack([rgb, np.full((5, 7), 9, np.uint8)])
    assert np.array_equal(m.image_to_array(image_msg(rgba[..., [2, 1, 0, 3]].copy(), "bgra8", pad=1)), rgba)
    mm = rng.integers(0, 5000, (5, 7), dtype=np.uint16)
    assert np.array_equal(m.image_to_array(image_msg(mm, "16UC1", pad=2, big_endian=True)), mm)
    metres = rng.random((5, 7)).astype(np.float32)
    assert np.array_equal(m.image_to_array(image_msg(metres, "32FC1", pad=4)), metres)
    with pytest.raises(ValueError, match="yuv422"):
        m.image_to_array(image_msg(rgb, "yuv422"))
    short = image_msg(rgb, "rgb8")
    short.data = short.data[:-1]
    with pytest.raises(ValueError, match="too short"):
        m.image_to_array(short)


def test_png_bytes_and_the_depth_payloads_decode_to_what_was_sent(node_module: ModuleType) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(node_module.png_bytes(rgb)))), rgb)
    mm = rng.integers(0, 65535, (6, 9), dtype=np.uint16)
    data, scale = node_module.depth_payload(image_msg(mm, "16UC1"))
    assert scale == 0.001 and np.array_equal(np.asarray(Image.open(io.BytesIO(data))).astype(np.uint16), mm)
    metres = rng.random((6, 9)).astype(np.float32)
    data, scale = node_module.depth_payload(image_msg(metres, "32FC1"))
    assert scale == 1.0 and np.array_equal(np.load(io.BytesIO(data), allow_pickle=False), metres)
    with pytest.raises(ValueError, match="depth encoding"):
        node_module.depth_payload(image_msg(rgb, "rgb8"))


def test_three_messages_give_a_pose_stamped_in_the_cameras_frame(
    node_module: ModuleType, live_scenes: LiveServer, scenes_dataset: Path
) -> None:
    rgb = np.asarray(Image.open(scenes_dataset / "images/r0.png").convert("RGB"))
    colour = image_msg(rgb[..., ::-1].copy(), "bgr8", pad=2, stamp=12.25)  # a RealSense-style BGR frame
    depth = image_msg(np.full(rgb.shape[:2], 600, np.uint16), "16UC1", stamp=12.26)
    info = SimpleNamespace(header=SimpleNamespace(frame_id="cam_optical"), k=[300, 0, 32, 0, 300, 24, 0, 0, 1])
    assert node_module.intrinsics_of(info) == {"fx": 300.0, "fy": 300.0, "cx": 32.0, "cy": 24.0}

    result = node_module.ask(live_scenes.url, colour, depth, info, make_record(0).instruction)
    best = node_module.best_pose(result)
    assert best is not None and best.index == 1
    msg = node_module.fill_pose_stamped(fake_pose_stamped(), best, info.header.frame_id, colour.header.stamp)
    server = result["poses"][0]["pose"]
    assert msg.header.frame_id == "cam_optical" and msg.header.stamp is colour.header.stamp
    assert [msg.pose.position.x, msg.pose.position.y, msg.pose.position.z] == [server["position"][k] for k in "xyz"]
    assert [getattr(msg.pose.orientation, k) for k in "xyzw"] == [server["orientation"][k] for k in "xyzw"]
    assert msg.pose.position.z == pytest.approx(0.6, abs=1e-3)

    late = image_msg(np.full(rgb.shape[:2], 600, np.uint16), "16UC1", stamp=13.0)
    with pytest.raises(ValueError, match="apart"):
        node_module.ask(live_scenes.url, colour, late, info, "x")
    with pytest.raises(ValueError, match="no calibration"):
        node_module.intrinsics_of(SimpleNamespace(k=[0.0] * 9))


def test_latest_frames_names_what_has_not_arrived(node_module: ModuleType) -> None:
    frames = node_module.LatestFrames()
    frames.set("colour", "c")
    with pytest.raises(ValueError, match="no depth image received yet"):
        frames.snapshot()
    frames.set("depth", "d")
    frames.set("info", "i")
    assert frames.snapshot() == ("c", "d", "i")


@pytest.mark.skipif(importlib.util.find_spec("rclpy") is not None, reason="ROS 2 is installed here")
def test_without_ros_the_node_says_what_it_needs() -> None:
    r = subprocess.run([sys.executable, str(EXAMPLES / "ros2_grasp_node.py")], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 2 and "needs rclpy" in r.stderr and "source /opt/ros/" in r.stderr
