"""The main job on the embedded default, as far as the system goes today.

Today (foundation stage) it exercises every part that exists, end to end, on data it makes itself:
a small Cornell-format sample (an object drawn on a table, with hand-placed grasp rectangles in a ``cpos`` file)
is converted into a PRG dataset, validated, drawn, encoded to GG-CNN grasp maps and decoded back, and the best
grasp is lifted to a 6-DoF gripper pose from a depth image. Each later stage replaces a step with the real one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from prg.grasp.rect import GraspRect

__all__ = ["DemoResult", "run_demo", "write_cornell_sample"]

_SIZE = 320
_FX = 400.0
_TABLE_DEPTH = 0.7  # metres from the camera to the table


def _tool_geometry(i: int) -> tuple[float, float, float, float, float]:
    """(cx, cy, length, thickness, angle) of the i-th sample's tool, a screwdriver-like bar."""
    rng = np.random.default_rng(i)
    return (
        float(rng.uniform(120, 200)),
        float(rng.uniform(120, 200)),
        float(rng.uniform(150, 200)),
        float(rng.uniform(18, 26)),
        float(rng.uniform(-math.pi / 2, math.pi / 2)),
    )


def write_cornell_sample(folder: Path, n: int = 3) -> None:
    """Write ``n`` Cornell-layout items (``pcdNNNNr.png``, ``pcdNNNNcpos.txt``, ``pcdNNNNd.tiff``) to ``folder``."""
    import tifffile

    sub = folder / "01"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cx, cy, length, thick, ang = _tool_geometry(i)
        img = Image.new("RGB", (_SIZE, _SIZE), (196, 180, 150))
        d = ImageDraw.Draw(img)
        bar = GraspRect(cx, cy, length, thick, ang)
        d.polygon([tuple(p) for p in bar.corners().tolist()], fill=(200, 30, 30))
        handle = GraspRect(cx - 0.3 * length * math.cos(ang), cy + 0.3 * length * math.sin(ang),
                           0.4 * length, thick * 1.6, ang)  # fmt: skip
        d.polygon([tuple(p) for p in handle.corners().tolist()], fill=(240, 200, 0))
        img.save(sub / f"pcd{i:04d}r.png")
        # Grasps across the bar (opening perpendicular to the tool's long axis) at 4 points along it.
        lines = []
        for t in (-0.3, -0.1, 0.1, 0.3):
            gx, gy = cx + t * length * math.cos(ang), cy - t * length * math.sin(ang)
            g = GraspRect(gx, gy, thick * 2.2, thick * 0.8, ang + math.pi / 2)
            lines += [f"{x:.2f} {y:.2f}" for x, y in g.corners().tolist()]
        (sub / f"pcd{i:04d}cpos.txt").write_text("\n".join(lines) + "\n")
        depth = np.full((_SIZE, _SIZE), _TABLE_DEPTH, np.float32)
        yy, xx = np.mgrid[0:_SIZE, 0:_SIZE]
        u = np.array([math.cos(ang), -math.sin(ang)])
        rel = np.stack([xx - cx, yy - cy], -1)
        along, across = rel @ u, rel @ np.array([-u[1], u[0]])
        depth[(np.abs(along) < length / 2) & (np.abs(across) < thick / 2)] = _TABLE_DEPTH - 0.02
        depth[::37, ::41] = 0.0  # sensor holes, as real depth cameras have
        tifffile.imwrite(sub / f"pcd{i:04d}d.tiff", depth)


@dataclass
class DemoResult:
    out_dir: Path
    n_records: int
    overlay: Path
    maps: Path
    result_json: Path


def run_demo(out_dir: str | Path = "outputs/demo", overwrite: bool = True) -> DemoResult:
    """Run the demo; returns where the outputs are. Raises if any stage fails its own check."""
    from prg.data.dataset import iter_records, load_depth
    from prg.data.readers import convert
    from prg.data.validate import validate_dataset
    from prg.grasp.maps import maps_to_rects, rects_to_maps
    from prg.grasp.metrics import grasp_success
    from prg.grasp.pose import CameraIntrinsics, rect_to_pose
    from prg.viz import contact_sheet, draw_grasps, record_overlay

    out = Path(out_dir)
    src, ds = out / "cornell_sample", out / "dataset"
    write_cornell_sample(src)
    report = convert("cornell", src, ds, overwrite=overwrite, progress=False)
    val = validate_dataset(ds)
    if not val.ok:
        raise RuntimeError("the converted sample does not validate:\n" + "\n".join(map(str, val.errors)))
    records = list(iter_records(ds))
    rec = records[0]
    overlay_path = out / "overlay.png"
    record_overlay(ds, rec).save(overlay_path)

    gts = [g.to_rect() for g in rec.objects[0].grasps]
    with Image.open(ds / rec.image) as im:
        w, h = im.size
        rgb = im.convert("RGB")
    maps = rects_to_maps(gts, (h, w), width_scale=150.0)
    decoded = maps_to_rects(maps, k=3, width_scale=150.0)
    hits = [grasp_success(r, gts) for r in decoded]
    q = Image.fromarray((np.clip(maps.quality, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    maps_path = out / "maps.png"
    contact_sheet([draw_grasps(rgb, decoded), q], cols=2, cell=max(w, h)).save(maps_path)

    depth = load_depth(ds, rec)
    assert depth is not None
    K = CameraIntrinsics(fx=_FX, fy=_FX, cx=w / 2, cy=h / 2)
    pose = rect_to_pose(decoded[0], depth, K)
    result = {
        "records": len(records),
        "converted": report.n_records,
        "skipped": report.n_skipped,
        "record": rec.id,
        "decoded_grasps": [r.to_dict() for r in decoded],
        "decoded_grasp_success": hits,
        "top_grasp_pose": pose.to_ros_dict(),
    }
    result_path = out / "result.json"
    result_path.write_text(json.dumps(result, indent=2))
    return DemoResult(out, len(records), overlay_path, maps_path, result_path)
