"""What every backend offers the runner, as data: a descriptor, a run context and the problems a check finds.

Interfaces only, no implementation. Each backend package defines `BACKEND = Backend(...)` in its
`__init__.py`; `backends.REGISTRY` names the packages. The runner, the CLI's preview and pre-check and the
closing report iterate the registry; nothing else names a step kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from advisor.core.models import Model

__all__ = ["Backend", "Problem", "ReportRow", "RunContext", "StepReport"]


@dataclass(frozen=True)
class RunContext:
    """Where and how one step runs.

    The backend writes only inside `step_dir` (created if missing) and deletes only what it created there.
    Every input path in the step is absolute (`advisor.core.paths`).
    """

    step_dir: Path
    plan_name: str = "plan"
    resume: bool = False  # continue an interrupted attempt in `step_dir` (training: its last checkpoint)
    force: bool = False  # run even when the memory check says it will not fit; start afresh in a used folder


class Problem(Model):
    """One thing a check found that would stop the step."""

    field: str = Field(description="The step field (or topic: `extras`, `memory`, `disk`) it is about")
    message: str = Field(description="One line")
    hint: str | None = Field(None, description="What to change")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class ReportRow(Model):
    """One line of the closing report's comparison table."""

    quantity: str
    predicted: str
    measured: str


class StepReport(Model):
    """What the closing report shows and `result.json` holds for one step: prediction beside measurement."""

    compare: list[ReportRow] = Field(description="Predicted beside measured, formatted for people")
    benefit: list[tuple[str, str]] = Field(description="(metric, value) the step measured")
    data: dict[str, Any] = Field(description="The same numbers, unformatted (bytes, seconds, USD), for result.json")
    headline: str | None = Field(None, description="The step's verdict in one line; None: the step makes none")


@dataclass(frozen=True)
class Backend:
    """One kind of step: its models and the four things the runner does with it."""

    kind: str  # the step's `kind`
    step_model: type[Model]
    result_model: type[Model]
    label: Callable[[Any], str]  # `train lora`, `rag`, `prompt few-shot`: for people and the step's folder name
    describe: Callable[[Any], str]  # one line for the run preview
    check: Callable[[Any, RunContext], list[Problem]]  # cheap; no weights loaded, nothing written
    run: Callable[[Any, RunContext], Model]  # does the work; returns its typed result
    report: Callable[[Any, Any], StepReport]  # (step with its prediction, result) -> the comparison
    # Optional: the step with its models swapped for the offline demonstration model, and a note saying so.
    demo: Callable[[Any], tuple[Any, str | None]] | None = None
    # Optional: the step pointed at what earlier steps produce, given [(earlier step, its folder), ...];
    # `for_check=True` before anything ran (an output not written yet is left out).
    link: Callable[..., Any] | None = None
