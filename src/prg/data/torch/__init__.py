"""Training data for PRG: sources of items, the retrieval cache, mixing, exact augmentation and collation.

``docs/training_data.md`` describes the item and batch formats. The pieces, in the order data flows:

* :mod:`~prg.data.torch.retrieval_cache`: what the real retriever returns per record, stored beside the dataset;
* :mod:`~prg.data.torch.sources`: PRG records, grasp-only records and visual conversations -> ``TrainItem``;
* :mod:`~prg.data.torch.scene_qa`: scene questions generated from PRG records;
* :mod:`~prg.data.torch.augment`: rotations/flips that keep grasps exact, colour jitter;
* :mod:`~prg.data.torch.mixture`: ``MixtureDataset`` and the resumable ``MixtureSampler``;
* :mod:`~prg.data.torch.collate`: items -> the batch ``PRGModel.forward`` takes.
"""

from prg.data.torch.augment import DIHEDRAL, AugmentConfig, Dihedral, augment_item, color_jitter, item_rng
from prg.data.torch.collate import collate
from prg.data.torch.mixture import Key, MixtureDataset, MixtureSampler
from prg.data.torch.retrieval_cache import (
    RetrievalCache,
    RetrievalCacheError,
    build_retrieval_cache,
    cache_path,
    read_retrieval_cache,
)
from prg.data.torch.scene_qa import scene_qa
from prg.data.torch.sources import (
    GRASP_INSTRUCTIONS,
    RecordSource,
    Source,
    TrainItem,
    VQASource,
    grasp_only_source,
    scene_qa_source,
)

__all__ = [
    "DIHEDRAL",
    "GRASP_INSTRUCTIONS",
    "AugmentConfig",
    "Dihedral",
    "Key",
    "MixtureDataset",
    "MixtureSampler",
    "RecordSource",
    "RetrievalCache",
    "RetrievalCacheError",
    "Source",
    "TrainItem",
    "VQASource",
    "augment_item",
    "build_retrieval_cache",
    "cache_path",
    "collate",
    "color_jitter",
    "grasp_only_source",
    "item_rng",
    "read_retrieval_cache",
    "scene_qa",
    "scene_qa_source",
]
