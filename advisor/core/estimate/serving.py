"""Monthly cost of serving a request volume: through an API, or on self-hosted GPUs.

API:   days × requests/day × (prompt tokens × input price + output tokens × output price) / 1e6.

Self-hosted (one replica = the fewest GPUs whose memory holds the weights with room for KV cache):
    decode step   = max(bytes read / (bandwidth × efficiency), 2·N·batch / (peak × prefill MFU))
                    bytes read = weights + batch × KV cache of one sequence at its mean length
                    (decode is bandwidth bound: every step reads the weights once and each sequence's cache)
    tokens/s      = batch / decode step (one replica)
    prefill       = prompt tokens × 2N / (peak × prefill MFU)  (compute bound)
    busy hours    = requests × (prefill + output tokens × decode step / batch) / 3600
    replicas      = ceil(busy hours per day / (24 × target load)), at least one, kept on all month
    GPUs/replica  = the fewest that hold the weights and a sequence, or a tensor-parallel size 2/4/8 above it
                    when that needs fewer GPUs in all (more memory for the KV cache: a bigger batch)
    monthly cost  = replicas × GPUs per replica × price per GPU-hour × 730

Weights are 16-bit unless a quantized format is given (advisor.core.estimate.quantized: its exact bytes are
held and read each step), and the KV cache 16-bit unless `kv_cache_dtype` is vLLM's `fp8` (1 byte). Fewer
bytes per step is more tokens/s, a bigger batch in the same memory, and so fewer replicas.
Ignored: speculative decoding, prefix caching, autoscaling to zero, egress, faster int8/fp8 tensor cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from advisor.core.estimate import params as P
from advisor.core.models import ApiPriceSpec, GpuSpec, ModelSpec, ServingEstimate

if TYPE_CHECKING:
    from advisor.core.estimate.quantized import QuantFormat

__all__ = ["ReplicaThroughput", "estimate_api_monthly", "estimate_self_hosted_monthly", "replica_throughput",
           "serving_weight_bytes"]

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 730  # 8760 / 12: an always-on GPU
SERVING_BYTES_PER_PARAM = 2  # bf16/fp16 weights
KV_BYTES = 2  # 16-bit KV cache
# Share of peak HBM bandwidth a decode step reaches. Derived from NVIDIA's published Llama-2-7B inference
# table (NeMo Framework performance docs, TensorRT-LLM, TP1, batch 1, 128 in / 20 out): 153.8 ms on H100
# SXM and 234.0 ms on A100 80GB for 20 tokens, against 13.48 GB of bf16 weights per step at 3,350 / 2,039 GB/s:
# 0.52 and 0.57 (lower bounds: the latency includes the prefill). tests/test_estimate_quantized.py re-derives it.
BANDWIDTH_EFFICIENCY = 0.55
BANDWIDTH_EFFICIENCY_SOURCE = ("NVIDIA NeMo Framework docs, Llama-2-7B TRT-LLM latency, batch 1: 0.52 (H100) "
                               "and 0.57 (A100) of peak bandwidth")
PREFILL_MFU = 0.35  # prefill is a large matmul like training: prices.yaml mfu fine-tuning range 0.35–0.50
MEMORY_FOR_WEIGHTS = 0.9  # vLLM's default --gpu-memory-utilization: weights + KV cache (rest: context, activations)
MAX_BATCH = 64  # concurrent sequences per replica a serving engine typically schedules (assumption)
TARGET_LOAD = 0.6  # mean busy share of a replica, leaving room for the daily peak (assumption)
TENSOR_PARALLEL_SIZES = (2, 4, 8)  # GPUs per replica an engine shards over (vLLM --tensor-parallel-size, one node)


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


def serving_weight_bytes(model: ModelSpec, quant: QuantFormat | None = None) -> int:
    """Bytes of the served weights: 16-bit, or the exact bytes of the quantized format."""
    if quant is None:
        return P.count_params(model).n_params * SERVING_BYTES_PER_PARAM
    from advisor.core.estimate.quantized import quantized_weight_bytes

    return quantized_weight_bytes(model, quant).total_bytes


@dataclass(frozen=True)
class ReplicaThroughput:
    """One replica of a model on a GPU type: its size, batch, decode and prefill speed."""

    n_gpus: int
    batch: int
    weights_bytes: int
    kv_bytes_per_seq: float
    decode_step_s: float
    prefill_s: float
    bandwidth_bound: bool

    @property
    def output_tokens_per_s(self) -> float:
        return self.batch / self.decode_step_s


def replica_throughput(model: ModelSpec, gpu: GpuSpec, prompt_tokens: float, output_tokens: float, *,
                       quant: QuantFormat | None = None, kv_bytes: int = KV_BYTES,
                       n_gpus: int | None = None) -> ReplicaThroughput:
    """Decode and prefill speed of a replica of `n_gpus` GPUs; None: the fewest that hold `model`'s weights and
    one full sequence (a smaller `n_gpus` is raised to that)."""
    inv = P.count_params(model)
    weights = serving_weight_bytes(model, quant)
    context = max(prompt_tokens + output_tokens, 1)
    kv_per_seq = 2 * model.n_layers * model.n_kv_heads * model.head_dim * context * kv_bytes
    per_gpu = gpu.memory_bytes * MEMORY_FOR_WEIGHTS
    n_gpus = max(1, math.ceil((weights + kv_per_seq) / per_gpu), n_gpus or 0)
    batch = int(min(MAX_BATCH, max(1, (n_gpus * per_gpu - weights) // kv_per_seq)))
    peak_flops = (gpu.bf16_tflops or gpu.fp16_tflops) * 1e12 * n_gpus
    bandwidth = gpu.bandwidth_gb_per_s * 1e9 * n_gpus * BANDWIDTH_EFFICIENCY
    mean_kv = kv_per_seq * (prompt_tokens + output_tokens / 2) / context
    read = (weights + batch * mean_kv) / bandwidth
    compute = 2 * inv.n_active_params * batch / (peak_flops * PREFILL_MFU)
    prefill = prompt_tokens * 2 * inv.n_active_params / (peak_flops * PREFILL_MFU)
    return ReplicaThroughput(n_gpus=n_gpus, batch=batch, weights_bytes=weights, kv_bytes_per_seq=kv_per_seq,
                             decode_step_s=max(read, compute), prefill_s=prefill, bandwidth_bound=read >= compute)


def estimate_self_hosted_monthly(
    model: ModelSpec,
    gpu: GpuSpec,
    requests_per_day: float,
    prompt_tokens: float,
    output_tokens: float,
    *,
    quant: QuantFormat | None = None,
    kv_cache_dtype: str = "auto",
) -> ServingEstimate:
    """Monthly GPU bill for serving `model` on always-on `gpu` replicas at this volume.

    Args:
        model: The served model (a LoRA adapter merged or served alongside adds ~nothing).
        gpu: GPU type of each replica.
        requests_per_day: Requests per day.
        prompt_tokens: Tokens per request in the prompt.
        output_tokens: Tokens generated per request.
        quant: Quantized weight format; None: 16-bit weights.
        kv_cache_dtype: vLLM's `--kv-cache-dtype` (`auto`: 16-bit, `fp8`: 1 byte per element).
    """
    from advisor.core.estimate.quantized import kv_bytes_per_element

    kv_bytes = kv_bytes_per_element(kv_cache_dtype)
    best = None
    smallest = replica_throughput(model, gpu, prompt_tokens, output_tokens, quant=quant, kv_bytes=kv_bytes)
    for size in [smallest.n_gpus, *(t for t in TENSOR_PARALLEL_SIZES if t > smallest.n_gpus)]:
        r = replica_throughput(model, gpu, prompt_tokens, output_tokens, quant=quant, kv_bytes=kv_bytes, n_gpus=size)
        busy_s = requests_per_day * (r.prefill_s + output_tokens * r.decode_step_s / r.batch)
        replicas = max(1, math.ceil(busy_s / 3600 / (24 * TARGET_LOAD)))
        if best is None or replicas * size < best[0] * best[1].n_gpus:
            best = (replicas, r, busy_s)
    replicas, r, busy_s = best
    price = gpu.price_per_hour_usd or 0.0
    weights = quant.label + " weights" if quant else "16-bit weights"
    kv = "8-bit (fp8)" if kv_bytes == 1 else "16-bit"
    return ServingEstimate(
        kind="self_hosted",
        monthly_usd=replicas * r.n_gpus * price * HOURS_PER_MONTH,
        input_tokens_per_day=int(requests_per_day * prompt_tokens),
        output_tokens_per_day=int(requests_per_day * output_tokens),
        n_gpus=replicas * r.n_gpus,
        max_batch=r.batch,
        output_tokens_per_s=r.output_tokens_per_s,
        gpu_hours_per_day=busy_s / 3600 * r.n_gpus,
        assumptions=[
            f"{replicas} replica(s) × {r.n_gpus} {gpu.name} always on at {price:g} USD/GPU-hour ({gpu.price_source})",
            f"decode reads the {weights} ({r.weights_bytes / 1e9:.1f} GB) and the {kv} KV cache each step at "
            f"{BANDWIDTH_EFFICIENCY:.0%} of {gpu.bandwidth_gb_per_s:g} GB/s ({BANDWIDTH_EFFICIENCY_SOURCE}); batch "
            f"{r.batch} (≤ {MAX_BATCH} sequences, as {MEMORY_FOR_WEIGHTS:.0%} of memory allows): "
            f"{r.output_tokens_per_s:,.0f} output tokens/s per replica",
            f"prefill at MFU {PREFILL_MFU} (assumption from fine-tuning MFU, prices.yaml); replicas sized for "
            f"{TARGET_LOAD:.0%} mean load (assumption)",
        ],
    )
