"""Distillation as a path: a teacher that already does the task answers the examples' prompts, a small student is
trained on those answers (LoRA, `data_from: distill`) and served in the teacher's place. When the teacher is open
weights with the student's tokenizer, and both fit the student's training GPU, the student learns from the teacher's
token distribution instead (logit level, `distill_teacher`): no answering step, the teacher's forward in training.

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


# Catalog models by tokenizer: one family shares one tokenizer (the models' tokenizer.json files); logit-level
# distillation also needs the same logits width (config vocab_size: Qwen2.5-7B+ pad to 152064, the small ones
# have 151936, so they do not pair).
TOKENIZER_FAMILY = {
    **dict.fromkeys(("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b",
                     "llama-3.3-70b"), "llama-3"),
    **dict.fromkeys(("llama-2-7b", "llama-2-13b", "llama-2-70b", "tinyllama-1.1b"), "llama-2"),
    **dict.fromkeys(("mistral-7b", "mixtral-8x7b"), "mistral-v1"),
    **dict.fromkeys(("qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b",
                     "qwen2.5-72b"), "qwen2.5"),
    **dict.fromkeys(("gemma-2-2b", "gemma-2-9b", "gemma-2-27b"), "gemma-2"),
    **dict.fromkeys(("falcon-7b", "falcon-40b"), "falcon"),
}
LOGIT_LEVEL_SOURCE = ("Hinton, Vinyals & Dean 2015, arXiv:1503.02531 (soft targets carry more than the answer); "
                      "Agarwal et al. 2024, GKD, arXiv:2306.13649 (token-level KD on the same data beats "
                      "sequence-level KD on the teacher's samples in their summarisation and translation runs)")


def shares_tokenizer(teacher: ModelSpec, student: ModelSpec) -> bool:
    """Teacher and student read and write the same token ids (same family, same logits width)."""
    family = TOKENIZER_FAMILY.get(teacher.name)
    return family is not None and family == TOKENIZER_FAMILY.get(student.name) \
        and teacher.vocab_size == student.vocab_size


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


def estimate_distillation(sit: Situation, gpu: GpuSpec, train: Callable, prompt_tokens: int, prompts: str,  # noqa: ANN201
                          spec: Callable, epochs: float):
    """Distillation's estimate (an `options.OptionEstimate`): the student's training step with its prediction, and
    the distill step before it (none at logit level). `train(situation, method)` estimates a training path and
    `spec(situation, step, gpu)` gives a step's estimator spec (`options`' own); the student serves `prompt_tokens`
    per request over `epochs` of training; the teacher answers (or, at logit level, reads) the examples of the file
    `prompts`."""
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
    est.distill_prediction = prediction
    logit = (_logit_level(sit, est, teacher, student, prompts, spec, epochs)
             if teacher.model is not None and est.step is not None else None)
    if logit is not None:
        return logit
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


def _logit_level(sit: Situation, est, teacher: Teacher, student: ModelSpec, examples: str, spec_of: Callable,  # noqa: ANN001, ANN202
                 epochs: float):
    """`est` as logit-level distillation when the tokenizers match and teacher + student fit the student's GPU;
    None otherwise (the reason appended to `est.assumptions`)."""
    from advisor.core.estimate.fit import fits
    from advisor.core.estimate.logit_distill import estimate_distill_compute, estimate_distill_memory

    if not shares_tokenizer(teacher.model, student):
        est.assumptions.append(f"sequence level: {teacher.model.name} and {student.name} do not share a tokenizer, "
                               "so the student learns from the teacher's written answers")
        return None
    step, gpu = est.step, est.gpu
    if gpu is None or step.n_gpus > 1:
        est.assumptions.append("sequence level: logit-level distillation copies the teacher to every GPU; the "
                               "student's job spans several")
        return None
    logit_step = step.model_copy(update={"data_from": None, "distill_teacher": teacher.name, "data_path": examples})
    spec = spec_of(sit, logit_step, gpu)
    memory = estimate_distill_memory(spec, teacher.model)
    if not fits(memory, gpu):
        est.assumptions.append(f"sequence level: {teacher.model.name} beside the student needs "
                               f"{memory.peak_bytes / 2**30:,.1f} GiB, more than one {gpu.name}")
        return None
    pred = est.distill_prediction
    compute = estimate_distill_compute(spec, teacher.model, gpu, pred.n_prompts, sit.mean_example_tokens, epochs)
    student_usd = est.compute.usd if est.compute else None
    teacher_usd = (compute.usd - student_usd) if compute.usd is not None and student_usd is not None else None
    owned = step.prediction.gpu_owned if step.prediction else False
    paid = 0.0 if owned else (compute.usd or 0.0)
    prediction = pred.model_copy(update={
        "teacher_seconds": (compute.hours - est.compute.hours) * 3600 if est.compute else None,
        "teacher_usd": teacher_usd, "student_hours": compute.hours, "student_usd": compute.usd,
        "one_time_usd": compute.usd,
        "assumptions": [f"logit level: the teacher's forward on every training token "
                        f"({compute.flops_per_token - est.compute.flops_per_token:,.0f} FLOPs/token) inside the "
                        "student's training" if est.compute else "logit level", *pred.assumptions[1:]]})
    if step.prediction is not None:
        logit_step = logit_step.model_copy(update={"prediction": step.prediction.model_copy(update={
            "peak_bytes": memory.peak_bytes, "hours": compute.hours, "usd": compute.usd})})
    # An owned GPU is charged its electricity (as `options` charges the student alone): scaled by the GPU-hours.
    scale = compute.gpu_hours / est.compute.gpu_hours if est.compute and est.compute.gpu_hours else 1.0
    est.one_time_usd = est.one_time_usd * scale if owned else (compute.usd or 0.0)
    est.out_of_pocket_usd = paid
    est.step, est.memory, est.compute, est.distill_prediction = logit_step, memory, compute, prediction
    est.assumptions.append(f"logit level: {teacher.model.name} and {student.name} share a tokenizer, and the "
                           f"teacher fits beside the student on one {gpu.name} ({memory.peak_bytes / 2**30:,.1f} "
                           f"GiB): the student matches its token distribution (KL at T={logit_step.distill_temperature:g}, "
                           f"alpha {logit_step.distill_alpha:g}) — {LOGIT_LEVEL_SOURCE}")
    return est
