"""A distill step's prediction, made before it runs: the prompts measured (characters / 4), the teacher and the
student looked up in the catalog, then `advisor.core.estimate.distill`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

from advisor.core.errors import AdvisorError
from advisor.core.measure import CHARS_PER_TOKEN
from advisor.core.models import DistillPrediction, DistillStep, TrainStep

__all__ = ["measure_prompts", "predict_distill"]

TRAIN_METHODS = get_args(TrainStep.model_fields["method"].annotation)


def _split(record: dict) -> tuple[str, str] | None:
    """(prompt text, reference answer or None) of one record, or None when it is neither."""
    messages = record.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        texts = [str(m.get("content", "")) for m in messages]
        if messages[-1].get("role") == "user":  # a prompt only
            return " ".join(texts), None
        return " ".join(texts[:-1]), texts[-1]
    if "instruction" in record:
        return f"{record['instruction']} {record.get('input', '')}", str(record.get("output", ""))
    if "prompt" in record:
        return str(record["prompt"]), str(record["completion"]) if "completion" in record else None
    return None


def measure_prompts(path: str | Path, max_prompts: int | None, max_new_tokens: int) -> tuple[int, int, int]:
    """(prompts, their tokens, answer tokens): reference answers' length capped at `max_new_tokens`; a prompt
    without one counts `max_new_tokens` (the most the teacher writes)."""
    n = prompt = answer = 0
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if max_prompts and n >= max_prompts:
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue
            parts = _split(record) if isinstance(record, dict) else None
            if parts is None:
                continue
            n += 1
            prompt += round(len(parts[0]) / CHARS_PER_TOKEN)
            reference = max_new_tokens if parts[1] is None else round(len(parts[1]) / CHARS_PER_TOKEN)
            answer += min(max(reference, 1), max_new_tokens)
    return n, prompt, answer


def _catalog(resolve, name: str | None):
    if not name:
        return None
    try:
        return resolve(name)
    except AdvisorError:
        return None


def _student_training(step: TrainStep, student, gpu, n_prompts: int, mean_tokens: float):
    """(hours, USD, note) of training the student on the teacher's answers, by the training estimator."""
    from advisor.core.estimate.compute import estimate_training_compute
    from advisor.core.estimate.precision import choose_precision, device_of
    from advisor.core.estimate.translate import train_spec

    compute, _ = choose_precision(step.precision, device_of(gpu, step.n_gpus))
    n_train = max(1, round(n_prompts * (1 - step.eval_fraction)))
    train = estimate_training_compute(train_spec(step, student, compute), gpu, n_train, mean_tokens, step.epochs)
    return train.hours, train.usd, (f"student {student.name} {step.method}: {n_train:,} examples × "
                                    f"{mean_tokens:,.0f} tokens × {step.epochs:g} epoch(s) on {gpu.name}")


def predict_distill(step: DistillStep, steps: list, index: int) -> DistillPrediction:
    """The prediction for `step`, the `index`-th of `steps` (the teacher and student steps are found around it)."""
    from advisor.core.catalog import resolve_api_model, resolve_gpu, resolve_model
    from advisor.core.estimate.distill import break_even_requests, serving_monthly, teacher_cost
    from advisor.core.estimate.serving import DAYS_PER_MONTH

    n, prompt_tokens, answer_tokens = measure_prompts(step.prompts_path, step.max_prompts, step.max_new_tokens)
    teacher_name = step.teacher
    if step.teacher in TRAIN_METHODS and not step.api_base_url:
        trained = [s for s in steps[:index] if isinstance(s, TrainStep) and s.method == step.teacher]
        teacher_name = trained[-1].base_model if trained else step.teacher
    api = _catalog(resolve_api_model, teacher_name) if step.api_base_url else None
    teacher = None if step.api_base_url else _catalog(resolve_model, teacher_name)
    gpu = _catalog(resolve_gpu, step.gpu)
    edge = step.student_gpu == "edge"
    student_gpu = None if edge else _catalog(resolve_gpu, step.student_gpu or step.gpu)
    students = [s for s in steps[index + 1:] if isinstance(s, TrainStep) and s.data_from == "distill"]
    student_step = students[0] if students else None
    student = _catalog(resolve_model, student_step.base_model) if student_step else None
    notes = []
    cost = teacher_cost(n, prompt_tokens, answer_tokens, api=api, model=teacher, gpu=gpu)
    notes += cost.assumptions
    student_hours = student_usd = None
    if student_step is not None and student is not None and gpu is not None and n:
        student_hours, student_usd, note = _student_training(student_step, student, gpu, n,
                                                             (prompt_tokens + answer_tokens) / n)
        notes.append(note)
    elif student_step is None:
        notes.append("no training step with `data_from: distill` after this one: the student is not costed")
    one_time = cost.usd + student_usd if cost.usd is not None and student_usd is not None else None
    mean_prompt, mean_answer = (prompt_tokens / n, answer_tokens / n) if n else (0.0, 0.0)
    per_month = step.requests_per_day * DAYS_PER_MONTH

    def teacher_monthly(volume: float) -> float | None:
        return serving_monthly(volume, mean_prompt, mean_answer, api=api, model=teacher, gpu=gpu)

    def student_monthly(volume: float) -> float | None:
        return serving_monthly(volume, mean_prompt, mean_answer, model=student, gpu=student_gpu, edge=edge)

    break_even = None
    if one_time is not None and teacher_monthly(1.0) is not None and student_monthly(1.0) is not None:
        break_even = break_even_requests(one_time, step.payback_months,
                                         lambda v: teacher_monthly(v) - student_monthly(v))
        notes.append(f"break-even: the monthly saving repays {one_time:,.2f} USD within {step.payback_months:g} "
                     "months; both served at the prompts' mean tokens")
    return DistillPrediction(
        teacher=api.name if api else teacher.name if teacher else teacher_name,
        teacher_kind="api" if step.api_base_url else "self_hosted", student=student.name if student else None,
        gpu=gpu.name if gpu else None, n_prompts=n, prompt_tokens=prompt_tokens, answer_tokens=answer_tokens,
        teacher_seconds=cost.seconds, teacher_usd=cost.usd, student_hours=student_hours, student_usd=student_usd,
        one_time_usd=one_time, requests_per_day=step.requests_per_day,
        teacher_monthly_usd=teacher_monthly(per_month), student_monthly_usd=student_monthly(per_month),
        payback_months=step.payback_months, break_even_requests_per_month=break_even, assumptions=notes,
    )
