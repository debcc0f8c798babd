"""Training on the tiny preset, CPU: through the CLI, exact resume after SIGKILL, bad input, overfitting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prg.model.checkpoint import from_pretrained
from prg.train.config import ConfigError, load_config
from prg.train.trainer import Trainer, TrainError, build_model
from tests.cli_run import run_main

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "train" / "tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from prg.data.synth.generate import SynthConfig, generate
    from prg.retrieval.build import build_index

    root = tmp_path_factory.mktemp("train")
    generate(root / "ds", SynthConfig(n=16, seed=0), progress=False)
    build_index([root / "ds" / "documents"], root / "index", embedder="hashing")
    return root


def overrides(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"output_dir={out}",
        f"data.sources=[{{path: {data / 'ds'}, kind: prg, rate: 3}}, {{path: {data / 'ds'}, kind: scene_qa, rate: 1}}]",
        f"data.index={data / 'index'}",
        *extra,
    ]


def losses(run_dir: Path) -> dict[int, float]:
    """The last logged loss of every step (a resumed run logs the steps after its checkpoint again)."""
    out: dict[int, float] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "loss" in row:
            out[row["step"]] = row["loss"]
    return out


def call(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    code, out, err = run_main(args, capsys, monkeypatch)
    return code, out + err


def test_cli_trains_a_loadable_checkpoint_that_predicts(data, tmp_path, capsys, monkeypatch) -> None:
    sets = overrides(data, tmp_path, "steps=5", "save_every=0", "eval_every=0", "data.val_split=zero_shot_task")
    code, out = call(["train", "--config", str(TINY), "--quiet", *[f"--set={s}" for s in sets]], capsys, monkeypatch)
    assert code == 0, out
    run = tmp_path / "tiny"
    assert (run / "latest").read_text().strip() == "step-000005"
    assert sorted(losses(run)) == [1, 2, 3, 4, 5]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/target_recognition" in r for r in rows) and any("val/val_loss" in r for r in rows)
    model = from_pretrained(run / "step-000005" / "model")
    assert model.has_adapters and model.config.processor["template"]["document"] == "[{label}] {text}\n"
    code, out = call(
        ["predict", "-c", str(run / "step-000005" / "model"), "--index", str(data / "index"), "-t", "Hand me a tool.",
         "-i", str(next((data / "ds" / "images").iterdir())), "--json"], capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out.splitlines()[-1])["retrieved"]


def test_sigkill_and_resume_reproduce_the_uninterrupted_run(data, tmp_path) -> None:
    sets = overrides(data, tmp_path / "a", "steps=6", "save_every=3", "eval_every=0", "data.val_records=0")
    cfg = load_config(TINY, sets)
    Trainer(cfg, progress=False).run()
    reference = losses(cfg.run_dir)
    # the same run in a child that SIGKILLs itself right after step 4 (its step-3 checkpoint is the latest).
    sets_b = overrides(data, tmp_path / "b", "steps=6", "save_every=3", "eval_every=0", "data.val_records=0")
    code = (
        f"import torch; torch.set_num_threads({torch.get_num_threads()}); "  # the same reduction order as here
        "from prg.train.config import load_config; from prg.train.trainer import Trainer; "
        f"Trainer(load_config({str(TINY)!r}, {sets_b!r}), progress=False, kill_at_step=4).run()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    run_b = tmp_path / "b" / "tiny"
    assert (run_b / "latest").read_text().strip() == "step-000003"
    Trainer(load_config(TINY, sets_b), resume=True, progress=False).run()
    resumed = losses(run_b)
    assert sorted(resumed) == sorted(reference) == [1, 2, 3, 4, 5, 6]
    for step in reference:
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step
    # the two final models compute the same thing (their parameters can differ where the loss does not depend on
    # them: a key bias of attention has a ~0 gradient that Adam's normalisation turns into full-size noise steps)
    from prg.data.torch.collate import collate
    from prg.train.data import validation_items

    a = from_pretrained(cfg.run_dir / "step-000006" / "model").eval()
    b = from_pretrained(run_b / "step-000006" / "model").eval()
    items, _ = validation_items(load_config(TINY, [*sets_b, "data.val_records=2", "data.val_split=train"]))
    batch = {k: v for k, v in collate(items, a.processor).items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        la, lb = a(batch), b(batch)
    for key in ("lm_loss", "grasp_loss"):
        assert float(la[key]) == pytest.approx(float(lb[key]), rel=1e-5), key


def test_overfitting_one_batch_drives_the_loss_down(data, tmp_path) -> None:
    from prg.train.data import build_stream

    extra = ["steps=40", "save_every=0", "eval_every=0", "data.augment=false", "optim.warmup_steps=0"]
    extra += ["optim.schedule=constant", "optim.lr=3e-3", "model.adapter=none"]
    cfg = load_config(TINY, overrides(data, tmp_path, *extra))
    fixed: dict = {}

    class Same:
        def __init__(self, stream):
            self.stream = stream

        def next_batch(self):
            if not fixed:
                fixed.update(self.stream.next_batch())
            return dict(fixed)

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    result = Trainer(cfg, stream_factory=lambda c, m, r, w: Same(build_stream(c, m, r, w)), progress=False).run()
    assert result.losses[-1] < 0.5 * result.losses[0], result.losses


def test_nan_loss_stops_naming_the_step_and_records(data, tmp_path) -> None:
    from prg.train.data import build_stream

    cfg = load_config(TINY, overrides(data, tmp_path, "steps=6", "save_every=2", "eval_every=0"))

    class Poisoned:
        def __init__(self, stream):
            self.stream, self.n = stream, 0

        def next_batch(self):
            batch = self.stream.next_batch()
            self.n += 1
            if self.n == 3:
                batch["sam_pixel_values"] = torch.full_like(batch["sam_pixel_values"], float("nan"))
                batch["pixel_values"] = torch.full_like(batch["pixel_values"], float("nan"))
            return batch

        def state_dict(self):
            return self.stream.state_dict()

        def load_state_dict(self, state):
            self.stream.load_state_dict(state)

    with pytest.raises(TrainError, match=r"at step 3 \(records \[") as err:
        Trainer(cfg, stream_factory=lambda c, m, r, w: Poisoned(build_stream(c, m, r, w)), progress=False).run()
    assert "step-000002" in str(err.value)
    assert (cfg.run_dir / "latest").read_text().strip() == "step-000002"


def test_disk_full_while_saving_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch) -> None:
    import prg.train.trainer as tr

    cfg = load_config(TINY, overrides(data, tmp_path, "steps=4", "save_every=2", "eval_every=0", "data.val_records=0"))
    calls = {"n": 0}
    real = tr.save_optimizer

    def full(optimizer, folder):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real(optimizer, folder)

    monkeypatch.setattr(tr, "save_optimizer", full)
    with pytest.raises(TrainError, match=r"No space left on device.*previous one is intact"):
        Trainer(cfg, progress=False).run()
    assert (cfg.run_dir / "latest").read_text().strip() == "step-000002"
    assert not list(cfg.run_dir.glob(".staging-*"))
    from_pretrained(cfg.run_dir / "step-000002" / "model")


def test_bad_configs_fail_before_training(data, tmp_path, capsys, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stpes'\].*valid keys: .*'steps'"):
        load_config(TINY, ["stpes=3"])
    with pytest.raises(ConfigError, match=r"optim.lr must be a number"):
        load_config(TINY, ["optim.lr=fast"])
    bad = tmp_path / "bad_ds"
    bad.mkdir()
    (bad / "dataset.json").write_text("{}")
    sets = overrides(data, tmp_path, f"data.sources=[{{path: {bad}, kind: prg}}]")
    code, out = call(["train", "--config", str(TINY), *[f"--set={s}" for s in sets]], capsys, monkeypatch)
    assert code == 1 and "does not validate" in out and "Traceback" not in out
    assert not (tmp_path / "tiny").exists()  # nothing was started


def test_resume_refuses_another_architecture_and_a_taken_folder(data, tmp_path) -> None:
    sets = overrides(data, tmp_path, "steps=2", "save_every=0", "eval_every=0", "data.val_records=0")
    Trainer(load_config(TINY, sets), progress=False).run()
    with pytest.raises(TrainError, match="already holds a run"):
        Trainer(load_config(TINY, sets), progress=False).run()
    other = load_config(TINY, [*sets, "model.adapter=lora", "steps=4"])
    with pytest.raises(TrainError, match="another model section"):
        Trainer(other, resume=True, progress=False).run()
    with pytest.raises(TrainError, match="no complete checkpoint"):
        Trainer(load_config(TINY, overrides(data, tmp_path / "empty")), resume=True, progress=False).run()


def test_two_stage_recipe_prompt_pretraining_then_fine_tuning(data, tmp_path, capsys, monkeypatch) -> None:
    """Stage 1 (grasp_prompt, no LM) then stage 2 from it, as scripts/train_small.sh runs the small preset."""
    ds = data / "ds"
    s1 = [f"output_dir={tmp_path}", "name=s1", f"data.sources=[{{path: {ds}, kind: grasp_prompt}}]", "steps=3",
          "batch_size=2", "data.val_split=zero_shot_task", "data.val_records=2", "model.train_encoder=true",
          "model.dice_weight=1.0", "model.prompt_gate=true", "model.prompt_match=true", "model.match_weight=1.0",
          "model.freeze=[vlm.language_model, vlm.vision_tower, vlm.projector, grasp_head.projection]"]  # fmt: skip
    code, out = call(["train", "--config", str(TINY), "--quiet", *[f"--set={s}" for s in s1]], capsys, monkeypatch)
    assert code == 0, out
    rows = [json.loads(x) for x in (tmp_path / "s1" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/prompt_hit" in r for r in rows)
    assert all(r["lm_loss"] == 0.0 for r in rows if "lm_loss" in r)
    assert all(r["part/match"] > 0.0 for r in rows if "lm_loss" in r)  # the match map is supervised in stage 1
    first = from_pretrained(tmp_path / "s1" / "step-000003" / "model")
    assert first.prompt_table is not None and not first.has_adapters
    assert first.config.prompt_vocab == sorted(first.config.prompt_vocab) and first.config.train_encoder
    decoder = first.grasp_head.decoder
    assert decoder.prompt_gate is not None and decoder.match_embed is not None
    assert decoder.match_embed.abs().sum() > 0  # trained away from its zero start, and saved
    s2 = overrides(data, tmp_path, "name=s2", "steps=2", f"model.init={tmp_path / 's1'}",
                   "model.unfreeze=[vlm.vision_tower, vlm.projector, grasp_head.projection]",
                   "model.freeze=[prompt_table]", "model.prompt_distill_weight=1.0",
                   "data.val_split=zero_shot_task", "data.val_records=2")  # fmt: skip
    code, out = call(["train", "--config", str(TINY), "--quiet", *[f"--set={s}" for s in s2]], capsys, monkeypatch)
    assert code == 0, out
    second = from_pretrained(tmp_path / "s2" / "step-000002" / "model")
    assert second.has_adapters and not second.config.train_encoder
    assert "image_encoder" in second.config.trained and "vlm.vision_tower" not in second.config.freeze
    assert any(p.requires_grad for p in second.vlm.vision_tower.parameters())
    # F_enc kept its stage-1 weights; the prompt table travelled along
    torch.testing.assert_close(second.image_encoder.state_dict(), first.image_encoder.state_dict())
    torch.testing.assert_close(second.prompt_table.state_dict(), first.prompt_table.state_dict())
    assert second.config.prompt_match and second.config.match_weight == 1.0  # travels with the checkpoint
    with pytest.raises(TrainError, match="architecture"):
        build_model(load_config(TINY, [*s2, "model.prompt_match=false"]))
    # the split evaluator scores the finished model through the pipeline
    from prg.train.evaluate import main as evaluate

    assert evaluate([str(tmp_path / "s2" / "step-000002" / "model"), "--dataset", str(ds), "--splits", "train",
                     "nosuch", "--n", "2", "--out", str(tmp_path / "eval.json")]) == 0  # fmt: skip
    result = json.loads((tmp_path / "eval.json").read_text())["splits"]
    assert list(result) == ["train"] and result["train"]["n"] == 2.0 and "target_recognition" in result["train"]


def test_prompt_sources_do_not_mix_with_text_sources_and_unfreeze_checks_names(data, tmp_path) -> None:
    ds = data / "ds"
    mixed = f"data.sources=[{{path: {ds}, kind: grasp_prompt}}, {{path: {ds}, kind: prg}}]"
    with pytest.raises(ConfigError, match="do not mix"):
        load_config(TINY, [mixed])
    with pytest.raises(ConfigError, match="grasp_prompt"):
        load_config(TINY, [f"data.sources=[{{path: {ds}, kind: prompts}}]"])
    from prg.model.prg_model import build_tiny_prg_model

    with pytest.raises(ValueError, match=r"no module 'vlm\.nothing' to unfreeze"):
        build_tiny_prg_model().unfreeze(["vlm.nothing"])


def test_more_stage_one_from_a_finished_model_trains_its_encoder_again(data, tmp_path) -> None:
    ds = data / "ds"
    base = [f"output_dir={tmp_path}", f"data.sources=[{{path: {ds}, kind: grasp_prompt}}]", "steps=1", "batch_size=2",
            "data.val_records=0", "model.train_encoder=true", "log_every=1"]  # fmt: skip
    Trainer(load_config(TINY, [*base, "name=a"]), progress=False).run()
    finished = from_pretrained(tmp_path / "a" / "step-000001" / "model").freeze_encoder()
    from prg.model.checkpoint import save_pretrained

    save_pretrained(finished, tmp_path / "frozen")
    assert not from_pretrained(tmp_path / "frozen").config.train_encoder
    cfg = load_config(TINY, [*base, "name=b", f"model.init={tmp_path / 'frozen'}"])
    Trainer(cfg, progress=False).run()
    again = from_pretrained(tmp_path / "b" / "step-000001" / "model")
    assert again.config.train_encoder and any(p.requires_grad for p in again.image_encoder.parameters())
    before = from_pretrained(tmp_path / "frozen").image_encoder.state_dict()
    changed = [k for k, v in again.image_encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # the encoder did train in the new run


def test_the_time_budget_fits_the_cosine_to_the_speed_after_warm_up() -> None:
    from prg.train.trainer import FIT_SKIP, FIT_WINDOW, budget_horizon

    done = FIT_SKIP + FIT_WINDOW
    # 60 steps took 30 s, the last 40 of them 8 s (0.2 s/step): 270 s of a 5-minute budget remain -> 1350 steps
    assert budget_horizon(done, 10_000, elapsed_s=30.0, window_s=8.0, max_minutes=5.0) == done + 1350
    assert budget_horizon(done, 500, 30.0, 8.0, 5.0) == 500  # never past the configured steps
    assert budget_horizon(done, 10_000, 400.0, 8.0, 5.0) == done  # over budget already: the cosine ends now


def test_the_budget_fit_is_refreshed_but_never_restarts_an_ended_cosine() -> None:
    from prg.train.trainer import budget_horizon, refit_horizon

    # 200 steps since step 20 took 20 s (0.1 s/step, faster than the first window): 250 s left -> 2500 more steps
    assert budget_horizon(220, 10_000, elapsed_s=50.0, window_s=20.0, max_minutes=5.0, window_steps=200) == 2720
    assert refit_horizon(current=1320, fitted=2720, done=220) == 2720  # still in the cosine: follow the fit
    assert refit_horizon(current=1320, fitted=900, done=220) == 900  # slower than thought: end sooner
    assert refit_horizon(current=1320, fitted=2720, done=1400) == 1320  # ended: the LR stays at its minimum
    assert refit_horizon(current=1320, fitted=100, done=220) == 220  # never behind the current step


def test_a_budgeted_run_refits_its_cosine_in_the_loop(data, tmp_path, capsys, monkeypatch) -> None:
    # a budget far above what 100 steps need: every re-fit (steps 60, 100) caps at `steps`, so the cosine ends at
    # the configured last step, as without a budget
    sets = overrides(data, tmp_path, "steps=100", "save_every=0", "eval_every=0", "log_every=10", "max_minutes=60",
                     "fit_to_budget=true", "data.val_records=0")  # fmt: skip
    code, out = call(["train", "--config", str(TINY), "--quiet", *[f"--set={s}" for s in sets]], capsys, monkeypatch)
    assert code == 0, out
    cfg = load_config(TINY, sets)
    lrs = {r["step"]: r["lr"] for r in map(json.loads, (tmp_path / "tiny" / "metrics.jsonl").read_text().splitlines())
           if "lr" in r}  # fmt: skip
    assert lrs[100] == pytest.approx(cfg.optim.lr * cfg.optim.min_lr_ratio, rel=1e-6)
    assert lrs[50] > lrs[100]
