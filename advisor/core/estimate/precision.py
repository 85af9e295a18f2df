"""The one precision policy: which compute dtype a job runs in on a device, and what that means for storage.

`advisor estimate`, `advisor recommend` (for the plan's GPU) and the training backend (for the device it finds)
all call `choose_precision`; the estimator then counts what `storage_precision` says is loaded:

    compute   full fine-tuning                          LoRA / DPO-LoRA / inference       QLoRA
    fp32      fp32 weights, fp32 optimizer state        fp32 base, fp32 adapters          NF4 base, fp32 rest
    bf16      fp32 master weights + bf16 autocast       bf16 base, fp32 adapters (PEFT)   NF4 base, bf16 rest
    fp16      fp32 master weights + fp16 autocast       fp16 base, fp32 adapters          NF4 base, fp16 rest

That is what `backends.train.model.load_model` loads (full: fp32 weights with `bf16=`/`fp16=` autocast in
the trainer, the Hugging Face Trainer's mixed precision; adapters: the frozen base in the compute dtype).

Policy for `auto`: bf16 where the hardware has it (Ampere and newer GPUs, CPUs with AMX); fp16 autocast with
loss scaling on older CUDA GPUs (V100, T4: the fp16 tensor cores are what they have); fp32 on a CPU without
AMX, where emulated bf16 autocast measured ~18x slower than fp32 (backends/train/device.py).
"""

from __future__ import annotations

from typing import Literal

from advisor.core.models import DeviceInfo, GpuSpec, Precision

__all__ = [
    "ComputeDtype",
    "RequestedPrecision",
    "choose_precision",
    "device_of",
    "estimate_precision",
    "storage_precision",
]

ComputeDtype = Literal["fp32", "bf16", "fp16"]
RequestedPrecision = Literal["auto", "fp32", "bf16", "fp16"]


def device_of(gpu: GpuSpec, n_devices: int = 1) -> DeviceInfo:
    """A catalog GPU as the device a job would find on it."""
    return DeviceInfo(kind="cuda", name=gpu.name, n_devices=n_devices, memory_bytes=gpu.memory_bytes,
                      supports_bf16=gpu.supports_bf16)


def choose_precision(requested: str, device: DeviceInfo | None, *, strict: bool = False) -> tuple[ComputeDtype, str]:
    """The compute dtype for `requested` (`auto`, `fp32`, `bf16`, `fp16`) on `device`, and why.

    Args:
        requested: The plan's or the user's precision; `auto` applies the policy in the module docstring.
        device: Where the job runs; None: not known (a current data-centre GPU is assumed).
        strict: Refuse a dtype the device cannot run (the backend, about to run); else keep it with a warning
            in the reason (an estimate, which may be for another machine).

    Returns:
        (dtype, one-line reason).

    Raises:
        AdvisorError: with `strict`, bf16 on a GPU without it, or fp16 on a CPU.
    """
    from advisor.core.errors import AdvisorError

    if requested == "auto":
        if device is None:
            return "bf16", "auto: no GPU given; bf16 is what current data-centre GPUs train in"
        if device.supports_bf16:
            return "bf16", f"auto: {device.name} supports bf16"
        if device.kind == "cuda":
            return "fp16", f"auto: {device.name} has no bf16, so fp16 autocast with loss scaling"
        return "fp32", "auto: this CPU has no native bf16 matrix unit (AMX); emulated bf16 is ~18x slower than fp32"
    if requested == "bf16" and device is not None and not device.supports_bf16:
        if device.kind == "cuda":
            if strict:
                raise AdvisorError(f"`precision: bf16` needs a GPU with bf16; {device.name} has none",
                                   "set `precision: auto` or `fp16`")
            return "bf16", f"as asked, but {device.name} has no bf16 units: expect fp32 speed or errors"
        return "bf16", "as asked; this CPU emulates bf16 (~18x slower than fp32)"
    if requested == "fp16" and device is not None and device.kind == "cpu":
        if strict:
            raise AdvisorError("`precision: fp16` needs a CUDA GPU", "set `precision: auto` or `fp32` on a CPU")
        return "fp16", "as asked, but fp16 autocast needs a CUDA GPU"
    if requested not in ("fp32", "bf16", "fp16"):
        raise AdvisorError(f"unknown precision `{requested}`", "use `auto`, `fp32`, `bf16` or `fp16`")
    return requested, "as asked"  # type: ignore[return-value]


def storage_precision(train_method: str | None, compute: ComputeDtype) -> Precision:
    """The estimator's precision for a job that computes in `compute` (see the table in the module docstring).

    Args:
        train_method: `full`, `lora` or `qlora` (DPO resolved to its policy); None for inference.
        compute: The dtype from `choose_precision`.
    """
    if compute == "fp32":
        return "fp32"
    return f"{compute}-mixed" if train_method == "full" else compute  # type: ignore[return-value]


def estimate_precision(requested: str, train_method: str | None, gpu: GpuSpec | None) -> tuple[Precision, str]:
    """The estimator's precision for `advisor estimate --precision requested` and why.

    `auto`, `fp32`, `bf16`, `fp16` name the compute dtype and mean the job as `advisor train` runs it (the
    policy and the storage table above). Two explicit forms override the table: `*-mixed` (fp32 master
    weights under autocast, whatever the method) and `*-pure` (16-bit weights and optimizer state, no fp32
    copy: what some other stacks run for full fine-tuning).
    """
    if requested.endswith("-mixed"):
        return requested, "as asked: fp32 master weights with 16-bit autocast"  # type: ignore[return-value]
    if requested.endswith("-pure"):
        return requested.removesuffix("-pure"), (  # type: ignore[return-value]
            "as asked: pure 16-bit weights and optimizer state (not what `advisor train` runs for full fine-tuning)")
    compute, reason = choose_precision(requested, device_of(gpu) if gpu is not None else None)
    stored = storage_precision(train_method, compute)
    if stored.endswith("-mixed"):
        reason += "; full fine-tuning keeps fp32 master weights under autocast, as `advisor train` runs it"
    return stored, reason
