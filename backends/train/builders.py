"""Builders: the one place a `TrainStep` becomes library objects (PEFT, bitsandbytes, TRL configs).

Every value we pass to a library is visible here. Heavy imports stay inside the functions.
"""

from __future__ import annotations

from pathlib import Path

from advisor.core.models import TrainStep

__all__ = [
    "OPTIMIZERS",
    "_to_bnb_config",
    "_to_dpo_config",
    "_to_ia3_config",
    "_to_lora_config",
    "_to_peft_config",
    "_to_prompt_learning_config",
    "_to_sft_config",
    "_to_training_kwargs",
    "torch_dtype",
]

# Plan optimizer names -> `transformers.TrainingArguments.optim` values (transformers.training_args.OptimizerNames).
# AdamW is torch's fused kernel (transformers' own default; CUDA and, since torch 2.4, CPU): one pass over each
# tensor with no foreach temporaries, which is what advisor.core.estimate.memory assumes for the optimizer step.
OPTIMIZERS = {
    "adamw": "adamw_torch_fused",
    "adamw-8bit": "adamw_bnb_8bit",
    "paged-adamw": "paged_adamw_32bit",
    "paged-adamw-8bit": "paged_adamw_8bit",
    "sgd": "sgd",
    "adafactor": "adafactor",
}
# Checkpoint and evaluate every tenth of the run (a float < 1 is a ratio of the total steps in transformers).
CHECKPOINT_EVERY_FRACTION = 0.1
# Log about twenty times a run.
LOG_EVERY_FRACTION = 0.05
# Keep the last two checkpoints: one to resume from if the newest is half-written when the run dies.
CHECKPOINTS_KEPT = 2
# DPO temperature on the implicit reward; 0.1 is the value of the DPO paper's experiments
# (Rafailov et al. 2023, arXiv:2305.18290, section 6) and TRL's default.
DPO_BETA = 0.1


def torch_dtype(precision: str):
    """The torch dtype of a plan precision."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _to_lora_config(step: TrainStep):
    """`peft.LoraConfig` from the plan (DoRA when `use_dora`)."""
    from peft import LoraConfig

    return LoraConfig(
        r=step.lora_rank,
        lora_alpha=step.lora_alpha,
        lora_dropout=step.lora_dropout,
        target_modules=step.lora_targets,
        use_dora=step.use_dora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _to_prompt_learning_config(step: TrainStep):
    """`peft.PromptTuningConfig`, `PrefixTuningConfig` or `PromptEncoderConfig` (P-tuning) from the plan.

    PEFT's defaults otherwise: random initial virtual tokens (Lester et al. 2021, arXiv:2104.08691, start from
    sampled vocabulary embeddings as an option we do not take), no prefix re-parameterisation (Li & Liang 2021,
    arXiv:2101.00190, train through one; PEFT leaves it off by default), P-tuning's MLP encoder as wide as the model.
    """
    from peft import PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig

    config = {"prompt_tuning": PromptTuningConfig, "prefix_tuning": PrefixTuningConfig,
              "p_tuning": PromptEncoderConfig}[step.method]
    return config(task_type="CAUSAL_LM", num_virtual_tokens=step.num_virtual_tokens)


def _to_ia3_config(step: TrainStep):
    """`peft.IA3Config` from the plan: PEFT's targets for the architecture, or the plan's own list.

    With an own list, the MLP output projections in it (`IA3_FEEDFORWARD_NAMES`) scale their input, the rest
    their output, as PEFT's defaults do (Liu et al. 2022, arXiv:2205.05638, §3.3: keys, values and the
    feed-forward intermediate activation).
    """
    from peft import IA3Config

    from advisor.core.estimate.params import IA3_FEEDFORWARD_NAMES

    if step.ia3_targets == "default":
        return IA3Config(task_type="CAUSAL_LM")
    targets = list(dict.fromkeys(step.ia3_targets))
    return IA3Config(task_type="CAUSAL_LM", target_modules=targets,
                     feedforward_modules=[t for t in targets if t in IA3_FEEDFORWARD_NAMES])


def _to_peft_config(step: TrainStep, train_method: str | None = None):
    """The PEFT config of the method the weights train by (None for full fine-tuning)."""
    method = train_method or step.method
    if method in ("lora", "qlora"):
        return _to_lora_config(step)
    if method == "ia3":
        return _to_ia3_config(step)
    if method in ("prompt_tuning", "prefix_tuning", "p_tuning"):
        return _to_prompt_learning_config(step)
    return None


def _to_bnb_config(compute_precision: str):
    """`transformers.BitsAndBytesConfig` for QLoRA: NF4 weights, double quantization, compute in `precision`.

    NF4 and double quantization are the QLoRA paper's choices (Dettmers et al. 2023, arXiv:2305.14314, section 3).
    """
    from transformers import BitsAndBytesConfig

    dtype = torch_dtype(compute_precision)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_quant_storage=dtype,
    )


def _to_training_kwargs(step: TrainStep, output_dir: Path, precision: str, *, use_cpu: bool) -> dict:
    """Arguments common to SFT and DPO (`transformers.TrainingArguments` fields)."""
    early_stopping = step.early_stopping_patience is not None
    has_eval = step.eval_fraction > 0
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": step.batch_size,
        "per_device_eval_batch_size": step.batch_size,
        "gradient_accumulation_steps": step.grad_accum,
        "learning_rate": step.learning_rate,
        "num_train_epochs": step.epochs,
        "max_steps": step.max_steps or -1,
        "optim": OPTIMIZERS[step.optimizer],
        "activation_checkpointing": step.grad_ckpt,  # transformers 5 name of `gradient_checkpointing`
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": use_cpu,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": CHECKPOINT_EVERY_FRACTION,
        "save_strategy": "steps",
        "save_steps": CHECKPOINT_EVERY_FRACTION,
        "save_total_limit": CHECKPOINTS_KEPT,
        "load_best_model_at_end": early_stopping,
        "metric_for_best_model": "eval_loss" if early_stopping else None,
        "greater_is_better": False if early_stopping else None,
        "logging_steps": LOG_EVERY_FRACTION,
        "disable_tqdm": True,  # progress goes to stderr through backends.train.fit instead
        "report_to": "none",
        "seed": step.seed,
        "data_seed": step.seed,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
    }


def _to_sft_config(step: TrainStep, output_dir: Path, precision: str, *, use_cpu: bool):
    """`trl.SFTConfig`: our own tokenization (with a completion mask) goes in; TRL truncates or packs."""
    from trl import SFTConfig

    return SFTConfig(
        **_to_training_kwargs(step, output_dir, precision, use_cpu=use_cpu),
        max_length=step.seq_len,
        packing=step.packing,
        completion_only_loss=True,
    )


def _to_dpo_config(step: TrainStep, output_dir: Path, precision: str, *, use_cpu: bool):
    """`trl.DPOConfig`: sigmoid DPO loss with `DPO_BETA`, sequences cut to `seq_len`."""
    from trl import DPOConfig

    return DPOConfig(
        **_to_training_kwargs(step, output_dir, precision, use_cpu=use_cpu),
        max_length=step.seq_len,
        beta=DPO_BETA,
    )
