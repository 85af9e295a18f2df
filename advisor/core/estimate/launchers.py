"""Sharding from launcher configs: accelerate `config.yaml`, DeepSpeed JSON, and FSDP keys of a training config.

What each setting means for the estimator (`EstimateSpec.zero_stage`, `n_gpus`, `offload_*`):

- DeepSpeed `zero_optimization.stage` is the ZeRO stage; `offload_optimizer.device: cpu|nvme` moves optimizer
  state (and the fp32 master copy and gradients) off the GPU; `offload_param.device` moves parameters
  (stage 3 only). `train_micro_batch_size_per_gpu` is the micro-batch when it is a number, not `auto`.
- FSDP (accelerate `fsdp_config`, Axolotl `fsdp_config`, TrainingArguments `fsdp`): FULL_SHARD (FSDP1) or
  `reshard_after_forward: true` (FSDP2) shards parameters, gradients and optimizer state like ZeRO-3;
  SHARD_GRAD_OP / `reshard_after_forward: false` keeps parameters whole like ZeRO-2; HYBRID_SHARD shards
  within a node (counted as ZeRO-3 over the GPUs given); `offload_params: true` is FSDP's CPUOffload, which
  holds parameters, gradients and the optimizer step on the CPU (under NO_SHARD it is not modelled). FSDP's
  root unit (embeddings, LM head) stays gathered from forward to backward; DeepSpeed ZeRO-3 frees each
  module's parameters after use (`shard_root_unit`).
- accelerate `num_processes` is the number of GPUs; `mixed_precision: bf16|fp16|no` the compute dtype.

Pure functions over parsed mappings; configs.py reads the files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advisor.core.errors import InvalidInputError

if TYPE_CHECKING:
    from advisor.core.estimate.configs import ConfigReading

__all__ = ["fsdp_settings", "merge_launcher", "read_accelerate", "read_deepspeed"]

FSDP_STAGE = {"full_shard": 3, "hybrid_shard": 3, "hybrid_shard_zero2": 2, "shard_grad_op": 2, "no_shard": 0,
              "1": 3, "2": 2, "3": 0, "4": 3, "5": 2}  # accelerate also takes the FSDP1 enum's numbers
MIXED_PRECISION = {"bf16": "bf16", "fp16": "fp16", "no": "fp32"}


def _offloaded(section: Any) -> bool:
    return isinstance(section, dict) and str(section.get("device", "none")).lower() in ("cpu", "nvme")


def read_deepspeed(data: Any, where: str) -> dict[str, Any]:
    """Estimator settings from a DeepSpeed config mapping (`zero_optimization`, micro-batch)."""
    if not isinstance(data, dict):
        raise InvalidInputError([f"{where}: a DeepSpeed config must be a JSON object"])
    zero = data.get("zero_optimization") or {}
    if not isinstance(zero, dict):
        raise InvalidInputError([f"{where}: `zero_optimization` must be an object"])
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise InvalidInputError([f"{where}: `zero_optimization.stage` must be 0-3 (got {stage!r})"])
    out: dict[str, Any] = {"zero_stage": stage, "notes": [f"{where}: DeepSpeed ZeRO stage {stage}"]}
    if stage == 3:
        out["shard_root_unit"] = True  # ZeRO-3 gathers and frees each module's parameters, embeddings included
    if _offloaded(zero.get("offload_optimizer")):
        out["offload_optimizer"] = True
    if _offloaded(zero.get("offload_param")):
        out["offload_params"] = True
    micro = data.get("train_micro_batch_size_per_gpu")
    if isinstance(micro, int) and not isinstance(micro, bool) and micro > 0:
        out["batch_size"] = micro
    for key, dtype in (("bf16", "bf16"), ("fp16", "fp16")):
        if isinstance(data.get(key), dict) and data[key].get("enabled") is True:
            out["compute"] = dtype
    return out


def fsdp_settings(fsdp: Any, fsdp_config: Any, where: str) -> dict[str, Any]:
    """Estimator settings from FSDP keys: a TrainingArguments-style `fsdp` string/list (True: FSDP is on, by
    another key) and an `fsdp_config`; {} when `fsdp` does not switch FSDP on."""
    options = _split(fsdp) if fsdp not in (None, False, "", []) else []
    config = fsdp_config if isinstance(fsdp_config, dict) else {}
    if not options and fsdp is not True:
        return {}
    cfg = {key.removeprefix("fsdp_"): value for key, value in config.items()}
    stage = 3
    if "reshard_after_forward" in cfg:
        stage = 3 if cfg["reshard_after_forward"] in (True, "true", "True") else 2
    strategy = str(cfg.get("sharding_strategy", "")).lower()
    for name in [strategy, *options]:
        if name in FSDP_STAGE:
            stage = FSDP_STAGE[name]
    out: dict[str, Any] = {"zero_stage": stage, "notes": [f"{where}: FSDP sharding counted as ZeRO stage {stage}"]}
    if cfg.get("offload_params") in (True, "true", "True") or "offload" in options:
        if stage == 0:
            out["notes"].append(f"{where}: CPU offload under NO_SHARD not modelled: counted on the GPU")
        else:
            out.update(offload_optimizer=True, offload_params=stage == 3)
    return out


def read_accelerate(data: Any, where: str) -> dict[str, Any]:
    """Estimator settings from an accelerate config mapping (processes, precision, FSDP or DeepSpeed)."""
    if not isinstance(data, dict):
        raise InvalidInputError([f"{where}: an accelerate config must be a YAML mapping"])
    out: dict[str, Any] = {"notes": []}
    n = data.get("num_processes")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInputError([f"{where}: `num_processes` must be a positive integer (got {n!r})"])
        out["n_gpus"] = n
    precision = str(data.get("mixed_precision", "")).lower()
    if precision in MIXED_PRECISION:
        out["compute"] = MIXED_PRECISION[precision]
    kind = str(data.get("distributed_type", "NO")).upper()
    if kind == "FSDP":
        fsdp = fsdp_settings(True, data.get("fsdp_config") or {}, where)
        out["notes"] += fsdp.pop("notes")
        out.update(fsdp)
    elif kind == "DEEPSPEED":
        ds = data.get("deepspeed_config") or {}
        stage = ds.get("zero_stage", 0)
        if stage not in (0, 1, 2, 3):
            raise InvalidInputError([f"{where}: `deepspeed_config.zero_stage` must be 0-3 (got {stage!r})"])
        out["zero_stage"] = stage
        out["notes"].append(f"{where}: DeepSpeed ZeRO stage {stage}")
        if stage == 3:
            out["shard_root_unit"] = True
        if str(ds.get("offload_optimizer_device", "none")).lower() in ("cpu", "nvme"):
            out["offload_optimizer"] = True
        if str(ds.get("offload_param_device", "none")).lower() in ("cpu", "nvme"):
            out["offload_params"] = True
        if ds.get("deepspeed_config_file"):
            out["notes"].append(f"{where}: `deepspeed_config_file` not read; pass it with `--deepspeed`")
    return out


def _split(value: Any) -> list[str]:
    items = value.split() if isinstance(value, str) else list(value) if isinstance(value, list) else []
    return [str(item).strip().lower() for item in items]


def merge_launcher(reading: ConfigReading, launch: list[tuple[str, dict[str, Any]]]) -> ConfigReading:
    """The reading with each launcher's settings applied in order (a later file overrides an earlier one)."""
    options, notes, compute = dict(reading.options), list(reading.notes), reading.compute
    for _, settings in launch:
        settings = dict(settings)
        notes += settings.pop("notes", [])
        if "compute" in settings:
            compute = settings.pop("compute")
        options.update(settings)
    return reading.model_copy(update={"options": options, "notes": notes, "compute": compute})
