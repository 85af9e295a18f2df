"""The estimator's prediction for the run's own settings: the one bridge to `advisor.core.estimate.memory`.

Returns nothing (with the reason) when the architecture is one the estimator does not model (e.g. GPT-2):
a missing prediction is reported as missing, never made up.
"""

from __future__ import annotations

from advisor.core.models import EstimateSpec, MemoryEstimate, TrainStep

__all__ = ["estimate_spec", "predict_memory"]


def _estimate_precision(method: str, precision: str) -> str:
    # Full fine-tuning keeps fp32 master weights and autocasts to 16 bits; LoRA/QLoRA load the frozen base in 16 bits.
    if precision == "fp32":
        return "fp32"
    return f"{precision}-mixed" if method == "full" else precision


def estimate_spec(step: TrainStep, model_spec, precision: str, *, seq_len: int | None = None,
                  batch_size: int | None = None, for_eval: bool = False, device: str = "cuda") -> EstimateSpec:
    """The `EstimateSpec` describing this step as it will run.

    Args:
        step: The plan step.
        model_spec: `advisor.core.models.ModelSpec` of the base model.
        precision: The resolved precision (`fp32`, `bf16`, `fp16`).
        seq_len: Tokens per sequence as the device sees them; None: the plan's `seq_len`.
        batch_size: Micro-batch; None: the plan's `batch_size`.
        for_eval: Describe the evaluation pass (forward only, `inference`) instead of a training step.
        device: `cuda` or `cpu` (the saved-tensor layout and the CUDA context differ).
    """
    train_method = step.dpo_policy if step.method == "dpo" else step.method
    zero_stage = {"ddp": 0, "fsdp": 3, "zero2": 2, "zero3": 3}[step.distributed] if step.n_gpus > 1 else 0
    return EstimateSpec(
        model=model_spec,
        method="inference" if for_eval else step.method,
        dpo_policy=step.dpo_policy,
        precision=_estimate_precision(train_method, precision),
        optimizer=step.optimizer,
        lora_rank=step.lora_rank,
        lora_targets=step.lora_targets,
        lora_dropout=step.lora_dropout,
        batch_size=batch_size or step.batch_size,
        seq_len=seq_len or step.seq_len,
        grad_ckpt=step.grad_ckpt,
        n_gpus=step.n_gpus,
        zero_stage=zero_stage,
        device=device,
    )


def predict_memory(step: TrainStep, hf_config: dict, model_name: str, precision: str, *, seq_len: int | None = None,
                   batch_size: int | None = None, for_eval: bool = False,
                   device: str = "cuda") -> tuple[MemoryEstimate | None, str]:
    """Ask the estimator for peak memory per device for this step.

    Args:
        step: The plan step.
        hf_config: The base model's `config.json` as a dict.
        model_name: Name or path of the base model (recorded as the spec's source).
        precision: The resolved precision.
        seq_len: Tokens per sequence as run; None: the plan's.
        batch_size: Micro-batch as run; None: the plan's.
        for_eval: Predict the evaluation pass instead of a training step.
        device: `cuda` or `cpu`, where the run happens.

    Returns:
        (estimate, note): the estimate, or None with the reason it is missing.
    """
    from advisor.core.catalog import model_spec_from_hf_config
    from advisor.core.errors import AdvisorError
    from advisor.core.estimate.memory import estimate_memory

    try:
        model_spec = model_spec_from_hf_config(hf_config, model_name, model_name)
        spec = estimate_spec(step, model_spec, precision, seq_len=seq_len, batch_size=batch_size, for_eval=for_eval,
                             device=device)
        return estimate_memory(spec), "advisor.core.estimate.memory.estimate_memory for the settings of this run"
    except AdvisorError as exc:  # an architecture the catalog reader does not know, or a field it lacks
        return None, f"no prediction: the estimator cannot describe `{model_name}` ({exc.message})".replace("\n", " ")
    except (ValueError, KeyError) as exc:  # pydantic.ValidationError is a ValueError
        return None, f"no prediction: the estimator cannot describe `{model_name}` ({exc})".replace("\n", " ")
