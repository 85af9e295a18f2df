"""What the machine offers (GPU or CPU, memory, bf16) and the precision chosen from it, with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from advisor.core.models import Model

__all__ = ["DeviceInfo", "choose_precision", "probe_device"]

TrainPrecision = Literal["fp32", "bf16", "fp16"]
# CPU flags for native bf16 matrix maths (Intel AMX). Without them, bf16 autocast on CPU is emulated:
# measured ~18x slower than fp32 on a tiny Llama on a CPU without bf16, and 1.2x slower with only
# avx512_bf16 (tiny Llama, batch 4 x 128 tokens, on this project's 2-core dev machine, 2026-11-22), so CPUs
# without AMX default to fp32.
CPU_BF16_FLAGS = ("amx_bf16",)


class DeviceInfo(Model):
    """The device a run trains on."""

    kind: Literal["cuda", "cpu"] = Field(description="Where tensors live")
    name: str = Field(description="GPU name, or `cpu`")
    n_devices: int = Field(description="GPUs visible (1 for CPU)")
    memory_bytes: int = Field(description="Memory of one GPU; on CPU the memory available to the process now")
    supports_bf16: bool = Field(description="bf16 arithmetic in hardware")


def _cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _available_ram_bytes() -> int:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def probe_device() -> DeviceInfo:
    """Look at the machine: the first CUDA GPU if there is one, else the CPU."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo(kind="cuda", name=props.name, n_devices=torch.cuda.device_count(),
                          memory_bytes=props.total_memory, supports_bf16=torch.cuda.is_bf16_supported())
    return DeviceInfo(kind="cpu", name="cpu", n_devices=1, memory_bytes=_available_ram_bytes(),
                      supports_bf16=bool(_cpu_flags() & set(CPU_BF16_FLAGS)))


def choose_precision(requested: str, device: DeviceInfo) -> tuple[TrainPrecision, str]:
    """Resolve the plan's `precision` for this device.

    Returns:
        The precision and why it was chosen, e.g. `("bf16", "auto: NVIDIA H100 supports bf16")`.

    Raises:
        AdvisorError: bf16 was asked for on a device without it, or fp16 on a CPU.
    """
    from advisor.core.errors import AdvisorError

    if requested == "auto":
        if device.supports_bf16:
            return "bf16", f"auto: {device.name} supports bf16"
        if device.kind == "cuda":
            return "fp32", f"auto: {device.name} has no bf16; set `precision: fp16` for 16-bit mixed precision"
        return "fp32", "auto: this CPU has no native bf16 matrix unit (AMX); emulated bf16 is slower than fp32"
    if requested == "bf16" and not device.supports_bf16 and device.kind == "cuda":
        raise AdvisorError(f"`precision: bf16` needs a GPU with bf16; {device.name} has none",
                           "set `precision: auto` or `fp16`")
    if requested == "fp16" and device.kind == "cpu":
        raise AdvisorError("`precision: fp16` needs a CUDA GPU", "set `precision: auto` or `fp32` on a CPU")
    return requested, "set in the plan"  # type: ignore[return-value]
