"""The shipped accelerate configs (FSDP2, DeepSpeed ZeRO-2) load in accelerate and use only options it knows.

Running them needs several GPUs (issue P10); this checks what can go wrong before that: a misspelt key that
accelerate would drop, a wrapping class transformers does not have, a config of the wrong engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
KNOWN = {a.dest for a in launch_command_parser()._actions}


@pytest.mark.parametrize(
    ("name", "engine", "section"),
    [("fsdp2.yaml", DistributedType.FSDP, "fsdp_config"), ("deepspeed_zero2.yaml", DistributedType.DEEPSPEED,
                                                             "deepspeed_config")],
)  # fmt: skip
def test_config_loads_with_known_options_only(name: str, engine: DistributedType, section: str) -> None:
    cfg = load_config_from_file(str(CONFIGS / name))
    assert cfg.distributed_type == engine and cfg.mixed_precision == "bf16" and not cfg.use_cpu
    options = getattr(cfg, section)
    assert options and set(options) <= KNOWN, sorted(set(options) - KNOWN)


def test_fsdp2_wraps_a_class_transformers_has_and_zero_stage_is_two() -> None:
    fsdp = load_config_from_file(str(CONFIGS / "fsdp2.yaml")).fsdp_config
    from transformers.models.llama import modeling_llama

    assert fsdp["fsdp_version"] == 2 and hasattr(modeling_llama, fsdp["fsdp_transformer_layer_cls_to_wrap"])
    ds = load_config_from_file(str(CONFIGS / "deepspeed_zero2.yaml")).deepspeed_config
    assert ds["zero_stage"] == 2 and ds["offload_optimizer_device"] == "none"
