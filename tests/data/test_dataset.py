from pathlib import Path

import numpy as np
import pytest

from prg.data.dataset import (
    INFO_FILE,
    RECORDS_FILE,
    DatasetError,
    DatasetWriter,
    load_depth,
    load_image,
    load_mask,
    read_dataset,
)
from prg.data.schema import DatasetInfo
from tests.conftest import make_record


def test_written_dataset_reads_back(tiny_dataset: Path) -> None:
    info, records = read_dataset(tiny_dataset)
    assert info.name == "tiny"
    assert [r.id for r in records] == ["r0", "r1", "r2"]
    rec = records[0]
    img = load_image(tiny_dataset, rec)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    depth = load_depth(tiny_dataset, rec)
    assert depth is not None and np.allclose(depth, 0.6, atol=1e-3)
    assert rec.objects[0].mask is not None
    m = load_mask(tiny_dataset, rec.objects[0].mask)
    assert m.sum() == 10 * 12


def test_interrupted_writer_leaves_no_valid_dataset(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with pytest.raises(RuntimeError), DatasetWriter(root, DatasetInfo(name="x")) as w:
        w.add(make_record(0))
        raise RuntimeError("killed")
    assert not (root / INFO_FILE).exists() and not (root / RECORDS_FILE).exists()
    with pytest.raises(DatasetError, match="missing"):
        read_dataset(root)


def test_existing_dataset_is_not_overwritten_silently(tiny_dataset: Path) -> None:
    with pytest.raises(DatasetError, match="already holds"):
        DatasetWriter(tiny_dataset, DatasetInfo(name="again"))
    with DatasetWriter(tiny_dataset, DatasetInfo(name="again"), overwrite=True) as w:
        w.add(make_record(7))
    info, recs = read_dataset(tiny_dataset)
    assert info.name == "again" and [r.id for r in recs] == ["r7"]


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path / "d", DatasetInfo(name="x"))
    w.add(make_record(0))
    with pytest.raises(DatasetError, match="duplicate"):
        w.add(make_record(0))
    w.abort()


def test_bad_line_names_file_and_line(tiny_dataset: Path) -> None:
    with open(tiny_dataset / RECORDS_FILE, "a") as f:
        f.write('{"id": "broken"}\n')
    with pytest.raises(DatasetError, match=r"records.jsonl:4"):
        read_dataset(tiny_dataset)


def test_depth_holes_become_nan(tiny_dataset: Path) -> None:
    from prg.data.dataset import save_depth_png

    d = np.full((48, 64), 0.5)
    d[0, 0] = np.nan
    d[1, 1] = 0
    save_depth_png(tiny_dataset / "depth" / "r0.png", d)
    _, recs = read_dataset(tiny_dataset)
    out = load_depth(tiny_dataset, recs[0])
    assert out is not None and np.isnan(out[0, 0]) and np.isnan(out[1, 1]) and out[2, 2] == pytest.approx(0.5)
