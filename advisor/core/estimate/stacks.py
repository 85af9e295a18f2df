"""Training-stack profiles: the defaults each fine-tuning tool applies that change GPU memory, with sources.

A profile is data: for each knob the estimator has (`EstimateSpec.loss_kernel`, `adapter_dtype`,
`kbit_prep`, `packing`, `attention`, `optimizer`, `grad_ckpt`) the value the tool uses when its config
does not say, and where in the tool's code that default lives. `advisor estimate --stack NAME` fills the
knobs the user did not set from the profile; every knob is also its own flag. Sources were read from:

- TRL 1.16 (trl/trainer/sft_trainer.py, sft_config.py, dpo_trainer.py) and transformers 5.24
  (training_args.py), installed in this project's environment;
- Axolotl 0.18.0 @067b021c8 (src/axolotl/loaders/model.py, loaders/adapter.py, utils/schemas/*.py);
- LLaMA-Factory 0.9.6.dev0 @ff6d4d12e (src/llamafactory/model/adapter.py, model_utils/checkpointing.py,
  hparams/*.py, train/dpo/trainer.py);
- PEFT 0.21 (peft/utils/other.py `prepare_model_for_kbit_training`, peft/mapping_func.py `get_peft_model`).

Facts that decide the numbers:

- Loss. TRL's SFT and DPO trainers score the vocabulary in tiles (fused LM head; DPO "computes the
  per-token log-probabilities in chunks, without materializing the full logits"). transformers' Trainer
  (plain HF, Axolotl SFT, LLaMA-Factory SFT) calls the model with labels: ForCausalLMLoss over full logits.
  Axolotl's DPO is TRL's DPOTrainer; LLaMA-Factory's DPO computes `model(**batch).logits.to(float32)`.
- Adapter dtype. PEFT's get_peft_model(autocast_adapter_dtype=True) upcasts 16-bit adapters to fp32
  (HF Trainer, Axolotl unless `peft_autocast_adapter_dtype: false`); LLaMA-Factory casts trainable
  parameters to fp32 unless `pure_bf16`; TRL's SFTTrainer casts the adapters of a quantized model to bf16.
- k-bit prep. TRL 1.x's SFTTrainer no longer calls prepare_model_for_kbit_training. The PEFT and
  transformers QLoRA guides call it (the plain HF Trainer recipe). Axolotl calls it for QLoRA but then
  converts norms, embeddings and the LM head back to the training dtype for flash-attention
  (`_convert_embedding_modules_dtype(..., before_kbit_train_or_finetune=False)`), so the net state is the
  unprepared one. LLaMA-Factory never calls it (only the opt-in `upcast_layernorm`).
- Gradient checkpointing. SFTConfig defaults it on; TrainingArguments and Axolotl (`gradient_checkpointing:
  false`) off; LLaMA-Factory on unless `disable_gradient_checkpointing`.
- Packing: off by default in all four (SFTConfig.packing, Axolotl sample_packing, LLaMA-Factory packing
  for SFT). Attention: none of them overrides transformers 5's default, SDPA. Optimizer: transformers'
  default `adamw_torch_fused` (torch >= 2.8), which Axolotl also sets; LLaMA-Factory passes HF's `optim`.

Library versions are not stack defaults: `EstimateSpec.bitsandbytes` (before 0.43.2 every 4-bit linear kept its
input for backward) and `EstimateSpec.transformers` (4 quantizes MoE experts and nn.Linear subclasses, 5 leaves
them 16-bit) come from the installed releases or `--bitsandbytes` / `--transformers` (memory.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from advisor.core.models import AdapterDtype, AttentionKernel, LossKernel, Model, Optimizer, StackName

__all__ = ["STACKS", "StackProfile", "describe_knobs", "resolve_knobs", "stack_profile"]

KNOBS = ("loss_kernel", "adapter_dtype", "kbit_prep", "packing", "attention", "optimizer", "grad_ckpt")


class StackProfile(Model):
    """The memory-relevant defaults of one training stack, each with its source."""

    name: StackName
    label: str = Field(description="The tool and the version its defaults were read from")
    sft_loss_kernel: LossKernel = Field(description="Loss of SFT/LoRA/full training")
    dpo_loss_kernel: LossKernel = Field(description="Loss of DPO (chosen and rejected log-probabilities)")
    lora_adapter_dtype: AdapterDtype = Field(description="LoRA adapters over a 16-bit base")
    qlora_adapter_dtype: AdapterDtype = Field(description="LoRA adapters over a 4-bit base")
    kbit_prep: bool = Field(description="QLoRA: the net effect of prepare_model_for_kbit_training is kept")
    packing: bool = Field(description="Examples packed into full sequences by default")
    attention: AttentionKernel = Field(description="Attention implementation by default")
    optimizer: Optimizer = Field(description="Optimizer by default")
    grad_ckpt: bool = Field(description="Gradient checkpointing by default")
    full_master_fp32: bool = Field(
        description="Full fine-tuning under bf16/fp16: trainable weights kept in fp32 (autocast) rather than 16-bit"
    )
    sources: dict[str, str] = Field(description="Knob -> where the default is set")


_TRL_SOURCES = "trl/trainer/sft_trainer.py, sft_config.py, dpo_trainer.py (TRL 1.16)"

STACKS: dict[str, StackProfile] = {
    "trl": StackProfile(
        name="trl", label="TRL 1.16 SFTTrainer/DPOTrainer (what `advisor train` runs)",
        sft_loss_kernel="chunked", dpo_loss_kernel="chunked", lora_adapter_dtype="fp32", qlora_adapter_dtype="bf16",
        kbit_prep=False, packing=False, attention="sdpa", optimizer="adamw", grad_ckpt=True, full_master_fp32=True,
        sources={
            "loss_kernel": "fused LM head (trl/kernels/chunked_logprob.py); DPO 'computes the per-token "
                           "log-probabilities in chunks' (dpo_trainer.py)",
            "adapter_dtype": "fp32 via PEFT autocast_adapter_dtype; SFTTrainer casts a quantized model's "
                             "adapters to bf16 (QLoRA paper §3)",
            "kbit_prep": "SFTTrainer does not call prepare_model_for_kbit_training",
            "packing": "SFTConfig.packing=False", "attention": "transformers 5 default `sdpa`",
            "optimizer": "TrainingArguments.optim=adamw_torch_fused", "grad_ckpt": "SFTConfig gradient_checkpointing=True",
            "full_master_fp32": "`advisor train` loads full fine-tunes in fp32 under bf16 autocast",
        },
    ),
    "hf-trainer": StackProfile(
        name="hf-trainer", label="transformers 5.24 Trainer + PEFT 0.21 (the PEFT/transformers QLoRA guides)",
        sft_loss_kernel="full", dpo_loss_kernel="chunked", lora_adapter_dtype="fp32", qlora_adapter_dtype="fp32",
        kbit_prep=True, packing=False, attention="sdpa", optimizer="adamw", grad_ckpt=False, full_master_fp32=False,
        sources={
            "loss_kernel": "model(labels=...) -> ForCausalLMLoss over full fp32 logits; DPO runs TRL's DPOTrainer",
            "adapter_dtype": "get_peft_model(autocast_adapter_dtype=True) keeps adapters in fp32",
            "kbit_prep": "the PEFT quantization guide calls prepare_model_for_kbit_training before get_peft_model",
            "packing": "no packing in Trainer", "attention": "transformers 5 default `sdpa`",
            "optimizer": "TrainingArguments.optim=adamw_torch_fused",
            "grad_ckpt": "TrainingArguments.gradient_checkpointing=False",
            "full_master_fp32": "the model trains in the dtype it was loaded in (transformers 5: the checkpoint's)",
        },
    ),
    "axolotl": StackProfile(
        name="axolotl", label="Axolotl 0.18.0 @067b021c8",
        sft_loss_kernel="full", dpo_loss_kernel="chunked", lora_adapter_dtype="fp32", qlora_adapter_dtype="fp32",
        kbit_prep=False, packing=False, attention="sdpa", optimizer="adamw", grad_ckpt=False, full_master_fp32=False,
        sources={
            "loss_kernel": "AxolotlTrainer is transformers' Trainer (full logits) unless the Liger or Cut "
                           "Cross-Entropy plugin is on; `rl: dpo` is TRL's DPOTrainer",
            "adapter_dtype": "get_peft_model with PEFT's default autocast_adapter_dtype=True (loaders/adapter.py)",
            "kbit_prep": "prepare_model_for_kbit_training runs, then norms, embeddings and lm_head are converted "
                         "back to torch_dtype (loaders/model.py _configure_embedding_dtypes)",
            "packing": "sample_packing default None (off)", "attention": "attn_implementation default None (sdpa)",
            "optimizer": "optimizer default adamw_torch_fused (utils/schemas/training.py)",
            "grad_ckpt": "gradient_checkpointing default False (utils/schemas/config.py)",
            "full_master_fp32": "the model loads in torch_dtype (bf16) and trains it under AMP",
        },
    ),
    "llama-factory": StackProfile(
        name="llama-factory", label="LLaMA-Factory 0.9.6.dev0 @ff6d4d12e",
        sft_loss_kernel="full", dpo_loss_kernel="full", lora_adapter_dtype="fp32", qlora_adapter_dtype="fp32",
        kbit_prep=False, packing=False, attention="sdpa", optimizer="adamw", grad_ckpt=True, full_master_fp32=True,
        sources={
            "loss_kernel": "CustomSeq2SeqTrainer is transformers' Trainer (full logits) unless enable_liger_kernel; "
                           "DPO takes model(**batch).logits.to(float32) (train/dpo/trainer.py)",
            "adapter_dtype": "trainable parameters cast to fp32 unless pure_bf16 (model/adapter.py)",
            "kbit_prep": "never calls prepare_model_for_kbit_training; upcast_layernorm defaults False",
            "packing": "packing default None (off for SFT)", "attention": "flash_attn default auto (transformers: sdpa)",
            "optimizer": "HF TrainingArguments.optim=adamw_torch_fused",
            "grad_ckpt": "disable_gradient_checkpointing default False (model_utils/checkpointing.py)",
            "full_master_fp32": "full fine-tuning casts trainable parameters to fp32 unless pure_bf16",
        },
    ),
}


def stack_profile(name: str) -> StackProfile:
    """The profile of `name`.

    Raises:
        UnknownNameError: Not a known stack; the hint names the closest.
    """
    from advisor.core.errors import UnknownNameError

    if name not in STACKS:
        raise UnknownNameError("stack", name, list(STACKS))
    return STACKS[name]


def _profile_value(profile: StackProfile, knob: str, method: str, train_method: str | None) -> Any:
    if knob == "loss_kernel":
        return profile.dpo_loss_kernel if method == "dpo" else profile.sft_loss_kernel
    if knob == "adapter_dtype":
        if train_method not in ("lora", "qlora"):
            return None
        return profile.qlora_adapter_dtype if train_method == "qlora" else profile.lora_adapter_dtype
    if knob == "kbit_prep":
        return profile.kbit_prep if train_method == "qlora" else None
    return getattr(profile, knob)


def resolve_knobs(
    stack: str, method: str, train_method: str | None, given: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """EstimateSpec values of every stack knob: the ones given, the profile's for the rest.

    Args:
        stack: A name in `STACKS`.
        method: `inference`, `full`, `lora`, `qlora` or `dpo`.
        train_method: How weights train (DPO resolved to its policy); None for inference.
        given: Knob -> value the user (or a config file) set; None or absent means "the stack's default".

    Returns:
        (EstimateSpec keyword arguments including `stack`, one line per knob saying its value and origin).

    Example:
        >>> resolve_knobs("axolotl", "qlora", "qlora", {"grad_ckpt": True})[0]["loss_kernel"]
        'full'
    """
    profile = stack_profile(stack)
    values: dict[str, Any] = {"stack": profile.name}
    lines = []
    for knob in KNOBS:
        if given.get(knob) is not None:
            values[knob] = given[knob]
            lines.append(f"{knob} = {_show(given[knob])}: as set")
            continue
        values[knob] = _profile_value(profile, knob, method, train_method)
        if values[knob] is None:  # does not apply to this method
            values[knob] = False if knob == "kbit_prep" else None
            continue
        lines.append(f"{knob} = {_show(values[knob])}: {profile.name} default ({profile.sources[knob]})")
    return values, lines


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe_knobs(spec: Any) -> list[str]:
    """One line per stack knob of an EstimateSpec: its value, and whether it is the stack's default (with the
    source) or was set; empty when the spec names no stack."""
    if spec.stack is None:
        return []
    profile = stack_profile(spec.stack)
    lines = []
    for knob in KNOBS:
        default = _profile_value(profile, knob, spec.method, spec.train_method)
        if default is None:
            continue
        value = getattr(spec, knob)
        origin = (f"{profile.name} default: {profile.sources[knob]}" if value == default
                  else f"set (the {profile.name} default is {_show(default)})")
        lines.append(f"{knob} = {_show(value)} ({origin})")
    return lines
