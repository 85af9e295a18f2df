"""One estimate request end to end: memory, fit on the GPU, time and cost, and the fit searches."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from advisor.core.estimate.compute import estimate_training_compute
from advisor.core.estimate.fit import DEFAULT_HEADROOM, MAX_BATCH_SEARCH, fits, largest_fitting, usable_bytes
from advisor.core.estimate.memory import estimate_memory
from advisor.core.estimate.sweep import Sweep, sweep_gpus
from advisor.core.models import ComputeEstimate, EstimateSpec, GpuSpec, MemoryEstimate, Model

__all__ = ["GpuFit", "JobEstimate", "JobRequest", "run_estimate"]

# Largest sequence the search tries when the model publishes no longer context.
SEQ_SEARCH_CAP = 1 << 20


# Upper bounds on the request, far above any real job, so that absurd input is a field error, not an
# hours-long search or a 300-digit cost: a trillion examples, 10,000 epochs, 2^24 tokens per example.
MAX_EXAMPLES = 10**12
MAX_EPOCHS = 10_000
MAX_MEAN_TOKENS = 2**24


class JobRequest(Model):
    """What the user asked for beyond the job itself."""

    model_config = Model.model_config | {"allow_inf_nan": False}

    gpu: GpuSpec | None = Field(None, description="The GPU to judge fit, time and cost on; None: memory only")
    headroom: float = Field(DEFAULT_HEADROOM, ge=0, lt=1, description="Share of GPU memory kept free")
    examples: int | None = Field(None, ge=1, le=MAX_EXAMPLES, description="Training examples for time and cost; "
                                 "None: skip")
    epochs: float = Field(1.0, gt=0, le=MAX_EPOCHS, description="Passes over the examples")
    mean_tokens: float | None = Field(None, gt=0, le=MAX_MEAN_TOKENS, description="Mean tokens per example; None: "
                                      "the sequence length")
    utilization: float | None = Field(None, gt=0, le=1, description="MFU; None: the prior for method and GPU")
    fit_all: bool = Field(False, description="Check every catalog GPU; with `examples`: sweep GPU × count for the "
                          "cheapest whole job (sweep.py)")
    max_batch: bool = Field(False, description="Search the largest micro-batch that fits `gpu`")
    max_seq_len: bool = Field(False, description="Search the largest sequence length that fits `gpu`")


class GpuFit(Model):
    """One catalog GPU checked against the job."""

    gpu: str
    memory_bytes: int
    usable_bytes: int
    peak_bytes: int
    fits: bool
    price_per_hour_usd: float | None


class JobEstimate(Model):
    """Everything `advisor estimate` reports."""

    spec: EstimateSpec
    precision_reason: str
    memory: MemoryEstimate
    gpu: GpuSpec | None
    usable_bytes: int | None
    fits: bool | None
    compute: ComputeEstimate | None
    fit: list[GpuFit] | None
    max_batch_size: int | None
    max_seq_len: int | None
    sweep: Sweep | None = None


def run_estimate(
    spec: EstimateSpec, request: JobRequest, precision_reason: str, gpus: list[GpuSpec],
    spec_for_gpu: Callable[[GpuSpec], EstimateSpec] | None = None, progress: Callable[[str], None] | None = None,
) -> JobEstimate:
    """Estimate `spec` and answer the request's questions.

    `fit_all` with `examples` sweeps every GPU type × count (`spec_for_gpu`: the job on one GPU, its precision;
    `progress`: called per GPU tried) instead of checking each GPU at the job's own count.

    Raises:
        InvalidInputError: a search (--max-batch/--max-seq-len) or time/cost was asked without a GPU.
    """
    from advisor.core.errors import InvalidInputError

    gpu = request.gpu
    problems = []
    if (request.max_batch or request.max_seq_len) and gpu is None:
        problems.append("--max-batch/--max-seq-len: need --gpu to search against")
    sweeping = request.fit_all and request.examples is not None and spec.method != "inference"
    if request.examples and gpu is None and not sweeping:
        problems.append("--examples: time and cost need --gpu (its throughput and price), or --fit to sweep "
                        "every catalog GPU × count")
    if problems:
        raise InvalidInputError(problems, hint="add `--gpu NAME` (`advisor gpus` lists them)")
    memory = estimate_memory(spec)
    compute = None
    if gpu is not None and request.examples and spec.method != "inference":
        compute = estimate_training_compute(
            spec, gpu, request.examples, request.mean_tokens or spec.seq_len, request.epochs, request.utilization
        )
    fit_rows, sweep = None, None
    if sweeping:
        sweep = sweep_gpus(spec, gpus, request.examples or 0, request.mean_tokens or spec.seq_len, request.epochs,
                           request.utilization, request.headroom, spec_for_gpu=spec_for_gpu, progress=progress)
    elif request.fit_all:
        fit_rows = [
            GpuFit(
                gpu=g.name, memory_bytes=g.memory_bytes, usable_bytes=usable_bytes(g, request.headroom),
                peak_bytes=memory.peak_bytes, fits=fits(memory, g, request.headroom),
                price_per_hour_usd=g.price_per_hour_usd,
            )
            for g in sorted(gpus, key=lambda g: (g.memory_bytes, g.name))
        ]
    return JobEstimate(
        spec=spec,
        precision_reason=precision_reason,
        memory=memory,
        gpu=gpu,
        usable_bytes=usable_bytes(gpu, request.headroom) if gpu else None,
        fits=fits(memory, gpu, request.headroom) if gpu else None,
        compute=compute,
        fit=fit_rows,
        max_batch_size=largest_fitting(spec, gpu, "batch_size", MAX_BATCH_SEARCH, request.headroom)
        if request.max_batch and gpu else None,
        max_seq_len=largest_fitting(spec, gpu, "seq_len", spec.model.max_context or SEQ_SEARCH_CAP, request.headroom)
        if request.max_seq_len and gpu else None,
        sweep=sweep,
    )
