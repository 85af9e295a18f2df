"""Each path estimated on the team's situation: the GPU it runs on, memory, set-up cost and running cost.

Training (lora, qlora, full, dpo) runs on the owned GPUs; with none and renting allowed, on the catalog
configuration that fits and costs least (full fine-tuning may shard over 2-8 GPUs with ZeRO-3, adapters with
FSDP where one GPU is too small). Running cost is the same model served at the stated volume: self-hosted on
the owned GPUs (electricity at board power, the purchase sunk) or the catalog GPU that serves it cheapest, or
through the API for a closed model (a corpus repeated in every prompt at the cached-input price). What
differs between paths is the prompt each request carries:

    prompting           today's prompt (plus the whole corpus when it fits in context and facts are a goal)
    few-shot            + n_shots × mean example tokens
    rag                 + RETRIEVED_CHUNKS × CHUNK_TOKENS of retrieved context
    fine-tuned          the question + instructions shrunk by TUNED_INSTRUCTION_SHARE

Ignored: engineering time, evaluation runs, vector-database hosting (the plan's faiss index is a local
file), batch discounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import get_args

from advisor.core import catalog
from advisor.core.estimate.compute import estimate_training_compute
from advisor.core.estimate.fit import fits, largest_fitting
from advisor.core.estimate.memory import estimate_memory
from advisor.core.estimate.precision import choose_precision, device_of
from advisor.core.estimate.serving import HOURS_PER_MONTH, estimate_api_monthly, estimate_self_hosted_monthly
from advisor.core.estimate.translate import train_spec
from advisor.core.models import (
    PROVIDER_EXECUTED,
    ApiPriceSpec,
    ComputeEstimate,
    DistillPrediction,
    DistillStep,
    EstimateSpec,
    GpuSpec,
    MemoryEstimate,
    OptionName,
    PromptPrediction,
    PromptStep,
    RagStep,
    ServingEstimate,
    TrainPrediction,
    TrainStep,
)
from advisor.core.recommend.inputs import Situation
from advisor.core.recommend.market import ProviderTuning, api_limits, owned_power, provider_tuning

__all__ = [
    "OPTIONS",
    "PROVIDER_EXECUTED",
    "TRAINED",
    "OptionEstimate",
    "corpus_in_context",
    "latency_ms",
    "serving_window",
    "estimate_options",
    "monthly_at",
    "prompt_tokens_of",
    "provider_service",
    "serving_gpu",
]

OPTIONS: tuple[OptionName, ...] = get_args(OptionName)
TRAINED = ("lora", "qlora", "full", "dpo", "ia3", "prompt_tuning")
# With several tasks in the answers these train once per task, each on its own examples (DPO: one preference set).
PER_TASK = ("lora", "qlora", "full", "ia3", "prompt_tuning")
# How each per-task path is served, for the recommendation's own words. One base with every LoRA adapter beside
# it: Hu et al. 2021, LoRA, arXiv:2106.09685 §1 ("A pre-trained model can be shared and used to build many small
# LoRA modules for different tasks"); S-LoRA, arXiv:2311.03285 and Punica, arXiv:2310.18547 (batched serving of
# many adapters over one base copy); vLLM `--enable-lora --lora-modules`.
SHARED_BASE = {
    "lora": "adapters (one server: vLLM `--enable-lora`, S-LoRA arXiv:2311.03285, Punica arXiv:2310.18547)",
    "qlora": "adapters (one server: vLLM `--enable-lora`, S-LoRA arXiv:2311.03285, Punica arXiv:2310.18547)",
    "ia3": "IA3 vector sets (PEFT keeps them on one base in-process; vLLM/SGLang load the merged copies)",
    "prompt_tuning": "soft prompts (virtual tokens prepended per request on one frozen base)",
}
# Training settings beyond TrainStep's own defaults (rank 16, alpha 2x rank: seed 002 "Typical starting values");
# 2-4 epochs (seed 002); full fine-tuning at a tenth of the LoRA rate (Thinking Machines "LoRA Without Regret").
EPOCHS = 3.0
MAX_MICRO_BATCH = 4
EFFECTIVE_BATCH = 16  # TRL "LoRA without regret": keep the effective batch under 32
# DPO: TRL DPOConfig default 1e-6..5e-6; IA3: T-Few (Liu et al. 2022, §3) 3e-3; prompt tuning: Lester et al.
# 2021 §3, 0.3.
LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "dpo": 5e-6, "full": 2e-5, "ia3": 3e-3, "prompt_tuning": 3e-1}
# IA3 where PEFT has no default list: the T-Few recipe (Liu et al. 2022 §3.3), keys, values and the feed-forward
# intermediate activation; Phi-3 fuses q, k and v into one projection, which is scaled whole.
IA3_TARGETS = {"phi3": ["qkv_proj", "down_proj"], "stablelm": ["k_proj", "v_proj", "down_proj"]}
# Lester et al. 2021 Fig. 3(a): "increasing to 20+ tokens generally confers a large boost".
PROMPT_TUNING_TOKENS = 20
SEQ_LEN_MIN, SEQ_LEN_MAX = 512, 4096  # seed 002: max sequence length 2048-4096
RENT_COUNTS_SHARDED = (1, 2, 4, 8)  # full fine-tuning shards with ZeRO-3, adapters with FSDP (FSDP-QLoRA)
# Running cost.
FEW_SHOTS = 5  # seed 000: "include 3-5 examples of desired input-output pairs"
QUESTION_TOKENS = 100  # assumption: the user's own question inside today's prompt
TUNED_INSTRUCTION_SHARE = 50 / 800  # seed 002: "800 tokens of system instructions might drop to 50"
RETRIEVED_CHUNKS = RagStep.model_fields["eval_k"].default  # chunks retrieved per question
CHUNK_TOKENS = RagStep.model_fields["chunk_tokens"].default
# Placeholders for paths the answers did not give; the plan is meant to be edited before it runs.
PLACEHOLDER_EXAMPLES = "data/train.jsonl"
PLACEHOLDER_PAIRS = "data/preferences.jsonl"
PLACEHOLDER_DOCS = "docs"

LONG_CONTEXT_LIMIT = 200_000  # Anthropic Contextual Retrieval: under 200k tokens, put the knowledge base in the prompt
EMBEDDING_USD_PER_MTOK = 0.02  # OpenAI text-embedding-3-small (decision-rules.md §4); the local default model is free
# Documents or questions not in English: a multilingual sentence-transformers model (50+ languages, trained by
# distilling the English model into multilingual students: Reimers & Gurevych 2020, arXiv:2004.09813). It is
# downloaded from the Hub; offline, the packaged English MiniLM is the only model available.
MULTILINGUAL_EMBEDDING_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
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
    step: TrainStep | RagStep | PromptStep | None = None
    # distillation: the teacher's answers; continued pretraining: the step on the documents
    steps_before: list[DistillStep | TrainStep] = field(default_factory=list)
    # distillation: teacher, student and break-even (on the distill step, or the logit-level student's own)
    distill_prediction: DistillPrediction | None = None
    compute: ComputeEstimate | None = None
    payback_months: float | None = None
    latency_ms: float = 0.0  # self-hosted: prefill + decode of one request at full batch; 0: not estimated
    assumptions: list[str] = field(default_factory=list)


def serving_window(sit: Situation) -> tuple[int, str]:
    """Context window of the model that serves the prompting paths, and where the figure comes from."""
    if sit.api is not None:
        limits = api_limits(sit.api.name)
        if limits is not None:
            return limits.context_tokens, f"{sit.api.name}'s window ({limits.source})"
        return LONG_CONTEXT_LIMIT, f"{sit.api.name}'s window is not in the catalog: 200k assumed"
    return sit.model.max_context, f"{sit.model.name}'s max_position_embeddings"


def corpus_in_context(sit: Situation) -> bool:
    """The whole knowledge source fits in the prompt of the serving model's real window (API or open weights)."""
    window, _ = serving_window(sit)
    limit = window - sit.prompt_tokens - sit.answers.output_tokens
    return sit.corpus_tokens > 0 and sit.corpus_tokens <= limit


def prompt_tokens_of(sit: Situation, option: OptionName) -> int:
    """Tokens each request carries on this path."""
    option = "lora" if option == "continued_pretraining" else option  # served as the LoRA path's model
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
    virtual = PROMPT_TUNING_TOKENS if option == "prompt_tuning" else 0  # prepended to every request it serves
    return question + math.ceil((base - question) * TUNED_INSTRUCTION_SHARE) + virtual


def serving_gpu(sit: Situation) -> GpuSpec:
    if sit.owned_gpu is not None:
        return sit.owned_gpu
    priced = [g for g in catalog.load_gpus().values() if g.price_per_hour_usd]
    volume, output = sit.answers.requests_per_day, sit.answers.output_tokens
    return min(priced, key=lambda g: (estimate_self_hosted_monthly(sit.model, g, volume, sit.prompt_tokens,
                                                                   output).monthly_usd, g.name))


def monthly_at(sit: Situation, option: OptionName, requests_per_day: float, gpu: GpuSpec,
               prompt_tokens: int | None = None) -> ServingEstimate:
    """Serving cost of `option` at a volume (API for prompting paths of a closed model, else self-hosted).

    `prompt_tokens` overrides the option's own prompt length (to price a longer or shorter prompt).
    """
    prompt = prompt_tokens_of(sit, option) if prompt_tokens is None else prompt_tokens
    option = "lora" if option == "continued_pretraining" else option  # served as the LoRA path's model
    if option == "provider_tuning":
        service = provider_service(sit)
        if service is None:
            return ServingEstimate(kind="api", monthly_usd=0.0, input_tokens_per_day=0, output_tokens_per_day=0,
                                   assumptions=["no provider-side tuning of this model in the catalog: not priced"])
        return estimate_api_monthly(_tuned_api(service), requests_per_day, prompt, sit.answers.output_tokens)
    if option == "distillation":  # the student, self-hosted in the teacher's place
        from advisor.core.recommend.distillation import student_of

        est = estimate_self_hosted_monthly(student_of(sit)[0], gpu, requests_per_day, prompt,
                                           sit.answers.output_tokens)
        return _on_owned(sit, est, gpu) if sit.owned_gpu is not None and gpu.name == sit.owned_gpu.name else est
    if sit.api is not None and option not in TRAINED:
        cached = _cached_prefix(sit, option)
        limits = api_limits(sit.api.name)
        if not cached or limits is None:
            return estimate_api_monthly(sit.api, requests_per_day, prompt, sit.answers.output_tokens)
        # The corpus is the same prefix on every call: billed at the cached-input price (the first write aside).
        ratio = limits.cached_input_per_mtok_usd / sit.api.input_per_mtok_usd if sit.api.input_per_mtok_usd else 1.0
        est = estimate_api_monthly(sit.api, requests_per_day, prompt - cached + cached * ratio,
                                   sit.answers.output_tokens)
        note = (f"the {cached:,}-token corpus prefix billed at the cached-input price "
                f"{limits.cached_input_per_mtok_usd:g} USD/MTok ({limits.source})")
        return est.model_copy(update={"assumptions": [f"{est.assumptions[0]}; {note}"]})
    est = estimate_self_hosted_monthly(sit.model, gpu, requests_per_day, prompt, sit.answers.output_tokens)
    if option == "full" and len(sit.tasks) > 1:
        est = _separate_models(sit, gpu, requests_per_day, prompt)
    if sit.owned_gpu is not None and gpu.name == sit.owned_gpu.name:
        return _on_owned(sit, est, gpu)
    return est


def _separate_models(sit: Situation, gpu: GpuSpec, requests_per_day: float, prompt: int) -> ServingEstimate:
    """Full fine-tuning of several tasks: one whole model per task, each serving an even share of the volume on
    replicas of its own (at least one each)."""
    n = len(sit.tasks)
    one = estimate_self_hosted_monthly(sit.model, gpu, requests_per_day / n, prompt, sit.answers.output_tokens)
    return one.model_copy(update={
        "monthly_usd": one.monthly_usd * n, "n_gpus": one.n_gpus * n, "gpu_hours_per_day": one.gpu_hours_per_day * n,
        "input_tokens_per_day": one.input_tokens_per_day * n, "output_tokens_per_day": one.output_tokens_per_day * n,
        "assumptions": [f"{n} separate models, one per task, each serving 1/{n} of the volume: {n} × "
                        f"({one.assumptions[0]})", *one.assumptions[1:]]})


def provider_service(sit: Situation) -> ProviderTuning | None:
    """The catalog's fine-tuning service of the serving API's provider; None: open weights, no tuning, or unknown."""
    if sit.api is None or sit.answers.model_access != "closed_api_with_tuning":
        return None
    return next((t for t in provider_tuning() if t.provider == sit.api.provider), None)


def _tuned_api(service: ProviderTuning) -> ApiPriceSpec:
    """The per-token prices of the provider's fine-tuned model."""
    return ApiPriceSpec(name=f"{service.model} fine-tuned", provider=service.provider,
                        input_per_mtok_usd=service.input_per_mtok_usd, output_per_mtok_usd=service.output_per_mtok_usd,
                        supports_tuning=True, source=service.source, as_of=service.as_of)


def _estimate_provider(sit: Situation) -> OptionEstimate:
    """Provider-side tuning: training tokens × the training price × epochs, once; nothing runs on your GPUs."""
    service = provider_service(sit)
    est = OptionEstimate(name="provider_tuning", model=service.model if service else (sit.api.name if sit.api else "none"),
                         prompt_tokens=prompt_tokens_of(sit, "provider_tuning"))
    if service is None:
        est.assumptions.append("the catalog has no provider-side tuning for this model (rules/catalog/prices.yaml "
                               "provider_tuning)")
        return est
    tokens = sit.n_examples * sit.mean_example_tokens * EPOCHS
    est.one_time_usd = est.out_of_pocket_usd = tokens * service.training_per_mtok_usd / 1e6
    until = service.new_jobs_until.isoformat() if service.new_jobs_until else "no end announced"
    est.assumptions += [
        f"training: {sit.n_examples:,} examples × {sit.mean_example_tokens:,} tokens × {EPOCHS:g} epochs = "
        f"{tokens:,.0f} tokens at {service.training_per_mtok_usd:g} USD per million training tokens ({service.source})",
        f"carried out by {service.provider}, not by this plan: upload the examples "
        f"({sit.answers.examples_path or PLACEHOLDER_EXAMPLES}, chat-format JSON Lines) to {service.provider}'s "
        f"fine-tuning service, start a job on {service.model} for {EPOCHS:g} epochs, then call the tuned model "
        f"through its API with the short prompt; new jobs accepted until: {until}",
        f"limits: {service.limits}; at least {service.min_examples} examples",
    ]
    return est


def _cached_prefix(sit: Situation, option: OptionName) -> int:
    """Tokens of the knowledge source a prompting path repeats on every call (0: none)."""
    in_context = "knowledge" in sit.answers.goal and corpus_in_context(sit)
    return sit.corpus_tokens if option in ("prompting", "prompting_few_shot") and in_context else 0


def _on_owned(sit: Situation, est: ServingEstimate, gpu: GpuSpec) -> ServingEstimate:
    """Serving on owned GPUs: electricity at board power, always on; the purchase is sunk (not amortised)."""
    power = owned_power(gpu.name)
    owned = sit.n_owned_gpus
    extra = max(0, est.n_gpus - owned)
    rental = extra * (gpu.price_per_hour_usd or 0.0) * HOURS_PER_MONTH
    if power is None:
        usd, how = rental, f"{min(owned, est.n_gpus)} owned {gpu.name} at no running cost (board power not in the catalog)"
    else:
        watts, per_kwh, source = power
        usd = min(owned, est.n_gpus) * watts / 1000 * HOURS_PER_MONTH * per_kwh + rental
        how = (f"{min(owned, est.n_gpus)} owned {gpu.name} always on: electricity {watts:g} W × {HOURS_PER_MONTH} h × "
               f"{per_kwh:g} USD/kWh; purchase sunk, not amortised ({source})")
    if extra:
        how += f"; {extra} more rented at {gpu.price_per_hour_usd:g} USD/GPU-hour (the volume needs {est.n_gpus})"
    return est.model_copy(update={"monthly_usd": usd, "assumptions": [how, *est.assumptions[1:]]})


def latency_ms(sit: Situation, est: ServingEstimate, prompt_tokens: int) -> float:
    """Least latency of one self-hosted request: prefill plus one batch-1 decode step per output token.

    Latency = time to first token + time per output token × output tokens (Databricks, "LLM Inference Performance
    Engineering: Best Practices", 2023); a batch-1 step reads the 16-bit weights and the KV cache once, at the
    serving estimate's share of the bandwidth. Busier replicas are slower, so this is a floor. 0 for an API.
    """
    from advisor.core.estimate import params as P
    from advisor.core.estimate.serving import (
        BANDWIDTH_EFFICIENCY,
        KV_BYTES,
        MEMORY_FOR_WEIGHTS,
        PREFILL_MFU,
        SERVING_BYTES_PER_PARAM,
    )

    if est.kind != "self_hosted":
        return 0.0
    gpu, m = serving_gpu(sit), sit.model
    inv = P.count_params(m)
    weights = inv.n_params * SERVING_BYTES_PER_PARAM
    per_replica = max(1, math.ceil(weights / (gpu.memory_bytes * MEMORY_FOR_WEIGHTS)))
    context = prompt_tokens + sit.answers.output_tokens
    kv = 2 * m.n_layers * m.n_kv_heads * m.head_dim * context * KV_BYTES
    peak = (gpu.bf16_tflops or gpu.fp16_tflops) * 1e12 * per_replica
    prefill_s = prompt_tokens * 2 * inv.n_active_params / (peak * PREFILL_MFU)
    step_s = (weights + kv) / (gpu.bandwidth_gb_per_s * 1e9 * per_replica * BANDWIDTH_EFFICIENCY)
    return (prefill_s + sit.answers.output_tokens * step_s) * 1000


def _seq_len(sit: Situation, mean_tokens: int) -> int:
    seq = SEQ_LEN_MIN
    while seq < 2 * mean_tokens and seq < SEQ_LEN_MAX:
        seq *= 2
    return min(seq, sit.model.max_context)


def _layouts(option: OptionName, policy: str, n_gpus: int) -> tuple[str, ...]:
    """How a job spreads over `n_gpus`: full weights shard with ZeRO-3; adapters replicate (DDP), else shard the
    frozen base with FSDP (FSDP-QLoRA: Answer.AI, "You can now train a 70b language model at home", 2024)."""
    if n_gpus == 1:
        return ("ddp",)
    if option == "full" or policy == "full":
        return ("zero3", "zero3+offload")
    # Answer.AI's 70B on two 24 GB GPUs needs CPU offload too (its README's 2-GPU command; HF PEFT's FSDP-QLoRA
    # guide, `fsdp_offload_params: true`): the last resort, as it is the slowest.
    return ("ddp", "fsdp", "fsdp+offload")


# Host RAM assumed where the answers do not give it: 64 GB, a common workstation for 2-4 GPUs. CPU offload is only
# planned when the offloaded state fits in HOST_USABLE of it (the OS, the data loader and pinned buffers need
# the rest). Llama-70B QLoRA offloads ~37 GiB (fits); LoRA offloads its 140 GB of bf16 weights (does not).
DEFAULT_HOST_MEMORY_GB = 64
HOST_USABLE = 0.8


def host_memory_bytes(sit: Situation) -> tuple[int, bool]:
    """(host RAM the GPUs' machine has, as answered?) for CPU offload."""
    given = sit.answers.gpu.host_memory_gb if sit.answers.gpu else None
    return int((given or DEFAULT_HOST_MEMORY_GB) * 10**9), given is not None


def _host_holds(sit: Situation, memory) -> bool:  # noqa: ANN001
    return memory.cpu_offload_bytes <= HOST_USABLE * host_memory_bytes(sit)[0]


def _job(sit: Situation, option: OptionName, n_gpus: int, policy: str, batch: int = 1,
         distributed: str | None = None) -> TrainStep:
    """The training step as the plan will run it (TrainStep's own defaults for everything not set here)."""
    full = option == "full" or (option == "dpo" and policy == "full")
    mean = sit.mean_preference_tokens if option == "dpo" else sit.mean_example_tokens
    a = sit.answers
    data = (a.preferences_path or PLACEHOLDER_PAIRS) if option == "dpo" else (a.examples_path or PLACEHOLDER_EXAMPLES)
    return TrainStep(
        method=option, base_model=sit.model_hf_id, data_path=data, output_dir=option,  # type: ignore[arg-type]
        dpo_policy=policy, batch_size=batch,  # type: ignore[arg-type]
        grad_accum=max(1, math.ceil(EFFECTIVE_BATCH / (batch * n_gpus))), seq_len=_seq_len(sit, mean),
        epochs=EPOCHS, learning_rate=LEARNING_RATE[option], n_gpus=n_gpus,
        distributed=(distributed or ("zero3" if full and n_gpus > 1 else "ddp")).removesuffix("+offload"),  # type: ignore[arg-type]
        offload=bool(distributed and distributed.endswith("+offload")),
        # PEFT wraps fused 3-D expert weights (transformers 5 MoE) in a ParamWrapper that refuses dropout.
        **({"lora_dropout": 0.0} if sit.model.is_moe else {}),
        **({"num_virtual_tokens": PROMPT_TUNING_TOKENS} if option == "prompt_tuning" else {}),
        **({"ia3_targets": IA3_TARGETS[sit.model.arch]}
           if option == "ia3" and sit.model.arch in IA3_TARGETS else {}),
    )


def _spec(sit: Situation, step: TrainStep, gpu: GpuSpec) -> EstimateSpec:
    """What the estimator counts for `step` on `gpu`: the one policy and the one translator."""
    compute, _ = choose_precision(step.precision, device_of(gpu, step.n_gpus))
    return train_spec(step, sit.model, compute)


def _candidates(sit: Situation, option: OptionName, policy: str) -> list[tuple[GpuSpec, int, bool]]:
    """(GPU, count, owned) configurations to try, owned first."""
    if sit.owned_gpu is not None:
        return [(sit.owned_gpu, sit.n_owned_gpus, True)]
    if not sit.answers.allow_renting:
        return []
    gpus = [g for g in catalog.load_gpus().values() if g.price_per_hour_usd]
    return [(g, n, False) for g in gpus for n in RENT_COUNTS_SHARDED]


def _train_amount(sit: Situation, option: OptionName) -> tuple[int, int]:
    if option == "dpo":
        return sit.n_preference_pairs, sit.mean_preference_tokens
    return sit.n_examples, sit.mean_example_tokens


def _best_config(sit: Situation, option: OptionName) -> tuple[TrainStep, GpuSpec, bool, bool] | None:
    """The cheapest fitting (step, GPU, owned, fits); the owned GPU even when it does not fit; None: no GPU."""
    best = None
    n, mean = _train_amount(sit, option)
    for policy in (("lora", "qlora") if option == "dpo" else ("lora",)):
        for gpu, count, owned in _candidates(sit, option, policy):
            layouts = _layouts(option, policy, count)
            if not owned and count > 1:
                layouts = layouts[-1:]  # renting more GPUs than one only pays when they shard the job
            for layout in layouts:
                step = _job(sit, option, count, policy, distributed=layout)
                spec = _spec(sit, step, gpu)
                memory = estimate_memory(spec)
                ok = fits(memory, gpu) and (not step.offload or _host_holds(sit, memory))
                if owned and (ok or (layout == layouts[-1] and (policy == "qlora" or option != "dpo"))):
                    return step, gpu, owned, ok
                if not ok:
                    continue
                usd = estimate_training_compute(spec, gpu, n, mean, EPOCHS).usd or 0.0
                key = (usd, count, gpu.name)
                if best is None or key < best[0]:
                    best = (key, step, gpu)
                break
        if best is not None:
            return best[1], best[2], False, True
    return None


def _task_situation(sit: Situation, task) -> Situation:  # noqa: ANN001
    """The situation as one task's training sees it: its own examples file, count and mean length."""
    frac = sit.answers.usable_fraction
    n = math.floor(task.n_examples * frac) if frac is not None else task.n_examples
    path = task.examples_path or f"data/{task.name}.jsonl"  # a placeholder of its own per task
    return replace(sit, answers=sit.answers.model_copy(update={"examples_path": path, "tasks": []}),
                   n_examples=n, mean_example_tokens=task.mean_example_tokens, tasks=())


def _sum_compute(parts: list[ComputeEstimate]) -> ComputeEstimate:
    tokens, flops = sum(c.n_tokens for c in parts), sum(c.flops for c in parts)
    usd = [c.usd for c in parts]
    return parts[0].model_copy(update={
        "n_tokens": tokens, "flops": flops, "flops_per_token": flops / tokens if tokens else parts[0].flops_per_token,
        "hours": sum(c.hours for c in parts), "gpu_hours": sum(c.gpu_hours for c in parts),
        "usd": None if None in usd else sum(usd),
        "assumptions": [f"the sum of {len(parts)} trainings, one per task", *parts[0].assumptions]})


def _usd(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.2g}"


def _estimate_per_task(sit: Situation, option: OptionName) -> OptionEstimate:
    """Several tasks: one training per task, each on its own examples, all on one base and one GPU configuration.

    The configuration is the cheapest that fits the task with the longest examples (the largest sequence); each
    task's step then predicts its own examples, time and cost. The option costs the sum of the trainings, its
    memory is the largest peak; the plan gets the first tasks' steps before the last one's (`steps_before`).
    """
    tasks = [(t, _task_situation(sit, t)) for t in sit.tasks]
    longest = max(tasks, key=lambda pair: (pair[0].mean_example_tokens, pair[0].n_examples))[1]
    config = _best_config(longest, option)
    if config is None:
        return _estimate_training(longest, option)
    per = [_estimate_training(one, option, config) for _, one in tasks]
    est = OptionEstimate(name=option, model=sit.model.name, prompt_tokens=prompt_tokens_of(sit, option))
    biggest = max(per, key=lambda e: e.memory.peak_bytes)
    est.memory, est.gpu, est.peak_share = biggest.memory, biggest.gpu, max(e.peak_share for e in per)
    est.fits = all(e.fits for e in per)
    est.compute = _sum_compute([e.compute for e in per])
    est.one_time_usd = sum(e.one_time_usd for e in per)
    est.out_of_pocket_usd = sum(e.out_of_pocket_usd for e in per)
    steps = [e.step.model_copy(update={"output_dir": f"{option}-{t.name}"}) for e, (t, _) in zip(per, tasks,
                                                                                               strict=True)]
    est.step, est.steps_before = steps[-1], steps[:-1]
    names = ", ".join(t.name for t, _ in tasks)
    if option in SHARED_BASE:
        head = (f"one base + {len(tasks)} {SHARED_BASE[option]}: {len(tasks)} {option} trainings on {sit.model.name}, "
                f"one per task ({names}), {_usd(est.one_time_usd)} USD in all")
    else:
        head = (f"{len(tasks)} separate fully fine-tuned models, one per task ({names}): {len(tasks)} trainings, "
                f"{_usd(est.one_time_usd)} USD in all, and {len(tasks)} whole models to store and serve")
    about = {t.name: t.task for t in sit.answers.tasks}
    est.assumptions = [head, *(f"task {t.name}" + (f" ({about[t.name]})" if about.get(t.name) else "")
                               + f": {e.assumptions[-2]}; {e.compute.hours:.3g} h, {_usd(e.one_time_usd)} USD"
                               for e, (t, _) in zip(per, tasks, strict=True)),
                       per[0].assumptions[-3], per[0].assumptions[-1]]
    return est


def _estimate_training(sit: Situation, option: OptionName,
                       config: tuple[TrainStep, GpuSpec, bool, bool] | None = None) -> OptionEstimate:
    """One training's estimate; `config` (step, GPU, owned, fits): that configuration, else the cheapest."""
    est = OptionEstimate(name=option, model=sit.model.name, prompt_tokens=prompt_tokens_of(sit, option))
    config = config or _best_config(sit, option)
    if config is None:
        est.fits = False
        est.assumptions.append("no GPU: none owned and renting not allowed, or no catalog GPU fits")
        return est
    step, gpu, owned, ok = config
    first = _spec(sit, step, gpu)
    est.peak_share = estimate_memory(first).peak_bytes / gpu.memory_bytes
    batch = largest_fitting(first, gpu, "batch_size", MAX_MICRO_BATCH) if ok else 1
    step = _job(sit, option, step.n_gpus, step.dpo_policy, max(batch, 1),
                step.distributed + ("+offload" if step.offload else ""))
    spec = _spec(sit, step, gpu)
    est.memory, est.gpu, est.fits = estimate_memory(spec), gpu, ok
    n, mean = _train_amount(sit, option)
    est.compute = estimate_training_compute(spec, gpu, n, mean, EPOCHS)
    est.one_time_usd = est.compute.usd or 0.0
    power = owned_power(gpu.name) if owned else None
    if owned:
        # An owned GPU costs the electricity of the run; its rental value is shown, not charged.
        rental = est.one_time_usd
        est.one_time_usd = est.compute.gpu_hours * power[0] / 1000 * power[1] if power else 0.0
        est.assumptions.append(
            f"owned GPUs: {est.one_time_usd:,.2f} USD of electricity ({est.compute.gpu_hours:,.1f} GPU-hours × "
            + (f"{power[0]:g} W at {power[1]:g} USD/kWh" if power else "board power unknown: 0")
            + f"); renting the same would cost {rental:,.2f} USD")
    est.out_of_pocket_usd = 0.0 if owned else est.one_time_usd
    _, precision_reason = choose_precision(step.precision, device_of(gpu, step.n_gpus))
    prediction = TrainPrediction(
        gpu=gpu.name, n_gpus=step.n_gpus, gpu_owned=owned, gpu_memory_bytes=gpu.memory_bytes,
        precision=spec.precision, precision_reason=precision_reason, peak_bytes=est.memory.peak_bytes, fits=ok,
        hours=est.compute.hours, usd=est.compute.usd, price_per_hour_usd=gpu.price_per_hour_usd, n_examples=n,
        mean_example_tokens=mean,
    )
    est.step = step.model_copy(update={"prediction": prediction})
    est.assumptions += [
        f"{'owned' if owned else 'rented'} {spec.n_gpus} × {gpu.name}"
        + ("" if owned else " (the cheapest catalog configuration that fits)")
        + (f", {step.distributed.upper()}{' with CPU offload' if step.offload else ''} over {step.n_gpus} GPUs"
           if step.n_gpus > 1 else "")
        + (f" ({est.memory.cpu_offload_bytes / 1e9:,.1f} GB in host RAM of the "
           f"{host_memory_bytes(sit)[0] / 1e9:g} GB {'given' if host_memory_bytes(sit)[1] else 'assumed'})"
           if step.offload else ""),
        f"{n:,} {'pairs' if option == 'dpo' else 'examples'} × {mean:,} tokens × {EPOCHS:g} epochs "
        f"(seed 002: 2-4 epochs); micro-batch {spec.batch_size}, sequence {spec.seq_len}",
        f"precision {spec.precision}: {precision_reason}",
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
    if option == "rag" and sit.answers.no_external_api:
        est.assumptions.append(f"index: {sit.corpus_tokens:,} tokens embedded by the plan's local model (nothing "
                               "may go to an external API): machine time only")
    elif option == "rag":
        est.one_time_usd = sit.corpus_tokens * EMBEDDING_USD_PER_MTOK / 1e6
        est.out_of_pocket_usd = est.one_time_usd
        est.assumptions.append(
            f"index: {sit.corpus_tokens:,} tokens embedded at {EMBEDDING_USD_PER_MTOK} USD per million "
            "(text-embedding-3-small; the plan's local model costs only machine time)")
    return est


def _rag_step(sit: Situation) -> RagStep:
    """The index step with its prediction: chunks from the corpus size, bytes and build time from the sizing."""
    from advisor.core.planning import predict_index

    a = sit.answers
    extra = {} if set(a.languages) <= {"en"} else {"embedding_model": MULTILINGUAL_EMBEDDING_MODEL}
    step = RagStep(docs_dir=a.corpus_path or PLACEHOLDER_DOCS, eval_questions_path=a.eval_questions_path, **extra)
    return step.model_copy(update={"prediction": predict_index(step, sit.corpus_tokens)})


# Prompt-length step used to price one more prompt token (a finite difference of the serving estimate).
MARGINAL_PROMPT_TOKENS = 1000


def _prompt_step(sit: Situation, option: OptionName, est: OptionEstimate, gpu: GpuSpec) -> PromptStep:
    """The prompting step with its prediction (prompt tokens, monthly cost and its marginal rate)."""
    few_shot = option == "prompting_few_shot"
    a = sit.answers
    in_context = corpus_in_context(sit) and "knowledge" in a.goal
    volume = a.requests_per_day
    longer = monthly_at(sit, option, volume, gpu, est.prompt_tokens + MARGINAL_PROMPT_TOKENS).monthly_usd
    rate = (longer - est.serving.monthly_usd) / MARGINAL_PROMPT_TOKENS if est.serving else None
    return PromptStep(
        model=sit.api.name if sit.api else sit.model_hf_id,
        examples_path=(a.examples_path or PLACEHOLDER_EXAMPLES) if few_shot and sit.n_examples else None,
        n_shots=min(FEW_SHOTS, sit.n_examples) if few_shot else 0,
        max_prompt_tokens=est.prompt_tokens,
        context_path=a.corpus_path if in_context else None,
        prediction=PromptPrediction(prompt_tokens=est.prompt_tokens, monthly_usd=est.monthly_usd,
                                    monthly_usd_per_prompt_token=rate),
    )


def estimate_options(sit: Situation) -> dict[OptionName, OptionEstimate]:
    """Every path's memory, set-up and running cost on this situation."""
    gpu_for_serving = serving_gpu(sit)
    estimates: dict[OptionName, OptionEstimate] = {}
    for option in OPTIONS:
        if option in PER_TASK and sit.tasks:
            estimates[option] = _estimate_per_task(sit, option)
        elif option in TRAINED:
            estimates[option] = _estimate_training(sit, option)
        elif option == "provider_tuning":
            estimates[option] = _estimate_provider(sit)
        elif option == "continued_pretraining":
            from advisor.core.recommend.continued import estimate_continued_pretraining

            estimates[option] = estimate_continued_pretraining(sit, _estimate_training)
        elif option == "distillation":
            from advisor.core.recommend.distillation import estimate_distillation

            estimates[option] = estimate_distillation(sit, gpu_for_serving, _estimate_training,
                                                      prompt_tokens_of(sit, option),
                                                      sit.answers.examples_path or PLACEHOLDER_EXAMPLES,
                                                      spec=_spec, epochs=EPOCHS)
        else:
            estimates[option] = _estimate_inference(sit, option, gpu_for_serving)
        est = estimates[option]
        est.serving = monthly_at(sit, option, sit.answers.requests_per_day, gpu_for_serving)
        est.latency_ms = latency_ms(sit, est.serving, est.prompt_tokens)
        if sit.edge_memory_gb and est.serving.kind == "self_hosted":
            est.serving = est.serving.model_copy(update={"monthly_usd": 0.0, "assumptions": [
                f"served 4-bit on the user's device ({sit.edge_memory_gb:g} GB budget): no server to pay for",
                *est.serving.assumptions[1:]]})
        est.monthly_usd = est.serving.monthly_usd
        if option == "rag":
            refresh = REFRESHES_PER_MONTH[sit.answers.freshness] * est.one_time_usd
            est.monthly_usd += refresh
            if refresh:
                est.assumptions.append(f"re-embedding on every {sit.answers.freshness} change: {refresh:,.2f} USD a "
                                       "month at most (an incremental build re-embeds changed files only)")
        est.assumptions.append(f"{est.prompt_tokens:,} prompt tokens per request; {est.serving.assumptions[0]}")
        if option == "rag":
            est.step = _rag_step(sit)
        elif option in ("prompting", "prompting_few_shot"):
            est.step = _prompt_step(sit, option, est, gpu_for_serving)
    base = estimates["prompting_few_shot"]
    for est in estimates.values():
        saving = base.monthly_usd - est.monthly_usd
        extra = est.one_time_usd - base.one_time_usd
        est.payback_months = 0.0 if extra <= 0 and saving >= 0 else (extra / saving if saving > 0 else None)
    return estimates
