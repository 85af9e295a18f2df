"""Continued pretraining from corpus tokens: the packed blocks, and memory, time and cost on a catalog GPU.

The corpus is sized as the RAG sizing sizes it (`advisor.core.measure.measure_corpus`: characters / 4); each
document adds one EOS, the tail shorter than a block is dropped, and `eval_fraction` of the blocks is held out,
as `backends.train.pretrain` packs it. Memory is the packed SFT job at `seq_len` (every position a label costs
the same logits as an answer token); time is `estimate_training_compute` over the training blocks.
"""

from __future__ import annotations

from advisor.core.models import TrainPrediction, TrainStep

__all__ = ["packed_blocks", "predict_continued_pretraining"]


def packed_blocks(corpus_tokens: int, n_documents: int, seq_len: int, eval_fraction: float) -> tuple[int, int]:
    """(training blocks, held-out blocks) of `seq_len` tokens a corpus packs into (one EOS per document)."""
    n = (corpus_tokens + n_documents) // seq_len
    held = max(1, round(eval_fraction * n)) if eval_fraction > 0 and n else 0
    return max(n - held, 0), held


def predict_continued_pretraining(step: TrainStep, corpus_tokens: int, n_documents: int, gpu: str) -> TrainPrediction:
    """The prediction for an `objective: causal_lm` step on `gpu` (catalog id), the corpus sized in tokens.

    Raises:
        AdvisorError: the base model or the GPU is not in the catalog.
    """
    from advisor.core.catalog import resolve_gpu, resolve_model
    from advisor.core.estimate.compute import estimate_training_compute
    from advisor.core.estimate.fit import fits
    from advisor.core.estimate.memory import estimate_memory
    from advisor.core.estimate.precision import choose_precision, device_of
    from advisor.core.estimate.translate import train_spec

    model, spec_gpu = resolve_model(step.base_model), resolve_gpu(gpu)
    compute, reason = choose_precision(step.precision, device_of(spec_gpu, step.n_gpus))
    spec = train_spec(step, model, compute)
    memory = estimate_memory(spec)
    n_train, _ = packed_blocks(corpus_tokens, n_documents, step.seq_len, step.eval_fraction)
    time = estimate_training_compute(spec, spec_gpu, n_train, step.seq_len, step.epochs)
    return TrainPrediction(
        gpu=spec_gpu.name, n_gpus=step.n_gpus, gpu_owned=False, gpu_memory_bytes=spec_gpu.memory_bytes,
        precision=spec.precision, precision_reason=reason, peak_bytes=memory.peak_bytes, fits=fits(memory, spec_gpu),
        hours=time.hours, usd=time.usd, price_per_hour_usd=spec_gpu.price_per_hour_usd, n_examples=n_train,
        mean_example_tokens=step.seq_len,
    )
