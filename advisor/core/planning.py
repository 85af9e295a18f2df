"""The executable plan: load and save `plan.yaml`, validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from advisor import __version__
from advisor.core.errors import AdvisorError
from advisor.core.models import Model, PromptStep, RagStep, TrainStep

if TYPE_CHECKING:
    from advisor.core.models import Answers, Option, Recommendation

__all__ = ["Plan", "PlanStep", "build_plan", "load_plan", "rebase_plan", "resolve_step_paths", "save_plan"]

PlanStep = Annotated[RagStep | TrainStep | PromptStep, Field(discriminator="kind")]


class Plan(Model):
    """Concrete, editable steps that the backends execute in order."""

    name: str = Field("plan", description="Short name of the plan, used for the run directory")
    advisor_version: str = Field(__version__, description="advisor version that wrote the plan")
    rules_version: str = Field("", description="Version of the rules that decided it; empty when written by hand")
    steps: list[PlanStep] = Field(min_length=1, description="What runs, in order")


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    Raises:
        AdvisorError: the file is missing or is not YAML.
        pydantic.ValidationError: a field is missing or invalid (the CLI lists them all).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise AdvisorError(f"plan file `{path}` does not exist", "write one with `advisor plan answers.yaml -o plan.yaml`")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise AdvisorError(f"`{path}` is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise AdvisorError(f"`{path}` must hold a mapping with a `steps` list")
    return Plan.model_validate(data)


# Step fields that hold file or folder paths; in a plan file they are relative to the file's folder.
PATH_FIELDS = {
    "rag": ("docs_dir", "eval_questions_path"),
    "train": ("data_path", "base_model", "init_adapter"),
    "prompt": ("examples_path", "context_path", "model"),
}


def resolve_step_paths(step, base_dir: str | Path):
    """The step with every relative path that exists under `base_dir` made absolute (model ids stay as they are)."""
    base = Path(base_dir)
    update = {}
    for name in PATH_FIELDS[step.kind]:
        value = getattr(step, name)
        if isinstance(value, str) and not Path(value).is_absolute() and (base / value).exists():
            update[name] = str((base / value).resolve())
    return step.model_copy(update=update)


def rebase_plan(plan: Plan, base_dir: str | Path) -> Plan:
    """The plan with every absolute path that exists written relative to `base_dir` (model ids stay as they are)."""
    import os

    base = Path(base_dir).resolve()
    steps = []
    for step in plan.steps:
        update = {}
        for field in PATH_FIELDS[step.kind]:
            value = getattr(step, field)
            if isinstance(value, str) and Path(value).is_absolute() and Path(value).exists():
                update[field] = os.path.relpath(value, base)
        steps.append(step.model_copy(update=update))
    return plan.model_copy(update={"steps": steps})


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write `plan` as YAML, atomically (a crash leaves the old file or none, never half of one).

    Absolute paths that exist are written relative to the plan file's folder, so the plan moves with its data.
    """
    import yaml

    from advisor.core.fileio import write_text_atomic

    path = Path(path)
    plan = rebase_plan(plan, path.parent)
    write_text_atomic(path, yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False))


# --- Recommendation → Plan ------------------------------------------------------------------------
# Steps run in this order: supervised training, preference training on top, the index, then prompting.
STEP_ORDER = ("full", "lora", "qlora", "dpo", "rag", "prompting_few_shot", "prompting")
TRAIN_PRECISION = {"bf16": "bf16", "bf16-mixed": "bf16", "fp16": "fp16", "fp16-mixed": "fp16", "fp32": "fp32"}
# Placeholders for paths the answers did not give; the plan is meant to be edited before it runs.
PLACEHOLDER_EXAMPLES = "data/train.jsonl"
PLACEHOLDER_PAIRS = "data/preferences.jsonl"
PLACEHOLDER_DOCS = "docs"


def _hf_id(name: str) -> str:
    from advisor.core.catalog import load_model_rows

    return next((row["hf_id"] for row in load_model_rows() if row["name"] == name), name)


def _train_step(option: Option, answers: Answers, init_adapter: str | None) -> TrainStep:
    setup = option.setup
    assert setup is not None  # a trained option always carries its setup
    dpo = option.name == "dpo"
    return TrainStep(
        method=option.name,  # type: ignore[arg-type]
        base_model=_hf_id(option.model),
        data_path=(answers.preferences_path or PLACEHOLDER_PAIRS) if dpo else (answers.examples_path or PLACEHOLDER_EXAMPLES),
        output_dir=option.name,
        dpo_policy=setup.dpo_policy,
        init_adapter=init_adapter if dpo else None,
        lora_rank=setup.lora_rank,
        lora_alpha=setup.lora_alpha,
        precision=TRAIN_PRECISION[setup.precision],  # type: ignore[arg-type]
        learning_rate=setup.learning_rate,
        batch_size=setup.batch_size,
        grad_accum=setup.grad_accum,
        seq_len=setup.seq_len,
        epochs=setup.epochs,
        n_gpus=setup.n_gpus,
        distributed="zero3" if setup.zero_stage == 3 else "ddp",
        gpu=setup.gpu,
    )


def _prompt_step(option: Option, answers: Answers, rec: Recommendation) -> PromptStep:
    few_shot = option.name == "prompting_few_shot"
    n_examples = int(rec.facts.get("data.n_examples", answers.n_examples))
    in_context = bool(rec.facts.get("corpus.fits_in_context")) and "knowledge" in answers.goal
    return PromptStep(
        model=_hf_id(option.model),
        examples_path=(answers.examples_path or PLACEHOLDER_EXAMPLES) if few_shot and n_examples else None,
        n_shots=min(5, n_examples) if few_shot else 0,
        max_prompt_tokens=option.prompt_tokens,
        context_path=answers.corpus_path if in_context else None,
    )


def build_plan(rec: Recommendation, answers: Answers) -> Plan:
    """Turn a recommendation's stack into concrete steps with every setting a backend needs.

    Paths the answers did not give become placeholders (`data/train.jsonl`, `docs`) to edit before running.
    """
    import re

    steps: list[RagStep | TrainStep | PromptStep] = []
    adapter = None
    for name in sorted(rec.stack, key=STEP_ORDER.index):
        option = rec.option(name)
        if name in ("lora", "qlora", "full", "dpo"):
            steps.append(_train_step(option, answers, adapter))
            adapter = name if name in ("lora", "qlora") else adapter
        elif name == "rag":
            steps.append(RagStep(docs_dir=answers.corpus_path or PLACEHOLDER_DOCS,
                                 eval_questions_path=answers.eval_questions_path))
        else:
            steps.append(_prompt_step(option, answers, rec))
    slug = re.sub(r"[^a-z0-9]+", "-", answers.task.lower())[:40].strip("-") or "plan"
    return Plan(name=slug, rules_version=rec.rules_version, steps=steps)
