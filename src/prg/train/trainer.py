"""The training loop: accelerate (CPU, one GPU, several), exact resume, atomic checkpoints, logs, validation.

```
TrainConfig ──build_model──► PRGModel (adapters, frozen parts, [POSE] rows)
            ──build_stream─► BatchStream (mixture sampler -> items -> processor collate), this rank's share
loop: batch ──PRGModel.forward──► loss (LM + grasp maps + balance) ──backward (accumulated)──► clip ─► AdamW ─► LR
      every log_every: metrics.jsonl + TensorBoard + progress bar; every eval_every: validation;
      every save_every: checkpoint (trainable tensors + processor + optimizer + scheduler + RNG + sampler position)
```

The data order depends only on the seed and the step, never on the process count: every process draws the same
global batch and takes its share (:class:`~prg.train.data.BatchStream`), so N processes x 1 micro-batch see the
samples one process sees with N accumulation steps, and a resumed run continues where the killed one stopped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from prg.train.config import TrainConfig
from prg.train.state import (
    capture_rng,
    latest_checkpoint,
    load_optimizer,
    prune_checkpoints,
    publish_checkpoint,
    restore_rng,
    save_optimizer,
    step_dir_name,
)

__all__ = ["TrainError", "TrainResult", "Trainer", "build_model", "lr_lambda"]


_PARTS = ("lm_loss", "grasp_loss", "balance_loss")


class TrainError(RuntimeError):
    """Training cannot go on (NaN loss, out of memory, a resume folder of another run); the message says why."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    last_checkpoint: Path | None
    losses: list[float]  # the loss of every optimizer step this process ran (mean over its micro-batches)
    final_metrics: dict[str, float]


def build_model(cfg: TrainConfig) -> Any:
    """The PRG model a config describes: preset (or ``model.init`` checkpoint), frozen parts, adapters."""
    from prg.model.adaptive_mixture import AdaptiveMixtureConfig, lora_baseline_config
    from prg.model.checkpoint import from_pretrained
    from prg.model.prg_model import build_prg_model, preset_config

    m = cfg.model
    if m.init is not None:  # a later stage: what the earlier one trained is kept (config.trained) when frozen now
        init = Path(m.init)
        if (init / "latest").is_file():  # a run folder: its newest checkpoint's model
            found = latest_checkpoint(init)
            if found is None:
                raise TrainError(f"model.init: {init} holds no complete checkpoint")
            init = found / "model"
        model = from_pretrained(init, base=m.base or None)
        for key in ("prompt_gate", "prompt_match"):
            wanted = getattr(m, key)
            if wanted is not None and wanted != getattr(model.config, key):
                built = getattr(model.config, key)
                raise TrainError(
                    f"model.{key}={wanted} does not fit model.init {init} (built with {key}={built}): "
                    "it is architecture, fixed by stage 1"
                )
        if model.config.train_encoder and not m.train_encoder:
            model.freeze_encoder()
        elif m.train_encoder and not model.config.train_encoder:
            model.unfreeze_encoder()  # e.g. more stage-1 training from a finished model's F_enc
        model.freeze(m.freeze, trained=True)
        model.unfreeze(m.unfreeze)
        if m.max_prompt_length is not None:
            model.config.max_prompt_length = m.max_prompt_length
    else:
        config = preset_config(m.preset, seed=cfg.seed, **m.base)
        if m.sam is not None:
            config.sam = m.sam
        config.max_prompt_length = m.max_prompt_length
        config.train_encoder = m.train_encoder
        for key in ("prompt_gate", "prompt_match"):
            if getattr(m, key) is not None:
                setattr(config, key, getattr(m, key))
        from prg.train.data import prompt_vocab

        config.prompt_vocab = prompt_vocab(cfg)  # stage 1 of the small recipe: its prompt table
        model = build_prg_model(config)
        model.freeze(m.freeze)
    if m.max_new_tokens is not None:
        model.config.max_new_tokens = m.max_new_tokens
    if m.dice_weight is not None:
        model.config.dice_weight = m.dice_weight
    if m.angle_region_weight is not None:
        model.config.angle_region_weight = m.angle_region_weight
    if m.prompt_distill_weight is not None:
        model.config.prompt_distill_weight = m.prompt_distill_weight
    if m.match_weight is not None:
        model.config.match_weight = m.match_weight
    if any(s.kind == "grasp_prompt" for s in cfg.data.sources):
        return model  # stage 1 trains F_enc + F_dec only: no adapters on a language model it does not run
    if model.has_adapters or model.config.lora is not None:
        return model  # a checkpoint that already carries its adapters continues with them
    torch.manual_seed(cfg.seed + 7)  # adapter initialisation
    am = AdaptiveMixtureConfig(**m.adaptive_mixture)
    if m.adapter == "adaptive_mixture":
        model.apply_adaptive_mixture(am)
    elif m.adapter == "lora":
        lora = dict(m.lora)
        if not lora:  # the baseline at the mixture's trainable budget
            base = lora_baseline_config(model.vlm.language_model, am)
            lora = {"r": base.r, "lora_alpha": base.lora_alpha, "lora_dropout": base.lora_dropout,
                    "target_modules": sorted(base.target_modules or []), "bias": "none"}  # fmt: skip
        model.apply_lora(lora)
    if m.gradient_checkpointing:
        model.vlm.language_model.gradient_checkpointing_enable()
    return model


def lr_lambda(cfg: TrainConfig, horizon: dict[str, int] | None = None) -> Callable[[int], float]:
    """Linear warmup to the base LR, then cosine down to ``min_lr_ratio`` (or constant) at ``horizon["steps"]``
    (``cfg.steps`` unless a time budget shortened it)."""
    o = cfg.optim
    h = horizon if horizon is not None else {"steps": cfg.steps}

    def f(step: int) -> float:
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        span = max(1, h["steps"] - o.warmup_steps)
        t = min(1.0, (step - o.warmup_steps) / span)
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return f


FIT_SKIP, FIT_WINDOW = 20, 40
"""With ``max_minutes`` and ``fit_to_budget``: the speed is first measured over steps FIT_SKIP .. FIT_SKIP +
FIT_WINDOW of a call, after the data loader's and the kernels' warm-up, then again every FIT_WINDOW steps as the
mean since step FIT_SKIP (validation included, since later validations also spend the budget). Measured from the
first 20 steps instead, an H200 run (0.4 steps/s at first, 1.3 later) ended its cosine at step 210 of 400 and spent
half the budget at the minimum LR; fitted once at step 60, a stage-1 run whose loader was still warming up (5.2
steps/s on average, slower then) ended it at step ~1320 of 2276."""


def budget_horizon(
    done: int, steps: int, elapsed_s: float, window_s: float, max_minutes: float, window_steps: int = FIT_WINDOW
) -> int:
    """The step where the cosine ends so that it ends with the time budget: ``done`` steps so far, ``elapsed_s``
    seconds since the call started, the last ``window_steps`` steps took ``window_s``; never beyond ``steps``."""
    per_step = max(1e-9, window_s / max(1, window_steps))
    left = max(0.0, 60.0 * max_minutes - elapsed_s)
    return min(steps, done + int(left / per_step))


def refit_horizon(current: int, fitted: int, done: int) -> int:
    """The cosine's end after a re-fit: ``fitted`` while the cosine still runs (a longer one raises the learning
    rate only a little that early), but once it has ended (``done >= current``) it stays ended: a re-fit must not
    send the learning rate back up from its minimum."""
    return current if done >= current else max(done, fitted)


class Trainer:
    """One run of a :class:`TrainConfig`. ``resume`` continues the run folder's ``latest`` checkpoint.

    ``stream_factory(cfg, model, rank, world) -> BatchStream`` and ``validate(model, step) -> metrics`` are
    injectable (tests, other data); the defaults come from :mod:`prg.train.data`.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        resume: bool = False,
        stream_factory: Callable[..., Any] | None = None,
        validate: Callable[[Any, int], dict[str, float]] | None = None,
        kill_at_step: int | None = None,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.resume = resume
        self.stream_factory = stream_factory
        self.validate_fn = validate
        self.kill_at_step = kill_at_step  # tests: SIGKILL this process right after this step's update
        self.progress = progress

    # -- setup ----------------------------------------------------------------------------------------------
    def _accelerator(self) -> Any:
        from accelerate import Accelerator, DistributedDataParallelKwargs

        mp = self.cfg.mixed_precision
        if mp == "auto":
            mp = "bf16" if torch.cuda.is_available() else "no"
        # a batch without [POSE] (scene Q&A, VQA) leaves the grasp head out of the graph
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        return Accelerator(
            gradient_accumulation_steps=self.cfg.grad_accum,
            mixed_precision=mp,
            kwargs_handlers=[ddp],
            cpu=not torch.cuda.is_available(),  # several CPU processes (torchrun) then join with gloo
        )

    def run(self) -> TrainResult:
        cfg = self.cfg
        acc = self._accelerator()
        run_dir = cfg.run_dir
        resume_from = self._check_run_dir(run_dir) if acc.is_main_process else None
        acc.wait_for_everyone()
        if not acc.is_main_process:
            resume_from = latest_checkpoint(run_dir) if self.resume else None
        torch.manual_seed(cfg.seed)
        model = build_model(cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise TrainError("nothing to train: every parameter is frozen")
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas)
        horizon = {"steps": cfg.steps}  # shortened once the speed is known when max_minutes bounds the run
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, horizon))
        if acc.is_main_process and self.stream_factory is None:
            from prg.train.data import prepare_data

            prepare_data(cfg, progress=self.progress)
        acc.wait_for_everyone()
        stream = self._stream(model, acc.process_index, acc.num_processes)
        if self.validate_fn is None and self.stream_factory is None and acc.is_main_process:
            from prg.train.data import make_validator

            self.validate_fn = make_validator(cfg)
            if self.validate_fn is None and cfg.data.val_records > 0:
                print(
                    f"warning: no validation: the PRG sources have no {cfg.data.val_split!r} records "
                    "(set data.val_split to a split they have)",
                    file=sys.stderr,
                )
        start_step = 0
        if resume_from is not None:
            start_step = self._restore(resume_from, model, optimizer, scheduler, stream)
        # the scheduler stays unwrapped: accelerate's wrapper steps it once per process, PRG's schedule counts
        # optimizer steps whatever the process count
        wrapped, optimizer = acc.prepare(model, optimizer)
        logger = _Logger(run_dir, acc.is_main_process, start_step)
        losses: list[float] = []
        last_ckpt = resume_from
        metrics: dict[str, float] = {}
        bar = _progress(self.progress and acc.is_main_process, cfg.steps, start_step)
        t0 = t_fit = time.perf_counter()
        try:
            for step in range(start_step, cfg.steps):
                model.train()
                parts: dict[str, float] = {}
                local: dict[str, float] = {}
                step_loss = 0.0
                for _ in range(cfg.grad_accum):
                    batch = stream.next_batch()
                    ids = batch.pop("ids", [])
                    batch = {k: v.to(acc.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                    with acc.accumulate(wrapped):
                        try:
                            out = wrapped(batch)
                        except torch.cuda.OutOfMemoryError:
                            raise TrainError(self._oom_message()) from None
                        loss = out["loss"]
                        if not torch.isfinite(loss):
                            raise TrainError(
                                f"the loss is {loss.item()} at step {step + 1} (records {list(ids)}); the last good "
                                f"checkpoint is {last_ckpt or 'none (no checkpoint was written yet)'}"
                            )
                        acc.backward(loss)
                        if acc.sync_gradients and cfg.optim.grad_clip > 0:
                            acc.clip_grad_norm_(params, cfg.optim.grad_clip)
                        optimizer.step()  # accelerate skips it until the last micro-batch of the step
                        optimizer.zero_grad(set_to_none=True)
                    # the mean over every process's micro-batch: the same number one process with
                    # (processes x grad_accum) accumulation steps would log
                    terms = torch.stack([loss.detach(), *(out[k].detach() for k in _PARTS)])
                    terms = acc.reduce(terms, reduction="mean") if acc.num_processes > 1 else terms
                    step_loss += float(terms[0]) / cfg.grad_accum
                    for k, v in zip(_PARTS, terms[1:].tolist(), strict=True):
                        parts[k] = parts.get(k, 0.0) + v / cfg.grad_accum
                    # the grasp loss's components (quality, dice, match, distill, ...): this process's values
                    for k, v in (out.get("components") or {}).items():
                        local[k] = local.get(k, 0.0) + float(v) / cfg.grad_accum
                scheduler.step()
                losses.append(step_loss)
                done = step + 1
                if cfg.max_minutes is not None and cfg.fit_to_budget:  # fit the cosine to the budget (FIT_SKIP)
                    since = done - start_step - FIT_SKIP
                    if since == 0:
                        t_fit = time.perf_counter()
                    elif since > 0 and since % FIT_WINDOW == 0:
                        now = time.perf_counter()
                        fitted = budget_horizon(done, cfg.steps, now - t0, now - t_fit, cfg.max_minutes, since)
                        horizon["steps"] = (
                            fitted if since == FIT_WINDOW else refit_horizon(horizon["steps"], fitted, done)
                        )
                if cfg.log_every and (done % cfg.log_every == 0 or done == cfg.steps):
                    lr = float(scheduler.get_last_lr()[0])
                    rate = (done - start_step) / max(1e-9, time.perf_counter() - t0)
                    logger.log(done, {"loss": step_loss, **parts, **{f"part/{k}": v for k, v in local.items()},
                                      "lr": lr, "steps_per_s": rate})  # fmt: skip
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{step_loss:.4f}")
                out_of_time = cfg.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.max_minutes
                is_last = done == cfg.steps or out_of_time
                if self.validate_fn is not None and ((cfg.eval_every and done % cfg.eval_every == 0) or is_last):
                    metrics = self.validate_fn(acc.unwrap_model(wrapped), done)
                    logger.log(done, {f"val/{k}": v for k, v in metrics.items()})
                if (cfg.save_every and done % cfg.save_every == 0) or is_last:
                    acc.wait_for_everyone()
                    if acc.is_main_process:
                        last_ckpt = self._save(run_dir, done, acc.unwrap_model(wrapped), optimizer, scheduler, stream,
                                               metrics)  # fmt: skip
                    acc.wait_for_everyone()
                if self.kill_at_step is not None and done == self.kill_at_step:
                    os.kill(os.getpid(), 9)  # the crash the resume test recovers from
                if out_of_time:
                    print(f"stopping at step {done}: max_minutes={cfg.max_minutes} reached", file=sys.stderr)
                    break
        finally:
            if bar is not None:
                bar.close()
            logger.close()
        acc.wait_for_everyone()
        return TrainResult(run_dir, start_step + len(losses), last_ckpt, losses, metrics)

    def _oom_message(self) -> str:
        c = self.cfg
        return (
            f"CUDA out of memory at batch_size={c.batch_size}, grad_accum={c.grad_accum}, "
            f"gradient_checkpointing={c.model.gradient_checkpointing}: lower batch_size (raising grad_accum keeps "
            "the effective batch), set model.gradient_checkpointing=true, or lower model.max_prompt_length"
        )

    def _stream(self, model: Any, rank: int, world: int) -> Any:
        if self.stream_factory is not None:
            return self.stream_factory(self.cfg, model, rank, world)
        from prg.train.data import build_stream

        return build_stream(self.cfg, model, rank, world, num_workers=self.cfg.data.num_workers)

    def _check_run_dir(self, run_dir: Path) -> Path | None:
        """The checkpoint to resume from; refuses to train over another run's folder by accident."""
        latest = latest_checkpoint(run_dir)
        if self.resume:
            if latest is None:
                raise TrainError(f"--resume: {run_dir} holds no complete checkpoint to resume from")
            saved = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
            mine = self.cfg.to_dict()
            for key in ("model",):
                if _plain(saved.get(key)) != _plain(mine.get(key)):
                    raise TrainError(
                        f"--resume: {run_dir} was trained with another model section ({key}); resume with its own "
                        f"config ({run_dir / 'config.yaml'}) or train into a new output folder"
                    )
            return latest
        if latest is not None or (run_dir / "metrics.jsonl").exists():
            raise TrainError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another name")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(_plain(self.cfg.to_dict()), sort_keys=False))
        return None

    def _save(
        self, run_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any, stream: Any,
        metrics: dict[str, float],
    ) -> Path:  # fmt: skip
        from safetensors.torch import save_file

        from prg.model.checkpoint import save_pretrained

        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=run_dir))
        try:
            save_pretrained(model, staging / "model")
            save_optimizer(optimizer, staging)
            rng_meta, rng_tensors = capture_rng()
            save_file(rng_tensors, str(staging / "rng.safetensors"))
            trainer = {
                "step": step,
                "scheduler": scheduler.state_dict(),
                "stream": stream.state_dict(),
                "rng": rng_meta,
                "metrics": metrics,
            }
            (staging / "trainer.json").write_text(json.dumps(trainer, default=_json_default))
            best = self._is_best(run_dir, metrics)
            final = publish_checkpoint(staging, run_dir, step_dir_name(step), best=best)
        except OSError as e:
            shutil.rmtree(staging, ignore_errors=True)
            previous = latest_checkpoint(run_dir)
            raise TrainError(
                f"could not write the step-{step} checkpoint ({e.strerror or e}); the previous one is intact: "
                f"{previous or 'none'}"
            ) from None
        prune_checkpoints(run_dir, self.cfg.keep_last)
        return final

    def _is_best(self, run_dir: Path, metrics: dict[str, float]) -> bool:
        key = "val_loss"
        if key not in metrics:
            return False
        best_file = run_dir / "best"
        if not best_file.is_file():
            return True
        prev = json.loads((run_dir / best_file.read_text().strip() / "trainer.json").read_text())["metrics"]
        return metrics[key] < prev.get(key, float("inf"))

    def _restore(self, folder: Path, model: Any, optimizer: Any, scheduler: Any, stream: Any) -> int:
        from safetensors.torch import load_file

        from prg.model.checkpoint import WEIGHTS_NAME, CheckpointError, state_to_save

        meta = json.loads((folder / "trainer.json").read_text())
        stored = load_file(str(folder / "model" / WEIGHTS_NAME))
        own = state_to_save(model, trainable_only=True)
        missing, unexpected = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
        if missing or unexpected:
            raise TrainError(
                f"--resume: {folder} holds another architecture (missing {missing[:4]}, unexpected {unexpected[:4]})"
            )
        with torch.no_grad():
            for k, t in own.items():
                if stored[k].shape != t.shape:
                    raise CheckpointError(f"--resume: {k} is {tuple(stored[k].shape)} there, {tuple(t.shape)} here")
                t.copy_(stored[k])
        load_optimizer(optimizer, folder)
        scheduler.load_state_dict(meta["scheduler"])
        stream.load_state_dict(meta["stream"])
        restore_rng(meta["rng"], load_file(str(folder / "rng.safetensors")))
        return int(meta["step"])


def _plain(x: Any) -> Any:
    """Tuples -> lists, recursively (YAML and JSON round trips do the same)."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _progress(enabled: bool, total: int, start: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, desc="train")


class _Logger:
    """metrics.jsonl (appended, flushed per line) and TensorBoard scalars, on the main process only."""

    def __init__(self, run_dir: Path, enabled: bool, start_step: int) -> None:
        self.enabled = enabled
        self.file = None
        self.tb = None
        if not enabled:
            return
        self.file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1 if start_step else None)
        except ImportError:  # tensorboard is a dependency; without it the JSONL log still works
            self.tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled or self.file is None:
            return
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()
