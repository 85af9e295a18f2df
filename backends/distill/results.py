"""What a distill step returns: the teacher, the answers written, tokens and time."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from advisor.core.models import Model

__all__ = ["DistillResult"]


class DistillResult(Model):
    """One teacher pass over the prompts, as the runner records it."""

    status: Literal["succeeded"] = "succeeded"
    teacher: str = Field(description="As named in the plan (after linking: the folder an earlier step trained)")
    teacher_kind: Literal["local", "api"] = Field(description="A model loaded here, or an OpenAI-compatible API")
    is_demo_model: bool = Field(description="The teacher is the offline demonstration model")
    device: str = Field(description="Where a local teacher ran (`cpu`, `cuda`); `api` for an API")
    n_prompts: int = Field(ge=0, description="Prompts in the file (after max_prompts)")
    n_answers: int = Field(ge=0, description="Answers written (non-empty)")
    n_empty: int = Field(ge=0, description="Prompts the teacher answered with nothing (left out of the file)")
    n_resumed: int = Field(ge=0, description="Prompts answered by an earlier, interrupted attempt and kept")
    prompt_tokens: int = Field(ge=0, description="Prompt tokens the teacher read (its tokenizer, or the API's usage)")
    answer_tokens: int = Field(ge=0, description="Tokens the teacher generated")
    wall_seconds: float = Field(ge=0, description="Generation time summed over every attempt")
    tokens_per_second: float = Field(ge=0, description="answer_tokens / wall_seconds")
    max_new_tokens: int = Field(ge=1)
    output_file: str = Field(description="The chat JSON Lines, relative to the step's folder")
    artifacts: dict[str, str] = Field(description="Name → path relative to the step's folder")
    versions: dict[str, str] = Field(description="Package versions the run used")
