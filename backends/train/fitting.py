"""Will the run fit: parameter counts from a meta-device model, and the cheapest plan change that fits."""

from __future__ import annotations

from advisor.core.estimate.fit import fits_device
from advisor.core.models import DeviceInfo, TrainStep
from backends.train.predict import predict_memory

__all__ = ["cheapest_fitting_change", "count_params"]


def count_params(hf_config: dict, step: TrainStep) -> tuple[int, int]:
    """(all, trainable) parameters of the model as `step` trains it, built on the meta device (no memory).

    QLoRA counts the unquantized parameters: the 4-bit packing changes storage, not the count.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from backends.train.builders import _to_peft_config

    config = AutoConfig.for_model(**hf_config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    train_method = step.dpo_policy if step.method == "dpo" else step.method
    if train_method != "full":
        from peft import get_peft_model

        model = get_peft_model(model, _to_peft_config(step, train_method))
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return n_params, n_trainable


def _candidate_changes(step: TrainStep) -> list[dict]:
    """Plan changes from least to most costly in quality or speed, each cumulative on the ones before."""
    changes: list[dict] = []
    if not step.grad_ckpt and step.method != "prefix_tuning":  # prefix tuning cannot checkpoint
        changes.append({"grad_ckpt": True})  # ~20-30% slower, same result
    batch, accum = step.batch_size, step.grad_accum
    while batch > 1:  # same effective batch, more steps
        batch, accum = batch // 2, accum * 2
        changes.append({"batch_size": batch, "grad_accum": accum})
    if step.optimizer in ("adamw", "paged-adamw"):
        changes.append({"optimizer": "paged-adamw-8bit"})
    if step.method == "full":
        changes.append({"method": "lora"})
    if step.method in ("full", "lora"):
        changes.append({"method": "qlora"})
    return changes


def cheapest_fitting_change(step: TrainStep, hf_config: dict, model_name: str, precision: str, seq_len: int,
                            device: DeviceInfo) -> str | None:
    """The first cumulative set of changes whose estimate fits, as `key: value` text; None when none does."""
    applied: dict = {}
    for change in _candidate_changes(step):
        applied.update(change)
        if "method" in applied and step.method == "dpo":
            applied["dpo_policy"] = applied.pop("method")
        candidate = step.model_copy(update=applied)
        estimate, _ = predict_memory(candidate, hf_config, model_name, precision, seq_len=seq_len,
                                     device=device.kind)
        if estimate is not None and fits_device(estimate, device):
            return ", ".join(f"`{key}: {value}`" for key, value in applied.items())
    return None
