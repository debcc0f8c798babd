"""Training sources: each turns its data into :class:`TrainItem` dicts, the one shape the collator takes.

* :class:`RecordSource`: PRG records from dataset folders (reasoning grasps: instruction, retrieved documents from
  the retrieval cache, an answer with ``[POSE]``, one list of target grasps per ``[POSE]``); with ``retrieval=None``
  and :func:`grasp_only_source`, Cornell/Jacquard-style records as "pick up the object" turns.
* :class:`VQASource`: visual conversations (LLaVA-Instruct via :meth:`VQASource.from_llava`, or scene Q&A from PRG
  records via :func:`scene_qa_source`): no ``[POSE]``, no documents.

A source is indexed by ``get(index, epoch)``; every random choice (augmentation, instruction phrasing) comes from
``item_rng(seed, source name, epoch, index)``, so an item is the same in every worker and every resumed run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypedDict

import numpy as np
from PIL import Image
from typing_extensions import NotRequired  # typing has it from 3.11; PRG supports 3.10

from prg.data.dataset import DatasetError, iter_records, load_image, read_info
from prg.data.readers.common import ConvertReport
from prg.data.readers.llava import read_llava_instruct
from prg.data.schema import PRGRecord, VQASample, count_pose_tokens
from prg.data.torch.augment import AugmentConfig, augment_item, item_rng
from prg.data.torch.citations import align_citations
from prg.data.torch.retrieval_cache import RetrievalCache, cache_path, read_retrieval_cache
from prg.data.torch.scene_qa import scene_qa
from prg.grasp.rect import GraspRect
from prg.model.processor import PromptDocument, to_rgb_array
from prg.retrieval.rules import clause_groups

__all__ = [
    "GRASP_INSTRUCTIONS",
    "RecordSource",
    "Source",
    "TrainItem",
    "VQASource",
    "grasp_only_source",
    "scene_qa_source",
]

#: How a grasp-only record is asked for (one is drawn per item and epoch).
GRASP_INSTRUCTIONS = ("Pick up the object.", "Grasp the object.", "Pick the object up.")


class TrainItem(TypedDict):
    """One training example, before tokenising (the collator's input).

    ``pose_rects[i]`` are the target grasps of the i-th ``[POSE]`` in ``answer``, in ``image``'s pixels (after
    augmentation); ``documents`` are what the prompt shows, best first.
    """

    id: str
    source: str
    image: np.ndarray  # [H x W x 3] uint8
    instruction: str
    documents: list[PromptDocument]
    answer: str
    pose_rects: list[list[GraspRect]]
    pose_categories: NotRequired[list[str]]  # each [POSE]'s target catalogue category (PRG records)


class Source(Protocol):
    """Anything :class:`~prg.data.torch.mixture.MixtureDataset` can draw from."""

    name: str

    def __len__(self) -> int: ...

    def get(self, index: int, epoch: int = 0) -> TrainItem: ...


class RecordSource:
    """PRG records from one or more dataset folders, with their documents from the retrieval cache.

    Args:
        roots: dataset folders (``prg.data.dataset``).
        name: the source's name (in items, the sampler's rates, augmentation seeds).
        splits: which records to use (``None``: all).
        retrieval: the cache name in each folder (``<root>/retrieval/<name>.jsonl``), a ``.jsonl`` path (one
            folder only), or ``None`` for prompts without documents (grasp-only data).
        k_docs: keep at most this many cached chunks (``None``: all the cache holds).
        augment: what augmentation may do (default: all 8 grid symmetries and colour jitter).
        instructions: if given, each item's instruction is drawn from these instead of the record's.
        seed: augmentation seed.

    Item ids are record ids; with several folders they are prefixed ``<dataset name>/``.
    """

    def __init__(
        self,
        roots: str | Path | Sequence[str | Path],
        *,
        name: str = "prg",
        splits: Iterable[str] | None = ("train",),
        retrieval: str | Path | None = "default",
        k_docs: int | None = None,
        augment: AugmentConfig | None = None,
        instructions: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.roots = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
        if not self.roots:
            raise ValueError("RecordSource needs at least one dataset folder")
        if isinstance(retrieval, Path | str) and str(retrieval).endswith(".jsonl") and len(self.roots) > 1:
            raise ValueError("a retrieval cache path serves one dataset folder; give a cache name for several")
        self.name = name
        self.k_docs = k_docs
        self.augment = augment if augment is not None else AugmentConfig()
        self.instructions = tuple(instructions) if instructions else None
        self.seed = seed
        wanted = None if splits is None else set(splits)
        self.records: list[tuple[int, PRGRecord]] = []
        self.ids: list[str] = []
        self._caches: list[RetrievalCache | None] = []
        self._groups: list[dict[str, str]] = []  # clause -> rule, to make answers cite what the prompt shows
        for i, root in enumerate(self.roots):
            info = read_info(root)
            recs = [r for r in iter_records(root) if wanted is None or r.split in wanted]
            cache = None
            if retrieval is not None:
                path = Path(retrieval) if str(retrieval).endswith(".jsonl") else cache_path(root, str(retrieval))
                cache = read_retrieval_cache(path)
                for r in recs:  # fail now, not in a worker an hour into training
                    cache.documents(r)
            self._caches.append(cache)
            self._groups.append(clause_groups(root) if cache is not None else {})
            for r in recs:
                self.records.append((i, r))
                self.ids.append(f"{info.name}/{r.id}" if len(self.roots) > 1 else r.id)

    def __len__(self) -> int:
        return len(self.records)

    def documents(self, index: int) -> list[PromptDocument]:
        root_i, record = self.records[index]
        cache = self._caches[root_i]
        if cache is None:
            return []
        docs = cache.documents(record)[: self.k_docs]
        return [PromptDocument(d["id"], d["text"]) for d in docs]

    def get(self, index: int, epoch: int = 0) -> TrainItem:
        root_i, record = self.records[index]
        rng = item_rng(self.seed, self.name, epoch, index)
        instruction = record.instruction
        if self.instructions is not None:
            instruction = self.instructions[int(rng.integers(len(self.instructions)))]
        rects = [[g.to_rect() for g in o.grasps] for o in record.target_objects()]
        image, rects, _, _ = augment_item(load_image(self.roots[root_i], record), rects, self.augment, rng)
        documents = self.documents(index)
        answer = record.answer
        if documents and self._groups[root_i]:
            gold = [(d.doc_id, d.clause) for d in record.documents]
            answer = align_citations(answer, gold, [d.label for d in documents], self._groups[root_i])
        return TrainItem(
            id=self.ids[index],
            source=self.name,
            image=image,
            instruction=instruction,
            documents=documents,
            answer=answer,
            pose_rects=rects,
            pose_categories=[o.category for o in record.target_objects()],
        )

    def __getitem__(self, index: int) -> TrainItem:
        return self.get(index)


def grasp_only_source(
    roots: str | Path | Sequence[str | Path],
    *,
    name: str = "grasp",
    splits: Iterable[str] | None = ("train",),
    instructions: Sequence[str] = GRASP_INSTRUCTIONS,
    augment: AugmentConfig | None = None,
    seed: int = 0,
) -> RecordSource:
    """Converted grasp-only data (Cornell, Jacquard: answer ``[POSE]``) as "pick up the object" turns, no
    documents."""
    return RecordSource(
        roots, name=name, splits=splits, retrieval=None, augment=augment, instructions=instructions, seed=seed
    )


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return to_rgb_array(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable image ({e})") from e


class VQASource:
    """Visual conversations as training items: each (user, assistant) pair of a sample is one item.

    The processor's prompt holds one user turn, so a multi-turn conversation becomes one item per pair (id
    ``<sample id>#<pair>``; a one-pair sample keeps its id): LLaVA-Instruct questions about one image mostly stand
    alone. Samples without an image are skipped (every PRG prompt has image slots), and so is a pair whose answer
    contains ``[POSE]`` (it would need a grasp target); both are counted in ``skipped``. Relative image paths
    resolve against ``image_root``. Augmentation defaults to colour only: answers say "on the left".
    """

    def __init__(
        self,
        samples: Iterable[VQASample],
        *,
        name: str = "vqa",
        image_root: str | Path | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.image_root = Path(image_root) if image_root is not None else None
        self.augment = augment if augment is not None else AugmentConfig.color_only()
        self.seed = seed
        self.items: list[tuple[str, str, str, str]] = []  # (id, image path, question, answer)
        self.skipped = 0
        for s in samples:
            if s.image is None:
                self.skipped += 1
                continue
            path = Path(s.image)
            if not path.is_absolute() and self.image_root is not None:
                path = self.image_root / path
            pairs = [(u, a) for u, a in zip(s.turns[::2], s.turns[1::2], strict=False)]
            for j, (u, a) in enumerate(pairs):
                if u.role != "user" or a.role != "assistant" or count_pose_tokens(a.text):
                    self.skipped += 1
                    continue
                self.items.append((f"{s.id}#{j}" if len(pairs) > 1 else s.id, str(path), u.text, a.text))

    @classmethod
    def from_llava(
        cls,
        json_path: str | Path,
        image_root: str | Path,
        *,
        name: str = "vqa",
        augment: AugmentConfig | None = None,
        seed: int = 0,
        report: ConvertReport | None = None,
    ) -> VQASource:
        """LLaVA-Instruct JSON (``prg.data.readers.llava``); entries whose image is missing are skipped there."""
        samples = read_llava_instruct(json_path, image_root, report=report)
        return cls(samples, name=name, image_root=image_root, augment=augment, seed=seed)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int, epoch: int = 0) -> TrainItem:
        item_id, path, question, answer = self.items[index]
        rng = item_rng(self.seed, self.name, epoch, index)
        image, _, _, _ = augment_item(_read_rgb(Path(path)), [], self.augment, rng)
        return TrainItem(
            id=item_id, source=self.name, image=image, instruction=question, documents=[], answer=answer, pose_rects=[]
        )

    def __getitem__(self, index: int) -> TrainItem:
        return self.get(index)


def scene_qa_source(
    roots: str | Path | Sequence[str | Path],
    *,
    name: str = "scene_qa",
    splits: Iterable[str] | None = ("train",),
    augment: AugmentConfig | None = None,
    seed: int = 0,
) -> VQASource:
    """Scene Q&A (:func:`prg.data.torch.scene_qa.scene_qa`) over the records of PRG dataset folders."""
    paths = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
    wanted = None if splits is None else set(splits)
    samples: list[VQASample] = []
    for root in paths:
        info = read_info(root)  # also a clear error for a folder that is no dataset
        prefix = f"{info.name}/" if len(paths) > 1 else ""
        for r in iter_records(root):
            if wanted is not None and r.split not in wanted:
                continue
            image = root / r.image
            with Image.open(image) as im:  # the header only: the size, for position words
                size = (im.height, im.width)
            for qa in scene_qa(r, size, root):
                samples.append(qa.model_copy(update={"id": prefix + qa.id, "image": str(image.resolve())}))
    return VQASource(samples, name=name, augment=augment, seed=seed)
