#!/usr/bin/env python3
"""Send one camera frame to a PRG server; print the cited rule and the grasp pose for each [POSE].

    python examples/robot_client.py --url http://127.0.0.1:8000 --image color.png --depth depth.png \\
        --intrinsics '{"fx": 615.0, "fy": 615.0, "cx": 320.0, "cy": 240.0}' \\
        --instruction "The breaker is off; hand me what I need before I touch the busbar."
    python examples/robot_client.py --record ~/.cache/prg/demo/dataset --record-id ep-000000

``--record`` sends a record of a PRG dataset folder (its image, depth, depth scale, intrinsics and instruction).

Only Python's standard library is used (urllib, json, base64), so this file runs on a robot's computer that has
neither PRG nor an HTTP package installed; ``ros2_grasp_node.py`` next to it imports its functions. The request
is the JSON form of ``POST /v1/predict`` (image and depth base64-encoded: one JSON document any HTTP library can
send; base64 costs a third more bytes, nothing next to a camera frame on a local network).

Poses are in the camera's optical frame (x right, y down, z forward, metres) as the server returns them: ROS
``geometry_msgs/PoseStamped`` fields, with the quaternion's w kept >= 0. [POSE 1] is what the answer says to take
first; each [POSE]'s grasp is its best-scored one.

Exit status: 0 a pose was printed; 1 the server refused or failed the request (its message on stderr);
2 bad arguments or unreadable files; 3 answered, but without any pose (no [POSE], or no depth reading);
4 the server cannot be reached.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BestPose",
    "Frame",
    "PRGError",
    "best_pose",
    "cited_rules",
    "format_report",
    "load_record",
    "poses",
    "predict",
    "read_api_key",
]


class PRGError(Exception):
    """The server refused or failed a request (``status`` is its HTTP status; None: it was not reached)."""

    def __init__(self, status: int | None, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        head = f"HTTP {self.status} {self.code}" if self.status else self.code
        return f"{head}{where}: {self.message}"


def predict(
    url: str,
    image: bytes,
    instruction: str,
    depth: bytes | None = None,
    intrinsics: dict[str, Any] | None = None,
    depth_scale: float = 0.001,
    api_key: str | None = None,
    k_grasps: int | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """``POST {url}/v1/predict`` -> the PRGResult as a dict; :class:`PRGError` with the server's message on a 4xx
    or 5xx, or when the server cannot be reached.

    ``image``: the encoded colour image (PNG, JPEG, ...); ``depth``: aligned depth, a 16-bit PNG in units of
    ``depth_scale`` metres (millimetres by default), a float TIFF or a ``.npy`` array in metres (the server tells
    them apart by their first bytes); ``intrinsics``: ``{"fx", "fy", "cx", "cy"}`` in pixels or ``{"K": 3x3}``.
    """
    body: dict[str, Any] = {
        "instruction": instruction,
        "image_b64": base64.b64encode(image).decode("ascii"),
        "depth_scale": depth_scale,
    }
    if depth is not None:
        body["depth_b64"] = base64.b64encode(depth).decode("ascii")
    if intrinsics is not None:
        body["intrinsics"] = intrinsics
    if k_grasps is not None:
        body["k_grasps"] = k_grasps
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(
        url.rstrip("/") + "/v1/predict", data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise _error_of(e.code, e.read()) from None
    except urllib.error.URLError as e:
        raise PRGError(None, "unreachable", f"cannot reach {url}: {e.reason}") from None
    except TimeoutError:
        raise PRGError(None, "timeout", f"{url} did not answer within {timeout:g} s") from None


def _error_of(status: int, raw: bytes) -> PRGError:
    # PRG answers {"error": {code, message, field}}; a proxy in front of it may answer anything
    try:
        err = json.loads(raw)["error"]
        return PRGError(status, str(err["code"]), str(err["message"]), err.get("field"))
    except (ValueError, KeyError, TypeError):
        return PRGError(status, "http_error", raw.decode("utf-8", "replace")[:500] or "no message")


@dataclass
class BestPose:
    """The pose to grasp first: [POSE] number ``index`` (1-based) of the answer, its best-scored grasp."""

    index: int
    frame_id: str
    position: tuple[float, float, float]  # metres, camera optical frame
    quaternion: tuple[float, float, float, float]  # x, y, z, w
    opening_m: float
    quality: float
    pose: dict[str, Any]  # the server's dict: header, pose.position, pose.orientation, width, jaw_m, quality


def poses(result: dict[str, Any]) -> list[BestPose | None]:
    """Each [POSE]'s pose in answer order (None where it has none: no grasp, or no depth under it)."""
    out: list[BestPose | None] = []
    for i, p in enumerate(result.get("poses") or [], 1):
        if p is None:
            out.append(None)
            continue
        t, q = p["pose"]["position"], p["pose"]["orientation"]
        out.append(
            BestPose(
                index=i,
                frame_id=str(p["header"].get("frame_id", "")),
                position=(t["x"], t["y"], t["z"]),
                quaternion=(q["x"], q["y"], q["z"], q["w"]),
                opening_m=float(p["width"]),
                quality=float(p["quality"]),
                pose=p,
            )
        )
    return out


def best_pose(result: dict[str, Any]) -> BestPose | None:
    """The first [POSE] that has a pose: the object the answer says to take first."""
    return next((p for p in poses(result) if p is not None), None)


def cited_rules(result: dict[str, Any]) -> list[tuple[str, str]]:
    """``(id, clause text)`` of each rule the answer cites, in retrieval order."""
    return [(c["id"], c["text"]) for c in result.get("citations") or []]


def format_report(result: dict[str, Any]) -> str:
    """The answer, its cited rules and each [POSE]'s pose, as the command prints them."""
    lines = [f"answer: {result['answer']}"]
    for cid, text in cited_rules(result):
        lines.append(f"rule: {cid}")
        lines.extend(f"  {line}" for line in text.strip().splitlines())
    lines.extend(f"unresolved citation: {u}" for u in result.get("unresolved_citations") or [])
    all_poses = poses(result)
    if not all_poses:
        why = "no depth or intrinsics were sent" if result.get("grasps") else "the answer has no [POSE]"
        lines.append(f"no pose: {why}")
    for i, p in enumerate(all_poses, 1):
        if p is None:
            lines.append(f"[POSE {i}] no pose (no grasp, or no depth reading under it)")
            continue
        (x, y, z), (qx, qy, qz, qw) = p.position, p.quaternion
        lines += [
            f"[POSE {i}] frame {p.frame_id}",
            f"  position m:  x={x:.4f} y={y:.4f} z={z:.4f}",
            f"  quaternion:  x={qx:.4f} y={qy:.4f} z={qz:.4f} w={qw:.4f}",
            f"  opening:     {p.opening_m * 1000:.1f} mm   score {p.quality:.3f}",
        ]
    return "\n".join(lines)


@dataclass
class Frame:
    """One request's inputs as files hold them."""

    image: bytes
    depth: bytes | None
    intrinsics: dict[str, Any] | None
    depth_scale: float
    instruction: str | None


def load_record(root: str | Path, record_id: str | None = None) -> Frame:
    """A record of a PRG dataset folder (``records.jsonl``, paths relative to the folder); the first one when
    ``record_id`` is None. Read with json alone, so PRG need not be installed where this runs."""
    root = Path(root).expanduser()
    path = root / "records.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a PRG dataset folder (no records.jsonl)")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if record_id is None or rec["id"] == record_id:
                return Frame(
                    image=(root / rec["image"]).read_bytes(),
                    depth=(root / rec["depth"]).read_bytes() if rec.get("depth") else None,
                    intrinsics=rec.get("intrinsics"),
                    depth_scale=float(rec.get("depth_scale") or 0.001),
                    instruction=rec.get("instruction"),
                )
    raise KeyError(f"{path}: no record {record_id!r}")


def read_api_key(path: str | Path) -> str:
    """The bearer key from a file (as ``prg serve --api-key-file`` reads it: surrounding whitespace dropped)."""
    return Path(path).expanduser().read_text(encoding="utf-8").strip()


def _intrinsics(text: str) -> dict[str, Any]:
    """``--intrinsics``: a JSON object, or the path of a file holding one."""
    p = Path(text).expanduser()
    obj = json.loads(p.read_text(encoding="utf-8") if not text.lstrip().startswith("{") and p.is_file() else text)
    if not isinstance(obj, dict):
        raise ValueError("intrinsics must be a JSON object")
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Send a camera frame to a PRG server; print the cited rule and the grasp poses.",
        epilog="Exit status: 0 pose printed, 1 refused by the server, 2 bad arguments, 3 no pose, 4 unreachable.",
    )
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)")
    ap.add_argument("--api-key-file", type=Path, help="file holding the server's bearer key")
    src = ap.add_argument_group("the frame: files, or a PRG dataset record")
    src.add_argument("--image", type=Path, help="colour image file (PNG, JPEG, ...)")
    src.add_argument("--depth", type=Path, help="aligned depth: 16-bit PNG, TIFF or .npy")
    src.add_argument("--depth-scale", type=float, help="metres per unit of a 16-bit PNG depth (default 0.001)")
    src.add_argument("--intrinsics", help='JSON {"fx","fy","cx","cy"} or {"K": 3x3}, or a file holding it')
    src.add_argument("--record", type=Path, help="a PRG dataset folder: send one of its records")
    src.add_argument("--record-id", help="which record of --record (default: the first)")
    ap.add_argument("--instruction", help="what to do, in words (default with --record: the record's)")
    ap.add_argument("--k-grasps", type=int, help="grasps per [POSE] the server keeps")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    ap.add_argument("--save-json", type=Path, help="also write the server's JSON answer to this file")
    args = ap.parse_args(argv)

    try:
        if args.record is not None:
            if args.image is not None:
                ap.error("give --record or --image, not both")
            frame = load_record(args.record, args.record_id)
        elif args.image is not None:
            frame = Frame(args.image.read_bytes(), None, None, 0.001, None)
        else:
            ap.error("give --image (with --instruction) or --record")
        if args.depth is not None:
            frame.depth = args.depth.read_bytes()
        if args.depth_scale is not None:
            frame.depth_scale = args.depth_scale
        if args.intrinsics is not None:
            frame.intrinsics = _intrinsics(args.intrinsics)
        key = read_api_key(args.api_key_file) if args.api_key_file is not None else None
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    instruction = args.instruction if args.instruction is not None else frame.instruction
    if instruction is None:
        ap.error("--instruction is needed (only a --record brings its own)")

    try:
        result = predict(
            args.url, frame.image, instruction, frame.depth, frame.intrinsics, frame.depth_scale, key, args.k_grasps,
            args.timeout,
        )  # fmt: skip
    except PRGError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4 if e.status is None else 1
    if args.save_json is not None:
        args.save_json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(format_report(result))
    return 0 if best_pose(result) is not None else 3


if __name__ == "__main__":
    sys.exit(main())
