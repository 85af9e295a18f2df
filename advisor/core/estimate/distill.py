"""Sequence-level distillation: what the teacher's answers cost, what the student's training costs, and the
volume at which serving the student instead of the teacher pays both back.

    teacher (API)         = prompt tokens × input price + answer tokens × output price
    teacher (self-hosted) = the serving estimator's busy time for the prompts as one batch job
                            (prefill + answer tokens × decode step / batch) × GPUs per replica × price
    student training      = the training estimator (`compute.estimate_training_compute`) for the student step
    saving(V)             = teacher monthly(V) − student monthly(V)       (V: requests per month)
    break-even            = smallest V with saving(V) ≥ one-time cost / payback months

Monthly serving costs come from `serving` (API list prices; always-on self-hosted replicas; 0 on the edge).
Self-hosted costs are step functions of V (whole replicas), so the break-even is searched, not solved: the first
power of two that pays back, then bisection below it. Pure: no I/O.
"""

from __future__ import annotations

import math

from pydantic import Field

from advisor.core.estimate import params as P
from advisor.core.estimate.serving import (
    DAYS_PER_MONTH,
    KV_BYTES,
    MEMORY_FOR_WEIGHTS,
    SERVING_BYTES_PER_PARAM,
    estimate_api_monthly,
    estimate_self_hosted_monthly,
)
from advisor.core.models import ApiPriceSpec, GpuSpec, Model, ModelSpec

__all__ = ["TeacherCost", "break_even_requests", "serving_monthly", "teacher_cost"]

MAX_SEARCH_REQUESTS = 2.0**40  # per month (~10¹²): beyond it the student is taken never to pay back
BISECTION_STEPS = 60


class TeacherCost(Model):
    """The teacher's pass over the prompts."""

    seconds: float | None = Field(description="Wall time on one replica; None: an API")
    gpu_hours: float | None = Field(description="GPU-hours (wall time × GPUs per replica); None: an API")
    usd: float | None = Field(description="Cost; None: no price")
    assumptions: list[str]


def _gpus_per_replica(model: ModelSpec, gpu: GpuSpec, context: float) -> int:
    """As `serving.estimate_self_hosted_monthly` sizes a replica: 16-bit weights plus one sequence's KV cache."""
    weights = P.count_params(model).n_params * SERVING_BYTES_PER_PARAM
    kv = 2 * model.n_layers * model.n_kv_heads * model.head_dim * context * KV_BYTES
    return max(1, math.ceil((weights + kv) / (gpu.memory_bytes * MEMORY_FOR_WEIGHTS)))


def teacher_cost(n_prompts: int, prompt_tokens: int, answer_tokens: int, *, api: ApiPriceSpec | None = None,
                 model: ModelSpec | None = None, gpu: GpuSpec | None = None) -> TeacherCost:
    """Cost of the teacher answering `n_prompts` prompts (totals of their tokens), through `api` or on `gpu`."""
    if api is not None:
        usd = (prompt_tokens * api.input_per_mtok_usd + answer_tokens * api.output_per_mtok_usd) / 1e6
        return TeacherCost(seconds=None, gpu_hours=None, usd=usd, assumptions=[
            f"{api.name}: {prompt_tokens:,} input × {api.input_per_mtok_usd:g} + {answer_tokens:,} output × "
            f"{api.output_per_mtok_usd:g} USD per million tokens ({api.source}, {api.as_of})"])
    if model is None or gpu is None or n_prompts == 0:
        return TeacherCost(seconds=None, gpu_hours=None, usd=None,
                           assumptions=["teacher generation not costed: no catalog teacher model or no GPU"])
    mean_prompt, mean_answer = prompt_tokens / n_prompts, answer_tokens / n_prompts
    batch_job = estimate_self_hosted_monthly(model, gpu, n_prompts, mean_prompt, mean_answer)
    per_replica = _gpus_per_replica(model, gpu, mean_prompt + mean_answer)
    gpu_hours = batch_job.gpu_hours_per_day  # the prompts as one day's volume: their busy GPU-hours
    price = gpu.price_per_hour_usd
    return TeacherCost(
        seconds=gpu_hours * 3600 / per_replica, gpu_hours=gpu_hours,
        usd=gpu_hours * price if price is not None else None,
        assumptions=[f"teacher {model.name} generates on {per_replica} × {gpu.name} at the serving estimate's "
                     f"throughput (batch {batch_job.max_batch}, {batch_job.output_tokens_per_s:,.0f} output "
                     f"tokens/s)", *batch_job.assumptions[1:]],
    )


def serving_monthly(requests_per_month: float, prompt_tokens: float, output_tokens: float, *,
                    api: ApiPriceSpec | None = None, model: ModelSpec | None = None,
                    gpu: GpuSpec | None = None, edge: bool = False) -> float | None:
    """Monthly cost of serving a volume: through `api`, on `gpu`, or 0 on the edge; None: nothing to price."""
    per_day = requests_per_month / DAYS_PER_MONTH
    if edge:
        return 0.0
    if api is not None:
        return estimate_api_monthly(api, per_day, prompt_tokens, output_tokens).monthly_usd
    if model is None or gpu is None or gpu.price_per_hour_usd is None:
        return None
    return estimate_self_hosted_monthly(model, gpu, per_day, prompt_tokens, output_tokens).monthly_usd


def break_even_requests(one_time_usd: float, payback_months: float, saving) -> float | None:
    """Smallest requests/month at which `saving(V)` (USD per month) repays `one_time_usd` within
    `payback_months`; 0 when it does at no volume at all; None when it does not up to `MAX_SEARCH_REQUESTS`."""
    need = one_time_usd / payback_months

    def pays(volume: float) -> bool:
        return saving(volume) >= need

    if pays(0.0):  # e.g. an always-on teacher replica costs more than the student at any volume
        return 0.0
    low, high = 0.0, 1.0
    while not pays(high):
        low, high = high, high * 2
        if high > MAX_SEARCH_REQUESTS:
            return None
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        low, high = (low, mid) if pays(mid) else (mid, high)
    return high
