"""From a :class:`~prg.train.config.TrainConfig` to batches: sources, the retrieval cache, mixing, collation.

:func:`prepare_data` (main process, before training) builds each PRG source's retrieval cache with the pipeline's
own retrieval step when it is missing; :func:`build_stream` makes this process's :class:`BatchStream`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from prg.train.config import TrainConfig

__all__ = [
    "BatchStream",
    "build_sources",
    "build_stream",
    "make_prompt_validator",
    "make_validator",
    "prepare_data",
    "prompt_vocab",
    "validation_items",
]


def prepare_data(cfg: TrainConfig, progress: bool = True) -> None:
    """Build the missing retrieval caches (``<dataset>/retrieval/<name>.jsonl``) from ``cfg.data.index``."""
    from prg.data.torch.retrieval_cache import build_retrieval_cache, cache_path

    todo = [
        s for s in cfg.data.sources if s.kind == "prg" and not cache_path(s.path, cfg.data.retrieval_cache).exists()
    ]
    if not todo:
        return
    if cfg.data.index is None:
        raise FileNotFoundError(
            f"{cache_path(todo[0].path, cfg.data.retrieval_cache)} is missing and data.index is not set: give the "
            "document index whose retrieval the prompts should hold (prg index build DOCS --out INDEX)"
        )
    from prg.pipeline import PipelineConfig, PRGPipeline
    from prg.retrieval.retriever import Retriever

    pipe = PRGPipeline(
        model=None, retriever=Retriever.open(cfg.data.index), config=PipelineConfig(k_docs=cfg.data.k_docs)
    )
    try:
        for s in todo:
            build_retrieval_cache(
                s.path,
                lambda text, image, depth: pipe.retrieve(text, image, depth)[0],
                cfg.data.k_docs,
                cache_path(s.path, cfg.data.retrieval_cache),
                index=str(cfg.data.index),
                progress=progress,
            )
    finally:
        pipe.close()


def prompt_vocab(cfg: TrainConfig) -> list[str]:
    """The category vocabulary of the config's ``grasp_prompt`` sources (empty without any)."""
    from prg.data.torch.prompts import category_vocab

    prompted = [s for s in cfg.data.sources if s.kind == "grasp_prompt"]
    if not prompted:
        return []
    return category_vocab([s.path for s in prompted], sorted({sp for s in prompted for sp in s.splits}))


def build_sources(
    cfg: TrainConfig, split: str | None = None, augment: bool | None = None, vocab: list[str] | None = None
) -> list[Any]:
    """One data source per ``cfg.data.sources`` entry (named ``<kind><i>``); ``split`` overrides their splits.
    ``vocab``: the model's prompt vocabulary for ``grasp_prompt`` sources (default: :func:`prompt_vocab`)."""
    from prg.data.torch.augment import AugmentConfig
    from prg.data.torch.prompts import PromptSource
    from prg.data.torch.sources import RecordSource, VQASource, grasp_only_source, scene_qa_source

    aug = cfg.data.augment if augment is None else augment
    out: list[Any] = []
    for i, s in enumerate(cfg.data.sources):
        name = f"{s.kind}{i}"
        splits = [split] if split is not None else list(s.splits)
        seed = cfg.data.seed
        if s.kind == "prg":
            out.append(
                RecordSource(
                    s.path, name=name, splits=splits, retrieval=cfg.data.retrieval_cache, k_docs=cfg.data.k_docs,
                    augment=AugmentConfig() if aug else AugmentConfig.none(), seed=seed,
                )
            )  # fmt: skip
        elif s.kind == "grasp":
            out.append(
                grasp_only_source(
                    s.path,
                    name=name,
                    splits=splits,
                    augment=AugmentConfig() if aug else AugmentConfig.none(),
                    seed=seed,
                )
            )
        elif s.kind == "grasp_prompt":
            words = prompt_vocab(cfg) if vocab is None else vocab
            out.append(
                PromptSource(
                    s.path, words, name=name, splits=splits,
                    augment=AugmentConfig() if aug else AugmentConfig.none(), seed=seed,
                    absent_prompts=cfg.data.absent_prompts,
                )
            )  # fmt: skip
        elif s.kind == "scene_qa":
            colour = AugmentConfig.color_only() if aug else AugmentConfig.none()
            out.append(scene_qa_source(s.path, name=name, splits=splits, augment=colour, seed=seed))
        else:  # vqa: a LLaVA-Instruct JSON file; images relative to its folder
            p = Path(s.path)
            out.append(VQASource.from_llava(p, p.parent, name=name, seed=seed))
    return out


class BatchStream:
    """This process's batches, in an order that depends only on the seed (see the trainer's docstring).

    A DataLoader (``num_workers`` processes) loads and collates ahead; the sampler therefore runs ahead of the
    batches the trainer has used, and :meth:`state_dict` reports the position after the *used* ones.
    """

    def __init__(self, dataset: Any, sampler: Any, processor: Any, batch_size: int, num_workers: int = 0) -> None:
        from prg.data.torch.collate import collate

        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_workers = num_workers
        self._collate = partial(collate, processor=processor)
        self._start = sampler.yielded
        self._used = 0
        self._it: Any = None

    def _loader(self) -> Any:
        from torch.utils.data import DataLoader

        return iter(
            DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                sampler=self.sampler,
                collate_fn=self._collate,
                num_workers=self.num_workers,
                persistent_workers=False,
                prefetch_factor=2 if self.num_workers else None,
            )
        )

    def next_batch(self) -> dict[str, Any]:
        if self._it is None:
            self._it = self._loader()
        batch = next(self._it)
        self._used += 1
        batch.pop("sources", None)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict(at=self._start + self._used * self.batch_size)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self._start = self.sampler.yielded
        self._used = 0
        self._it = None


def build_stream(cfg: TrainConfig, model: Any, rank: int = 0, world: int = 1, num_workers: int = 0) -> BatchStream:
    from prg.data.torch.mixture import MixtureDataset

    sources = build_sources(cfg, vocab=list(model.config.prompt_vocab))
    data = MixtureDataset(sources)
    rates = {src.name: s.rate for src, s in zip(sources, cfg.data.sources, strict=True)}
    sampler = data.sampler(rates, seed=cfg.seed, rank=rank, world_size=world)
    return BatchStream(data, sampler, model.processor, cfg.batch_size, num_workers)


def validation_items(cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """The first ``val_records`` records of the PRG sources' ``val_split`` as (items, (root, record) pairs)."""
    from prg.data.torch.augment import AugmentConfig
    from prg.data.torch.sources import RecordSource

    items: list[Any] = []
    records: list[Any] = []
    for i, s in enumerate(cfg.data.sources):
        if s.kind != "prg":
            continue
        src = RecordSource(
            s.path, name=f"val{i}", splits=[cfg.data.val_split], retrieval=cfg.data.retrieval_cache,
            k_docs=cfg.data.k_docs, augment=AugmentConfig.none(),
        )  # fmt: skip
        for j in range(len(src)):
            if len(items) >= cfg.data.val_records:
                break
            items.append(src.get(j))
            records.append((Path(s.path), src.records[j][1]))
    return items, records


def make_validator(cfg: TrainConfig) -> Any:
    """``validate(model, step) -> metrics``: the loss on the validation records and, through the pipeline, target
    recognition and grasp success on them (documents: the same cached retrieval the prompts hold)."""
    import torch

    from prg.data.torch.collate import collate
    from prg.eval.model import score, summarise_records
    from prg.pipeline import CitationOut, PRGPipeline, PRGRequest
    from prg.retrieval.rules import clause_groups

    if any(s.kind == "grasp_prompt" for s in cfg.data.sources):
        return make_prompt_validator(cfg)
    items, records = validation_items(cfg)
    if not items:
        return None
    groups = {root: clause_groups(root) for root, _ in records}

    def docs(item: Any) -> list[CitationOut]:
        return [CitationOut.from_label(d.label, d.text, r) for r, d in enumerate(item["documents"], start=1)]

    def validate(model: Any, step: int) -> dict[str, float]:
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        losses = []
        with torch.no_grad():
            for i in range(0, len(items), cfg.batch_size):
                batch = collate(items[i : i + cfg.batch_size], model.processor)
                batch = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
                losses.append(float(model(batch)["loss"]))
        pipe = PRGPipeline(model)
        reqs = [PRGRequest(it["image"], it["instruction"], documents=docs(it)) for it in items]
        results = []
        for i in range(0, len(reqs), cfg.batch_size):
            results += pipe.batch(reqs[i : i + cfg.batch_size])
        rows = [score(root, rec, res, groups[root], k=5) for (root, rec), res in zip(records, results, strict=True)]
        model.train(was)
        return {"val_loss": sum(losses) / len(losses), **summarise_records(rows, text=False)}

    return validate


def prompt_grasp_hits(maps: Any, batch: Any, width_scale: float) -> int:
    """How many prompts' top-1 rectangle, decoded from their model-space maps ``[N x 4 x S x S]`` as the pipeline
    decodes them, passes the rectangle metric against the prompted object's own rectangles (``target_rects``)."""
    from prg.grasp.metrics import grasp_success
    from prg.grasp.rect import GraspRect
    from prg.model.map_decode import decode_maps

    hits = 0
    params, valid = batch["target_rects"].tolist(), batch["target_valid"].tolist()
    for m, rows, ok in zip(maps, params, valid, strict=True):
        gts = [GraspRect(*row) for row, v in zip(rows, ok, strict=True) if v]
        rects = decode_maps(m, k=1, width_scale=width_scale)
        hits += bool(rects and gts and grasp_success(rects[0], gts))
    return hits


def make_prompt_validator(cfg: TrainConfig) -> Any:
    """Stage 1's validation: the loss on category prompts of the first ``val_records`` val scenes,
    ``prompt_hit``, the share of prompts whose quality peak lies within 8 model pixels of the prompted
    object's grasp region (a proxy of target recognition that needs no language model), and ``prompt_grasp``,
    the share whose top-1 decoded rectangle passes the rectangle metric against that object's rectangles. With
    ``data.absent_prompts``, each val scene also prompts one absent category: ``absent_quiet`` is the share of
    those that decode no grasp."""
    import torch

    from prg.data.torch.augment import AugmentConfig
    from prg.data.torch.prompts import PromptSource, collate_prompts
    from prg.model.losses import batch_target_maps

    def validate(model: Any, step: int) -> dict[str, float]:
        sources = [
            PromptSource(s.path, model.config.prompt_vocab, name=f"val{i}", splits=[cfg.data.val_split],
                         point_rate=0.0, point_jitter=0.0, augment=AugmentConfig.none(),
                         absent_prompts=1 if cfg.data.absent_prompts else 0)
            for i, s in enumerate(cfg.data.sources)
        ]  # fmt: skip
        items = [src.get(j) for src in sources for j in range(len(src))][: cfg.data.val_records]
        if not items:
            return {}
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        from prg.model.map_decode import decode_maps

        losses, hits, grasps, total, quiet, absent = [], 0, 0, 0, 0, 0
        with torch.no_grad():
            for i in range(0, len(items), cfg.batch_size):
                batch = collate_prompts(items[i : i + cfg.batch_size], model.processor)
                batch = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
                losses.append(float(model(batch)["loss"]))
                decoder = model.grasp_head.decoder
                emb = model.image_encoder(batch["sam_pixel_values"])
                prompts = model.prompt_table(batch["prompt_kind"], batch["prompt_category"], batch["prompt_points"],
                                             decoder)  # fmt: skip
                maps = decoder(prompts, emb, batch["prompt_image_index"]).float()
                present = batch["target_valid"].any(1)  # absent-category prompts have no grasp
                region = batch_target_maps(batch, model.map_size, model.config.width_scale)[:, 0] > 0
                near = torch.nn.functional.max_pool2d(region[:, None].float(), 17, stride=1, padding=8)[:, 0] > 0
                peak = maps[:, 0].flatten(1).argmax(1)
                hits += int((near.flatten(1).gather(1, peak[:, None])[:, 0] & present).sum())
                on = {"target_rects": batch["target_rects"][present], "target_valid": batch["target_valid"][present]}
                grasps += prompt_grasp_hits(maps[present], on, model.config.width_scale)
                total += int(present.sum())
                quiet += sum(not decode_maps(m, k=1, width_scale=model.config.width_scale) for m in maps[~present])
                absent += int((~present).sum())
        model.train(was)
        out = {"val_loss": sum(losses) / len(losses), "prompt_hit": hits / max(1, total),
               "prompt_grasp": grasps / max(1, total), "n": float(total)}  # fmt: skip
        if absent:  # the share of absent-category prompts that decode no grasp: "not here"
            out |= {"absent_quiet": quiet / absent, "n_absent": float(absent)}
        return out

    return validate
