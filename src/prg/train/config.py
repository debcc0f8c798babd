"""The training config: typed dataclasses, read from YAML (``configs/train/*.yaml``) with ``--set a.b=value``.

One source for the CLI, the YAML files and the code: every key is a dataclass field, and an unknown key is an
error that lists the valid ones (a typo never silently trains with a default).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "DataConfig", "ModelSection", "OptimConfig", "SourceConfig", "TrainConfig", "load_config"]


KINDS = ("prg", "vqa", "scene_qa", "grasp", "grasp_prompt")


class ConfigError(ValueError):
    """A config file or override that does not fit :class:`TrainConfig`; the message names the key."""


@dataclass
class SourceConfig:
    """One training source and its share of the samples (LISA's ``sample_rates``)."""

    path: str  # a PRG dataset folder
    kind: str = "prg"  # prg (reasoning grasp records), vqa (LLaVA-Instruct JSON), scene_qa, grasp (grasp-only),
    # grasp_prompt (prompted grasps of every object, no language model: the small recipe's stage 1)
    rate: float = 1.0
    splits: list[str] = field(default_factory=lambda: ["train"])


@dataclass
class DataConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    index: str | None = None  # document index whose top-k hits become each record's prompt documents
    k_docs: int = 3  # retrieved chunks per prompt
    retrieval_cache: str = "default"  # cache name under <dataset>/retrieval/
    augment: bool = True  # rotations/flips (grasps transformed exactly) and colour jitter
    val_split: str = "val"
    val_records: int = 32  # val records for the periodic validation
    seed: int = 0
    num_workers: int = 0  # DataLoader processes that load, augment and collate ahead of the GPU
    absent_prompts: int = 0  # grasp_prompt: extra category prompts per scene for absent categories (no grasp)


@dataclass
class ModelSection:
    preset: str = "tiny"  # tiny, small, paper (prg.model.prg_model.MODEL_PRESETS)
    init: str | None = None  # start from this PRG checkpoint instead of the preset's base
    base: dict[str, Any] = field(default_factory=dict)  # preset arguments (local weight paths, ...)
    sam: str | None = None
    adapter: str = "adaptive_mixture"  # adaptive_mixture, lora or none (everything but F_enc trains)
    adaptive_mixture: dict[str, Any] = field(default_factory=dict)  # AdaptiveMixtureConfig fields
    lora: dict[str, Any] = field(default_factory=dict)  # peft.LoraConfig fields; default: matched to the AM budget
    freeze: list[str] = field(default_factory=list)  # module paths kept frozen, e.g. vlm.vision_tower
    train_encoder: bool = False  # F_enc trains too (stage 1 of the small recipe; the seed keeps it frozen)
    max_prompt_length: int | None = 512
    max_new_tokens: int | None = None
    gradient_checkpointing: bool = False
    unfreeze: list[str] = field(default_factory=list)  # with init: module paths an earlier stage froze that train now
    dice_weight: float | None = None  # soft Dice on the quality map (None: the model's setting)
    angle_region_weight: float | None = None  # cos2/sin2 loss also over the grasp region (None: the model's)
    prompt_distill_weight: float | None = None  # pull γ([POSE]) to the target's stage-1 category prompt
    prompt_gate: bool | None = None  # F_dec's prompt-gated dense path (None: the preset's; architecture, so
    prompt_match: bool | None = None  # only when building from the preset) / F_dec's match map
    match_weight: float | None = None  # weight of the match-map loss (None: the model's setting)


@dataclass
class OptimConfig:
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 10
    schedule: str = "cosine"  # cosine or constant (after warmup)
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0


@dataclass
class TrainConfig:
    """A whole training run. ``steps`` counts optimizer steps; one step sees ``batch_size x grad_accum`` samples
    on each process."""

    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    steps: int = 100
    batch_size: int = 4
    grad_accum: int = 1
    mixed_precision: str = "auto"  # auto (bf16 on a GPU, fp32 on the CPU), no, bf16
    log_every: int = 1
    eval_every: int = 0  # 0: only at the end
    save_every: int = 0  # 0: only at the end
    keep_last: int = 2
    max_minutes: float | None = None  # stop (with a checkpoint) once this much wall time has passed
    fit_to_budget: bool = True  # with max_minutes: end the cosine where the budget ends (false: at steps, so a
    # run split over several budgeted calls with --resume keeps one schedule)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimConfig = field(default_factory=OptimConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self) -> TrainConfig:
        """Value checks no type annotation expresses; a :class:`ConfigError` names the key."""
        positive = {"steps": self.steps, "batch_size": self.batch_size, "grad_accum": self.grad_accum}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            raise ConfigError(f"mixed_precision must be auto, no or bf16, got {self.mixed_precision!r}")
        if self.model.adapter not in ("adaptive_mixture", "lora", "none"):
            raise ConfigError(f"model.adapter must be adaptive_mixture, lora or none, got {self.model.adapter!r}")
        if self.optim.schedule not in ("cosine", "constant"):
            raise ConfigError(f"optim.schedule must be cosine or constant, got {self.optim.schedule!r}")
        if not self.data.sources:
            raise ConfigError("data.sources is empty: give at least one dataset folder")
        prompted = {s.kind == "grasp_prompt" for s in self.data.sources}
        if len(prompted) > 1:
            raise ConfigError(
                "data.sources: grasp_prompt sources train without the language model; do not mix "
                "them with text sources in one run (the small recipe runs them as stage 1)"
            )
        for i, s in enumerate(self.data.sources):
            if s.kind not in KINDS:
                raise ConfigError(f"data.sources[{i}].kind must be one of {', '.join(KINDS)}, got {s.kind!r}")
            if s.rate <= 0:
                raise ConfigError(f"data.sources[{i}].rate must be > 0, got {s.rate}")
        return self


def _build(cls: type, data: Any, where: str) -> Any:
    """``data`` (from YAML) -> an instance of dataclass ``cls``, strictly."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where or 'the config'}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}".lstrip(".")) for name, value in data.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 (PyYAML) reads 3e-3 as a string: a number is meant
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _set(tree: dict[str, Any], dotted: str, raw: str) -> None:
    """Apply one ``a.b.c=value`` override to the raw YAML tree (value parsed as YAML: numbers, lists, ...)."""
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a section")
        node = child
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults) and apply ``key=value`` overrides (dotted keys)."""
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
        tree = loaded or {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set takes key=value, got {item!r}")
        key, raw = item.split("=", 1)
        _set(tree, key.strip(), raw)
    return _build(TrainConfig, tree, "").check()
