"""The plan: concrete, editable steps that the backends execute in order."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from advisor import __version__
from advisor.core.models.base import Model
from advisor.core.models.steps import DistillStep, PromptStep, RagStep, ServeStep, TrainStep

__all__ = ["NAME_PATTERN", "STEP_MODELS", "Plan", "PlanStep", "slug"]

# Every step model, by its `kind`. A new kind of step is one class in steps.py and one entry here.
STEP_MODELS: dict[str, type[Model]] = {"train": TrainStep, "rag": RagStep, "prompt": PromptStep, "serve": ServeStep,
                                       "distill": DistillStep}
PlanStep = Annotated[TrainStep | RagStep | PromptStep | ServeStep | DistillStep, Field(discriminator="kind")]
# A plan's name is the default run folder (`runs/<name>`): a slug, so no name can point anywhere else.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def slug(text: str, fallback: str = "plan") -> str:
    """`text` as a plan name: lowercase letters, digits and dashes, at most 40 characters."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower())[:40].strip("-") or fallback


class Plan(Model):
    """Concrete, editable steps that the backends execute in order."""

    name: str = Field("plan", description="Short name of the plan (a slug), used for the run directory")
    advisor_version: str = Field(__version__, description="advisor version that wrote the plan")
    rules_version: str = Field("", description="Version of the rules that decided it; empty when written by hand")
    steps: list[PlanStep] = Field(min_length=1, description="What runs, in order")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value) or ".." in value:
            raise ValueError(f"must be a slug of lowercase letters, digits, `.`, `_` and `-` (got `{value}`); "
                             f"for example `{slug(value)}`")
        return value
