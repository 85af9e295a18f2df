"""Does a job fit a GPU, which catalog GPUs fit it, and the largest micro-batch or sequence that fits.

A job fits when its peak (allocated + fragmentation + CUDA context, see memory.py) stays under the GPU's
memory less a headroom share. The searches are bisections over the estimator, which is monotone in batch
size and sequence length.
"""

from __future__ import annotations

from advisor.core.estimate.memory import estimate_memory
from advisor.core.models import DeviceInfo, EstimateSpec, GpuSpec, MemoryEstimate

__all__ = ["DEFAULT_HEADROOM", "fits", "fits_device", "largest_fitting", "usable_bytes"]

# Keep 5% of the card free: the driver reserves ~1% of an 80 GiB card (torch reports ~79.2 GiB total) and
# allocator behaviour varies between runs; an estimate that lands at 99% is an OOM waiting to happen.
DEFAULT_HEADROOM = 0.05
MAX_BATCH_SEARCH = 4096


def usable_bytes(gpu: GpuSpec | int, headroom: float = DEFAULT_HEADROOM) -> int:
    """Memory a job may plan to use on `gpu` (a catalog GPU, or a device's memory in bytes)."""
    memory = gpu if isinstance(gpu, int) else gpu.memory_bytes
    return int(memory * (1 - headroom))


def fits(estimate: MemoryEstimate, gpu: GpuSpec, headroom: float = DEFAULT_HEADROOM) -> bool:
    """Whether the estimated peak stays under the GPU's memory less `headroom`."""
    return estimate.peak_bytes <= usable_bytes(gpu, headroom)


def fits_device(estimate: MemoryEstimate, device: DeviceInfo, headroom: float = DEFAULT_HEADROOM) -> bool:
    """The same test for the device a run found: the whole peak on a GPU, the allocated peak on a CPU.

    A CPU has no CUDA context and no caching allocator, so only the tensors themselves count there.
    """
    needed = estimate.peak_bytes if device.kind == "cuda" else estimate.peak_allocated_bytes
    return needed <= usable_bytes(device.memory_bytes, headroom)


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
