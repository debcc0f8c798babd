#!/usr/bin/env python3
"""A ROS 2 node that asks a PRG server where to grasp and publishes the answer's first pose.

It keeps the latest colour image, aligned depth image and camera_info; on a trigger it sends them with an
instruction to ``POST /v1/predict`` (through ``robot_client.py``, next to this file) and publishes

- ``~/grasp_pose`` (geometry_msgs/PoseStamped): the best grasp of the answer's first [POSE] that has one, in the
  camera_info's frame, stamped with the colour image's time (the moment the pose describes);
- ``~/answer`` (std_msgs/String): the answer with its cited rules, for a log or a speaker.

Triggers: the service ``~/grasp`` (std_srvs/Trigger) asks with the ``instruction`` parameter; a message on
``~/instruction`` (std_msgs/String) asks with its text. Subscribed (relative names; remap them to your camera):
``color/image_raw``, ``aligned_depth_to_color/image_raw`` and ``color/camera_info``. Use rectified images: the
server's camera model is a pinhole without distortion.

    source /opt/ros/jazzy/setup.bash
    python3 examples/ros2_grasp_node.py --ros-args -r __ns:=/camera \\
        -p server_url:=http://192.168.1.10:8000 -p api_key_file:=/etc/prg/key \\
        -p instruction:="The breaker is off; hand me what I need before I touch the busbar."
    ros2 service call /camera/prg_grasp/grasp std_srvs/srv/Trigger

Parameters: ``server_url``, ``api_key_file`` (empty: none), ``instruction``, ``timeout_s`` (300), ``max_skew_s``
(0.1: colour and depth further apart than this are not one moment, and the request is refused).

rclpy is not a PRG dependency: it comes with ROS 2, and ``main`` says so when it is missing. The conversions
(sensor_msgs/Image -> PNG or .npy, CameraInfo -> intrinsics, the server's pose -> PoseStamped) are plain functions
of message fields, so they can be checked without ROS; they need numpy, which every ROS 2 install has.
"""

from __future__ import annotations

import io
import struct
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # robot_client.py sits next to this file

from robot_client import BestPose, PRGError, best_pose, cited_rules, predict, read_api_key

__all__ = [
    "LatestFrames",
    "ask",
    "depth_payload",
    "fill_pose_stamped",
    "image_to_array",
    "intrinsics_of",
    "png_bytes",
    "stamp_seconds",
]

# sensor_msgs/Image encodings this node reads: numpy dtype and channels per pixel
_ENCODINGS = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
}


def image_to_array(msg: Any) -> Any:
    """A sensor_msgs/Image -> ``[H x W x C]`` (or ``[H x W]``) numpy array, rows unpadded, native byte order."""
    import numpy as np

    if msg.encoding not in _ENCODINGS:
        raise ValueError(f"image encoding {msg.encoding!r} is not supported (use one of {sorted(_ENCODINGS)})")
    kind, channels = _ENCODINGS[msg.encoding]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    row = msg.width * channels * dtype.itemsize
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f"image data too short: {len(msg.data)} bytes for {msg.height} rows of step {msg.step}")
    # rows may be padded to `step` bytes: cut each row to its pixels before reading them
    rows = np.frombuffer(bytes(msg.data), np.uint8, msg.step * msg.height).reshape(msg.height, msg.step)[:, :row]
    a = np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width, channels).astype(dtype.newbyteorder("="))
    if msg.encoding.startswith("bgr"):
        a = a[..., [2, 1, 0] + ([3] if channels == 4 else [])]
    return a[..., 0] if channels == 1 else a


def png_bytes(a: Any) -> bytes:
    """``[H x W x 3]`` uint8 RGB or ``[H x W]`` uint16 -> PNG file bytes (zlib from the standard library, so the
    robot needs no imaging package; the server reads PNG losslessly)."""
    import numpy as np

    a = np.asarray(a)
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:
        colour_type, bit_depth, pixels = 2, 8, a
    elif a.dtype == np.uint16 and a.ndim == 2:
        colour_type, bit_depth, pixels = 0, 16, a.astype(">u2")  # PNG stores 16-bit samples big-endian
    else:
        raise ValueError(f"png_bytes takes [H x W x 3] uint8 or [H x W] uint16, got {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 ("none") per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def colour_png(msg: Any) -> bytes:
    """A colour (or mono) sensor_msgs/Image -> an RGB PNG."""
    import numpy as np

    a = image_to_array(msg)
    if a.dtype != np.uint8:
        raise ValueError(f"a colour image must be 8-bit, got {msg.encoding}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return png_bytes(np.ascontiguousarray(a[..., :3]))


def depth_payload(msg: Any) -> tuple[bytes, float]:
    """A depth sensor_msgs/Image -> (file bytes, metres per unit). REP 118: ``16UC1`` holds millimetres (sent as a
    16-bit PNG, scale 0.001), ``32FC1`` metres (sent as ``.npy``, which the server reads as metres)."""
    import numpy as np

    a = image_to_array(msg)
    if msg.encoding in ("16UC1", "mono16"):
        return png_bytes(a), 0.001
    if msg.encoding == "32FC1":
        buf = io.BytesIO()
        np.save(buf, a.astype(np.float32), allow_pickle=False)
        return buf.getvalue(), 1.0
    raise ValueError(f"depth encoding {msg.encoding!r}: use 16UC1 (millimetres) or 32FC1 (metres)")


def intrinsics_of(info: Any) -> dict[str, float]:
    """sensor_msgs/CameraInfo -> ``{"fx", "fy", "cx", "cy"}`` from its row-major 3x3 ``k``."""
    k = [float(v) for v in info.k]
    if len(k) != 9 or k[0] <= 0 or k[4] <= 0:
        raise ValueError("camera_info has no calibration (k is empty or its focal lengths are not positive)")
    return {"fx": k[0], "fy": k[4], "cx": k[2], "cy": k[5]}


def stamp_seconds(stamp: Any) -> float:
    """builtin_interfaces/Time -> seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def ask(
    url: str,
    colour: Any,
    depth: Any,
    info: Any,
    instruction: str,
    api_key: str | None = None,
    timeout: float = 300.0,
    max_skew_s: float = 0.1,
) -> dict[str, Any]:
    """One request from three messages -> the server's result; ValueError for messages that do not belong
    together, :class:`robot_client.PRGError` for what the server refuses."""
    skew = abs(stamp_seconds(colour.header.stamp) - stamp_seconds(depth.header.stamp))
    if skew > max_skew_s:
        raise ValueError(f"colour and depth are {skew:.3f} s apart (max_skew_s {max_skew_s:g}): not one moment")
    depth_bytes, scale = depth_payload(depth)
    return predict(url, colour_png(colour), instruction, depth_bytes, intrinsics_of(info), scale, api_key,
                   timeout=timeout)  # fmt: skip


def fill_pose_stamped(msg: Any, pose: BestPose, frame_id: str, stamp: Any) -> Any:
    """Fill a geometry_msgs/PoseStamped (or anything with its fields) from the server's pose. ``frame_id``: the
    camera's (camera_info's header); empty: the server's. Values are cast to float: ROS messages refuse ints."""
    msg.header.frame_id = frame_id or pose.frame_id
    msg.header.stamp = stamp
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pose.position)
    q.x, q.y, q.z, q.w = (float(v) for v in pose.quaternion)
    return msg


class LatestFrames:
    """The newest colour, depth and camera_info messages, written by subscription callbacks (threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.colour: Any = None
        self.depth: Any = None
        self.info: Any = None

    def set(self, name: str, msg: Any) -> None:
        with self._lock:
            setattr(self, name, msg)

    def snapshot(self) -> tuple[Any, Any, Any]:
        with self._lock:
            frames = (self.colour, self.depth, self.info)
        for name, m in zip(("colour image", "depth image", "camera_info"), frames, strict=True):
            if m is None:
                raise ValueError(f"no {name} received yet")
        return frames


def main(argv: list[str] | None = None) -> int:
    try:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
    except ImportError as e:
        print(
            f"this example runs in ROS 2 ({e}): it needs rclpy, sensor_msgs, geometry_msgs, std_msgs and std_srvs.\n"
            "Source a ROS 2 installation first, e.g.  source /opt/ros/jazzy/setup.bash",
            file=sys.stderr,
        )
        return 2

    class GraspNode(Node):
        def __init__(self) -> None:
            super().__init__("prg_grasp")
            self.url = self.declare_parameter("server_url", "http://127.0.0.1:8000").value
            key_file = self.declare_parameter("api_key_file", "").value
            self.api_key = read_api_key(key_file) if key_file else None
            self.declare_parameter("instruction", "")
            self.timeout = float(self.declare_parameter("timeout_s", 300.0).value)
            self.max_skew = float(self.declare_parameter("max_skew_s", 0.1).value)
            self.frames = LatestFrames()
            # reentrant + a multi-threaded executor: images keep arriving while a request waits for the server
            group = ReentrantCallbackGroup()
            for name, kind, topic in (
                ("colour", Image, "color/image_raw"),
                ("depth", Image, "aligned_depth_to_color/image_raw"),
                ("info", CameraInfo, "color/camera_info"),
            ):
                self.create_subscription(
                    kind, topic, lambda m, n=name: self.frames.set(n, m), qos_profile_sensor_data, callback_group=group
                )
            self.pose_pub = self.create_publisher(PoseStamped, "~/grasp_pose", 10)
            self.answer_pub = self.create_publisher(String, "~/answer", 10)
            self.create_service(Trigger, "~/grasp", self.on_trigger, callback_group=group)
            self.create_subscription(String, "~/instruction", self.on_instruction, 10, callback_group=group)
            self.busy = threading.Lock()  # one request at a time: a second trigger meanwhile is refused

        def run(self, instruction: str) -> tuple[bool, str]:
            if not instruction.strip():
                return False, "no instruction (set the instruction parameter, or publish one on ~/instruction)"
            if not self.busy.acquire(blocking=False):
                return False, "a request is already running"
            try:
                colour, depth, info = self.frames.snapshot()
                result = ask(self.url, colour, depth, info, instruction, self.api_key, self.timeout, self.max_skew)
            except (ValueError, PRGError) as e:
                self.get_logger().error(str(e))
                return False, str(e)
            finally:
                self.busy.release()
            rules = "; ".join(f"{cid}: {text.strip()}" for cid, text in cited_rules(result))
            self.answer_pub.publish(String(data=result["answer"] + (f"\n{rules}" if rules else "")))
            best = best_pose(result)
            if best is None:
                return False, f"no pose in the answer: {result['answer']}"
            self.pose_pub.publish(fill_pose_stamped(PoseStamped(), best, info.header.frame_id, colour.header.stamp))
            x, y, z = best.position
            return True, f"[POSE {best.index}] at ({x:.3f}, {y:.3f}, {z:.3f}) m; {rules or 'no rule cited'}"

        def on_trigger(self, request: Any, response: Any) -> Any:
            response.success, response.message = self.run(str(self.get_parameter("instruction").value))
            return response

        def on_instruction(self, msg: Any) -> None:
            ok, text = self.run(msg.data)
            (self.get_logger().info if ok else self.get_logger().warning)(text)

    rclpy.init(args=argv)
    node = GraspNode()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
