"""Monthly cost of serving a request volume: through an API, or on self-hosted GPUs.

API:   days × requests/day × (prompt tokens × input price + output tokens × output price) / 1e6.

Self-hosted (one replica = the fewest GPUs whose memory holds the 16-bit weights with room for KV cache):
    decode step   = max(bytes read / (bandwidth × efficiency), 2·N·batch / (peak × prefill MFU))
                    bytes read = weights + batch × KV cache of one sequence (decode is bandwidth bound)
    prefill       = prompt tokens × 2N / (peak × prefill MFU)
    busy hours    = requests × (prefill + output tokens × decode step / batch) / 3600
    replicas      = ceil(busy hours per day / (24 × target load)), at least one, kept on all month
    monthly cost  = replicas × GPUs per replica × price per GPU-hour × 730

Ignored: speculative decoding, prefix caching, quantised serving, autoscaling to zero, egress.
"""

from __future__ import annotations

import math

from advisor.core.estimate import params as P
from advisor.core.models import ApiPriceSpec, GpuSpec, ModelSpec, ServingEstimate

__all__ = ["estimate_api_monthly", "estimate_self_hosted_monthly"]

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 730  # 8760 / 12: an always-on GPU
SERVING_BYTES_PER_PARAM = 2  # bf16/fp16 weights
KV_BYTES = 2  # 16-bit KV cache
# Assumptions, not measurements (no published figure in shared/research for these):
BANDWIDTH_EFFICIENCY = 0.7  # share of peak memory bandwidth a serving engine's decode step reaches
PREFILL_MFU = 0.35  # prefill is a large matmul like training: prices.yaml mfu fine-tuning range 0.35–0.50
MEMORY_FOR_WEIGHTS = 0.9  # share of GPU memory usable by weights + KV (rest: context, activations)
MAX_BATCH = 64  # concurrent sequences per replica a serving engine typically schedules
TARGET_LOAD = 0.6  # mean busy share of a replica, leaving room for the daily peak


def estimate_api_monthly(
    api: ApiPriceSpec, requests_per_day: float, prompt_tokens: float, output_tokens: float
) -> ServingEstimate:
    """Monthly API bill for a request volume.

    Args:
        api: The API's prices.
        requests_per_day: Requests per day.
        prompt_tokens: Tokens sent per request (instructions, examples, retrieved context, question).
        output_tokens: Tokens generated per request.
    """
    tin, tout = int(requests_per_day * prompt_tokens), int(requests_per_day * output_tokens)
    daily = (tin * api.input_per_mtok_usd + tout * api.output_per_mtok_usd) / 1e6
    return ServingEstimate(
        kind="api",
        monthly_usd=daily * DAYS_PER_MONTH,
        input_tokens_per_day=tin,
        output_tokens_per_day=tout,
        assumptions=[
            f"{api.name} ({api.provider}): {api.input_per_mtok_usd:g} / {api.output_per_mtok_usd:g} USD per "
            f"million input/output tokens ({api.source}, {api.as_of})",
            f"{DAYS_PER_MONTH} days a month; no batch or cache discounts",
        ],
    )


def estimate_self_hosted_monthly(
    model: ModelSpec,
    gpu: GpuSpec,
    requests_per_day: float,
    prompt_tokens: float,
    output_tokens: float,
) -> ServingEstimate:
    """Monthly GPU bill for serving `model` on always-on `gpu` replicas at this volume.

    Args:
        model: The served model (16-bit weights; a LoRA adapter merged or served alongside adds ~nothing).
        gpu: GPU type of each replica.
        requests_per_day: Requests per day.
        prompt_tokens: Tokens per request in the prompt.
        output_tokens: Tokens generated per request.
    """
    inv = P.count_params(model)
    weights = inv.n_params * SERVING_BYTES_PER_PARAM
    context = prompt_tokens + output_tokens
    kv_per_seq = 2 * model.n_layers * model.n_kv_heads * model.head_dim * context * KV_BYTES
    per_gpu = gpu.memory_bytes * MEMORY_FOR_WEIGHTS
    n_gpus = max(1, math.ceil((weights + kv_per_seq) / per_gpu))
    batch = int(min(MAX_BATCH, max(1, (n_gpus * per_gpu - weights) // kv_per_seq)))
    peak_flops = (gpu.bf16_tflops or gpu.fp16_tflops) * 1e12 * n_gpus
    bandwidth = gpu.bandwidth_gb_per_s * 1e9 * n_gpus * BANDWIDTH_EFFICIENCY
    mean_kv = kv_per_seq * (prompt_tokens + output_tokens / 2) / context
    step = max((weights + batch * mean_kv) / bandwidth, 2 * inv.n_active_params * batch / (peak_flops * PREFILL_MFU))
    prefill = prompt_tokens * 2 * inv.n_active_params / (peak_flops * PREFILL_MFU)
    busy_s = requests_per_day * (prefill + output_tokens * step / batch)
    replicas = max(1, math.ceil(busy_s / 3600 / (24 * TARGET_LOAD)))
    price = gpu.price_per_hour_usd or 0.0
    return ServingEstimate(
        kind="self_hosted",
        monthly_usd=replicas * n_gpus * price * HOURS_PER_MONTH,
        input_tokens_per_day=int(requests_per_day * prompt_tokens),
        output_tokens_per_day=int(requests_per_day * output_tokens),
        n_gpus=replicas * n_gpus,
        max_batch=batch,
        output_tokens_per_s=batch / step,
        gpu_hours_per_day=busy_s / 3600 * n_gpus,
        assumptions=[
            f"{replicas} replica(s) × {n_gpus} {gpu.name} always on at {price:g} USD/GPU-hour ({gpu.price_source})",
            f"decode reads the 16-bit weights and the KV cache each step at {BANDWIDTH_EFFICIENCY:.0%} of "
            f"{gpu.bandwidth_gb_per_s:g} GB/s (assumption); batch ≤ {MAX_BATCH} sequences as memory allows",
            f"prefill at MFU {PREFILL_MFU} (assumption from fine-tuning MFU, prices.yaml); replicas sized for "
            f"{TARGET_LOAD:.0%} mean load",
        ],
    )
