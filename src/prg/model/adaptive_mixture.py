"""AdaptiveMixture: a segment-aware mixture of low-rank experts on a language model's linear layers.

Each wrapped ``nn.Linear`` (frozen weight ``W``) gets E low-rank experts and a router::

    y = W x + b + scale * sum_e g_e(x, s) * B_e A_e x        scale = alpha / rank

``A_e: [rank x in]``, ``B_e: [out x rank]`` (zero at init, so a freshly wrapped model equals its base) and the
gates ``g(x, s)`` are the top-k (renormalised) of ``softmax(router(concat(x, embed(s))))``, where ``s`` is the
segment the token belongs to (:class:`prg.tokens.Segment`: image, document, instruction, answer). Segment ids
reach the wrappers through a ``SegmentContext`` shared by all wrappers of one model and set with
``set_segments(model, ids)``, so no signature of the host model changes. The maths, the balance loss, the merge
semantics and how to compare with LoRA are in docs/adaptive_mixture.md.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prg.tokens import Segment

if TYPE_CHECKING:
    from peft import LoraConfig

_FORMAT = "prg-adaptive-mixture/1"


@dataclass
class AdaptiveMixtureConfig:
    """Hyper-parameters of AdaptiveMixture; ``target_modules`` match the last parts of module paths."""

    n_experts: int = 4
    rank: int = 8
    alpha: float = 16.0
    top_k: int = 2
    dropout: float = 0.0
    n_segments: int = 4
    segment_embed_dim: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    balance_loss_weight: float = 0.01
    router_noise: float = 0.0

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        if self.n_experts < 1 or self.rank < 1 or self.n_segments < 1 or self.segment_embed_dim < 1:
            raise ValueError("n_experts, rank, n_segments and segment_embed_dim must be >= 1")
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must lie in [1, n_experts={self.n_experts}], got {self.top_k}")
        if not self.target_modules:
            raise ValueError("target_modules is empty")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AdaptiveMixtureConfig:
        return cls(**json.loads(text))


class SegmentContext:
    """Segment ids of the current forward ``[B x T]`` (or None), shared by every wrapper of one model.

    A plain object rather than a contextvar so that ``copy.deepcopy`` of a model keeps one context per copy.
    """

    def __init__(self) -> None:
        self._segment_ids: Tensor | None = None
        self._resolved: tuple[tuple[int, int, torch.device], Tensor] | None = None
        self._onehot: tuple[tuple[int, torch.dtype], Tensor] | None = None
        self.calibrating = False

    @property
    def segment_ids(self) -> Tensor | None:
        return self._segment_ids

    @segment_ids.setter
    def segment_ids(self, ids: Tensor | None) -> None:
        self._segment_ids, self._resolved, self._onehot = ids, None, None

    def resolve(self, batch: int, length: int, device: torch.device) -> Tensor:
        """Segment ids for a ``[batch x length]`` forward, as a LongTensor ``[batch x length]``.

        Rules (they make cached and uncached decoding agree token for token):
        - nothing set: every token is an answer token;
        - ``length == T_set``: the ids as set (prefill, training);
        - ``length > T_set``: the set ids, then answer for the extra positions (uncached decoding);
        - ``length < T_set``: new tokens of cached generation (usually length 1): answer.
        A batch that is a multiple of the set batch (beams, num_return_sequences) repeats each row.
        The result is kept until the ids change: every wrapped layer of one forward asks for the same shape.
        """
        key = (batch, length, device)
        if self._resolved is not None and self._resolved[0] == key:
            return self._resolved[1]
        out = self._resolve(batch, length, device)
        self._resolved = (key, out)
        self._onehot = None
        return out

    def onehot(self, batch: int, length: int, device: torch.device, n_segments: int, dtype: torch.dtype) -> Tensor:
        """:meth:`resolve`'s ids one-hot, ``[batch x length x n_segments]`` in ``dtype``, kept like them."""
        ids = self.resolve(batch, length, device)
        key = (n_segments, dtype)
        if self._onehot is None or self._onehot[0] != key:
            self._onehot = (key, F.one_hot(ids, n_segments).to(dtype))
        return self._onehot[1]

    def _resolve(self, batch: int, length: int, device: torch.device) -> Tensor:
        ids = self.segment_ids
        answer = torch.full((batch, length), int(Segment.ANSWER), dtype=torch.long, device=device)
        if ids is None or length < ids.shape[1]:
            return answer
        ids = ids.to(device=device, dtype=torch.long)
        if ids.shape[0] != batch:
            if batch % ids.shape[0]:
                raise ValueError(f"segment ids have batch {ids.shape[0]}, forward has batch {batch}")
            ids = ids.repeat_interleave(batch // ids.shape[0], dim=0)
        answer[:, : ids.shape[1]] = ids
        return answer


class RouterStats:
    """Routing of the last forward: router ``logits`` [... x E] (differentiable), ``top_i`` [... x k] (the chosen
    experts) and ``gates`` [... x E] (detached). ``prob_mean`` [E] (differentiable) and ``load`` [E] are
    computed when read, so a forward that needs no balance loss (inference) pays nothing for them."""

    __slots__ = ("gates", "logits", "top_i")

    def __init__(self, logits: Tensor, top_i: Tensor, gates: Tensor) -> None:
        self.logits, self.top_i, self.gates = logits, top_i, gates

    @property
    def prob_mean(self) -> Tensor:
        """Mean router probability per expert (softmax over all E)."""
        return self.logits.reshape(-1, self.logits.shape[-1]).softmax(-1).mean(0)

    @property
    def load(self) -> Tensor:
        """Share of the top-k choices that went to each expert (sums to 1)."""
        e = self.logits.shape[-1]
        return torch.bincount(self.top_i.reshape(-1), minlength=e).float() / max(self.top_i.numel(), 1)

    def balance_loss(self) -> Tensor:
        """Switch/GShard loss ``E * sum_e f_e P_e``: 1.0 for uniform routing, up to E/k when one expert wins."""
        return self.prob_mean.numel() * (self.load * self.prob_mean).sum()


def _stacked_balance_loss(stats: list[RouterStats]) -> Tensor:
    """Mean of ``s.balance_loss()`` over layers whose logits share one shape, in a few batched ops (the
    per-layer form costs ~10 small ops per layer; a small LM has 120 wrapped layers)."""
    logits = torch.stack([s.logits.reshape(-1, s.logits.shape[-1]) for s in stats])  # [L x N x E]
    top_i = torch.stack([s.top_i.reshape(-1) for s in stats])  # [L x N*k]
    e = logits.shape[-1]
    prob_mean = logits.softmax(-1).mean(1)  # [L x E]
    load = F.one_hot(top_i, e).sum(1).float() / max(top_i.shape[1], 1)  # one_hot: [L x N*k x E]
    return (e * (load * prob_mean).sum(-1)).mean()


class AdaptiveMixtureLinear(nn.Module):
    """A frozen ``nn.Linear`` plus E routed low-rank experts. Input ``[B x T x in]``, output ``[B x T x out]``."""

    gate_sum: Tensor  # [E] calibration sum of gates (buffer)
    gate_count: Tensor  # [] calibration token count (buffer)
    # no-grad forwards reuse the operands built from the parameters (see _inference_weights); False rebuilds them
    # every call, as training does (benchmarks/bench_decode_am.py compares the two)
    cache_inference_operands: bool = True

    def __init__(self, base: nn.Linear, cfg: AdaptiveMixtureConfig, context: SegmentContext | None = None) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.cfg = cfg
        self.context = context if context is not None else SegmentContext()
        # Half-precision bases get fp32 adapters (as PEFT does): the low-rank update and router are tiny, and
        # fp32 keeps softmax/top-k and small updates stable.
        dtype = torch.float32 if base.weight.dtype in (torch.float16, torch.bfloat16) else base.weight.dtype
        kw: dict[str, Any] = {"device": base.weight.device, "dtype": dtype}
        e, r = cfg.n_experts, cfg.rank
        self.lora_A = nn.Parameter(torch.empty(e, r, base.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(e, base.out_features, r, **kw))
        self.router = nn.Linear(base.in_features + cfg.segment_embed_dim, e, **kw)
        self.segment_embed = nn.Embedding(cfg.n_segments, cfg.segment_embed_dim, **kw)
        self.dropout = nn.Dropout(cfg.dropout)
        # Calibration sums for the merge (average gate per expert); not part of any state dict.
        self.register_buffer("gate_sum", torch.zeros(e, device=kw["device"], dtype=torch.float64), persistent=False)
        self.register_buffer("gate_count", torch.zeros((), device=kw["device"], dtype=torch.float64), persistent=False)
        self.last_stats: RouterStats | None = None
        for a in self.lora_A:  # LoRA's init, drawn per expert so the experts start different
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))

    # Host code sometimes reads these from the layer it thinks is an nn.Linear.
    @property
    def weight(self) -> Tensor:
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def _segments(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            return self.context.resolve(x.shape[0], x.shape[1], x.device)
        return torch.full(x.shape[:-1], int(Segment.ANSWER), dtype=torch.long, device=x.device)

    def _segment_logits(self) -> Tensor:
        """The router's segment part with its bias, per segment: ``[n_segments x E]``. The router sees
        ``concat(x, embed(s))``; its logits split as ``W_x x + (W_s embed(s) + b)``, and the second term takes
        only n_segments values, so it is computed once here and gathered per token (never ``[N x (in + S)]``)."""
        d = self.base.in_features
        return F.linear(self.segment_embed.weight, self.router.weight[:, d:], self.router.bias)

    def _segment_onehot(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """The segments of ``x``'s tokens one-hot, ``[... x n_segments]``: for ``[B x T x in]`` the context's,
        shared by the layers of one forward."""
        n = self.cfg.n_segments
        if x.dim() == 3:
            return self.context.onehot(x.shape[0], x.shape[1], x.device, n, dtype)
        return F.one_hot(self._segments(x), n).to(dtype)

    def _add_segment_logits(self, logits_x: Tensor, onehot: Tensor) -> Tensor:
        """``logits_x [... x E]`` + each token's row of :meth:`_segment_logits`, as one ``addmm`` with the one-hot
        segments ``[... x n_segments]``: an embedding gather plus an add would be two kernels forward and a
        sort-based scatter backward, in each of the model's wrapped layers."""
        table = self._segment_logits().to(logits_x.dtype)
        flat = torch.addmm(logits_x.flatten(0, -2), onehot.to(logits_x.dtype).flatten(0, -2), table)
        return flat.view(logits_x.shape)

    def _gates(self, logits: Tensor) -> Tensor:
        """Top-k gates from router logits ``[... x E]``; records ``last_stats`` and, while calibrating, the sums."""
        logits = logits.float()
        if self.training and self.cfg.router_noise > 0:
            logits = logits + self.cfg.router_noise * torch.randn_like(logits)
        top_l, top_i = logits.topk(self.cfg.top_k, dim=-1)
        # The renormalised top-k of softmax(logits) is the softmax of the top-k logits: one small softmax
        # instead of a full one plus a sum and a division. The full softmax is only needed by the balance loss.
        gates = torch.zeros_like(logits).scatter(-1, top_i, top_l.softmax(dim=-1))
        self.last_stats = RouterStats(logits=logits, top_i=top_i, gates=gates.detach())
        if self.context.calibrating:
            e = self.cfg.n_experts
            self.gate_sum += gates.detach().reshape(-1, e).sum(0).double()
            self.gate_count += gates.shape[:-1].numel()
        return gates

    def route(self, x: Tensor, segments: Tensor) -> Tensor:
        """Top-k gates ``[... x E]`` (k non-zeros per token, summing to 1) for ``x [... x in]``, ``segments [...]``.

        Records ``last_stats`` for the balance loss and, while calibrating, the gate sums for the merge.
        """
        d = x.shape[-1]
        onehot = F.one_hot(segments, self.cfg.n_segments)
        return self._gates(self._add_segment_logits(F.linear(x, self.router.weight[:, :d]), onehot))

    def forward(self, x: Tensor) -> Tensor:
        """``x [B x T x in] -> [B x T x out]``; segment ids come from ``self.context``."""
        out = self.base(x)
        cfg, d = self.cfg, self.base.in_features
        e, r = cfg.n_experts, cfg.rank
        # fp32 adapters on a half-precision base; under autocast the matmuls below would cast x straight back
        xa = x if torch.is_autocast_enabled(x.device.type) else x.to(self.lora_A.dtype)
        # All E experts run as two plain matmuls over E * rank columns and unselected experts are zeroed by
        # their gate: with E * rank small (32 by default) that costs a few percent of the base matmul, less than a
        # gather/scatter dispatch would, and keeps shapes static for compile/FSDP. The op count matters as much
        # as the FLOPs here (120 wrapped layers in SmolLM2-135M, each op a kernel launch and an autograd node:
        # benchmarks/bench_train.py compares with PEFT LoRA), so without dropout the experts' down-projection and
        # the router's x-part share one matmul.
        # (under torch.compile the cache's version checks would break the graph; the compiler fuses anyway)
        fast = self.cache_inference_operands and not (
            self.training or torch.is_grad_enabled() or torch.compiler.is_compiling()
        )
        frozen = self._inference_weights() if fast else None
        if frozen is not None:  # the same products from cached operands (decoding: ~25 -> ~12 ops per layer)
            fused, b, table = frozen
            h, logits_x = F.linear(xa, fused).split([e * r, e], dim=-1)
            onehot = self._segment_onehot(x, logits_x.dtype)
            logits = torch.addmm(logits_x.flatten(0, -2), onehot.flatten(0, -2), table).view(logits_x.shape)
            gates = self._gates(logits)
        else:
            a = self.lora_A.reshape(e * r, d)
            w_x = self.router.weight[:, :d]
            if cfg.dropout and self.training:
                h = F.linear(self.dropout(xa), a)
                logits_x = F.linear(xa, w_x)
            else:
                h, logits_x = F.linear(xa, torch.cat([a, w_x])).split([e * r, e], dim=-1)
            gates = self._gates(self._add_segment_logits(logits_x, self._segment_onehot(x, logits_x.dtype)))
            b = self._b_matrix()
        hg = (h.unflatten(-1, (e, r)) * gates.unsqueeze(-1)).flatten(-2)  # [B x T x (E * r)]
        return out.add_(F.linear(hg, b))  # in place: the base matmul's output is not needed for its backward

    def _b_matrix(self) -> Tensor:
        """The experts' up-projections side by side, scaled: ``[out x (E * rank)]``."""
        e, r = self.cfg.n_experts, self.cfg.rank
        return (self.lora_B * self.cfg.scale).permute(1, 0, 2).reshape(self.base.out_features, e * r)

    def _inference_weights(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(concat(A, W_x), B matrix, segment-logit table)`` for no-grad evaluation, built once and rebuilt
        when a parameter changed: keyed by each parameter's storage and in-place version counter (an optimizer
        step, ``load_state_dict`` and ``.to()`` all change one). These are what every forward otherwise rebuilds
        from the parameters (a concat, a scaled permuted copy, a small linear); at decode time, one token per
        step, those ops cost as much as the matmuls. ``None`` while calibrating (the slow path records sums)."""
        if self.context.calibrating:
            return None
        params = (self.lora_A, self.lora_B, self.router.weight, self.router.bias, self.segment_embed.weight)
        key: tuple[Any, ...] = (
            *((p.data_ptr(), p._version, p.dtype, p.device) for p in params if p is not None),
            self.cfg.scale,
        )
        cached = self.__dict__.get("_frozen")
        if cached is None or cached[0] != key:
            d, e, r = self.base.in_features, self.cfg.n_experts, self.cfg.rank
            fused = torch.cat([self.lora_A.reshape(e * r, d), self.router.weight[:, :d]])
            cached = (key, (fused, self._b_matrix(), self._segment_logits()))
            self.__dict__["_frozen"] = cached  # a plain attribute: never in a state dict, never moved by .to()
        return cached[1]

    def merged_delta(self) -> Tensor:
        """``scale * sum_e pbar_e B_e A_e`` ``[out x in]``; pbar = calibrated mean gate, or 1/E if uncalibrated."""
        e = self.cfg.n_experts
        if self.gate_count.item() > 0:
            pbar = (self.gate_sum / self.gate_count).float()
        else:
            pbar = torch.full((e,), 1.0 / e, device=self.lora_A.device)
        return self.cfg.scale * torch.einsum("e,eor,eri->oi", pbar, self.lora_B.float(), self.lora_A.float())


# ---- model-level helpers -------------------------------------------------------------------------------------


def _matches(path: str, targets: tuple[str, ...]) -> bool:
    # Same rule as PEFT's list form of target_modules, so the LoRA baseline wraps exactly the same layers.
    return any(path == t or path.endswith("." + t) for t in targets)


def wrapped_modules(model: nn.Module) -> list[tuple[str, AdaptiveMixtureLinear]]:
    """All ``(path, wrapper)`` pairs of a model, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AdaptiveMixtureLinear)]


def _require_wrapped(model: nn.Module) -> list[tuple[str, AdaptiveMixtureLinear]]:
    wrapped = wrapped_modules(model)
    if not wrapped:
        raise ValueError("model has no AdaptiveMixture layers; call apply_adaptive_mixture first")
    return wrapped


def _target_shapes(model: nn.Module, targets: tuple[str, ...]) -> list[tuple[int, int]]:
    """``(in, out)`` of every target linear, wrapped or not."""
    shapes = []
    for path, m in model.named_modules():
        if isinstance(m, (nn.Linear, AdaptiveMixtureLinear)) and _matches(path, targets):
            shapes.append((m.in_features, m.out_features))
    return shapes


def apply_adaptive_mixture(model: nn.Module, cfg: AdaptiveMixtureConfig | None = None) -> nn.Module:
    """Wrap every target ``nn.Linear`` in place, freeze all other parameters, return ``model``.

    For a VLM pass the language model (e.g. ``vlm.model.language_model``) so the vision tower is left alone.
    """
    cfg = cfg or AdaptiveMixtureConfig()
    if wrapped_modules(model):
        raise ValueError("model already has AdaptiveMixture layers")
    targets = [p for p, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(p, cfg.target_modules)]
    if not targets:
        raise ValueError(f"no nn.Linear matches target_modules={cfg.target_modules}")
    model.requires_grad_(False)
    context = SegmentContext()
    for path in targets:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        setattr(parent, name, AdaptiveMixtureLinear(getattr(parent, name), cfg, context))
    return model


def set_segments(model: nn.Module, segment_ids: Tensor | None) -> None:
    """Set the segment ids ``[B x T]`` (values in ``[0, n_segments)``) that the next forwards use; None clears."""
    wrapped = _require_wrapped(model)
    if segment_ids is not None:
        if segment_ids.dim() != 2:
            raise ValueError(f"segment ids must be [B x T], got shape {tuple(segment_ids.shape)}")
        n = wrapped[0][1].cfg.n_segments
        if segment_ids.numel() and (segment_ids.min() < 0 or segment_ids.max() >= n):
            raise ValueError(f"segment ids must lie in [0, {n})")
    for _, m in wrapped:  # normally one shared context; setting each also covers hand-built mixes
        m.context.segment_ids = segment_ids


def balance_loss(model: nn.Module) -> Tensor:
    """Mean over wrapped layers of the last forward's balance loss (scalar; 1.0 = uniform). Unweighted:
    the trainer adds ``cfg.balance_loss_weight * balance_loss(model)``."""
    stats = []
    for path, m in _require_wrapped(model):
        if m.last_stats is None:
            raise RuntimeError(f"{path} has not run a forward yet")
        stats.append(m.last_stats)
    if len({s.logits.shape for s in stats}) == 1:
        return _stacked_balance_loss(stats)
    return torch.stack([s.balance_loss() for s in stats]).mean()


@contextlib.contextmanager
def calibrate(model: nn.Module) -> Iterator[None]:
    """Record the average gate per expert over the forwards run inside the block (for ``merge_adaptive_mixture``).

    Starts from zero each time; run it in eval mode under ``torch.no_grad()`` on representative inputs.
    """
    wrapped = _require_wrapped(model)
    for _, m in wrapped:
        m.gate_sum.zero_()
        m.gate_count.zero_()
        m.context.calibrating = True
    try:
        yield
    finally:
        for _, m in wrapped:
            m.context.calibrating = False


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied weights counted once)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def mixture_parameter_count(in_features: int, out_features: int, cfg: AdaptiveMixtureConfig) -> int:
    """Trainable parameters of one wrapped ``in -> out`` linear: experts, router (+bias) and segment table."""
    e, s = cfg.n_experts, cfg.segment_embed_dim
    return e * cfg.rank * (in_features + out_features) + (in_features + s + 1) * e + cfg.n_segments * s


def matched_lora_rank(model: nn.Module, cfg: AdaptiveMixtureConfig) -> int:
    """LoRA rank on the same targets whose trainable count ``r * sum(in + out)`` is nearest the mixture's."""
    shapes = _target_shapes(model, cfg.target_modules)
    if not shapes:
        raise ValueError(f"no linear matches target_modules={cfg.target_modules}")
    budget = sum(mixture_parameter_count(i, o, cfg) for i, o in shapes)
    return max(1, round(budget / sum(i + o for i, o in shapes)))


def lora_baseline_config(model: nn.Module, cfg: AdaptiveMixtureConfig) -> LoraConfig:
    """A ``peft.LoraConfig`` with the mixture's trainable budget, targets, dropout and scale (alpha / rank)."""
    from peft import LoraConfig  # imported here: peft is only needed for the baseline

    rank = matched_lora_rank(model, cfg)
    return LoraConfig(
        r=rank,
        # Same effective scale (alpha / r) as the mixture so learning rates transfer; PEFT types alpha as int.
        lora_alpha=max(1, round(cfg.scale * rank)),
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
    )


# ---- merge -----------------------------------------------------------------------------------------------------


@torch.no_grad()
def merge_adaptive_mixture(model: nn.Module) -> nn.Module:
    """Fold every wrapper into a plain ``nn.Linear`` with ``W' = W + scale * sum_e pbar_e B_e A_e`` (in place).

    An approximation unless routing is constant over tokens (see docs/adaptive_mixture.md); deep-copy the model
    first to keep the exact unmerged path.
    """
    for path, m in _require_wrapped(model):
        base = m.base
        merged = nn.Linear(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        merged.weight.copy_(base.weight.float() + m.merged_delta())
        if base.bias is not None:
            merged.bias.copy_(base.bias)
        merged.requires_grad_(base.weight.requires_grad)
        parent_path, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent_path), name, merged)
    return model


def _logits(output: Any) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    raise TypeError(f"cannot find a tensor in model output of type {type(output).__name__}")


@torch.no_grad()
def merge_error(
    model_unmerged: nn.Module,
    model_merged: nn.Module,
    inputs: Mapping[str, Tensor],
    segment_ids: Tensor | None = None,
) -> dict[str, float]:
    """Output difference of the two paths on ``model(**inputs)`` (logits for HF models).

    ``max_rel`` is ``max |a - b| / max |a|``. ``segment_ids [B x T]`` are set on the unmerged model if given.
    """
    if segment_ids is not None:
        set_segments(model_unmerged, segment_ids)
    a = _logits(model_unmerged(**inputs)).float()
    b = _logits(model_merged(**inputs)).float()
    diff = (a - b).abs()
    return {
        "max_abs": diff.max().item(),
        "mean_abs": diff.mean().item(),
        "max_rel": (diff.max() / a.abs().max().clamp_min(1e-12)).item(),
    }


# ---- adapter checkpoints -----------------------------------------------------------------------------------------


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Only the mixture parameters (experts, routers, segment tables), keyed by full parameter path."""
    sd: dict[str, Tensor] = {}
    for path, m in _require_wrapped(model):
        for name, p in m.named_parameters():
            if not name.startswith("base."):
                sd[f"{path}.{name}"] = p.detach()
    return sd


@torch.no_grad()
def load_adapter_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], strict: bool = True
) -> tuple[list[str], list[str]]:
    """Copy adapter tensors into a wrapped model; return ``(missing, unexpected)`` keys (raise if strict)."""
    own = adapter_state_dict(model)
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if strict and (missing or unexpected):
        raise KeyError(f"adapter keys differ: missing={missing[:5]}, unexpected={unexpected[:5]}")
    for key in set(own) & set(state_dict):
        if own[key].shape != state_dict[key].shape:
            raise ValueError(f"{key}: shape {tuple(state_dict[key].shape)} != model's {tuple(own[key].shape)}")
        own[key].copy_(state_dict[key])
    return missing, unexpected


def save_adapter(model: nn.Module, path: str | Path) -> None:
    """Write the adapter tensors and the config (as metadata) to one safetensors file."""
    from safetensors.torch import save_file

    cfg = _require_wrapped(model)[0][1].cfg
    tensors = {k: v.contiguous() for k, v in adapter_state_dict(model).items()}
    save_file(tensors, str(path), metadata={"format": _FORMAT, "config": cfg.to_json()})


def read_adapter_config(path: str | Path) -> AdaptiveMixtureConfig:
    """The config stored in an adapter file (to build the wrappers before loading)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path} is not an AdaptiveMixture adapter file (format={meta.get('format')!r})")
    return AdaptiveMixtureConfig.from_json(meta["config"])


def load_adapter(model: nn.Module, path: str | Path, strict: bool = True) -> AdaptiveMixtureConfig:
    """Load an adapter file into a wrapped model; returns the stored config."""
    from safetensors.torch import load_file

    cfg = read_adapter_config(path)
    device = _require_wrapped(model)[0][1].lora_A.device
    load_adapter_state_dict(model, load_file(str(path), device=str(device)), strict=strict)
    return cfg
