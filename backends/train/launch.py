"""Several GPUs: write an `accelerate` config (DDP, FSDP, DeepSpeed ZeRO-2/3) and the `accelerate launch` command.

The config is a plain dict in the layout `accelerate config` writes (accelerate.commands.config.config_args
.ClusterConfig), so `accelerate launch --config_file` reads it without questions. Single-GPU and CPU runs
do not come here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from advisor.core.fileio import write_text_atomic
from advisor.core.models import TrainStep

__all__ = ["accelerate_config", "launch_command", "write_accelerate_config"]

CONFIG_FILE = "accelerate.yaml"


def _mixed_precision(precision: str) -> str:
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


def accelerate_config(step: TrainStep, precision: str) -> dict:
    """The accelerate config for `step.distributed` on `step.n_gpus` GPUs of one machine."""
    config = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "machine_rank": 0,
        "num_machines": 1,
        "num_processes": step.n_gpus,
        "mixed_precision": _mixed_precision(precision),
        "use_cpu": False,
        "rdzv_backend": "static",
        "same_network": True,
        "main_training_function": "main",
        "downcast_bf16": "no",
    }
    if step.distributed == "ddp":
        return {**config, "distributed_type": "MULTI_GPU", "gpu_ids": "all"}
    if step.distributed == "fsdp":
        return {**config, "distributed_type": "FSDP", "fsdp_config": {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # one FSDP unit per decoder block
            "fsdp_reshard_after_forward": True,  # full sharding (ZeRO-3 equivalent)
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": False,
            # Gradient checkpointing is done by FSDP's own activation checkpointing with FSDP2.
            "fsdp_activation_checkpointing": step.grad_ckpt,
        }}
    stage = 2 if step.distributed == "zero2" else 3
    deepspeed = {
        "zero_stage": stage,
        "gradient_accumulation_steps": step.grad_accum,
        "offload_optimizer_device": "none",
        "offload_param_device": "none",
        "zero3_init_flag": stage == 3,
    }
    if stage == 3:
        deepspeed["zero3_save_16bit_model"] = True  # so the saved model is one ordinary checkpoint
    return {**config, "distributed_type": "DEEPSPEED", "deepspeed_config": deepspeed}


def write_accelerate_config(step: TrainStep, precision: str, run_dir: Path) -> Path:
    """Write the config as YAML into the run directory and return its path."""
    import yaml

    path = run_dir / CONFIG_FILE
    write_text_atomic(path, yaml.safe_dump(accelerate_config(step, precision), sort_keys=True))
    return path


def launch_command(config_path: Path, run_dir: Path, *, resume: bool) -> list[str]:
    """`accelerate launch` running this backend's worker (`python -m backends.train RUN_DIR`) on every GPU."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path),
               "-m", "backends.train", str(run_dir)]
    return [*command, "--resume"] if resume else command
