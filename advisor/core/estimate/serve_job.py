"""`advisor estimate --method inference` with quantized weights or an 8-bit KV cache, and its serving speed.

Memory is `estimate_memory` with the weights and KV cache resized (quantized.quantized_inference_memory); the
fit, the catalog sweep and the largest batch / sequence searches are redone on that. Tokens/s per replica and
the monthly bill come from serving.estimate_self_hosted_monthly with the same format.
"""

from __future__ import annotations

from advisor.core.estimate.fit import MAX_BATCH_SEARCH, fits, usable_bytes
from advisor.core.estimate.job import SEQ_SEARCH_CAP, GpuFit, JobEstimate, JobRequest, run_estimate
from advisor.core.estimate.quantized import QuantFormat, quantized_inference_memory
from advisor.core.estimate.serving import estimate_self_hosted_monthly
from advisor.core.models import EstimateSpec, GpuSpec, ServingEstimate

__all__ = ["run_serving_estimate", "serving_speed"]


def _largest(spec: EstimateSpec, gpu: GpuSpec, field: str, upper: int, headroom: float, quant, kv) -> int:
    def ok(value: int) -> bool:
        return fits(quantized_inference_memory(spec.model_copy(update={field: value}), quant, kv), gpu, headroom)

    if not ok(1):
        return 0
    if ok(upper):
        return upper
    low, high = 1, upper
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low


def run_serving_estimate(spec: EstimateSpec, request: JobRequest, precision_reason: str, gpus: list[GpuSpec],
                         quant: QuantFormat | None, kv_cache_dtype: str) -> JobEstimate:
    """`run_estimate` for inference, with the weights stored in `quant` and the KV cache in `kv_cache_dtype`."""
    plain = request.model_copy(update={"max_batch": False, "max_seq_len": False, "fit_all": False})
    base = run_estimate(spec, plain, precision_reason=precision_reason, gpus=gpus)
    memory = quantized_inference_memory(spec, quant, kv_cache_dtype)
    gpu, headroom = request.gpu, request.headroom
    rows = None
    if request.fit_all:
        rows = [GpuFit(gpu=g.name, memory_bytes=g.memory_bytes, usable_bytes=usable_bytes(g, headroom),
                       peak_bytes=memory.peak_bytes, fits=fits(memory, g, headroom),
                       price_per_hour_usd=g.price_per_hour_usd)
                for g in sorted(gpus, key=lambda g: (g.memory_bytes, g.name))]
    return base.model_copy(update={
        "memory": memory, "fits": fits(memory, gpu, headroom) if gpu else None, "fit": rows,
        "max_batch_size": _largest(spec, gpu, "batch_size", MAX_BATCH_SEARCH, headroom, quant, kv_cache_dtype)
        if request.max_batch and gpu else None,
        "max_seq_len": _largest(spec, gpu, "seq_len", spec.model.max_context or SEQ_SEARCH_CAP, headroom, quant,
                                kv_cache_dtype) if request.max_seq_len and gpu else None,
    })


def serving_speed(spec: EstimateSpec, gpu: GpuSpec, quant: QuantFormat | None, kv_cache_dtype: str,
                  requests_per_day: float, output_tokens: float) -> ServingEstimate:
    """Tokens/s of one replica and the GPUs and monthly bill for the volume; each request holds the estimate's
    context (prompt = context − output tokens)."""
    context = spec.context_tokens or spec.seq_len
    output = min(output_tokens, context)
    return estimate_self_hosted_monthly(spec.model, gpu, requests_per_day, context - output, output,
                                        quant=quant, kv_cache_dtype=kv_cache_dtype)
