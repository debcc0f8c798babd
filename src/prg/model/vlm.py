"""The PRG vision-language model: vision tower -> projector -> HF causal LM, with ``[POSE]`` hidden states.

Composition follows ``LlavaForConditionalGeneration``: the prompt holds one ``<image>`` token per image feature,
and the projected features replace those tokens' embeddings 1:1. The sequence length therefore never changes, so
hidden states line up with ``input_ids`` and the language model's own KV cache works unchanged.

Which hidden state is "the pose": the last-layer hidden state (after the final norm, i.e. what ``lm_head`` reads)
at the position whose *input* token is ``[POSE]``. In training (teacher forcing) that is the position holding
``[POSE]``; in generation it is computed when the generated ``[POSE]`` is fed back as the next step's input. Both
are the representation of the ``[POSE]`` token itself, so training and inference read the same quantity.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

import torch
from torch import nn
from transformers import PreTrainedModel

from prg.model.processor import TowerGeometry
from prg.tokens import IGNORE_INDEX

DECODE_MODES = ("dynamic", "static", "compiled")

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(input_ids [B x T], scores [B x V]) -> scores``; the same call signature as HF ``LogitsProcessor``."""


class VisionTower(Protocol):
    """Any module mapping ``pixel_values [B x 3 x S x S]`` to features ``[B x num_image_tokens x hidden_size]``."""

    image_size: int
    num_image_tokens: int
    hidden_size: int

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor: ...


@dataclass
class TinyVisionConfig:
    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 32
    num_layers: int = 1
    num_heads: int = 2

    @property
    def num_image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class TinyVisionTower(nn.Module):
    """Conv patch embedding + a few pre-norm transformer layers; random weights, for tests and the tiny preset."""

    def __init__(self, config: TinyVisionConfig) -> None:
        super().__init__()
        if config.image_size % config.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        self.config = config
        self.image_size = config.image_size
        self.num_image_tokens = config.num_image_tokens
        self.hidden_size = config.hidden_size
        d = config.hidden_size
        self.patch = nn.Conv2d(3, d, kernel_size=config.patch_size, stride=config.patch_size)
        self.pos = nn.Parameter(torch.randn(1, config.num_image_tokens, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, config.num_heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B x 3 x S x S]`` -> ``[B x (S/p)^2 x D]``."""
        x = self.patch(pixel_values).flatten(2).transpose(1, 2) + self.pos  # (B, n, D), row-major patches
        return self.norm(self.blocks(x))


class VLMOutput(NamedTuple):
    loss: torch.Tensor | None  # scalar, when labels were given
    logits: torch.Tensor  # [B x T x V]
    pose_hidden: torch.Tensor  # [N x H], one row per [POSE] input token, in (batch, position) order
    pose_index: tuple[torch.Tensor, torch.Tensor]  # (batch idx [N], position [N])


@dataclass
class GenerationOutput:
    sequences: torch.Tensor  # [B x T_new] generated ids only; pad after a sample's eos
    pose_hidden: list[torch.Tensor] = field(default_factory=list)  # per sample [n_pose_i x H], may be [0 x H]


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip padding: ``[B x T]`` mask -> ``[B x T]`` (pads get 0). Needed for left padding."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class PRGVisionLanguageModel(nn.Module):
    """Vision tower + Linear-GELU-Linear projector + any HF causal LM whose vocabulary holds the PRG tokens."""

    def __init__(
        self,
        vision_tower: nn.Module,
        language_model: PreTrainedModel,
        image_token_id: int,
        pose_token_id: int,
        pad_token_id: int,
        eos_token_id: int | Sequence[int],
    ) -> None:
        super().__init__()
        self.vision_tower = vision_tower
        self.language_model = language_model
        spec = cast(VisionTower, vision_tower)
        # image geometry comes from the vision tower's own configuration, never from a constant
        self.num_image_tokens = int(spec.num_image_tokens)
        self.image_size = int(spec.image_size)
        self.hidden_size = int(language_model.config.hidden_size)
        h, dv = self.hidden_size, int(spec.hidden_size)
        self.projector = nn.Sequential(nn.Linear(dv, h), nn.GELU(), nn.Linear(h, h))
        self.image_token_id = image_token_id
        self.pose_token_id = pose_token_id
        self.pad_token_id = pad_token_id
        self.eos_token_ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
        # pixel statistics the tower was trained with (towers may declare them; 0.5 otherwise)
        self.image_mean = tuple(getattr(vision_tower, "image_mean", (0.5, 0.5, 0.5)))
        self.image_std = tuple(getattr(vision_tower, "image_std", (0.5, 0.5, 0.5)))
        self.image_pad = str(getattr(vision_tower, "pad", "black"))
        self._compiled_step: Callable[..., Any] | None = None
        self._static_caches: dict[tuple[int, int, str], Any] = {}  # see generate(decode="static")

    @property
    def geometry(self) -> TowerGeometry:
        """Input side, pixel statistics and padding of the vision tower (the processor fits images to it)."""
        mean, std = self.image_mean, self.image_std
        return TowerGeometry(self.image_size, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), self.image_pad)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B x 3 x S x S]`` -> projected features ``[B x n_img x H]``."""
        return self.projector(self.vision_tower(pixel_values))

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings ``[B x T x H]`` with image ``b``'s features at sample ``b``'s ``<image>`` positions."""
        embeds = self.language_model.get_input_embeddings()(input_ids)
        is_image = input_ids == self.image_token_id
        counts = is_image.sum(1)
        if pixel_values is None:
            if counts.any():
                raise ValueError("input_ids contain <image> tokens but no pixel_values were given")
            return embeds
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(f"{pixel_values.shape[0]} images for a batch of {input_ids.shape[0]} (one per sample)")
        n = self.num_image_tokens
        if (counts != n).any():
            raise ValueError(
                f"each sample needs exactly {n} <image> tokens (the vision tower's num_image_tokens); "
                f"got {counts.tolist()}"
            )
        feats = self.encode_images(pixel_values).to(embeds.dtype)
        # masked_scatter fills True positions in row-major order: sample b's slots take feats[b] in patch order
        return embeds.masked_scatter(is_image.unsqueeze(-1), feats)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> VLMOutput:
        """Teacher-forced pass over ``[B x T]`` tokens; the pose hidden states are read where the input is [POSE]."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if labels is not None:  # image slots are never prediction targets
            labels = labels.masked_fill(input_ids == self.image_token_id, IGNORE_INDEX)
        out = self.language_model(
            inputs_embeds=self.embed(input_ids, pixel_values),
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            labels=labels,
            use_cache=False,
            output_hidden_states=True,
        )
        pose_index = torch.nonzero((input_ids == self.pose_token_id) & attention_mask.bool(), as_tuple=True)
        hidden = out.hidden_states[-1]  # (B, T, H), after the final norm
        return VLMOutput(out.loss, out.logits, hidden[pose_index], (pose_index[0], pose_index[1]))

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        max_new_tokens: int = 64,
        eos_token_id: int | Sequence[int] | None = None,
        logits_processor: LogitsProcessor | None = None,
        decode: str = "dynamic",
        on_token: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
    ) -> GenerationOutput:
        """Greedy decoding with the LM's KV cache; collects one hidden state ``[H]`` per generated [POSE].

        ``input_ids [B x T]`` must be LEFT padded (every row ends with a real token). A small explicit loop rather
        than ``PreTrainedModel.generate``: the pose hidden state is the output of the step that *feeds* [POSE]
        back, which HF's generate only exposes through per-step hidden-state dumps of every layer or hooks; here
        it is one line, and a [POSE] emitted as the very last token gets its one extra cached step.

        ``decode``: ``"dynamic"`` (HF ``DynamicCache``, the default), ``"static"`` (a preallocated
        ``StaticCache``: every decode step has the same shapes) or ``"compiled"`` (static, and the one-token step
        compiled with CUDA graphs, ``torch.compile(mode="reduce-overhead")``: on a GPU this removes the per-kernel
        launch cost that otherwise dominates batch-1 decoding). All three give the same tokens and pose states.

        ``on_token(token [B], finished [B])``: called after every step with the token each sample produced (pad
        once it had finished) and whether it has now finished (its eos included), for streaming. It reads the
        tokens on the host, so it adds one device sync per step: leave it None when not streaming. It may return
        a ``[B]`` bool mask (tensor or list) of samples to stop now, as if they had produced eos (a client that
        disconnected); None stops nothing.
        """
        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, got {decode!r}")
        eos = torch.tensor(self.eos_token_ids if eos_token_id is None else _as_list(eos_token_id))
        eos = eos.to(input_ids.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if not attention_mask[:, -1].all():
            raise ValueError("generate needs left padding: the last prompt token of every sample must be real")
        batch, prompt_len = input_ids.shape
        lm = self.language_model
        positions = position_ids_from_mask(attention_mask)
        cache: Any = None
        step_mask = attention_mask
        if decode != "dynamic":
            from transformers import StaticCache

            # lengths rounded up to 256 so that requests of similar size reuse one compiled step
            max_len = -(-(prompt_len + max_new_tokens + 1) // 256) * 256
            # One cache per (batch, length), reused and reset: the compiled step's CUDA graphs are recorded for
            # the cache tensors' addresses, so a fresh cache per request would re-record them every time.
            key = (batch, max_len, str(input_ids.device))
            cache = self._static_caches.get(key)
            if cache is None:
                cache = self._static_caches[key] = StaticCache(config=lm.config, max_cache_len=max_len)
            else:
                cache.reset()
            # one fixed-shape mask for every step: the prompt's padding, then ones (causality hides the future)
            step_mask = torch.cat([attention_mask, attention_mask.new_ones(batch, max_len - prompt_len)], 1)
        out = lm(
            inputs_embeds=self.embed(input_ids, pixel_values),
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_arg: cache},
        )
        cache, logits = _cache_of(out), out.logits[:, -1]
        step = self._decode_step
        if decode == "compiled":
            if self._compiled_step is None:
                # = mode "reduce-overhead" (CUDA graphs) + coordinate-descent tuning of the generated kernels,
                # which makes the batch-1 matrix-vector products read weights near memory bandwidth (measured:
                # 6.6 -> 5.9 ms per token for the paper LM on an H100, for ~30 s more compiling)
                self._compiled_step = torch.compile(
                    self._decode_step, options={"triton.cudagraphs": True, "coordinate_descent_tuning": True}
                )
            step = self._compiled_step
        next_pos = positions[:, -1:] + 1
        finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        generated = input_ids.new_zeros(batch, 0)
        # Per fed step, kept on the device: the hidden states and which samples had just produced [POSE]. Reading
        # them once after the loop, and learning "all finished?" from an asynchronous copy (_all_finished), keeps
        # the loop free of device->host syncs, so the CPU queues step t+1 while the GPU still runs step t.
        fed_hidden: list[torch.Tensor] = []
        fed_posed: list[torch.Tensor] = []
        done_history: list[torch.Tensor] = []
        pending: deque[tuple[torch.cuda.Event, torch.Tensor]] = deque()
        for i in range(max_new_tokens):
            if logits_processor is not None:
                logits = logits_processor(torch.cat([input_ids, generated], 1), logits)
            # a generated <image> would have no image features behind it
            logits = logits.clone()
            logits[:, self.image_token_id] = -float("inf")
            token = torch.where(finished, self.pad_token_id, logits.argmax(-1))
            generated = torch.cat([generated, token[:, None]], 1)
            posed = (token == self.pose_token_id) & ~finished
            finished = finished | torch.isin(token, eos)
            done_history.append(finished.all())
            if on_token is not None:
                stop = on_token(token, finished)
                if stop is not None:
                    finished = finished | torch.as_tensor(stop, dtype=torch.bool, device=finished.device)
                    done_history[-1] = finished.all()
            if i == max_new_tokens - 1:
                if not posed.any():  # a [POSE] as the very last token still needs its fed step
                    break
            elif _all_finished(done_history[-1], pending):
                break
            # feed the token back: its hidden state is the [POSE] representation; its logits give the next token.
            # Finished samples are fed pad with mask 1: harmless to the others, their output is discarded.
            if decode == "dynamic":
                step_mask = torch.cat([step_mask, step_mask.new_ones(batch, 1)], 1)
            elif decode == "compiled":
                torch.compiler.cudagraph_mark_step_begin()  # outputs of the previous replay are consumed
            logits, hidden, cache = step(token[:, None], step_mask, next_pos, cache)
            next_pos = next_pos + 1
            fed_hidden.append(hidden.clone())  # a CUDA-graph output is overwritten by the next replay
            fed_posed.append(posed)
            logits = logits.clone()
        # cut the steps run after every sample had finished (on a GPU a step or two, all pads)
        done = torch.stack(done_history).tolist()
        if True in done:
            generated = generated[:, : done.index(True) + 1]
        poses: list[torch.Tensor] = [self._stack([]) for _ in range(batch)]
        if fed_posed:
            flags, states = torch.stack(fed_posed), torch.stack(fed_hidden)  # [S x B], [S x B x H]
            poses = [states[flags[:, b], b] for b in range(batch)]
        return GenerationOutput(generated, poses)

    def _decode_step(
        self, token: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """One cached step: ``token [B x 1]`` -> (next-token logits ``[B x V]``, last hidden ``[B x H]``, cache)."""
        out = self.language_model(
            input_ids=token,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            output_hidden_states=True,
            **{self._cache_arg: cache},
        )
        return out.logits[:, -1], out.hidden_states[-1][:, -1], _cache_of(out)

    @property
    def _cache_arg(self) -> str:
        """The LM's name for its KV-cache argument: ``cache`` from transformers 5.2x on (``past_key_values`` still
        works there, with a deprecation warning per call), ``past_key_values`` before (the GPU host's 5.17)."""
        lm: Any = self.language_model
        known = self.__dict__.get("_cache_name")
        if known is None or known[0] is not lm:  # worked out once per LM (adapters may wrap it later)
            base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm  # PEFT wraps forward in **kwargs
            name = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
            known = self.__dict__["_cache_name"] = (lm, name)
        return str(known[1])

    @torch.no_grad()
    def uncached_pose_hidden(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        generated: torch.Tensor,
    ) -> list[torch.Tensor]:
        """LISA-style reference: re-run prompt + ``generated [B x T_new]`` in one full forward, no cache.

        Returns per sample the hidden states ``[n_pose_i x H]`` at the generated [POSE] positions; equal to
        ``generate``'s within float tolerance. Used by tests and by the cached-vs-uncached benchmark.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        ids = torch.cat([input_ids, generated], 1)
        mask = torch.cat([attention_mask, torch.ones_like(generated)], 1)  # as fed during cached decoding
        out = self.forward(ids, pixel_values, mask)
        prompt_len = input_ids.shape[1]
        keep = out.pose_index[1] >= prompt_len  # only [POSE] tokens the model generated
        rows, hidden = out.pose_index[0][keep], out.pose_hidden[keep]
        return [hidden[rows == b] for b in range(ids.shape[0])]

    def _stack(self, hs: list[torch.Tensor]) -> torch.Tensor:
        if hs:
            return torch.stack(hs)
        return next(self.language_model.parameters()).new_zeros(0, self.hidden_size)


def _cache_of(out: Any) -> Any:
    """The KV cache a forward returned, under either of transformers' names for it."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _all_finished(flag: torch.Tensor, pending: deque[tuple[torch.cuda.Event, torch.Tensor]]) -> bool:
    """Whether a recent step found every sample finished, without waiting for the GPU.

    On a CPU the 0-d ``flag`` is read directly. On a GPU it is copied to pinned host memory behind an event, and
    only copies whose event has completed are read: the answer lags the GPU by a step or two (the extra steps
    produce pads, cut afterwards), but the CPU never stalls.
    """
    if flag.device.type != "cuda":
        return bool(flag)
    host = torch.empty((), dtype=torch.bool, pin_memory=True)
    host.copy_(flag, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    pending.append((event, host))
    while pending and pending[0][0].query():
        if bool(pending.popleft()[1]):
            return True
    return False


def _as_list(x: int | Sequence[int]) -> list[int]:
    return [x] if isinstance(x, int) else list(x)
