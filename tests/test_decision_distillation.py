"""Distillation as a recommended path: a capable teacher, an edge target and a volume past break-even make it
first; no capable teacher or a hosted teacher under residency exclude it; its plan is distill → student."""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from advisor.core import catalog
from advisor.core.estimate.distill import serving_monthly, teacher_cost
from advisor.core.estimate.serving import DAYS_PER_MONTH
from advisor.core.models import Answers, DistillStep, ServeStep, TrainStep
from advisor.core.planning import build_plan, load_plan, save_plan
from advisor.core.recommend import recommend

TODAY = datetime.date(2026, 1, 1)
EDGE_TEAM = dict(goal=["style_format"], task="summarise field reports on the device", n_examples=2000,
                 deployment="edge", edge_memory_gb=8, requests_per_day=50_000, budget_usd=500)


def _rules(option) -> set[str]:  # noqa: ANN001
    return {r.rule_id for r in option.reasons}


def test_edge_team_with_a_capable_teacher_and_high_volume_gets_distillation_first(tmp_path) -> None:
    rec = recommend(Answers(**EDGE_TEAM, teacher_model="gpt-5.4", teacher_does_task=True), today=TODAY)
    assert rec.primary == "distillation"
    option = rec.option("distillation")
    assert {"distil-for-edge", "distil-when-inference-cost-binds"} <= _rules(option)
    assert rec.option("lora").feasible and rec.option("lora").score < option.score  # ranked first, not alone
    distill, student = option.steps_before[0], option.step
    assert isinstance(distill, DistillStep) and isinstance(student, TrainStep)
    assert distill.teacher == "gpt-5.4" and distill.api_base_url == "https://api.openai.com/v1"
    assert distill.student_gpu == "edge" and student.data_from == "distill"
    assert student.base_model == "meta-llama/Llama-3.1-8B"  # the edge path's pick for 8 GB
    pred = distill.prediction
    # The teacher's answers priced at the catalog's gpt-5.4 prices; the student is free to serve on the device.
    cost = teacher_cost(2000, 2000 * 400, 2000 * 300, api=catalog.resolve_api_model("gpt-5.4"))
    assert pred.teacher_usd == pytest.approx(cost.usd) and pred.student_monthly_usd == 0.0
    assert pred.one_time_usd == pytest.approx(cost.usd + student.prediction.usd)
    assert option.one_time_usd == pytest.approx(pred.one_time_usd, abs=1e-4)
    assert 0 < pred.break_even_requests_per_month <= 50_000 * DAYS_PER_MONTH
    assert rec.facts["distill.break_even_requests_per_month"] == pytest.approx(pred.break_even_requests_per_month,
                                                                               abs=0.1)

    plan = build_plan(rec, rec.answers)
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["distill", "train", "serve"]  # the option's two steps, then the serve step of what trained
    save_plan(plan, tmp_path / "plan.yaml")
    loaded = load_plan(tmp_path / "plan.yaml")
    assert isinstance(loaded.steps[0], DistillStep) and isinstance(loaded.steps[2], ServeStep)
    assert loaded.steps[1].data_from == "distill" and loaded.steps[1].merge  # merged, then quantised on the device
    assert loaded.steps[0].prediction == pred


def test_break_even_is_where_the_student_saving_repays_the_one_time_cost() -> None:
    rec = recommend(Answers(**{**EDGE_TEAM, "deployment": "server", "edge_memory_gb": None},
                            teacher_model="gpt-5.4", teacher_does_task=True), today=TODAY)
    pred = rec.option("distillation").steps_before[0].prediction
    api, student, gpu = (catalog.resolve_api_model("gpt-5.4"), catalog.resolve_model(pred.student),
                         catalog.resolve_gpu(pred.gpu))
    tuned = rec.option("distillation").prompt_tokens

    def saving(volume: float) -> float:
        return (serving_monthly(volume, 400, 300, api=api)
                - serving_monthly(volume, tuned, 300, model=student, gpu=gpu))

    even = pred.break_even_requests_per_month
    assert even is not None and even > 0  # an always-on student replica needs volume to pay
    need = pred.one_time_usd / pred.payback_months
    assert saving(even) >= need > saving(even * 0.99)


def test_without_a_capable_teacher_distillation_is_not_recommended() -> None:
    rec = recommend(Answers(**EDGE_TEAM), today=TODAY)
    option = rec.option("distillation")
    assert rec.primary != "distillation" and not option.feasible
    assert "distil-needs-a-capable-teacher" in _rules(option) and not option.steps_before
    named = recommend(Answers(**EDGE_TEAM, teacher_model="llama-3.1-70b"), today=TODAY)  # named, not capable
    assert not named.option("distillation").feasible and named.primary != "distillation"


def test_low_volume_scores_distillation_below_break_even() -> None:
    rec = recommend(Answers(**{**EDGE_TEAM, "requests_per_day": 1}, teacher_model="gpt-5.4",
                            teacher_does_task=True), today=TODAY)
    option = rec.option("distillation")
    assert "distil-below-break-even" in _rules(option) and "distil-when-inference-cost-binds" not in _rules(option)


def test_residency_excludes_an_api_teacher_and_never_sets_its_endpoint() -> None:
    rec = recommend(Answers(**EDGE_TEAM, teacher_model="gpt-5.4", teacher_does_task=True, no_external_api=True),
                    today=TODAY)
    option = rec.option("distillation")
    assert not option.feasible and "distil-api-teacher-under-residency" in _rules(option)
    assert option.steps_before[0].api_base_url is None
    local = recommend(Answers(**EDGE_TEAM, teacher_model="llama-3.1-70b", teacher_does_task=True,
                              no_external_api=True), today=TODAY)
    teacher = local.option("distillation")
    assert teacher.feasible and teacher.steps_before[0].prediction.teacher_kind == "self_hosted"
    assert teacher.steps_before[0].api_base_url is None and local.primary == "distillation"


def test_a_capable_teacher_needs_a_name() -> None:
    with pytest.raises(ValidationError, match="teacher_does_task needs a teacher"):
        Answers(goal=["style_format"], teacher_does_task=True)


def test_the_questionnaire_asks_for_a_teacher_and_then_whether_it_does_the_task() -> None:
    from advisor.app.questionnaire import QUESTIONS, build_answers, next_question

    keys = [q.key for q in QUESTIONS]
    assert keys.index("teacher_model") + 1 == keys.index("teacher_does_task")
    values = {q.key: None for q in QUESTIONS[: keys.index("teacher_model")]} | {"goal": ["style_format"]}
    values["teacher_model"] = None  # skipped: no teacher, nothing more to ask
    assert next_question(values) is None
    values["teacher_model"] = "gpt-5.4"
    assert next_question(values).key == "teacher_does_task"
    answers = build_answers({**values, "teacher_does_task": True})
    assert answers.teacher_model == "gpt-5.4" and answers.teacher_does_task


LOGIT_TEAM = dict(goal=["style_format"], task="summarise field reports on the device", n_examples=2000,
                  deployment="edge", edge_memory_gb=4, requests_per_day=50_000, budget_usd=500,
                  base_model="llama-3.2-1b", gpu={"type": "a100-80gb", "count": 1})


def test_a_teacher_with_the_students_tokenizer_is_distilled_on_its_logits() -> None:
    from advisor.core.catalog import resolve_gpu, resolve_model
    from advisor.core.estimate.logit_distill import estimate_distill_memory
    from advisor.core.estimate.translate import train_spec

    rec = recommend(Answers(**LOGIT_TEAM, teacher_model="llama-3.1-8b", teacher_does_task=True), today=TODAY)
    assert rec.primary == "distillation" and rec.facts["distill.logit_level"]
    option = rec.option("distillation")
    assert "distil-on-the-teachers-logits" in _rules(option) and not option.steps_before
    student = option.step
    assert student.distill_teacher == "meta-llama/Llama-3.1-8B" and student.data_from is None
    # The prediction counts the teacher beside the student, as the backend's estimate does.
    spec = train_spec(student, resolve_model("llama-3.2-1b"), "bf16")
    memory = estimate_distill_memory(spec, resolve_model("llama-3.1-8b"))
    assert student.prediction.peak_bytes == memory.peak_bytes and memory.teacher_bytes > 0
    assert memory.peak_bytes < resolve_gpu("a100-80gb").memory_bytes
    plan = build_plan(rec, rec.answers)
    assert [s.kind for s in plan.steps] == ["train", "serve"]  # no answering step: the teacher runs in training


@pytest.mark.parametrize(("teacher", "why"), [("qwen2.5-7b", "do not share a tokenizer"),
                                              ("llama-3.1-70b", "more than one a100-80gb")])
def test_otherwise_the_teacher_writes_answers_for_the_student(teacher: str, why: str) -> None:
    rec = recommend(Answers(**LOGIT_TEAM, teacher_model=teacher, teacher_does_task=True), today=TODAY)
    option = rec.option("distillation")
    assert not rec.facts["distill.logit_level"] and "distil-on-the-teachers-logits" not in _rules(option)
    assert isinstance(option.steps_before[0], DistillStep) and option.step.data_from == "distill"
    assert any(a.startswith("sequence level") and why in a for a in option.assumptions)
