"""The PRG processor: everything between a request and the model's tensors, saved with every checkpoint.

Training, evaluation, the pipeline and the server all call this one object, so a model is served with exactly
the image geometry and the prompt it was trained with (lerobot's "processor" role):

* **Image geometry** (:func:`fit_images`, :class:`ImageMeta`): the longest side is resized to the tower's size
  (antialiased, one resampling filter for both towers), the image is anchored top-left and padded
  bottom/right. A pixel centre ``x`` maps to ``(x + 0.5) * s - 0.5``, the mapping of an ``align_corners=False``
  resize, so rectangles go to model pixels and back exactly (:meth:`ImageMeta.rect_to_model`). The vision tower
  (``s x s``) and F_enc (``S x S``) differ only in size and pixel statistics.
* **The prompt** (:class:`PromptTemplate`, data in the config): system text, one labelled line per retrieved
  document (the label is its citation, ``[EP-SAF-004 §4.2]``, so an answer can cite by id), the image slots, the
  user turn and the assistant turn. Every token carries its segment id (image, document, instruction, answer):
  AdaptiveMixture's router reads them and truncation cuts only documents.
* **Batches** (:meth:`PRGProcessor.pad`): left padding for generation, right padding for training, answer labels.
* **Targets** (:meth:`PRGProcessor.target_maps`): grasp rectangles given in original-image pixels -> the four
  grasp maps in F_enc's pixels.

Checkpoints written before the processor existed carry no ``processor`` entry; they load with
:meth:`ProcessorConfig.legacy`, the defaults they were built with (``[doc i]`` labels, bicubic VLM resize).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import PreTrainedTokenizerBase

from prg.grasp.maps import DEFAULT_WIDTH_SCALE
from prg.grasp.rect import GraspRect
from prg.tokens import IGNORE_INDEX, IMAGE_TOKEN, Segment

__all__ = [
    "ImageMeta",
    "PRGProcessor",
    "ProcessorConfig",
    "PromptDocument",
    "PromptTemplate",
    "TowerGeometry",
    "answer_labels",
    "build_prompt",
    "fit_images",
    "to_rgb_array",
]

RESAMPLE_MODES = ("bilinear", "bicubic")
DEFAULT_SYSTEM = "Answer using the documents and cite them. Mark each grasp with the pose token."


# --------------------------------------------------------------------------------------------------------------
# Image geometry


def to_rgb_array(img: Image.Image | np.ndarray) -> np.ndarray:
    """PIL image or uint8 array (grey, RGB, RGBA) -> contiguous ``[H x W x 3]`` uint8.

    Grey is replicated; an alpha channel is dropped (a camera frame's alpha carries no appearance).
    """
    arr = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) and img.mode not in ("L", "RGB") else img)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise ValueError(f"expected an [H x W], [H x W x 1|3|4] image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    out = np.ascontiguousarray(arr[:, :, :3])
    return out if out.flags.writeable else out.copy()  # torch.from_numpy needs a writable array


@dataclass(frozen=True)
class ImageMeta:
    """Geometry of one fitted image: resized to ``resized`` (h, w), then padded bottom/right to ``size x size``.
    ``original`` is (H, W)."""

    original: tuple[int, int]
    resized: tuple[int, int]
    size: int

    @property
    def scale(self) -> tuple[float, float]:
        """(sy, sx): model pixels per original pixel along each axis (equal up to rounding)."""
        return (self.resized[0] / self.original[0], self.resized[1] / self.original[1])

    @property
    def padding(self) -> tuple[int, int]:
        """(bottom, right) padding in model pixels."""
        return (self.size - self.resized[0], self.size - self.resized[1])

    def point_to_model(self, x: float, y: float) -> tuple[float, float]:
        sy, sx = self.scale
        return (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5

    def point_to_image(self, u: float, v: float) -> tuple[float, float]:
        sy, sx = self.scale
        return (u + 0.5) / sx - 0.5, (v + 0.5) / sy - 0.5

    def rect_to_model(self, rect: GraspRect) -> GraspRect:
        """A rectangle in original-image pixels -> the same rectangle in model (``size x size``) pixels."""
        sy, sx = self.scale
        s = math.sqrt(sx * sy)  # aspect is preserved up to rounding, so lengths scale by one factor
        u, v = self.point_to_model(rect.x, rect.y)
        return GraspRect(u, v, rect.width * s, rect.height * s, rect.angle, rect.quality)

    def rect_to_image(self, rect: GraspRect) -> GraspRect:
        """Inverse of :meth:`rect_to_model`."""
        sy, sx = self.scale
        s = math.sqrt(sx * sy)
        x, y = self.point_to_image(rect.x, rect.y)
        return GraspRect(x, y, rect.width / s, rect.height / s, rect.angle, rect.quality)


def fit_geometry(height: int, width: int, size: int) -> ImageMeta:
    """Where an ``height x width`` image lands in a ``size x size`` model input."""
    if height < 1 or width < 1:
        raise ValueError(f"empty image ({height} x {width})")
    scale = size / max(height, width)
    rh, rw = max(1, min(size, round(height * scale))), max(1, min(size, round(width * scale)))
    return ImageMeta(original=(height, width), resized=(rh, rw), size=size)


@dataclass(frozen=True)
class TowerGeometry:
    """What one image tower expects: input side, pixel statistics (0..1 units) and padding.

    ``pad="black"`` pads with black pixels (before normalisation), ``pad="mean"`` with the mean colour (zero
    after normalisation: SAM's padding, and LLaVA-1.5's square padding).
    """

    size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pad: str = "black"


def fit_images(
    images: Sequence[Image.Image | np.ndarray],
    tower: TowerGeometry,
    resample: str = "bilinear",
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, list[ImageMeta]]:
    """Images of any size/mode -> normalised ``pixel_values [B x 3 x size x size]`` and one :class:`ImageMeta` each.

    The resize (antialiased ``resample``) runs on ``device`` (default CPU), so on a GPU only uint8 pixels cross
    the bus. Written by hand rather than an HF image processor: those differ across transformers releases, and
    PRG needs the exact geometry (:class:`ImageMeta`) to map grasps and training targets.
    """
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
    if tower.pad not in ("black", "mean"):
        raise ValueError(f"pad must be 'black' or 'mean', got {tower.pad!r}")
    work = torch.device(device) if device is not None else torch.device("cpu")
    size = tower.size
    mean = torch.tensor(tower.mean, device=work).view(3, 1, 1)
    std = torch.tensor(tower.std, device=work).view(3, 1, 1)
    out = torch.zeros(len(images), 3, size, size, device=work) + (mean if tower.pad == "mean" else 0.0)
    metas: list[ImageMeta] = []
    for i, img in enumerate(images):
        rgb = to_rgb_array(img)
        meta = fit_geometry(rgb.shape[0], rgb.shape[1], size)
        rh, rw = meta.resized
        pixels = torch.from_numpy(rgb).to(work).permute(2, 0, 1)[None].float() / 255.0
        if (rh, rw) != rgb.shape[:2]:  # an image already at the tower's size is used as it is (the resize is exact)
            pixels = F.interpolate(pixels, size=(rh, rw), mode=resample, align_corners=False, antialias=True)
        out[i, :, :rh, :rw] = pixels[0].clamp(0.0, 1.0)
        metas.append(meta)
    return (out - mean) / std, metas


# --------------------------------------------------------------------------------------------------------------
# The prompt


@dataclass(frozen=True)
class PromptDocument:
    """A retrieved passage as the prompt shows it: ``label`` is how an answer cites it (``EP-SAF-004 §4.2``)."""

    label: str
    text: str


@dataclass
class PromptTemplate:
    """The prompt's text pieces (data, saved with the checkpoint). Layout, one line per piece::

        <bos> {header}                               [instruction]   header = "system: {system}\\n"
        {document}  (one per retrieved document)      [document]      "[{label}] {text}\\n"
        <image> x n_image_tokens                      [image]
        {user}                                        [instruction]   "\\nUSER: {instruction}\\nASSISTANT:"
        {answer}</s>                                  [answer]        " {answer}" (training only)

    ``unlabelled`` names a document given as a bare string (``{index}`` is its 1-based position).
    """

    system: str = DEFAULT_SYSTEM
    header: str = "system: {system}\n"
    document: str = "[{label}] {text}\n"
    user: str = "\nUSER: {instruction}\nASSISTANT:"
    answer: str = " {answer}"
    unlabelled: str = "doc {index}"
    turn: str = "\nUSER: {instruction}\nASSISTANT: {answer}"


def _encode(tokenizer: PreTrainedTokenizerBase, text: str, split_special: bool = True) -> list[int]:
    # split_special: a literal "<image>" or "[POSE]" inside a document or instruction must stay plain text,
    # otherwise it would add an image slot or a spurious pose position
    return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=split_special)) if text else []


def _as_document(doc: str | PromptDocument, index: int, template: PromptTemplate) -> PromptDocument:
    if isinstance(doc, PromptDocument):
        return doc
    return PromptDocument(template.unlabelled.format(index=index), str(doc))


def build_prompt(
    tokenizer: PreTrainedTokenizerBase,
    instruction: str,
    documents: Sequence[str | PromptDocument],
    n_image_tokens: int,
    answer: str | None = None,
    max_length: int | None = None,
    template: PromptTemplate | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> tuple[list[int], list[int]]:
    """Tokenise one PRG prompt (layout: :class:`PromptTemplate`); returns ``(input_ids, segment_ids)``, both of
    length ``L <= max_length``.

    ``history``: earlier ``(instruction, answer)`` turns of a conversation, oldest first, shown before the
    current instruction. A ``[POSE]`` in an earlier answer is plain text there: only the answer being generated
    (or trained) has pose positions.

    Truncation (when ``max_length`` is exceeded) touches documents first: documents are kept in retrieval order
    while they fit; the first one that does not fit is cut to the remaining budget (dropped if not even its
    label survives), and all later ones are dropped. Then, if the prompt still does not fit with no documents,
    the oldest earlier turns are dropped. The instruction, image and answer are never cut: if they alone exceed
    ``max_length`` a ``ValueError`` says by how much.
    """
    t = template or PromptTemplate()
    if n_image_tokens < 0:
        raise ValueError("n_image_tokens must be >= 0")
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    head = bos + _encode(tokenizer, t.header.format(system=t.system))
    tail = _encode(tokenizer, t.user.format(instruction=instruction))
    answer_ids: list[int] = []
    if answer is not None:
        answer_ids = [*_encode(tokenizer, t.answer.format(answer=answer), split_special=False), tokenizer.eos_token_id]
    fixed = len(head) + n_image_tokens + len(tail) + len(answer_ids)
    turns = [_encode(tokenizer, t.turn.format(instruction=q, answer=a)) for q, a in history]
    while turns and max_length is not None and fixed + sum(map(len, turns)) > max_length:
        turns.pop(0)  # the oldest turn goes first
    turn_ids = [i for ids in turns for i in ids]
    fixed += len(turn_ids)

    budget = None if max_length is None else max_length - fixed
    if budget is not None and budget < 0:
        raise ValueError(
            f"prompt does not fit max_length={max_length}: system + image ({n_image_tokens} tokens) + instruction"
            f" + answer need {fixed} tokens even with every document dropped"
        )

    doc_ids: list[int] = []
    for i, raw in enumerate(documents, start=1):
        doc = _as_document(raw, i, t)
        line = t.document.format(label=doc.label, text=doc.text, index=i)
        # the label is what a cut must keep: the text of its line before {text}
        label_part = t.document.split("{text}")[0].format(label=doc.label, index=i)
        header = _encode(tokenizer, label_part)
        body = _encode(tokenizer, line)
        if budget is not None and len(doc_ids) + len(body) > budget:
            room = budget - len(doc_ids)
            if room > len(header):  # keep a cut document only if some of its text survives
                doc_ids += body[:room]
            break
        doc_ids += body

    ids = head + doc_ids + [image_id] * n_image_tokens + turn_ids + tail + answer_ids
    seg = (
        [Segment.INSTRUCTION] * len(head)
        + [Segment.DOCUMENT] * len(doc_ids)
        + [Segment.IMAGE] * n_image_tokens
        + [Segment.INSTRUCTION] * (len(turn_ids) + len(tail))
        + [Segment.ANSWER] * len(answer_ids)
    )
    return ids, [int(s) for s in seg]


def answer_labels(input_ids: Sequence[int], segment_ids: Sequence[int]) -> list[int]:
    """LM labels for a built prompt: the token id on answer tokens, ``IGNORE_INDEX`` elsewhere."""
    return [t if s == Segment.ANSWER else IGNORE_INDEX for t, s in zip(input_ids, segment_ids, strict=True)]


# --------------------------------------------------------------------------------------------------------------
# The processor


@dataclass
class ProcessorConfig:
    """What the processor needs beyond the model's architecture; saved in every checkpoint's ``config.json``.

    ``resample`` is the one resampling filter of both towers; ``vision_resample`` overrides it for the vision
    tower only (legacy checkpoints, whose vision tower was fed bicubic resizes). The prompt length limit and the
    grasp-map width encoding are the model config's (``max_prompt_length``, ``width_scale``).
    """

    template: PromptTemplate = field(default_factory=PromptTemplate)
    resample: str = "bilinear"
    vision_resample: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessorConfig:
        d = dict(data)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown processor settings {sorted(unknown)}")
        template = d.pop("template", None)
        tmpl = PromptTemplate(**template) if isinstance(template, Mapping) else PromptTemplate()
        cfg = cls(template=tmpl, **d)
        for mode in (cfg.resample, cfg.vision_resample):
            if mode is not None and mode not in RESAMPLE_MODES:
                raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {mode!r}")
        return cfg

    @classmethod
    def legacy(cls) -> ProcessorConfig:
        """The settings of checkpoints saved before the processor existed: ``[doc i]`` labels, bicubic VLM input."""
        return cls(template=PromptTemplate(document="[doc {index}] {text}\n"), vision_resample="bicubic")


class PRGProcessor:
    """Images, prompts, batches and grasp targets for one model (tokenizer + tower geometries + config)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: ProcessorConfig,
        vision: TowerGeometry,
        encoder: TowerGeometry,
        num_image_tokens: int,
        max_prompt_length: int | None = None,
        width_scale: float = DEFAULT_WIDTH_SCALE,
    ) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.max_prompt_length = max_prompt_length
        self.width_scale = width_scale
        self.vision = vision
        self.encoder = encoder
        self.num_image_tokens = num_image_tokens
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a pad token")
        self.pad_token_id = int(tokenizer.pad_token_id)

    # -- images ----------------------------------------------------------------------------------------------
    def vision_pixels(self, images: Sequence[Image.Image | np.ndarray], device: Any = None) -> torch.Tensor:
        """``pixel_values [B x 3 x s x s]`` for the VLM's vision tower."""
        mode = self.config.vision_resample or self.config.resample
        return fit_images(images, self.vision, mode, device)[0]

    def encoder_pixels(
        self, images: Sequence[Image.Image | np.ndarray], device: Any = None
    ) -> tuple[torch.Tensor, list[ImageMeta]]:
        """``sam_pixel_values [B x 3 x S x S]`` for F_enc and the geometry that maps grasps back."""
        return fit_images(images, self.encoder, self.config.resample, device)

    def encoder_meta(self, height: int, width: int) -> ImageMeta:
        return fit_geometry(height, width, self.encoder.size)

    def target_maps(self, rects_per_pose: Sequence[Sequence[GraspRect]], metas: Sequence[ImageMeta]) -> torch.Tensor:
        """Rectangles in ORIGINAL-image pixels, one list (and one meta) per ``[POSE]`` -> ``[N x 4 x S x S]``."""
        from prg.model.losses import target_maps  # lazy: keeps the loss module off inference imports

        if len(rects_per_pose) != len(metas):
            raise ValueError(f"{len(metas)} image geometries for {len(rects_per_pose)} poses")
        model_rects = [[m.rect_to_model(r) for r in rects] for rects, m in zip(rects_per_pose, metas, strict=True)]
        return target_maps(model_rects, self.encoder.size, self.width_scale)

    def target_rects(
        self, rects_per_pose: Sequence[Sequence[GraspRect]], metas: Sequence[ImageMeta]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`target_maps`, but the rectangles in model pixels, packed (``[N x R x 5]``, ``[N x R]``) for
        :func:`prg.model.losses.rasterise_rects` on the training device."""
        from prg.model.losses import pack_rects

        if len(rects_per_pose) != len(metas):
            raise ValueError(f"{len(metas)} image geometries for {len(rects_per_pose)} poses")
        return pack_rects([[m.rect_to_model(r) for r in rects] for rects, m in zip(rects_per_pose, metas, strict=True)])

    # -- prompts ---------------------------------------------------------------------------------------------
    def tokenize(
        self,
        instruction: str,
        documents: Sequence[str | PromptDocument] = (),
        answer: str | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> tuple[list[int], list[int]]:
        """One prompt -> ``(input_ids, segment_ids)`` (documents cut first to ``max_prompt_length``, then the
        oldest earlier turns of ``history``)."""
        return build_prompt(
            self.tokenizer,
            instruction,
            documents,
            self.num_image_tokens,
            answer=answer,
            max_length=self.max_prompt_length,
            template=self.config.template,
            history=history,
        )

    def pad(self, built: Sequence[tuple[Sequence[int], Sequence[int]]], side: str = "left") -> dict[str, torch.Tensor]:
        """Pad tokenised prompts to one length -> ``input_ids``, ``attention_mask``, ``segment_ids`` and
        ``labels`` (answer tokens only), each ``[B x T]``. ``side="left"`` for generation, ``"right"`` for training.
        """
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        b = len(built)
        t = max((len(ids) for ids, _ in built), default=0)
        input_ids = torch.full((b, t), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros(b, t, dtype=torch.long)
        segments = torch.full((b, t), int(Segment.INSTRUCTION), dtype=torch.long)  # pads: any valid id
        labels = torch.full((b, t), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, seg) in enumerate(built):
            n = len(ids)
            sl = slice(t - n, t) if side == "left" else slice(0, n)
            input_ids[i, sl] = torch.tensor(list(ids), dtype=torch.long)
            mask[i, sl] = 1
            segments[i, sl] = torch.tensor(list(seg), dtype=torch.long)
            labels[i, sl] = torch.tensor(answer_labels(ids, seg), dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": mask, "segment_ids": segments, "labels": labels}

    def encode_prompts(
        self,
        instructions: Sequence[str],
        documents: Sequence[Sequence[str | PromptDocument]] | None = None,
        answers: Sequence[str | None] | None = None,
        side: str = "left",
        histories: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Tokenise and pad a batch of prompts (see :meth:`tokenize` and :meth:`pad`)."""
        docs = documents if documents is not None else [[] for _ in instructions]
        ans = answers if answers is not None else [None for _ in instructions]
        hist = histories if histories is not None else [() for _ in instructions]
        if len(docs) != len(instructions) or len(ans) != len(instructions) or len(hist) != len(instructions):
            raise ValueError(
                f"{len(docs)} document lists / {len(ans)} answers / {len(hist)} histories for "
                f"{len(instructions)} instructions"
            )
        built = [self.tokenize(i, d, a, h) for i, d, a, h in zip(instructions, docs, ans, hist, strict=True)]
        return self.pad(built, side)
