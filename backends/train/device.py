"""What the machine offers (GPU or CPU, memory, bf16); the precision for it comes from the core policy."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from advisor.core.models import DeviceInfo

__all__ = ["DeviceInfo", "choose_precision", "probe_device"]

TrainPrecision = Literal["fp32", "bf16", "fp16"]
# CPU flags for native bf16 matrix maths (Intel AMX). Without them, bf16 autocast on CPU is emulated:
# measured ~18x slower than fp32 on a tiny Llama on a CPU without bf16, and 1.2x slower with only
# avx512_bf16 (tiny Llama, batch 4 x 128 tokens, on this project's 2-core dev machine, 2026-11-22), so CPUs
# without AMX default to fp32.
CPU_BF16_FLAGS = ("amx_bf16",)


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
    """Resolve the plan's `precision` for this device with the one policy (`advisor.core.estimate.precision`).

    Returns:
        The precision and why it was chosen, e.g. `("bf16", "auto: NVIDIA H100 supports bf16")`.

    Raises:
        AdvisorError: bf16 was asked for on a GPU without it, or fp16 on a CPU.
    """
    from advisor.core.estimate.precision import choose_precision as policy

    return policy(requested, device, strict=True)
