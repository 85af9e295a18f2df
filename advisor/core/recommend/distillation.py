"""Distillation as a path: a teacher that already does the task answers the examples' prompts, a small student is
trained on those answers (LoRA, `data_from: distill`) and served in the teacher's place.

    teacher       answers.teacher_model, else the API model used today (when it does the task)
    student       the base the answers name, else the model the edge path picks (largest catalog model whose
                  4-bit weights take at most 60% of the edge budget; 8 GB assumed on a server)
    one-time      teacher's answers (`estimate.distill.teacher_cost`) + the student's LoRA training
    saving(V)     teacher served at today's prompt − student served at the tuned prompt (0 on the edge)
    break-even    `estimate.distill.break_even_requests` over the recommendation's 12-month horizon

The teacher is prompted with today's prompt (answers' prompt_tokens) and writes output_tokens per answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from advisor.core import catalog
from advisor.core.estimate.distill import break_even_requests, serving_monthly, teacher_cost
from advisor.core.estimate.serving import DAYS_PER_MONTH
from advisor.core.models import ApiPriceSpec, DistillPrediction, DistillStep, GpuSpec, ModelSpec
from advisor.core.recommend.inputs import EDGE_DEFAULT_MEMORY_GB, Situation, _edge_model, catalog_architecture

__all__ = ["PAYBACK_MONTHS", "TEACHER_ENDPOINTS", "Teacher", "estimate_distillation", "student_of", "teacher_of"]

PAYBACK_MONTHS = 12.0  # the recommendation's horizon (decide.HORIZON_MONTHS)
STUDENT_METHOD = "lora"
# OpenAI-compatible endpoints of the providers in the API catalog (each provider's documentation).
TEACHER_ENDPOINTS = {"OpenAI": "https://api.openai.com/v1", "Anthropic": "https://api.anthropic.com/v1",
                     "Google": "https://generativelanguage.googleapis.com/v1beta/openai"}


@dataclass(frozen=True)
class Teacher:
    """The model that already does the task: an API model, or open weights (catalog shapes when known)."""

    name: str  # as the distill step names it: the API model, or a Hugging Face id
    api: ApiPriceSpec | None
    model: ModelSpec | None


def teacher_of(sit: Situation) -> Teacher | None:
    """The answers' teacher; None when they name none."""
    a = sit.answers
    name = a.teacher_model or (a.api_model if a.teacher_does_task else None)
    if name is None:
        return None
    prices = catalog.load_api_prices()
    if name in prices:
        return Teacher(name, prices[name], None)
    arch = catalog_architecture(name)
    if arch is None:
        return Teacher(name, None, None)
    rows = {row["name"]: row for row in catalog.load_model_rows()}
    hf_id = rows[arch]["hf_id"] if name.lower() == arch.lower() else name
    return Teacher(hf_id, None, catalog.resolve_model(arch))


def student_of(sit: Situation) -> tuple[ModelSpec, str, str]:
    """(student, its Hugging Face id, why): the named base, else the edge path's pick."""
    if not sit.model_chosen_by_advisor:
        return sit.model, sit.model_hf_id, f"student {sit.model.name}: the base the answers name"
    budget = sit.edge_memory_gb or EDGE_DEFAULT_MEMORY_GB
    name, how = _edge_model(budget, sit.answers.languages)
    if not sit.edge_memory_gb:
        how += f" (a server: {EDGE_DEFAULT_MEMORY_GB:g} GB assumed as the student's budget)"
    rows = {row["name"]: row for row in catalog.load_model_rows()}
    return catalog.resolve_model(name), rows[name]["hf_id"], f"student {how}"


def estimate_distillation(sit: Situation, gpu: GpuSpec, train: Callable, prompt_tokens: int, prompts: str):  # noqa: ANN201
    """Distillation's estimate (an `options.OptionEstimate`): the student's training step with its prediction, and
    the distill step before it. `train(situation, method)` estimates a training path (`options`' own); the
    student serves `prompt_tokens` per request; the teacher answers the prompts of the file `prompts`."""
    a = sit.answers
    student, student_id, why = student_of(sit)
    est = train(dataclasses.replace(sit, model=student, model_hf_id=student_id), STUDENT_METHOD)
    est.name = "distillation"
    est.prompt_tokens = prompt_tokens
    teacher = teacher_of(sit)
    if est.step is not None:
        est.step = est.step.model_copy(update={"data_from": "distill", "data_path": prompts, "output_dir": "student"})
    est.assumptions.insert(0, why)
    if teacher is None:
        est.assumptions.append("no teacher named (teacher_model): nothing to distil from")
        return est
    n = sit.n_examples
    prompt_total, answer_total = n * sit.prompt_tokens, n * a.output_tokens
    cost = teacher_cost(n, prompt_total, answer_total, api=teacher.api, model=teacher.model, gpu=gpu)
    edge = a.deployment == "edge"
    student_usd = est.one_time_usd

    def teacher_monthly(volume: float) -> float | None:
        return serving_monthly(volume, sit.prompt_tokens, a.output_tokens, api=teacher.api, model=teacher.model,
                               gpu=gpu)

    def student_monthly(volume: float) -> float | None:
        return serving_monthly(volume, est.prompt_tokens, a.output_tokens, model=student, gpu=gpu, edge=edge)

    one_time = cost.usd + student_usd if cost.usd is not None else None
    notes = [*cost.assumptions, f"{n:,} prompts × {sit.prompt_tokens:,} tokens (today's prompt), answers of "
             f"{a.output_tokens:,} tokens"]
    break_even = None
    if one_time is not None and teacher_monthly(1.0) is not None and student_monthly(1.0) is not None:
        break_even = break_even_requests(one_time, PAYBACK_MONTHS, lambda v: teacher_monthly(v) - student_monthly(v))
        notes.append(f"break-even: the monthly saving of the student over the teacher repays {one_time:,.2f} USD "
                     f"within {PAYBACK_MONTHS:g} months")
    per_month = a.requests_per_day * DAYS_PER_MONTH
    prediction = DistillPrediction(
        teacher=teacher.api.name if teacher.api else teacher.model.name if teacher.model else teacher.name,
        teacher_kind="api" if teacher.api else "self_hosted", student=student.name, gpu=gpu.name, n_prompts=n,
        prompt_tokens=prompt_total, answer_tokens=answer_total, teacher_seconds=cost.seconds, teacher_usd=cost.usd,
        student_hours=est.compute.hours if est.compute else None, student_usd=student_usd if est.compute else None,
        one_time_usd=one_time, requests_per_day=a.requests_per_day, teacher_monthly_usd=teacher_monthly(per_month),
        student_monthly_usd=student_monthly(per_month), payback_months=PAYBACK_MONTHS,
        break_even_requests_per_month=break_even, assumptions=notes,
    )
    endpoint = TEACHER_ENDPOINTS.get(teacher.api.provider) if teacher.api and not a.no_external_api else None
    step = DistillStep(teacher=teacher.name, prompts_path=prompts, max_new_tokens=a.output_tokens, gpu=gpu.name,
                       student_gpu="edge" if edge else gpu.name, requests_per_day=a.requests_per_day,
                       payback_months=PAYBACK_MONTHS, api_base_url=endpoint, prediction=prediction)
    est.steps_before = [step]
    est.one_time_usd = one_time if one_time is not None else student_usd
    if teacher.api is not None:
        est.out_of_pocket_usd += cost.usd or 0.0
    elif gpu.price_per_hour_usd and sit.owned_gpu is None:
        est.out_of_pocket_usd += cost.usd or 0.0
    est.assumptions += [f"teacher {prediction.teacher}: {notes[0]}", *notes[1:]]
    if teacher.api is not None and endpoint is None:
        est.assumptions.append("the teacher's API is not called from this plan (no endpoint: residency, or a "
                               "provider without an OpenAI-compatible one): its answers must come another way")
    return est
