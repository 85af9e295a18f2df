"""Measure what a run used: peak memory (CUDA allocator, or the process's peak RSS on CPU) and wall time."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Literal

from pydantic import Field, computed_field

from advisor.core.models import Model

__all__ = ["Measurement", "MemoryMeter"]


class Measurement(Model):
    """What one training run used, measured."""

    device_kind: Literal["cuda", "cpu"] = Field(description="Where it ran")
    peak_allocated_bytes: int | None = Field(description="CUDA: `torch.cuda.max_memory_allocated`; None on CPU")
    peak_reserved_bytes: int | None = Field(description="CUDA: `torch.cuda.max_memory_reserved`; None on CPU")
    peak_rss_bytes: int | None = Field(description="CPU: the process's peak resident set size; None on CUDA")
    baseline_rss_bytes: int | None = Field(
        description="CPU: resident set size before the model was loaded (Python, libraries, data); None on CUDA"
    )
    rss_method: str | None = Field(description="CPU: how the peak was read (`VmHWM after clear_refs`, `ru_maxrss`)")
    wall_seconds: float = Field(description="Wall time of the training loop of this session (no load, eval, save)")
    n_tokens: int = Field(description="Non-padding input tokens the trainer saw")
    tokens_per_second: float = Field(description="`n_tokens / wall_seconds`")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def peak_rss_delta_bytes(self) -> int | None:
        """CPU: peak RSS above the baseline, the closest CPU analogue of allocated device memory."""
        if self.peak_rss_bytes is None or self.baseline_rss_bytes is None:
            return None
        return self.peak_rss_bytes - self.baseline_rss_bytes


def _status_kib(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    # Writing 5 to clear_refs resets the kernel's peak RSS counter (VmHWM) to the current RSS (Linux >= 4.0,
    # Documentation/admin-guide/mm/soft-dirty.rst / proc.rst).
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class MemoryMeter:
    """Start before the model is loaded, stop after training; reads peaks for the device in use."""

    def __init__(self, device_kind: Literal["cuda", "cpu"]) -> None:
        self.device_kind = device_kind
        self._baseline_rss_bytes: int | None = None
        self._rss_method: str | None = None

    def start(self) -> None:
        """Reset the peak counters and note the baseline."""
        if self.device_kind == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._rss_method = "VmHWM after clear_refs" if _reset_peak_rss() else "ru_maxrss (process lifetime)"
            current = _status_kib("VmRSS")
            self._baseline_rss_bytes = current * 1024 if current is not None else None

    def stop(self, n_tokens: int, wall_seconds: float) -> Measurement:
        """Read the peaks; `n_tokens` and `wall_seconds` are those of the training loop itself."""
        if self.device_kind == "cuda":
            import torch

            torch.cuda.synchronize()
            allocated, reserved, rss = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved(), None
        else:
            allocated = reserved = None
            peak_kib = _status_kib("VmHWM") if self._rss_method and self._rss_method.startswith("VmHWM") else None
            # ru_maxrss is in KiB on Linux (getrusage(2)).
            rss = (peak_kib or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
        return Measurement(
            device_kind=self.device_kind,
            peak_allocated_bytes=allocated,
            peak_reserved_bytes=reserved,
            peak_rss_bytes=rss,
            baseline_rss_bytes=self._baseline_rss_bytes,
            rss_method=self._rss_method,
            wall_seconds=wall_seconds,
            n_tokens=n_tokens,
            tokens_per_second=n_tokens / wall_seconds if wall_seconds > 0 else 0.0,
        )
