"""What a team tells the advisor: the questionnaire's answers (`answers.yaml`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from advisor.core.models.base import Model

__all__ = ["Answers", "Freshness", "Goal", "GpuAnswer", "ModelAccess"]


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
