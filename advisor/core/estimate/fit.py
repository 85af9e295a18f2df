"""Does a job fit a GPU, which catalog GPUs fit it, and the largest micro-batch or sequence that fits.

A job fits when its peak (allocated + fragmentation + CUDA context, see memory.py) stays under the GPU's
memory less a headroom share. The searches are bisections over the estimator, which is monotone in batch
size and sequence length.
"""

from __future__ import annotations

from advisor.core.estimate.memory import estimate_memory
from advisor.core.models import EstimateSpec, GpuSpec, MemoryEstimate, Precision

__all__ = ["choose_precision", "fits", "largest_fitting", "usable_bytes"]

# Keep 5% of the card free: the driver reserves ~1% of an 80 GiB card (torch reports ~79.2 GiB total) and
# allocator behaviour varies between runs; an estimate that lands at 99% is an OOM waiting to happen.
DEFAULT_HEADROOM = 0.05
MAX_BATCH_SEARCH = 4096


def choose_precision(gpu: GpuSpec | None, requested: Precision | None) -> tuple[Precision, str]:
    """The precision to use and why: the user's, else bf16 where the GPU has it, else fp16 with fp32 master.

    Returns:
        The precision and a one-line reason.
    """
    if requested is not None:
        if requested.startswith("bf16") and gpu is not None and not gpu.supports_bf16:
            return requested, f"as asked, but {gpu.name} has no bf16 units: expect fp32 speed or errors"
        return requested, "as asked"
    if gpu is None:
        return "bf16", "auto: no GPU given; bf16 is what current data-centre GPUs train in"
    if gpu.supports_bf16:
        return "bf16", f"auto: {gpu.name} supports bf16"
    return "fp16-mixed", f"auto: {gpu.name} has no bf16, so fp16 autocast with fp32 master weights (loss scaling)"


def usable_bytes(gpu: GpuSpec | int, headroom: float = DEFAULT_HEADROOM) -> int:
    """Memory a job may plan to use on `gpu` (a catalog GPU, or a device's memory in bytes)."""
    memory = gpu if isinstance(gpu, int) else gpu.memory_bytes
    return int(memory * (1 - headroom))


def fits(estimate: MemoryEstimate, gpu: GpuSpec, headroom: float = DEFAULT_HEADROOM) -> bool:
    """Whether the estimated peak stays under the GPU's memory less `headroom`."""
    return estimate.peak_bytes <= usable_bytes(gpu, headroom)


def largest_fitting(
    spec: EstimateSpec, gpu: GpuSpec, field: str, upper: int, headroom: float = DEFAULT_HEADROOM
) -> int:
    """The largest value of `field` (`batch_size` or `seq_len`) in 1..upper at which `spec` fits `gpu`.

    Returns:
        That value, or 0 when even 1 does not fit.
    """
    def ok(value: int) -> bool:
        return fits(estimate_memory(spec.model_copy(update={field: value})), gpu, headroom)

    if not ok(1):
        return 0
    low, high = 1, upper
    if ok(high):
        return high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low
