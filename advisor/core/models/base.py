"""The base model of every advisor model, and the closed sets several domains share."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["Arch", "AttentionKernel", "Method", "Model", "Optimizer", "Precision"]


class Model(BaseModel):
    """Base for every advisor model: unknown keys are errors, instances are immutable.

    What a model writes it can read back: the values of computed fields (`peak_bytes`, ...) are in every dump
    for people and scripts, and are dropped, not refused, when a dump is validated again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        computed = cls.__pydantic_computed_fields__
        if computed and isinstance(data, dict) and any(key in data for key in computed):
            return {key: value for key, value in data.items() if key not in computed}
        return data


Arch = Literal["llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "falcon", "stablelm"]


Method = Literal["inference", "full", "lora", "qlora", "dpo", "prompt_tuning", "prefix_tuning", "p_tuning", "ia3"]


Precision = Literal["fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed"]


Optimizer = Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "adafactor"]


AttentionKernel = Literal["sdpa", "flash", "eager"]
