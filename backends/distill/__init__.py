"""Distillation backend, sequence level: a teacher (a local model, a model an earlier step trained, or an
OpenAI-compatible API) answers the prompts of a file; the student is the training step after it with
`data_from: distill`. Nothing heavy is imported here: torch and transformers load inside the functions.
"""

from __future__ import annotations

from typing import get_args

from advisor.core.models import DistillStep, TrainStep
from backends.base import Backend, Problem, RunContext
from backends.distill.report import report_step
from backends.distill.results import DistillResult

__all__ = ["BACKEND", "DistillResult"]

TRAIN_METHODS = get_args(TrainStep.model_fields["method"].annotation)


def _label(step: DistillStep) -> str:
    return "distill"


def _describe(step: DistillStep) -> str:
    where = f"API {step.api_base_url}" if step.api_base_url else "local"
    return (f"teacher {step.teacher} ({where}) answers {step.prompts_path}, at most {step.max_new_tokens} tokens "
            f"each, in batches of {step.batch_size}")


def _check(step: DistillStep, ctx: RunContext) -> list[Problem]:
    """The prompts file loads; a local teacher has what it needs (nothing is loaded, nothing written)."""
    import importlib.util
    from pathlib import Path

    from advisor.core.errors import AdvisorError, InvalidInputError
    from backends.common.tiny import DEMO_MODELS
    from backends.distill.run import load_prompts

    problems = []
    if not step.api_base_url:
        problems += [Problem(field="extras", message=f"`{m}` is not installed", hint='pip install "advisor[train]"')
                     for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    try:
        load_prompts(step)
    except InvalidInputError as exc:
        problems += [Problem(field="prompts_path", message=p) for p in exc.problems[:5]]
    except AdvisorError as exc:
        problems.append(Problem(field="prompts_path", message=exc.message, hint=exc.hint))
    teacher = step.teacher
    if step.api_base_url or teacher in DEMO_MODELS or teacher in TRAIN_METHODS:  # the last: trained before it
        return problems
    local = Path(teacher)
    if local.is_dir() and not ((local / "config.json").is_file() or (local / "adapter_config.json").is_file()):
        problems.append(Problem(field="teacher", message=f"`{teacher}` has no config.json or adapter_config.json",
                                hint="point `teacher` at a folder written by `save_pretrained`"))
    elif not local.exists() and not (teacher.count("/") == 1 and not teacher.startswith((".", "/", "~"))):
        problems.append(Problem(field="teacher", message=f"`{teacher}` is neither a folder nor a Hugging Face id",
                                hint="a folder, a Hub id, `tiny-demo`, or an earlier training step's method"))
    return problems


def _run(step: DistillStep, ctx: RunContext) -> DistillResult:
    from backends.distill.run import run

    return run(step, ctx.step_dir, resume=ctx.resume)


def _demo(step: DistillStep) -> tuple[DistillStep, str | None]:
    """A teacher trained by an earlier step stays (that step is swapped); any other becomes `tiny-demo`."""
    from backends.common.tiny import DEMO_MODELS, TINY_DEMO

    if step.teacher in TRAIN_METHODS or (step.teacher in DEMO_MODELS and not step.api_base_url):
        return step, None
    where = f" at {step.api_base_url}" if step.api_base_url else ""
    return (step.model_copy(update={"teacher": TINY_DEMO, "api_base_url": None}),
            f"teacher `{step.teacher}`{where} → `{TINY_DEMO}` (random weights: its answers only show the pipeline)")


def _link(step: DistillStep, earlier: list, *, for_check: bool = False) -> DistillStep:
    """`teacher: full` (or `lora`, ...) names the latest earlier training step with that method: its model."""
    if step.api_base_url or step.teacher not in TRAIN_METHODS:
        return step
    for other, folder in reversed(earlier):
        if isinstance(other, TrainStep) and other.method == step.teacher:
            model = folder / other.output_dir
            if for_check and not model.exists():
                return step
            return step.model_copy(update={"teacher": str(model)})
    from advisor.core.errors import AdvisorError

    raise AdvisorError(f"teacher `{step.teacher}` names a training method, but no `{step.teacher}` training step "
                       "comes before the distill step", "add that training step before it, or name a model")


BACKEND = Backend(kind="distill", step_model=DistillStep, result_model=DistillResult, label=_label,
                  describe=_describe, check=_check, run=_run, report=report_step, demo=_demo, link=_link)
