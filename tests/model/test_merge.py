"""``prg merge``: adapters folded into the base; the standalone folder loads without adapter code or base weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

import prg.model.adaptive_mixture as am
import prg.model.prg_model as pm
from prg.cli.main import app
from prg.model.adaptive_mixture import AdaptiveMixtureConfig, AdaptiveMixtureLinear
from prg.model.checkpoint import from_pretrained, save_pretrained
from prg.model.merge import probe_logits
from prg.model.prg_model import PRGModel, build_tiny_prg_model
from tests.model.test_checkpoint import fake_training, outputs

runner = CliRunner()


def trained(kind: str) -> PRGModel:
    model = build_tiny_prg_model()
    torch.manual_seed(0)  # the adapters' initialisation
    if kind == "lora":
        model.apply_lora({"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "down_proj"]})
    else:
        model.apply_adaptive_mixture(AdaptiveMixtureConfig(n_experts=3, rank=4, top_k=2))
    fake_training(model)
    return model.eval()


def merge_cli(weights: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["merge", "--weights", str(weights), "--out", str(out), *extra])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


@pytest.mark.parametrize("kind", ["lora", "adaptive_mixture"])
def test_merge_writes_a_standalone_folder(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = trained(kind)
    save_pretrained(model, tmp_path / "ckpt")
    unmerged = probe_logits(model)
    with torch.no_grad():  # the same model with its adapters thrown away
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.zero_()
    dropped = probe_logits(model)
    code, text = merge_cli(tmp_path / "ckpt", tmp_path / "merged")
    assert code == 0, text
    assert f"merged {kind}" in text

    # The same merge in memory is what the folder holds, bit for bit.
    reference = from_pretrained(tmp_path / "ckpt").eval()
    if kind == "adaptive_mixture":  # prg merge takes the mean gates from its probe prompt
        with am.calibrate(reference.vlm.language_model):
            probe_logits(reference)
    reference.merge_adapters()

    # Loading touches no adapter code: both adapter paths are made to fail.
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("adapter code used while loading a merged folder")

    monkeypatch.setattr(am, "apply_adaptive_mixture", refuse)
    monkeypatch.setattr(pm, "apply_adaptive_mixture", refuse)
    monkeypatch.setattr(PRGModel, "apply_lora", refuse)
    merged = from_pretrained(tmp_path / "merged")
    assert merged.config.adaptive_mixture is None and merged.config.lora is None
    assert not any(isinstance(m, AdaptiveMixtureLinear) for m in merged.modules())
    assert not any("lora" in name for name, _ in merged.named_parameters())
    loss_a, maps_a, pred_a = outputs(reference)
    loss_b, maps_b, pred_b = outputs(merged)
    assert torch.equal(loss_a, loss_b) and torch.equal(maps_a, maps_b) and pred_a == pred_b

    # LoRA merges exactly; AdaptiveMixture approximately (its routing varies per token).
    diff = (probe_logits(merged) - unmerged).abs()
    if kind == "lora":
        assert diff.max() <= 1e-5 * unmerged.abs().max()
    else:  # docs/adaptive_mixture.md: not exact, but closer to the unmerged model than dropping the adapters
        assert diff.max() > 1e-4 * unmerged.abs().max()
        assert diff.mean() < (dropped - unmerged).abs().mean()

    # The language model is a plain Hugging Face folder.
    lm = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged" / "language_model"))
    for name, tensor in lm.state_dict().items():
        assert torch.equal(tensor, merged.vlm.language_model.state_dict()[name]), name


def test_merge_keeps_existing_output_and_needs_adapters(tmp_path: Path) -> None:
    save_pretrained(trained("lora"), tmp_path / "ckpt")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("user data")
    code, text = merge_cli(tmp_path / "ckpt", tmp_path / "out")
    assert code == 1 and "--force" in text
    assert (tmp_path / "out" / "keep.txt").read_text() == "user data"
    code, text = merge_cli(tmp_path / "ckpt", tmp_path / "out", "--force")
    assert code == 0, text
    assert not (tmp_path / "out" / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []  # no staging left behind

    save_pretrained(build_tiny_prg_model(), tmp_path / "plain")
    code, text = merge_cli(tmp_path / "plain", tmp_path / "out2")
    assert code == 1 and "no adapters" in text
    assert not (tmp_path / "out2").exists()
