"""Check a PRG dataset folder and report every problem with its file and line.

Unlike :func:`prg.data.dataset.iter_records`, which stops at the first bad record, validation reads everything
and collects all problems, so a user fixes a dataset in one pass.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import ValidationError

from prg.data.dataset import INFO_FILE, RECORDS_FILE
from prg.data.schema import DatasetInfo, PRGRecord

__all__ = ["Problem", "ValidationReport", "validate_dataset"]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    severity: str = "error"  # "error" fails validation, "warning" does not

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class ValidationReport:
    root: str
    n_records: int
    problems: list[Problem]
    splits: Counter[str]
    industries: Counter[str]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _format_validation_error(e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "record"
        out.append(f"{loc}: {err['msg']}")
    return out


def _decoded_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """(width, height) of an image after fully decoding it, or an error message."""
    try:
        with Image.open(path) as im:
            im.load()  # decode everything: a truncated file fails here, not in training
            return im.size, None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return None, f"unreadable image {path.name} ({e})"


def _check_record(root: Path, rec: PRGRecord, where: tuple[str, int]) -> list[Problem]:
    file, line = where
    probs: list[Problem] = []
    decoded: dict[Path, tuple[tuple[int, int] | None, str | None]] = {}

    def _image_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
        # the objects of a record share one mask file (one value each): decode it once
        if path not in decoded:
            decoded[path] = _decoded_size(path)
        return decoded[path]

    def add(msg: str, severity: str = "error") -> None:
        probs.append(Problem(file, line, f"record {rec.id!r}: {msg}", severity))

    img_path = root / rec.image
    size: tuple[int, int] | None = None
    if not img_path.is_file():
        add(f"image not found: {rec.image}")
    else:
        size, err = _image_size(img_path)
        if err:
            add(err)
    if rec.depth is not None:
        dpath = root / rec.depth
        if not dpath.is_file():
            add(f"depth not found: {rec.depth}")
        elif dpath.suffix.lower() not in (".npy", ".tif", ".tiff"):
            dsize, err = _image_size(dpath)
            if err:
                add(err)
            elif size and dsize != size:
                add(f"depth size {dsize} differs from image size {size}")
    for obj in rec.objects:
        if obj.mask is not None:
            mpath = root / obj.mask.path
            if not mpath.is_file():
                add(f"object {obj.id!r}: mask not found: {obj.mask.path}")
            else:
                msize, err = _image_size(mpath)
                if err:
                    add(f"object {obj.id!r}: {err}")
                elif size and msize != size:
                    add(f"object {obj.id!r}: mask size {msize} differs from image size {size}")
        if size is not None:
            w, h = size
            for i, g in enumerate(obj.grasps):
                if not (0 <= g.x < w and 0 <= g.y < h):
                    add(f"object {obj.id!r}: grasp {i} centre ({g.x:.1f}, {g.y:.1f}) outside the {w}x{h} image")
    for t in rec.targets:
        if t in {o.id for o in rec.objects} and not rec.object(t).grasps:
            add(f"target object {t!r} has no grasps, so its [POSE] cannot be scored")
    return probs


def validate_dataset(root: str | Path, check_files: bool = True, workers: int | None = None) -> ValidationReport:
    """Validate ``root`` (a dataset folder); never raises for bad data, every problem is in the report.

    ``check_files`` decodes every image, depth map and mask (a truncated file fails here, not in training) in
    ``workers`` threads (default: one per CPU core, at most 16; Pillow releases the GIL while decoding). The
    report lists problems in record order whatever the thread count.
    """
    root = Path(root)
    if workers is None:
        workers = min(16, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers) if check_files and workers > 1 else None
    try:
        return _validate(root, check_files, pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _validate(root: Path, check_files: bool, pool: ThreadPoolExecutor | None) -> ValidationReport:
    problems: list[Problem] = []
    splits: Counter[str] = Counter()
    industries: Counter[str] = Counter()
    n = 0
    if not root.is_dir():
        return ValidationReport(str(root), 0, [Problem(str(root), None, "not a folder")], splits, industries)

    info_path = root / INFO_FILE
    if not info_path.is_file():
        problems.append(Problem(str(info_path), None, "missing: incomplete/interrupted dataset or not a PRG folder"))
    else:
        try:
            DatasetInfo.model_validate_json(info_path.read_text(encoding="utf-8"))
        except ValidationError as e:
            problems += [Problem(str(info_path), None, m) for m in _format_validation_error(e)]
        except (ValueError, UnicodeDecodeError) as e:
            problems.append(Problem(str(info_path), None, f"not valid JSON ({e})"))

    rec_path = root / RECORDS_FILE
    if not rec_path.is_file():
        problems.append(Problem(str(rec_path), None, "missing"))
        return ValidationReport(str(root), 0, problems, splits, industries)

    seen: dict[str, int] = {}
    checks: list[Any] = []  # per record: its file problems, or a future of them
    with open(rec_path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = (str(rec_path), lineno)
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                problems.append(Problem(*where, f"not valid JSON ({e})"))
                continue
            try:
                rec = PRGRecord.model_validate(data)
            except ValidationError as e:
                rid = data.get("id", "?") if isinstance(data, dict) else "?"
                problems += [Problem(*where, f"record {rid!r}: {m}") for m in _format_validation_error(e)]
                continue
            n += 1
            splits[rec.split] += 1
            industries[rec.industry] += 1
            if rec.id in seen:
                problems.append(Problem(*where, f"duplicate record id {rec.id!r} (first on line {seen[rec.id]})"))
            else:
                seen[rec.id] = lineno
            if check_files:
                if pool is None:
                    problems += _check_record(root, rec, where)
                else:
                    checks.append((len(problems), pool.submit(_check_record, root, rec, where)))
    if checks:  # each record's file problems go where a sequential run puts them: after its parse problems
        merged: list[Problem] = []
        prev = 0
        for at, future in checks:
            merged += problems[prev:at] + future.result()
            prev = at
        problems = merged + problems[prev:]
    if n == 0 and not any(p.file == str(rec_path) for p in problems):
        problems.append(Problem(str(rec_path), None, "holds no records"))
    return ValidationReport(str(root), n, problems, splits, industries)
