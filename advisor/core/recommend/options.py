"""Each path estimated on the team's situation: the GPU it runs on, memory, set-up cost and running cost.

Training (lora, qlora, full, dpo) runs on the owned GPUs; with none and renting allowed, on the catalog
configuration that fits and costs least (full fine-tuning may shard over 2-8 GPUs with ZeRO-3). Running
cost is the same model served at the stated volume: self-hosted on the owned GPU type (valued at its
rental price) or the catalog GPU that serves it cheapest, or through the API for a closed model. What
differs between paths is the prompt each request carries:

    prompting           today's prompt (plus the whole corpus when it fits in context and facts are a goal)
    few-shot            + n_shots × mean example tokens
    rag                 + RETRIEVED_CHUNKS × CHUNK_TOKENS of retrieved context
    fine-tuned          the question + instructions shrunk by TUNED_INSTRUCTION_SHARE

Ignored: engineering time, evaluation runs, vector-database hosting (the plan's faiss index is a local
file), prompt-caching and batch discounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import get_args

from advisor.core import catalog
from advisor.core.estimate.compute import estimate_training_compute
from advisor.core.estimate.fit import choose_precision, fits, largest_fitting
from advisor.core.estimate.memory import estimate_memory
from advisor.core.estimate.serving import estimate_api_monthly, estimate_self_hosted_monthly
from advisor.core.models import (
    ComputeEstimate,
    EstimateSpec,
    GpuSpec,
    MemoryEstimate,
    OptionName,
    ServingEstimate,
    TrainingSetup,
)
from advisor.core.recommend.inputs import Situation

__all__ = [
    "OPTIONS",
    "TRAINED",
    "OptionEstimate",
    "corpus_in_context",
    "estimate_options",
    "monthly_at",
    "prompt_tokens_of",
    "serving_gpu",
]

OPTIONS: tuple[OptionName, ...] = get_args(OptionName)
TRAINED = ("lora", "qlora", "full", "dpo")
# Training settings (seed 002 "Typical starting values": rank 16, alpha 2× rank, 4-8 per device, 2-4 epochs;
# full fine-tuning at a tenth of the LoRA rate: Thinking Machines "LoRA Without Regret", LoRA LR ≈ 10×).
LORA_RANK = 16
LORA_ALPHA = 2 * LORA_RANK
EPOCHS = 3.0
MAX_MICRO_BATCH = 4
EFFECTIVE_BATCH = 16  # TRL "LoRA without regret": keep the effective batch under 32
LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "dpo": 5e-6, "full": 2e-5}  # DPO: TRL DPOConfig default 1e-6..5e-6
SEQ_LEN_MIN, SEQ_LEN_MAX = 512, 4096  # seed 002: max sequence length 2048-4096
RENT_COUNTS_SHARDED = (1, 2, 4, 8)  # full fine-tuning may shard with ZeRO-3; adapters train on one GPU
# Running cost.
FEW_SHOTS = 5  # seed 000: "include 3-5 examples of desired input-output pairs"
QUESTION_TOKENS = 100  # assumption: the user's own question inside today's prompt
TUNED_INSTRUCTION_SHARE = 50 / 800  # seed 002: "800 tokens of system instructions might drop to 50"
RETRIEVED_CHUNKS, CHUNK_TOKENS = 5, 256  # RagStep defaults: eval_k 5, chunk_tokens 256
LONG_CONTEXT_LIMIT = 200_000  # Anthropic Contextual Retrieval: under 200k tokens, put the knowledge base in the prompt
EMBEDDING_USD_PER_MTOK = 0.02  # OpenAI text-embedding-3-small (decision-rules.md §4); the local default model is free
REFRESHES_PER_MONTH = {"static": 0.0, "quarterly": 1 / 3, "monthly": 1.0, "weekly": 30 / 7, "daily": 30.0,
                       "realtime": 30.0}


@dataclass
class OptionEstimate:
    """One path's numbers before the rules judge it."""

    name: OptionName
    model: str
    prompt_tokens: int
    one_time_usd: float = 0.0
    out_of_pocket_usd: float = 0.0
    monthly_usd: float = 0.0
    serving: ServingEstimate | None = None
    memory: MemoryEstimate | None = None
    gpu: GpuSpec | None = None
    fits: bool | None = None
    peak_share: float = 0.0
    setup: TrainingSetup | None = None
    compute: ComputeEstimate | None = None
    payback_months: float | None = None
    assumptions: list[str] = field(default_factory=list)


def corpus_in_context(sit: Situation) -> bool:
    """The whole knowledge source fits in the prompt (under 200k tokens and the model's window)."""
    limit = min(LONG_CONTEXT_LIMIT, sit.model.max_context) - sit.prompt_tokens - sit.answers.output_tokens
    return sit.corpus_tokens > 0 and sit.corpus_tokens <= limit


def prompt_tokens_of(sit: Situation, option: OptionName) -> int:
    """Tokens each request carries on this path."""
    base = sit.prompt_tokens
    if option in ("prompting", "prompting_few_shot") and "knowledge" in sit.answers.goal and corpus_in_context(sit):
        base += sit.corpus_tokens
    if option == "prompting":
        return base
    if option == "prompting_few_shot":
        return base + min(FEW_SHOTS, sit.n_examples) * sit.mean_example_tokens
    if option == "rag":
        return base + RETRIEVED_CHUNKS * CHUNK_TOKENS
    question = min(QUESTION_TOKENS, base)
    return question + math.ceil((base - question) * TUNED_INSTRUCTION_SHARE)


def serving_gpu(sit: Situation) -> GpuSpec:
    if sit.owned_gpu is not None:
        return sit.owned_gpu
    priced = [g for g in catalog.load_gpus().values() if g.price_per_hour_usd]
    volume, output = sit.answers.requests_per_day, sit.answers.output_tokens
    return min(priced, key=lambda g: (estimate_self_hosted_monthly(sit.model, g, volume, sit.prompt_tokens,
                                                                   output).monthly_usd, g.name))


def monthly_at(sit: Situation, option: OptionName, requests_per_day: float, gpu: GpuSpec) -> ServingEstimate:
    """Serving cost of `option` at a volume (API for prompting paths of a closed model, else self-hosted)."""
    prompt = prompt_tokens_of(sit, option)
    if sit.api is not None and option not in TRAINED:
        return estimate_api_monthly(sit.api, requests_per_day, prompt, sit.answers.output_tokens)
    return estimate_self_hosted_monthly(sit.model, gpu, requests_per_day, prompt, sit.answers.output_tokens)


def _seq_len(sit: Situation, mean_tokens: int) -> int:
    seq = SEQ_LEN_MIN
    while seq < 2 * mean_tokens and seq < SEQ_LEN_MAX:
        seq *= 2
    return min(seq, sit.model.max_context)


def _spec(sit: Situation, option: OptionName, gpu: GpuSpec, n_gpus: int, policy: str, batch: int = 1) -> EstimateSpec:
    precision, _ = choose_precision(gpu, None)
    full = option == "full" or (option == "dpo" and policy == "full")
    mean = sit.mean_preference_tokens if option == "dpo" else sit.mean_example_tokens
    return EstimateSpec(
        model=sit.model, method=option, dpo_policy=policy,  # type: ignore[arg-type]
        precision=precision, lora_rank=LORA_RANK, batch_size=batch, seq_len=_seq_len(sit, mean),
        n_gpus=n_gpus, zero_stage=3 if full and n_gpus > 1 else 0,
    )


def _candidates(sit: Situation, option: OptionName, policy: str) -> list[tuple[GpuSpec, int, bool]]:
    """(GPU, count, owned) configurations to try, owned first."""
    if sit.owned_gpu is not None:
        return [(sit.owned_gpu, sit.n_owned_gpus, True)]
    if not sit.answers.allow_renting:
        return []
    sharded = option == "full" or policy == "full"
    counts = RENT_COUNTS_SHARDED if sharded else (1,)
    gpus = [g for g in catalog.load_gpus().values() if g.price_per_hour_usd]
    return [(g, n, False) for g in gpus for n in counts]


def _train_amount(sit: Situation, option: OptionName) -> tuple[int, int]:
    if option == "dpo":
        return sit.n_preference_pairs, sit.mean_preference_tokens
    return sit.n_examples, sit.mean_example_tokens


def _best_config(sit: Situation, option: OptionName) -> tuple[EstimateSpec, GpuSpec, bool, bool] | None:
    """The cheapest fitting (spec, GPU, owned, fits); the owned GPU even when it does not fit; None: no GPU."""
    best = None
    n, mean = _train_amount(sit, option)
    for policy in (("lora", "qlora") if option == "dpo" else ("lora",)):
        for gpu, count, owned in _candidates(sit, option, policy):
            spec = _spec(sit, option, gpu, count, policy)
            ok = fits(estimate_memory(spec), gpu)
            if owned and (ok or policy == "qlora" or option != "dpo"):
                return spec, gpu, owned, ok
            if not ok:
                continue
            usd = estimate_training_compute(spec, gpu, n, mean, EPOCHS).usd or 0.0
            key = (usd, count, gpu.name)
            if best is None or key < best[0]:
                best = (key, spec, gpu)
        if best is not None:
            return best[1], best[2], False, True
    return None


def _estimate_training(sit: Situation, option: OptionName) -> OptionEstimate:
    est = OptionEstimate(name=option, model=sit.model.name, prompt_tokens=prompt_tokens_of(sit, option))
    config = _best_config(sit, option)
    if config is None:
        est.fits = False
        est.assumptions.append("no GPU: none owned and renting not allowed, or no catalog GPU fits")
        return est
    spec, gpu, owned, ok = config
    first = estimate_memory(spec)
    est.peak_share = first.peak_bytes / gpu.memory_bytes
    batch = largest_fitting(spec, gpu, "batch_size", MAX_MICRO_BATCH) if ok else 1
    spec = spec.model_copy(update={"batch_size": max(batch, 1)})
    est.memory, est.gpu, est.fits = estimate_memory(spec), gpu, ok
    n, mean = _train_amount(sit, option)
    est.compute = estimate_training_compute(spec, gpu, n, mean, EPOCHS)
    est.one_time_usd = est.compute.usd or 0.0
    est.out_of_pocket_usd = 0.0 if owned else est.one_time_usd
    _, precision_reason = choose_precision(gpu, None)
    est.setup = TrainingSetup(
        gpu=gpu.name, n_gpus=spec.n_gpus, gpu_owned=owned, precision=spec.precision,
        precision_reason=precision_reason, batch_size=spec.batch_size,
        grad_accum=max(1, math.ceil(EFFECTIVE_BATCH / (spec.batch_size * spec.n_gpus))), seq_len=spec.seq_len,
        epochs=EPOCHS, lora_rank=LORA_RANK, lora_alpha=LORA_ALPHA, learning_rate=LEARNING_RATE[option],
        zero_stage=spec.zero_stage, dpo_policy=spec.dpo_policy,
    )
    est.assumptions += [
        f"{'owned' if owned else 'rented'} {spec.n_gpus} × {gpu.name}"
        + (" (valued at its rental price)" if owned else " (the cheapest catalog configuration that fits)"),
        f"{n:,} {'pairs' if option == 'dpo' else 'examples'} × {mean:,} tokens × {EPOCHS:g} epochs "
        f"(seed 002: 2-4 epochs); micro-batch {spec.batch_size}, sequence {spec.seq_len}",
    ]
    return est


def _estimate_inference(sit: Situation, option: OptionName, gpu: GpuSpec) -> OptionEstimate:
    est = OptionEstimate(name=option, model=sit.api.name if sit.api else sit.model.name,
                         prompt_tokens=prompt_tokens_of(sit, option))
    if sit.api is None:
        spec = EstimateSpec(model=sit.model, method="inference", context_tokens=est.prompt_tokens
                            + sit.answers.output_tokens, seq_len=est.prompt_tokens + sit.answers.output_tokens)
        est.memory, est.gpu = estimate_memory(spec), gpu
        est.fits = fits(est.memory, gpu)
        est.peak_share = est.memory.peak_bytes / gpu.memory_bytes
    if option == "rag":
        est.one_time_usd = sit.corpus_tokens * EMBEDDING_USD_PER_MTOK / 1e6
        est.out_of_pocket_usd = est.one_time_usd
        est.assumptions.append(
            f"index: {sit.corpus_tokens:,} tokens embedded at {EMBEDDING_USD_PER_MTOK} USD per million "
            "(text-embedding-3-small; the plan's local model costs only machine time)")
    return est


def estimate_options(sit: Situation) -> dict[OptionName, OptionEstimate]:
    """Every path's memory, set-up and running cost on this situation."""
    gpu_for_serving = serving_gpu(sit)
    estimates: dict[OptionName, OptionEstimate] = {}
    for option in OPTIONS:
        if option in TRAINED:
            estimates[option] = _estimate_training(sit, option)
        else:
            estimates[option] = _estimate_inference(sit, option, gpu_for_serving)
        est = estimates[option]
        est.serving = monthly_at(sit, option, sit.answers.requests_per_day, gpu_for_serving)
        est.monthly_usd = est.serving.monthly_usd
        if option == "rag":
            refresh = REFRESHES_PER_MONTH[sit.answers.freshness] * est.one_time_usd
            est.monthly_usd += refresh
            if refresh:
                est.assumptions.append(f"re-embedding on every {sit.answers.freshness} change: {refresh:,.2f} USD a "
                                       "month at most (an incremental build re-embeds changed files only)")
        est.assumptions.append(f"{est.prompt_tokens:,} prompt tokens per request; {est.serving.assumptions[0]}")
    base = estimates["prompting_few_shot"]
    for est in estimates.values():
        saving = base.monthly_usd - est.monthly_usd
        extra = est.one_time_usd - base.one_time_usd
        est.payback_months = 0.0 if extra <= 0 and saving >= 0 else (extra / saving if saving > 0 else None)
    return estimates
