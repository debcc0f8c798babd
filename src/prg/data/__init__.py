"""PRG data: the record schema, dataset folders, and readers for the field's grasp datasets."""

from prg.data.dataset import DatasetError, DatasetWriter, iter_records, read_dataset, write_dataset
from prg.data.schema import (
    POSE_TOKEN,
    DatasetInfo,
    DocRef,
    Grasp,
    Intrinsics,
    MaskRef,
    ObjectAnnotation,
    PRGRecord,
)

__all__ = [
    "POSE_TOKEN",
    "DatasetError",
    "DatasetInfo",
    "DatasetWriter",
    "DocRef",
    "Grasp",
    "Intrinsics",
    "MaskRef",
    "ObjectAnnotation",
    "PRGRecord",
    "iter_records",
    "read_dataset",
    "write_dataset",
]
