"""Prompting backend: few-shot examples chosen for coverage within a token budget, scored against zero-shot.

`check(step, run_dir)` finds bad input cheaply; `run(step, run_dir)` writes the prompt template and
`result.json`; `BACKEND` describes it to the runner. Nothing heavy is imported here: numpy, torch,
transformers and sentence-transformers load inside the functions.
"""

from __future__ import annotations

from advisor.core.models import PromptStep
from backends.base import Backend, Problem, RunContext
from backends.prompting.report import report_step
from backends.prompting.results import BudgetFit, PromptEvaluation, PromptResult, PromptScores, Shot
from backends.prompting.run import check, run

__all__ = ["BACKEND", "BudgetFit", "PromptEvaluation", "PromptResult", "PromptScores", "Shot", "check", "run"]


def _label(step: PromptStep) -> str:
    return "prompt few-shot" if step.n_shots else "prompt zero-shot"


def _describe(step: PromptStep) -> str:
    return f"{step.model}, {step.n_shots} shots within {step.max_prompt_tokens} tokens"


def _check(step: PromptStep, ctx: RunContext) -> list[Problem]:
    problems = []
    for line in check(step, ctx.step_dir):
        field, _, message = line.partition(": ")
        problems.append(Problem(field=field, message=message) if message else Problem(field="step", message=line))
    return problems


def _run(step: PromptStep, ctx: RunContext) -> PromptResult:
    return run(step, ctx.step_dir, plan_name=ctx.plan_name)


def _demo(step: PromptStep) -> tuple[PromptStep, str | None]:
    from backends.common.tiny import TINY_DEMO

    if step.model == TINY_DEMO:
        return step, None
    return step.model_copy(update={"model": TINY_DEMO}), f"`{step.model}` → `{TINY_DEMO}`"


BACKEND = Backend(kind="prompt", step_model=PromptStep, result_model=PromptResult, label=_label, describe=_describe,
                  check=_check, run=_run, report=report_step, demo=_demo)
