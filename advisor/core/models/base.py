"""The base model of every advisor model, and the closed sets several domains share."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Arch", "AttentionKernel", "Method", "Model", "Optimizer", "Precision"]


class Model(BaseModel):
    """Base for every advisor model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


Arch = Literal["llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "falcon", "stablelm"]


Method = Literal["inference", "full", "lora", "qlora", "dpo"]


Precision = Literal["fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed"]


Optimizer = Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "adafactor"]


AttentionKernel = Literal["sdpa", "flash", "eager"]
