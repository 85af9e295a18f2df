"""Training backend: full, LoRA and QLoRA supervised fine-tuning and DPO, with measured memory beside the estimate.

`inspect(step, run_dir)` is the dry run (`advisor train check`); `run(step, run_dir, ...)` trains and writes
`result.json`. `BACKEND` describes it to the runner. Nothing heavy is imported here: torch, transformers, peft,
trl and bitsandbytes load inside the functions.
"""

from __future__ import annotations

from advisor.core.models import TrainStep
from backends.base import Backend, Problem, RunContext
from backends.train.check import Finding, TrainCheck
from backends.train.check import check as inspect
from backends.train.report import report_step
from backends.train.results import TrainResult
from backends.train.run import run

__all__ = ["BACKEND", "Finding", "TrainCheck", "TrainResult", "inspect", "run"]


def _label(step: TrainStep) -> str:
    """`train lora`; a per-task step (output `lora-billing`) is named by its task: `train lora-billing`."""
    return f"train {step.output_dir}" if step.output_dir.startswith(f"{step.method}-") else f"train {step.method}"


def _describe(step: TrainStep) -> str:
    teacher = (f", logit-level distillation from {step.distill_teacher} (temperature {step.distill_temperature:g}, "
               f"alpha {step.distill_alpha:g})" if step.distill_teacher else "")
    return (f"{step.base_model}, {step.precision} precision, micro-batch {step.batch_size} × {step.seq_len} tokens, "
            f"{step.epochs:g} epoch(s), data {step.data_path}{teacher}")


def _check(step: TrainStep, ctx: RunContext) -> list[Problem]:
    """The dry run's error findings as problems (`force` lets memory findings through, as the run does)."""
    from advisor.core.errors import AdvisorError, MissingExtraError

    if step.data_from == "distill" and not _has_answers(step.data_path):
        return []  # prompts only, checked by the distill step: this step is checked on the answers when it runs
    missing = _missing_extras()
    if missing:
        return [Problem(field="extras", message=f"`{m}` is not installed", hint='pip install "advisor[train]"')
                for m in missing]
    try:
        report = inspect(step, ctx.step_dir)
    except MissingExtraError as exc:
        return [Problem(field="extras", message=exc.message, hint=exc.hint)]
    except AdvisorError as exc:  # input the run could not even start from: data, base model, adapter
        return [Problem(field="step", message=exc.message, hint=exc.hint)]
    return [Problem(field=f.topic, message=f.message, hint=f.hint) for f in report.findings
            if f.level == "error" and not (ctx.force and f.is_forceable)]


def _has_answers(path: str) -> bool:
    """The file loads as supervised examples (a distill step's prompts may carry no answers)."""
    from advisor.core.errors import AdvisorError
    from backends.common.data import load_examples

    try:
        load_examples(path, for_preference=False)
    except AdvisorError:
        return False
    return True


def _missing_extras() -> list[str]:
    import importlib.util

    return [m for m in ("torch", "transformers", "peft", "trl") if importlib.util.find_spec(m) is None]


def _run(step: TrainStep, ctx: RunContext) -> TrainResult:
    """Train in the runner's step folder; an earlier attempt there resumes, or starts afresh if it cannot."""
    import shutil

    from backends.train.fit import last_checkpoint
    from backends.train.results import RESULT_FILE

    resume = ctx.resume and (last_checkpoint(ctx.step_dir / step.output_dir) is not None
                             or (ctx.step_dir / RESULT_FILE).is_file())
    if ctx.resume and not resume and ctx.step_dir.is_dir():
        shutil.rmtree(ctx.step_dir)  # the runner's own folder for this step: an attempt that died before a checkpoint
    return run(step, ctx.step_dir, resume=resume, force=ctx.force, plan_name=ctx.plan_name)


# A demonstration run shows the pipeline end to end in minutes on a CPU; more steps of a random tiny model
# would only cost time (the report says the model and the cap were substituted).
DEMO_MAX_STEPS = 60
# Continued pretraining in a demo: short blocks, so a small corpus still holds enough of them to hold some out.
DEMO_BLOCK_TOKENS = 64
DEMO_EVAL_FRACTION = 0.15


def _demo(step: TrainStep) -> tuple[TrainStep, str | None]:
    step, teacher_note = _demo_teacher(step)
    step, note = _demo_student(step)
    return step, "; ".join(n for n in (note, teacher_note) if n) or None


def _demo_teacher(step: TrainStep) -> tuple[TrainStep, str | None]:
    """A logit-distillation teacher trained by an earlier step stays (that step is swapped); another: `tiny-demo`."""
    from typing import get_args

    from backends.common.tiny import DEMO_MODELS, TINY_DEMO

    teacher = step.distill_teacher
    if teacher is None or teacher in DEMO_MODELS or teacher in get_args(TrainStep.model_fields["method"].annotation):
        return step, None
    return (step.model_copy(update={"distill_teacher": TINY_DEMO}),
            f"teacher `{teacher}` → `{TINY_DEMO}` (random weights: its logits only show the pipeline)")


def _demo_student(step: TrainStep) -> tuple[TrainStep, str | None]:
    from advisor.core.models import CONTINUED
    from backends.common.tiny import DEMO_MODELS, TINY_DEMO, TINY_DEMO_SMALL

    if step.base_model in DEMO_MODELS:
        return step, None
    if step.base_model == CONTINUED:  # the demo model the continued-pretraining step trained: only the cap
        if step.max_steps and step.max_steps <= DEMO_MAX_STEPS and step.grad_accum == 1:
            return step, None
        cap = min(step.max_steps or DEMO_MAX_STEPS, DEMO_MAX_STEPS)
        return step.model_copy(update={"max_steps": cap, "grad_accum": 1}), f"at most {cap} optimizer steps"
    # A distilled student (sequence or logit level): smaller than its teacher.
    demo = TINY_DEMO_SMALL if step.data_from == "distill" or step.distill_teacher else TINY_DEMO
    cap = min(step.max_steps or DEMO_MAX_STEPS, DEMO_MAX_STEPS)
    note = f"`{step.base_model}` → `{demo}`, at most {cap} optimizer steps"
    update = {"base_model": demo, "max_steps": cap}
    if step.grad_accum > 1:  # each optimizer step of the demo is one micro-batch: a quarter of the time at 4
        update["grad_accum"] = 1
        note += f" of one micro-batch (not {step.grad_accum})"
    if step.objective == "causal_lm" and step.seq_len > DEMO_BLOCK_TOKENS:  # a demo corpus packs into few long blocks
        update.update(seq_len=DEMO_BLOCK_TOKENS, eval_fraction=max(step.eval_fraction, DEMO_EVAL_FRACTION))
        note += f", blocks of {DEMO_BLOCK_TOKENS} tokens (not {step.seq_len})"
    return step.model_copy(update=update), note


def _link(step: TrainStep, earlier: list, *, for_check: bool = False) -> TrainStep:
    """`init_adapter: lora` names an earlier SFT step of the plan: point it at that step's adapter folder.

    With `for_check` (before anything ran) an adapter that earlier step has not written yet is left out, so
    the step is checked as it would start from its base model.
    """
    from pathlib import Path

    step = _distilled_data(step, earlier, for_check=for_check)
    step = _continued_base(step, earlier, for_check=for_check)
    step = _linked_teacher(step, earlier, for_check=for_check)
    if not step.init_adapter:
        return _shared_demo_base(step, earlier)
    if Path(step.init_adapter).exists():
        return step
    for other, folder in earlier:
        if isinstance(other, TrainStep) and other.method == step.init_adapter:
            adapter = folder / other.output_dir
            if for_check and not adapter.exists():
                return step.model_copy(update={"init_adapter": None})
            return step.model_copy(update={"init_adapter": str(adapter)})
    return step


def _continued_base(step: TrainStep, earlier: list, *, for_check: bool) -> TrainStep:
    """`base_model: continued`: the model the latest continued-pretraining step wrote (LoRA: its merged model).

    With `for_check`, a model not written yet leaves the step on that step's own base, so it can be checked.
    """
    from advisor.core.errors import AdvisorError
    from advisor.core.models import CONTINUED

    if step.base_model != CONTINUED:
        return step
    for other, folder in reversed(earlier):
        if isinstance(other, TrainStep) and other.objective == "causal_lm":
            if other.method != "full" and not other.merge:
                raise AdvisorError(f"base_model: continued, but the continued-pretraining step trains {other.method} "
                                   "without `merge: true`", "set `merge: true` on it, so this step starts from the "
                                   "merged model")
            model = folder / (other.output_dir if other.method == "full" else "merged")
            if not (model / "config.json").is_file():
                if for_check:
                    base = other.base_model
                    if base in ("tiny-demo", "tiny-demo-small") and (folder / "base-model").is_dir():
                        base = str(folder / "base-model")
                    return step.model_copy(update={"base_model": base})
                raise AdvisorError(f"base_model: continued, but `{model}` holds no model yet",
                                   "run the continued-pretraining step first")
            return step.model_copy(update={"base_model": str(model)})
    raise AdvisorError("base_model: continued, but no `objective: causal_lm` step comes before this one",
                       "add a continued-pretraining step before it, or name the base model")


def _linked_teacher(step: TrainStep, earlier: list, *, for_check: bool) -> TrainStep:
    """`distill_teacher: full` (or `lora`, ...): the model the latest earlier training step with that method wrote.

    With `for_check`, a model not written yet leaves the teacher on that step's base model (the tokenizer a
    fine-tuning keeps), so the check can compare tokenizers and count the teacher.
    """
    from typing import get_args

    from advisor.core.errors import AdvisorError

    methods = get_args(TrainStep.model_fields["method"].annotation)
    if step.distill_teacher not in methods:
        return step
    for other, folder in reversed(earlier):
        if isinstance(other, TrainStep) and other.method == step.distill_teacher:
            model = folder / other.output_dir
            if (model / "config.json").is_file() or (model / "adapter_config.json").is_file():
                return step.model_copy(update={"distill_teacher": str(model)})
            if for_check:
                base = other.base_model
                if base in ("tiny-demo", "tiny-demo-small") and (folder / "base-model" / "config.json").is_file():
                    base = str(folder / "base-model")
                return step.model_copy(update={"distill_teacher": base})
            raise AdvisorError(f"distill_teacher: {step.distill_teacher}, but `{model}` holds no model yet",
                               "run that training step first")
    raise AdvisorError(f"distill_teacher `{step.distill_teacher}` names a training method, but no "
                       f"`{step.distill_teacher}` training step comes before this one",
                       "add that training step before it, or name a model")


def _distilled_data(step: TrainStep, earlier: list, *, for_check: bool) -> TrainStep:
    """`data_from: distill`: train on the answers file of the latest distill step before this one.

    With `for_check`, answers not written yet leave `data_path` on that step's prompts (the same examples with
    their reference answers), so the check still sees the data's size and format.
    """
    if step.data_from != "distill":
        return step
    for other, folder in reversed(earlier):
        if getattr(other, "kind", None) == "distill":
            answers = folder / other.output_file
            if for_check and not answers.is_file():
                return step.model_copy(update={"data_path": other.prompts_path})
            return step.model_copy(update={"data_path": str(answers)})
    from advisor.core.errors import AdvisorError

    raise AdvisorError("data_from: distill, but no distill step comes before this training step",
                       "add a `kind: distill` step before it, or remove `data_from`")


def _shared_demo_base(step: TrainStep, earlier: list) -> TrainStep:
    """A second `tiny-demo` step trains on the demo base the first one built: one base for every adapter."""
    from backends.common.tiny import TINY_DEMO, is_demo_model
    from backends.train.model import DEMO_DIR

    if step.base_model != TINY_DEMO:
        return step
    for other, folder in earlier:
        if isinstance(other, TrainStep) and other.base_model == TINY_DEMO and is_demo_model(folder / DEMO_DIR):
            return step.model_copy(update={"base_model": str(folder / DEMO_DIR)})
    return step


BACKEND = Backend(kind="train", step_model=TrainStep, result_model=TrainResult, label=_label, describe=_describe,
                  check=_check, run=_run, report=report_step, demo=_demo, link=_link)
