"""The cheapest GPU × count for a whole training job: every catalog GPU at 1, 2, 4 and 8 per node.

For each GPU type and count the sweep tries the sharding layouts in order of machinery (data parallel;
ZeRO-3/FSDP full shard; plus optimizer offload; plus parameter offload), keeps the layouts that fit with
the headroom, and takes the one that finishes soonest (compute.py: compute or communication, the longer).
A GPU type and count where no layout fits is excluded, with the smallest peak any layout needed. Fitting
rows are sorted by the job's cost, cheapest first; rows within NEAR_TIE of the cheapest are near-ties.
The rest of the job (model, method, micro-batch per GPU, sequence, knobs) is as given; the precision
follows each GPU (`spec_for_gpu`: bf16 where the GPU has it, as `advisor estimate --gpu` would choose).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from advisor.core.errors import AdvisorError
from advisor.core.estimate.compute import estimate_training_compute
from advisor.core.estimate.fit import DEFAULT_HEADROOM, fits, usable_bytes
from advisor.core.estimate.memory import estimate_memory
from advisor.core.models import EstimateSpec, GpuSpec, Model

__all__ = ["COUNTS", "LAYOUTS", "NEAR_TIE", "Sweep", "SweepRow", "sweep_gpus"]

COUNTS = (1, 2, 4, 8)  # GPUs per node as clouds rent them
NEAR_TIE = 0.05  # costs within 5% of the cheapest: the estimate cannot tell them apart
# (label, zero_stage, offload_optimizer, offload_params). Several GPUs: data parallel; FSDP FULL_SHARD (= ZeRO-3);
# with optimizer state offloaded; with parameters offloaded too (FSDP CPUOffload). One GPU shards nothing, but
# ZeRO-Offload still moves optimizer state (stage 2) or also parameters (stage 3) to the host.
LAYOUTS: dict[bool, tuple[tuple[str, int, bool, bool], ...]] = {
    False: (("1 GPU", 0, False, False), ("offload opt", 2, True, False), ("offload all", 3, True, True)),
    True: (("DDP", 0, False, False), ("FSDP", 3, False, False), ("FSDP+off opt", 3, True, False),
           ("FSDP+offload", 3, True, True)),
}


class SweepRow(Model):
    """One GPU type at one count: the layout chosen, or why none fits."""

    gpu: str
    n_gpus: int
    fits: bool
    layout: str = Field(description="Sharding layout chosen (fitting) or the one needing least memory (not)")
    zero_stage: int
    offload_optimizer: bool
    offload_params: bool
    peak_bytes: int = Field(description="Peak per GPU of that layout")
    usable_bytes: int
    host_bytes: int = Field(0, description="Host memory the offloaded state needs, all GPUs of the node together")
    hours: float | None = None
    communication_hours: float | None = None
    usd: float | None = None
    price_per_hour_usd: float | None = None
    reason: str | None = Field(None, description="Why it is excluded")


class Sweep(Model):
    """Fitting rows cheapest first, the excluded combinations, and the near-tie band."""

    rows: list[SweepRow]
    excluded: list[SweepRow]
    near_tie: float = NEAR_TIE
    examples: int
    epochs: float


def _layout_specs(spec: EstimateSpec, n: int) -> list[tuple[str, EstimateSpec]]:
    out = []
    for label, stage, off_opt, off_par in LAYOUTS[n > 1]:
        out.append((label, spec.model_copy(update={
            "n_gpus": n, "zero_stage": stage, "offload_optimizer": off_opt, "offload_params": off_par})))
    return out


def sweep_gpus(
    spec: EstimateSpec,
    gpus: list[GpuSpec],
    examples: int,
    mean_tokens: float,
    epochs: float = 1.0,
    utilization: float | None = None,
    headroom: float = DEFAULT_HEADROOM,
    spec_for_gpu: Callable[[GpuSpec], EstimateSpec] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Sweep:
    """Every GPU type × count in COUNTS for this job: fit, time and cost (see the module docstring).

    Args:
        spec: The job; its sharding fields are replaced by each layout's.
        gpus: The catalog GPUs to try.
        examples, mean_tokens, epochs, utilization: As for `estimate_training_compute`.
        headroom: Share of each GPU's memory kept free.
        spec_for_gpu: The job as it runs on a given GPU (its precision); None: `spec` everywhere.
        progress: Called with each GPU's name before it is tried.
    """
    rows: list[SweepRow] = []
    excluded: list[SweepRow] = []
    for gpu in sorted(gpus, key=lambda g: g.name):
        if progress is not None:
            progress(gpu.name)
        try:
            base = spec_for_gpu(gpu) if spec_for_gpu is not None else spec
        except AdvisorError as exc:
            reason = "; ".join(exc.problems) if getattr(exc, "problems", None) else str(exc)
            excluded += [SweepRow(gpu=gpu.name, n_gpus=n, fits=False, layout="-", zero_stage=0,
                                  offload_optimizer=False, offload_params=False, peak_bytes=0,
                                  usable_bytes=usable_bytes(gpu, headroom), reason=reason) for n in COUNTS]
            continue
        for n in COUNTS:
            rows_n = []
            for label, layout in _layout_specs(base, n):
                memory = estimate_memory(layout)
                row = SweepRow(
                    gpu=gpu.name, n_gpus=n, fits=fits(memory, gpu, headroom), layout=label,
                    zero_stage=layout.zero_stage, offload_optimizer=layout.offload_optimizer,
                    offload_params=layout.offload_params, peak_bytes=memory.peak_bytes,
                    usable_bytes=usable_bytes(gpu, headroom), host_bytes=memory.cpu_offload_bytes,
                    price_per_hour_usd=gpu.price_per_hour_usd,
                )
                if row.fits:
                    c = estimate_training_compute(layout, gpu, examples, mean_tokens, epochs, utilization)
                    row = row.model_copy(update={"hours": c.hours, "communication_hours": c.communication_hours,
                                                 "usd": c.usd})
                rows_n.append(row)
            fitting = [r for r in rows_n if r.fits]
            if fitting:  # soonest finish; the simpler layout on a tie (listed first)
                rows.append(min(fitting, key=lambda r: r.hours or 0.0))
            else:
                least = min(rows_n, key=lambda r: r.peak_bytes)
                excluded.append(least.model_copy(update={"reason": (
                    f"needs {least.peak_bytes / 2**30:.1f} GiB per GPU even with {least.layout}; "
                    f"{least.usable_bytes / 2**30:.1f} GiB usable")}))
    rows.sort(key=lambda r: (r.usd is None, r.usd if r.usd is not None else 0.0, r.hours or 0.0, r.gpu, r.n_gpus))
    return Sweep(rows=rows, excluded=excluded, examples=examples, epochs=epochs)


def near_ties(sweep: Sweep) -> list[SweepRow]:
    """The fitting rows whose cost is within `near_tie` of the cheapest (the cheapest included)."""
    priced = [r for r in sweep.rows if r.usd is not None]
    if not priced:
        return []
    best = priced[0].usd or 0.0
    return [r for r in priced if (r.usd or 0.0) <= best * (1 + sweep.near_tie)]
