"""Serving memory of one replica, and one base with N adapters against N separate models.

    weights      = parameters × 2 bytes (16-bit serving weights), or the exact bytes of a quantized format
                   (GPTQ/AWQ/int8/FP8: advisor.core.estimate.quantized)
    adapters     = Σ adapter parameters × 2 bytes (LoRA A and B matrices kept beside the base)
    KV cache     = 2 (K and V) × layers × KV heads × head dim × max_model_len × concurrency × bytes
                   (2; 1 with vLLM's `--kv-cache-dtype fp8`)
    one replica  = weights + adapters + KV cache: the base loaded once, every adapter beside it
    N separate   = N × (weights + KV cache): each adapter merged into its own copy of the base

The worst case a serving engine must hold: every sequence in flight at the full context. Throughput and the
monthly bill come from `advisor.core.estimate.serving` at the plan's volume: the adapters share one
deployment's volume, N separate models each serve an even share on their own (at least one replica each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from advisor.core.estimate.quantized import kv_bytes_per_element
from advisor.core.estimate.serving import (
    KV_BYTES,
    SERVING_BYTES_PER_PARAM,
    estimate_self_hosted_monthly,
    serving_weight_bytes,
)
from advisor.core.models import GpuSpec, ModelSpec, ServePrediction

if TYPE_CHECKING:
    from advisor.core.estimate.quantized import QuantFormat

__all__ = ["estimate_serving", "kv_cache_bytes"]


def kv_cache_bytes(model: ModelSpec, max_model_len: int, concurrency: int, kv_bytes: int = KV_BYTES) -> int:
    """KV cache of `concurrency` sequences of `max_model_len` tokens, `kv_bytes` per element (16-bit: 2)."""
    return 2 * model.n_layers * model.n_kv_heads * model.head_dim * max_model_len * concurrency * kv_bytes


def estimate_serving(
    model: ModelSpec,
    *,
    adapter_params: list[int],
    n_whole_models: int,
    max_model_len: int,
    concurrency: int,
    gpu: GpuSpec | None = None,
    requests_per_day: float = 0.0,
    prompt_tokens: float = 0.0,
    output_tokens: float = 0.0,
    quant: QuantFormat | None = None,
    kv_cache_dtype: str = "auto",
) -> ServePrediction:
    """Memory per replica and monthly cost of serving the trained models of a plan.

    Args:
        model: The base architecture.
        adapter_params: Parameters of each adapter served on the base (one entry per adapter).
        n_whole_models: Fully fine-tuned (or only merged) models, each served as a model of its own.
        max_model_len: Context per sequence, in tokens.
        concurrency: Sequences in flight at once.
        gpu: The GPU of a replica; None: memory only.
        requests_per_day: The volume all the models together serve.
        prompt_tokens: Prompt tokens per request.
        output_tokens: Generated tokens per request.
        quant: Quantized weight format of the base (adapters stay 16-bit); None: 16-bit weights.
        kv_cache_dtype: vLLM's `--kv-cache-dtype`: `auto` (16-bit) or `fp8` (1 byte per element).
    """
    n_adapters = len(adapter_params)
    n_models = max(n_adapters + n_whole_models, 1)
    kv_bytes = kv_bytes_per_element(kv_cache_dtype)
    weights = serving_weight_bytes(model, quant)
    adapters = sum(adapter_params) * SERVING_BYTES_PER_PARAM
    kv = kv_cache_bytes(model, max_model_len, concurrency, kv_bytes)
    copies = (1 if n_adapters else 0) + n_whole_models
    weight_text = f"{quant.label} weights ({quant.source})" if quant else "16-bit weights"
    assumptions = [f"{weight_text}, {'8-bit (fp8)' if kv_bytes == 1 else '16-bit'} KV cache; KV sized for "
                   f"{concurrency} sequences × {max_model_len:,} tokens"]
    tokens_per_s = monthly = separate_monthly = None
    n_gpus = None
    if gpu is not None:
        share = requests_per_day / n_models
        knobs = {"quant": quant, "kv_cache_dtype": kv_cache_dtype}
        one = estimate_self_hosted_monthly(model, gpu, share, prompt_tokens, output_tokens, **knobs)
        shared = estimate_self_hosted_monthly(model, gpu, share * n_adapters, prompt_tokens, output_tokens, **knobs)
        n_gpus = (shared.n_gpus if n_adapters else 0) + n_whole_models * one.n_gpus
        tokens_per_s = shared.output_tokens_per_s if n_adapters else one.output_tokens_per_s
        if gpu.price_per_hour_usd:
            monthly = (shared.monthly_usd if n_adapters else 0.0) + n_whole_models * one.monthly_usd
            separate_monthly = n_models * one.monthly_usd
        assumptions += [f"the volume ({requests_per_day:,.0f} requests/day) split evenly over the {n_models} "
                        "model(s); the adapters share one deployment", *shared.assumptions]
    return ServePrediction(
        model=model.name, gpu=gpu.name if gpu else None, n_adapters=n_adapters, n_models=n_models,
        max_model_len=max_model_len, concurrency=concurrency, weights_bytes=weights, adapters_bytes=adapters,
        kv_cache_bytes=kv, replica_bytes=copies * (weights + kv) + adapters, separate_bytes=n_models * (weights + kv),
        output_tokens_per_s=tokens_per_s, monthly_usd=monthly, separate_monthly_usd=separate_monthly,
        requests_per_day=requests_per_day, weights_format=quant.label if quant else "16-bit",
        kv_cache_dtype=kv_cache_dtype, n_gpus=n_gpus, assumptions=assumptions,
    )
