"""The one translator from a plan step (the job) to the estimator's spec, used by recommend, plan and backend alike.

A `TrainStep` says what runs; `train_spec` says what the estimator must count for it: the storage precision
the policy implies (`advisor.core.estimate.precision`), the sharding its `distributed` setting means, and the
sequence length and micro-batch as the device will see them.
"""

from __future__ import annotations

from advisor.core.estimate.precision import ComputeDtype, storage_precision
from advisor.core.models import EstimateSpec, ModelSpec, TrainStep

__all__ = ["ZERO_STAGE", "train_method", "train_spec"]

# TrainStep.distributed -> the ZeRO stage the estimator shards by (FSDP full shard is stage 3).
ZERO_STAGE = {"ddp": 0, "fsdp": 3, "zero2": 2, "zero3": 3}


def train_method(step: TrainStep) -> str:
    """How the weights are trained: the step's method, DPO resolved to its policy."""
    return step.dpo_policy if step.method == "dpo" else step.method


def train_spec(step: TrainStep, model: ModelSpec, compute: ComputeDtype, *, seq_len: int | None = None,
               batch_size: int | None = None, for_eval: bool = False, device: str = "cuda") -> EstimateSpec:
    """The `EstimateSpec` describing `step` as it will run.

    Args:
        step: The plan step.
        model: Architecture of the base model.
        compute: The compute dtype `choose_precision` resolved for the device.
        seq_len: Tokens per sequence as the device sees them; None: the step's `seq_len`.
        batch_size: Micro-batch; None: the step's `batch_size`.
        for_eval: Describe the evaluation pass (forward only, `inference`) instead of a training step.
        device: `cuda` or `cpu` (the saved-tensor layout and the CUDA context differ).
    """
    return EstimateSpec(
        model=model,
        method="inference" if for_eval else step.method,
        dpo_policy=step.dpo_policy,
        precision=storage_precision(train_method(step), compute),
        optimizer=step.optimizer,
        lora_rank=step.lora_rank,
        lora_targets=step.lora_targets,
        lora_dropout=step.lora_dropout,
        num_virtual_tokens=step.num_virtual_tokens,
        ia3_targets=step.ia3_targets,
        batch_size=batch_size or step.batch_size,
        seq_len=seq_len or step.seq_len,
        grad_ckpt=step.grad_ckpt,
        n_gpus=step.n_gpus,
        zero_stage=ZERO_STAGE[step.distributed] if step.n_gpus > 1 else 0,
        offload_params=step.offload,
        offload_optimizer=step.offload,
        device=device,
    )
