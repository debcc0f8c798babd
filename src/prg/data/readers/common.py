"""What every dataset reader shares: the report, the split rule, checks for bad files, and ``convert``.

A reader is a module with a ``READER`` (:class:`Reader`): ``find_items`` lists the annotated items under the
source folder, ``read_item`` turns one item into PRG records plus the files those records point to, or raises
:class:`SkipItem` for bad data. ``convert`` owns the loop, the progress bar, the copying and the writer, so a
reader never touches the output folder and a bad item never leaves half-copied files behind.
"""

from __future__ import annotations

import importlib
import logging
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import ValidationError
from tqdm import tqdm

from prg.data.dataset import DatasetWriter, copy_into
from prg.data.schema import POSE_TOKEN, DatasetInfo, Grasp, ObjectAnnotation, PRGRecord
from prg.grasp.rect import GraspRect

__all__ = [
    "ConvertOptions",
    "ConvertReport",
    "ItemResult",
    "Reader",
    "SkipItem",
    "assign_split",
    "check_depth",
    "check_image",
    "convert",
    "known_formats",
    "make_record",
    "parse_corner_lines",
]

log = logging.getLogger("prg.data.readers")

# Lazy registry: format name -> module holding ``READER``; importing a reader only when it is used keeps
# ``convert`` free of an if/elif chain and of import cycles (the readers import this module).
_FORMATS: dict[str, str] = {
    "cornell": "prg.data.readers.cornell",
    "jacquard": "prg.data.readers.jacquard",
    "reasongrasp": "prg.data.readers.reasongrasp",
}


@dataclass
class ConvertReport:
    """Outcome of a conversion; each warning reads ``FILE:LINE: problem`` or ``FILE: problem``."""

    n_records: int = 0
    n_skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)


@dataclass(frozen=True)
class ConvertOptions:
    """Options every reader receives. ``val_fraction``/``test_fraction`` apply to readers whose source has
    no split of its own (Cornell, Jacquard); reasongrasp keeps the split named by its folders."""

    val_fraction: float = 0.0
    test_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.val_fraction <= 1 and 0 <= self.test_fraction <= 1):
            raise ValueError("val_fraction and test_fraction must lie in [0, 1]")
        if self.val_fraction + self.test_fraction > 1:
            raise ValueError("val_fraction + test_fraction must not exceed 1")


class SkipItem(Exception):
    """Raised by a reader for an item with bad data; ``problems`` become report warnings."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass
class ItemResult:
    """Records made from one item, the files to copy (dataset-relative path -> source file) and warnings
    about parts that were dropped (single rectangles, an unreadable depth map) while the item was kept."""

    records: list[PRGRecord]
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reader:
    """One source format. ``find_items(src, warnings)`` returns sortable item handles (usually annotation
    paths; ``str(item)`` names the file) and may append ``FILE: problem`` warnings about shared files."""

    name: str
    find_items: Callable[[Path, list[str]], Sequence[Any]]
    read_item: Callable[[Any, ConvertOptions], ItemResult]


def known_formats() -> list[str]:
    return sorted(_FORMATS)


def assign_split(key: str, val_fraction: float = 0.0, test_fraction: float = 0.0) -> str:
    """Deterministic split from a key (a record id or an object id): the same key always lands in the same
    split, independent of item order or machine. crc32 spreads keys uniformly over ``[0, 1)``."""
    u = zlib.crc32(key.encode("utf-8")) / 2**32
    if u < val_fraction:
        return "val"
    if u < val_fraction + test_fraction:
        return "test"
    return "train"


def check_image(path: Path) -> str | None:
    """``None`` if ``path`` is a readable image, else a ``FILE: problem`` message.

    ``Image.verify`` misses truncated pixel data, so the image is fully decoded; the field's images are small.
    """
    if not path.is_file():
        return f"{path}: image file not found"
    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return f"{path}: unreadable image ({e})"
    return None


def check_depth(path: Path) -> str | None:
    """``None`` if ``path`` is a readable TIFF depth map, else a ``FILE: problem`` message."""
    import tifffile

    try:
        tifffile.imread(path)
    except Exception as e:  # tifffile raises many types (TiffFileError, ValueError, struct.error ...)
        return f"{path}: unreadable depth map ({type(e).__name__}: {e})"
    return None


def attach_depth(depth: Path, files: dict[str, Path], warnings: list[str], required: bool = False) -> str | None:
    """Add an optional depth map to a record's ``files`` (as ``depth/NAME``) and return that relative path.

    A missing file gives None (with a warning when the format always ships depth, ``required``); an unreadable one
    gives None and a warning. The record is kept either way.
    """
    if not depth.is_file():
        if required:
            warnings.append(f"{depth}: depth map not found; record kept without depth")
        return None
    bad = check_depth(depth)
    if bad is not None:
        warnings.append(f"{bad}; record kept without depth")
        return None
    rel = f"depth/{depth.name}"
    files[rel] = depth
    return rel


def parse_corner_lines(path: Path) -> tuple[list[GraspRect], list[str]]:
    """Parse a Cornell-style corner file: 4 lines ``x y`` per rectangle, first edge = opening.

    Blank lines are ignored. A line count that is not a multiple of 4 makes the whole file unusable (the
    rectangle boundaries are unknown); a rectangle with NaN, a non-number or a degenerate shape is dropped.
    Returns the rectangles and problems as ``path:line: message``.
    """
    try:
        raw = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{path}: unreadable grasp file ({e})"]
    lines = [(i, s.strip()) for i, s in enumerate(raw, 1) if s.strip()]
    if not lines:
        return [], [f"{path}: no grasp rectangles in file"]
    if len(lines) % 4:
        return [], [f"{path}: {len(lines)} corner lines, not a multiple of 4 (4 lines per rectangle)"]
    rects: list[GraspRect] = []
    problems: list[str] = []
    for k in range(0, len(lines), 4):
        group = lines[k : k + 4]
        first = group[0][0]
        pts: list[tuple[float, float]] = []
        for lineno, text in group:
            fields = text.split()
            if len(fields) != 2:
                problems.append(f"{path}:{lineno}: expected 'x y', got {text!r}; rectangle dropped")
                break
            try:
                x, y = float(fields[0]), float(fields[1])
            except ValueError:
                problems.append(f"{path}:{lineno}: not a number in {text!r}; rectangle dropped")
                break
            if not (math.isfinite(x) and math.isfinite(y)):
                problems.append(f"{path}:{lineno}: NaN or infinite corner {text!r}; rectangle dropped")
                break
            pts.append((x, y))
        else:
            try:
                rects.append(GraspRect.from_corners(pts))
            except ValueError as e:
                problems.append(f"{path}:{first}: degenerate rectangle ({e}); rectangle dropped")
    return rects, problems


def make_record(source_file: Path, **fields: Any) -> PRGRecord:
    """Build a record, turning a schema violation caused by the source data into :class:`SkipItem`."""
    try:
        return PRGRecord(**fields)
    except ValidationError as e:
        raise SkipItem(f"{source_file}: record rejected by the PRG schema ({e})") from e


def open_grasp_item(
    item: Path, image: Path, rects: list[GraspRect], problems: list[str]
) -> tuple[dict[str, Path], list[str]]:
    """Start a grasp-only item (Cornell, Jacquard): skip it when its image is unreadable or no rectangle is valid;
    otherwise return its ``files`` (the image as ``images/NAME``) and its ``warnings`` (the rectangle problems)."""
    bad_image = check_image(image)
    if bad_image is not None:
        raise SkipItem(bad_image)
    if not rects:
        raise SkipItem(*problems, f"{item}: no valid grasp rectangle")
    return {f"images/{image.name}": image}, list(problems)


def grasp_only_record(
    item: Path,
    *,
    record_id: str,
    image: Path,
    depth: str | None,
    rects: list[GraspRect],
    split_key: str,
    options: ConvertOptions,
    source: str,
    **object_fields: Any,
) -> PRGRecord:
    """The record of a grasp-only dataset: one object ``"0"`` holding every rectangle, the target of a generic
    instruction whose answer is ``[POSE]``; ``object_fields`` (mask, attributes) go to its annotation."""
    return make_record(
        item,
        id=record_id,
        image=f"images/{image.name}",
        depth=depth,
        industry="general",
        instruction="Grasp the object.",
        answer=POSE_TOKEN,
        objects=[
            ObjectAnnotation(
                id="0",
                name="object",
                category="object",
                grasps=[Grasp.from_rect(r) for r in rects],
                **object_fields,
            )
        ],
        targets=["0"],
        split=assign_split(split_key, options.val_fraction, options.test_fraction),
        source=source,
        meta={"source_file": item.name},
    )


def _load_reader(fmt: str) -> Reader:
    if fmt not in _FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; known formats: {', '.join(known_formats())}")
    reader = importlib.import_module(_FORMATS[fmt]).READER
    assert isinstance(reader, Reader), f"{_FORMATS[fmt]}.READER is not a Reader"
    return reader


def convert(
    format: str,
    src: str | Path,
    dst: str | Path,
    overwrite: bool = False,
    progress: bool = True,
    *,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    name: str | None = None,
) -> ConvertReport:
    """Convert a dataset in ``format`` under ``src`` into a PRG dataset folder at ``dst``.

    Bad items are skipped with a warning (see :class:`ConvertReport`); only programmer errors raise.
    Raises ``ValueError`` for an unknown format, ``FileNotFoundError`` for a missing ``src`` and
    :class:`prg.data.DatasetError` if ``dst`` already holds a dataset and ``overwrite`` is false.
    """
    reader = _load_reader(format)
    options = ConvertOptions(val_fraction=val_fraction, test_fraction=test_fraction)
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: source folder not found (expected a {format} dataset folder)")
    report = ConvertReport()
    found_warnings: list[str] = []
    items = sorted(reader.find_items(src, found_warnings))
    for w in found_warnings:
        report.warn(w)
    info = DatasetInfo(
        name=name or f"{format}-{src.resolve().name}",
        source=format,
        description=f"converted from {format} at {src}",
        extra={"val_fraction": val_fraction, "test_fraction": test_fraction},
    )
    seen: dict[str, str] = {}
    with DatasetWriter(dst, info, overwrite=overwrite) as writer:
        for item in tqdm(items, desc=f"converting {format}", unit="item", disable=not progress):
            try:
                result = reader.read_item(item, options)
            except SkipItem as e:
                for p in e.problems:
                    report.warn(p)
                report.warn(f"{item}: item skipped")
                report.n_skipped += 1
                continue
            clash = next((r.id for r in result.records if r.id in seen), None)
            if clash is not None:
                report.warn(f"{item}: record id {clash!r} already made from {seen[clash]}; item skipped")
                report.n_skipped += 1
                continue
            for w in result.warnings:
                report.warn(w)
            for rel, path in result.files.items():
                copy_into(writer, path, rel)
            for r in result.records:
                writer.add(r)
                seen[r.id] = str(item)
                report.n_records += 1
    return report
