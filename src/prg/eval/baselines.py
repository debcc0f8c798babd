"""Baselines that answer the same requests as the pipeline, so :func:`prg.eval.model.evaluate_model` scores them.

* :class:`ModularBaseline`, retrieve-then-detect with no language model. It reads the top document, picks the
  first catalogue tool that document names, and grounds that tool with the model's stage-1 category prompt
  (``PromptTable`` + F_enc + F_dec). It grasps it and answers "<tool> [POSE] (<citation>)". This is a strong baseline:
  the VLM must beat it, or the report must say where it does not. It needs a model trained with the small recipe
  (a prompt table), and the documents in the request (``--docs cache`` or ``oracle``).
* :class:`DetectorBaseline`, a language-free grasp detector (GR-ConvNet's setting): the trained F_enc + F_dec, every
  stage-1 category row as prompt in turn, and the grasps of the prompt whose quality map peaks highest: the
  best-looking grasp on any tool in the scene, with no reading at all. Target recognition should sit near chance
  (one of the 3-8 objects) while the object-agnostic grasp quality (``any_object_success``) stays high. One fixed
  prompt, the mean row, was tried first: on the shipped checkpoint's test split it reached 17.8% any-object
  success (out of the decoder's distribution).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["DetectorBaseline", "ModularBaseline", "catalogue_names"]


def ground(model: Any, image: Any, prompts: torch.Tensor, k: int, best_only: bool = False) -> list[list[Any]]:
    """F_enc once, F_dec for each prompt embedding of ``prompts [P x D]``, on one image: per prompt up to ``k``
    ``GraspOut``, best first. ``best_only``: decode only the prompt whose quality map peaks highest (one list)."""
    from prg.model.grasp_head import maps_to_image
    from prg.model.map_decode import decode_maps
    from prg.pipeline import GraspOut

    device = next(model.parameters()).device
    sam, metas = model.processor.encoder_pixels([image], device=device)
    emb = model.image_encoder(sam.to(device))
    index = torch.zeros(prompts.shape[0], dtype=torch.long, device=device)
    maps = model.grasp_head.decoder(prompts, emb, index)
    if best_only:  # decoding (resize, blur, peaks) costs more than the decoder: only the best map
        maps = maps[int(maps[:, 0].flatten(1).amax(1).argmax())][None]
    return [
        [GraspOut.from_rect(r) for r in decode_maps(maps_to_image(m, metas[0]).float(), k=k,
                                                    width_scale=model.config.width_scale)]
        for m in maps
    ]  # fmt: skip


def catalogue_names(dataset: Any) -> dict[str, str]:
    """Tool name -> catalogue category over a dataset folder's records (every object, every split)."""
    from prg.data.dataset import iter_records

    return {o.name: o.category for r in iter_records(dataset) for o in r.objects}


class ModularBaseline:
    """``batch(requests, k_docs, k_grasps) -> list[PRGResult]`` without generation (see the module docstring)."""

    def __init__(self, model: Any, names: Mapping[str, str]) -> None:
        if getattr(model, "prompt_table", None) is None:
            raise ValueError("the modular baseline grounds tools with the model's stage-1 prompt table; this "
                             "checkpoint has none (train it with the small recipe's stage 1)")  # fmt: skip
        self.model = model
        table = model.prompt_table.index
        # longest names first, so "insulated screwdriver" wins over "screwdriver"
        self.names = sorted(((n, c) for n, c in names.items() if c in table), key=lambda x: -len(x[0]))
        self.retriever = None

    def choose(self, text: str) -> tuple[str, str] | None:
        """The catalogue tool the text names first (its earliest mention), as (name, category)."""
        best: tuple[int, str, str] | None = None
        lower = text.lower()
        for name, cat in self.names:
            m = re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", lower)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), name, cat)
        return None if best is None else (best[1], best[2])

    @torch.no_grad()
    def batch(self, requests: Sequence[Any], k_docs: int | None = None, k_grasps: int | None = None) -> list[Any]:
        from prg.pipeline import PRGResult

        model = self.model.eval()
        device = next(model.parameters()).device
        out = []
        for req in requests:
            image, instruction, _, _ = req.checked()
            docs = list(req.documents or [])[: k_docs or 3]
            pick = self.choose(docs[0].text) if docs else None
            grasps: list[list[Any]] = []
            answer = "I cannot tell which tool this needs."
            cited = []
            if pick is not None:
                name, cat = pick
                kind = torch.zeros(1, dtype=torch.long, device=device)
                index = torch.tensor([model.prompt_table.index[cat]], device=device)
                prompt = model.prompt_table(kind, index, torch.zeros(1, 2, device=device), model.grasp_head.decoder)
                grasps = ground(model, image, prompt, k_grasps or 5)
                answer = f"The {name} [POSE] ({docs[0].id})."
                cited = [docs[0].model_copy(update={"cited": True})]
            h, w = image.shape[:2]
            out.append(
                PRGResult(
                    instruction=instruction,
                    answer=answer,
                    citations=cited,
                    retrieved=[d.model_copy(update={"rank": i + 1}) for i, d in enumerate(docs)],
                    grasps=grasps,
                    image_size=(w, h),
                )
            )
        return out

    def close(self) -> None:
        return None


class DetectorBaseline:
    """``batch(requests, k_docs, k_grasps) -> list[PRGResult]``: one grasp list from a fixed prompt, no reading
    (see the module docstring). Needs a model with a stage-1 prompt table."""

    def __init__(self, model: Any) -> None:
        if getattr(model, "prompt_table", None) is None:
            raise ValueError("the detector baseline prompts F_dec with the mean stage-1 category row; this checkpoint "
                             "has no prompt table (train it with the small recipe's stage 1)")  # fmt: skip
        self.model = model
        self.retriever = None

    @torch.no_grad()
    def batch(self, requests: Sequence[Any], k_docs: int | None = None, k_grasps: int | None = None) -> list[Any]:
        from prg.pipeline import PRGResult

        model = self.model.eval()
        rows = model.prompt_table.categories.weight  # [C x D]
        out = []
        for req in requests:
            image, instruction, _, _ = req.checked()
            h, w = image.shape[:2]
            # the best-scoring top-1 over every category prompt: the best-looking grasp on any tool
            (best,) = ground(model, image, rows, k_grasps or 5, best_only=True)
            out.append(
                PRGResult(
                    instruction=instruction,
                    answer="[POSE]",
                    citations=[],
                    retrieved=[],
                    grasps=[best],
                    image_size=(w, h),
                )
            )
        return out

    def close(self) -> None:
        return None
