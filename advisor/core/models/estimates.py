"""Estimator inputs and outputs: the job as the estimator sees it, and the memory, compute, serving and benefit estimates."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, computed_field, model_validator

from advisor.core.models.base import AttentionKernel, Method, Model, Optimizer, Precision
from advisor.core.models.catalog import MAX_CONTEXT, ModelSpec

__all__ = [
    "AdapterDtype", "BenefitEstimate", "BenefitLabel", "ComputeEstimate", "EstimateSpec", "LossKernel",
    "MemoryEstimate", "ServingEstimate", "StackName",
]

# Training stacks whose defaults `advisor estimate --stack` knows (advisor/core/estimate/stacks.py).
StackName = Literal["trl", "hf-trainer", "axolotl", "llama-factory"]
LossKernel = Literal["chunked", "full"]
AdapterDtype = Literal["fp32", "bf16"]


# Upper bounds on a job, so that a slip of the keyboard is an error naming the option rather than an
# estimate for an impossible job (sequence lengths share the architecture bound MAX_CONTEXT, 2^24 tokens).
MAX_N_GPUS = 100_000  # the largest training clusters
MAX_BATCH_SIZE = 65_536  # sequences per GPU: far above what fits any GPU at any length
MAX_LORA_RANK = 65_536  # also capped at hidden_size by the check below


class EstimateSpec(Model):
    """Everything that decides memory, time and cost of one job on one kind of GPU."""

    model_config = ConfigDict(allow_inf_nan=False)  # `--lora-dropout nan` says "finite", not "less than 1"

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
    lora_rank: int = Field(16, ge=1, le=MAX_LORA_RANK, description="LoRA rank r")
    lora_targets: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names that get adapters, or `all-linear` (every linear but the LM head)"
    )
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input (saves a mask when > 0)")
    num_virtual_tokens: int = Field(
        20, ge=1, le=MAX_CONTEXT, description="prompt_tuning / prefix_tuning / p_tuning: virtual tokens learned"
    )
    ia3_targets: list[str] | Literal["default"] = Field(
        "default", description="ia3: modules that get a scaling vector; default: PEFT's list for the architecture"
    )
    double_quant: bool = Field(True, description="QLoRA: quantize the NF4 absmax constants again (8-bit)")
    batch_size: int = Field(1, ge=1, le=MAX_BATCH_SIZE, description="Micro-batch per GPU, in sequences")
    seq_len: int = Field(1024, ge=1, le=MAX_CONTEXT, description="Tokens per sequence as the GPU sees it (padded or packed)")
    grad_ckpt: bool = Field(True, description="Gradient checkpointing: keep only each block's input")
    attention: AttentionKernel = Field("sdpa", description="Attention kernel: sdpa/flash keep no s×s matrix")
    n_gpus: int = Field(1, ge=1, le=MAX_N_GPUS, description="GPUs in data parallel")
    zero_stage: Literal[0, 1, 2, 3] = Field(0, description="DeepSpeed ZeRO stage (3 is FSDP full sharding)")
    offload_optimizer: bool = Field(False, description="ZeRO/FSDP: optimizer state lives in CPU memory")
    offload_params: bool = Field(False, description="ZeRO-3/FSDP: parameters live in CPU memory")
    shard_root_unit: bool = Field(
        False,
        description="ZeRO-3/FSDP: embeddings and LM head are sharded units of their own, freed after use "
        "(DeepSpeed ZeRO-3; torchtune's custom_sharded_layers); False: they sit in FSDP's root unit, which stays "
        "gathered from forward to backward (accelerate, HF Trainer, Axolotl, Lightning)",
    )
    context_tokens: int | None = Field(
        None, ge=1, le=MAX_CONTEXT, description="Inference: tokens held in the KV cache per sequence; None: seq_len"
    )
    device: Literal["cuda", "cpu"] = Field(
        "cuda", description="Where it runs: a CUDA GPU (the default) or the CPU (saved-tensor layout differs a little)"
    )
    loss_kernel: LossKernel = Field(
        "chunked",
        description="chunked: TRL's fused LM head scores tiles of the vocabulary and never holds b·s·V logits "
        "(what `advisor train` runs); full: transformers' loss over materialised fp32 logits (plain Trainer)",
    )
    stack: StackName | None = Field(
        None,
        description="Training stack whose documented defaults filled the knobs (`--stack`, "
        "advisor/core/estimate/stacks.py); None: not stated, the knobs are taken as given",
    )
    adapter_dtype: AdapterDtype | None = Field(
        None,
        description="dtype of the LoRA adapter weights; None: as TRL keeps them, fp32 over a 16-bit base "
        "(PEFT's autocast_adapter_dtype) and bf16 over a 4-bit base (SFTTrainer casts them)",
    )
    bnb_via_transformers: bool = Field(
        True,
        description="QLoRA: the base is quantized by transformers' bitsandbytes integration, which (v5) converts only "
        "modules whose type is exactly nn.Linear; False for stacks that quantize their own modules (litgpt, torchtune)",
    )
    kbit_prep: bool = Field(
        False,
        description="QLoRA: PEFT's prepare_model_for_kbit_training upcast every parameter that is not 4-bit "
        "(embeddings, LM head, norms) to fp32, so the residual stream and the MLP activations are fp32 too",
    )
    packing: bool = Field(
        False,
        description="Examples packed into full seq_len sequences; unpacked micro-batches are padded to their "
        "longest example, so the estimate at seq_len is then an upper bound",
    )
    bitsandbytes: str | None = Field(
        None,
        pattern=r"^\d+\.\d+(\.\d+)?$",
        description="QLoRA: bitsandbytes version the run uses (before 0.43.2 MatMul4Bit kept every 4-bit linear's "
        "input for backward); None: a current release",
    )
    transformers: Literal[4, 5] = Field(
        5,
        description="QLoRA: transformers major version loading the 4-bit base: 5 quantizes only modules whose type "
        "is exactly nn.Linear and stores MoE experts as fused 3-D parameters, both left 16-bit; 4 quantizes every "
        "nn.Linear subclass and each expert's own nn.Linear",
    )
    bnb_lm_head: bool = Field(
        False,
        description="QLoRA: the LM head is 4-bit too (Lightning's BitsandbytesPrecision replaces every nn.Linear: "
        "litgpt); transformers leaves it 16-bit",
    )
    bnb_quant_dtype: Literal["fp16", "bf16", "fp32"] | None = Field(
        None,
        description="QLoRA: dtype the 4-bit weights were quantized from, which dequantization returns before the "
        "cast to the compute dtype (Lightning quantizes from fp16); None: the compute dtype",
    )
    sdpa_kv: Literal["native", "repeated", "broadcast"] = Field(
        "native",
        description="How grouped key/value heads reach SDPA: `native` at their own head count (transformers 5, "
        "enable_gqa or flash kernels); `repeated` copied out to every query head first (litgpt for GQA); "
        "`broadcast` one KV head against all query heads (litgpt for MQA), which only SDPA's math backend "
        "takes: it saves the s×s probabilities",
    )
    logits_held: bool = Field(
        False,
        description="The training loop keeps the model output, its b·s·V logits, alive through backward and the "
        "optimizer step (a plain `outputs = model(...)` loop; transformers' Trainer drops it before backward)",
    )
    fsdp_no_sync: bool = Field(
        False,
        description="ZeRO-3/FSDP with gradient accumulation under FSDP1's no_sync() (litgpt wraps every accumulating "
        "micro-batch in fabric.no_backward_sync): each rank keeps the unsharded gradient of every flat parameter "
        "that needs one until the syncing micro-batch; with use_orig_params=True (Lightning's default) a wrapped "
        "block holding LoRA weights gets a gradient for its frozen weights too",
    )

    @model_validator(mode="after")
    def _check(self) -> EstimateSpec:
        problems = []
        if self.uses_lora and self.lora_rank > self.model.hidden_size:
            problems.append(
                f"lora_rank must be ≤ hidden_size (got {self.lora_rank} > {self.model.hidden_size})"
            )
        if self.train_method == "prefix_tuning" and self.grad_ckpt:
            problems.append("grad_ckpt: prefix tuning feeds its prefixes as a key/value cache, which checkpointing's "
                            "recomputation extends twice; turn gradient checkpointing off")
        if self.offload_optimizer and self.zero_stage == 0:
            problems.append("offload_optimizer needs zero_stage ≥ 1 (ZeRO-Offload/FSDP CPUOffload move the "
                            "sharded optimizer state; without sharding nothing offloads it)")
        if self.offload_params and self.zero_stage != 3:
            problems.append("offload_params needs zero_stage 3 (parameters are only sharded at stage 3)")
        no_sync_ok = self.zero_stage == 3 and not self.offload_params and self.train_method in ("full", "lora")
        if self.fsdp_no_sync and not no_sync_ok:
            problems.append("fsdp_no_sync needs zero_stage 3 without parameter offload, and full or LoRA training "
                            "(what litgpt ran under FSDP no_sync)")
        if self.zero_stage and self.n_gpus == 1 and not (self.offload_optimizer or self.offload_params):
            problems.append("zero_stage > 0 shards over GPUs: set n_gpus > 1, or an offload option")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def train_method(self) -> str | None:
        """The way weights are trained (DPO resolved to its policy); None for inference."""
        if self.method == "inference":
            return None
        if self.method == "dpo":
            return self.dpo_policy
        return self.method

    @property
    def uses_lora(self) -> bool:
        return self.train_method in ("lora", "qlora")

    @property
    def uses_adapter(self) -> bool:
        """A frozen base with small fp32 PEFT weights on top: LoRA, QLoRA, IA3 or a soft prompt."""
        return self.train_method not in (None, "full")

    @property
    def extra_tokens(self) -> int:
        """Positions a soft prompt prepends to every sequence (prompt tuning, P-tuning); else 0."""
        return self.num_virtual_tokens if self.train_method in ("prompt_tuning", "p_tuning") else 0



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
    teacher_bytes: int = Field(0, description="Logit-level distillation: the frozen teacher's weights")
    kbit_prep_bytes: int = Field(
        0, description="QLoRA k-bit prep: fp32 upcast of the unquantized modules and the activations it widens"
    )
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
    communication_hours: float = Field(
        0.0, description="Hours the GPU-GPU and host-GPU transfers take; `hours` is the larger of this and compute"
    )
    gpu_hours: float = Field(description="hours × GPUs")
    price_per_hour_usd: float | None = Field(description="Price per GPU-hour; None when unknown")
    usd: float | None = Field(description="Cost of the job; None when the price is unknown")
    assumptions: list[str]



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


BenefitLabel = Literal["low", "medium", "high"]



class BenefitEstimate(Model):
    """Expected gain of one option for the stated goals: a prior from published evidence, not a measurement."""

    score: float = Field(ge=0, le=100, description="0-100: the evidence prior scaled by how much data there is")
    label: BenefitLabel = Field(description="low < 35 ≤ medium < 65 ≤ high")
    summary: str = Field(description="What the evidence says to expect, per goal")
    evidence: list[str] = Field(description="Evidence rows (E-ids of decision-rules.md) with their citations")
    assumptions: list[str] = Field(description="How data volume and quality scaled the prior")
