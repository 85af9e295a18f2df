"""Decision v2: provider-side tuning as a ranked option with its price and end date; how far a tried method got."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from advisor.core.errors import AdvisorError
from advisor.core.models import Answers
from advisor.core.planning import build_plan
from advisor.core.recommend import recommend

SCENARIOS = yaml.safe_load((Path(__file__).parent / "fixtures" / "seed-scenarios.yaml").read_text())
BEFORE, AFTER = dt.date(2026, 12, 1), dt.date(2027, 2, 1)  # OpenAI takes new tuning jobs until 2027-01-06


def _answers(scenario_id: str, **changes) -> Answers:
    return Answers(**{**next(s["inputs"] for s in SCENARIOS if s["id"] == scenario_id), **changes})


def _rules(option) -> set[str]:  # noqa: ANN001
    return {r.rule_id for r in option.reasons}


CLOSED_NARROW = Answers(goal=["style_format"], n_examples=3000, model_access="closed_api_with_tuning",
                        api_model="gpt-5.4-mini", task_type="classification", requests_per_day=2000, budget_usd=500)


def _closed(changes: dict | None = None, **more) -> Answers:
    return Answers(**{**CLOSED_NARROW.model_dump(exclude_unset=True), **(changes or {}), **more})


def test_provider_tuning_is_ranked_first_with_its_prices_before_the_last_day() -> None:
    rec = recommend(CLOSED_NARROW, today=BEFORE)
    assert rec.primary == "provider_tuning" and rec.options[0].name == "provider_tuning"
    option = rec.option("provider_tuning")
    # One-time: training tokens × price per training token × epochs (gpt-4.1-mini: 5 USD per million).
    assert option.one_time_usd == pytest.approx(3000 * 512 * 3 * 5.00 / 1e6, abs=1e-4)
    # Monthly: the fine-tuned model's per-token prices (0.80 in, 3.20 out) at 2000 requests a day, short prompt.
    assert option.monthly_usd == pytest.approx(
        30 * 2000 * (option.prompt_tokens * 0.80 + 300 * 3.20) / 1e6, abs=0.01)
    assert option.monthly_usd < rec.option("prompting_few_shot").monthly_usd
    assert {"narrow-task-provider-tunes", "provider-tuning-limits", "provider-tuning-priced"} <= _rules(option)
    warning = next(w for w in rec.warnings if w.rule_id == "provider-tuning-priced")
    assert "until 2027-01-06 (36 days from today)" in warning.message
    assert option.step is None and option.model == "gpt-4.1-mini"
    assert any("carried out by OpenAI" in a and "upload the examples" in a for a in rec.assumptions)


def test_provider_tuning_plans_no_step_of_its_own() -> None:
    rec = recommend(CLOSED_NARROW, today=BEFORE)
    with pytest.raises(AdvisorError, match="carried out by the provider") as caught:
        build_plan(rec, CLOSED_NARROW)
    assert "upload the examples" in caught.value.hint


def test_provider_tuning_is_excluded_after_the_last_day_with_the_reason() -> None:
    rec = recommend(CLOSED_NARROW, today=AFTER)
    option = rec.option("provider_tuning")
    assert not option.feasible and rec.primary == "prompting_few_shot"
    assert "provider-tuning-closed" in _rules(option) and "provider-tuning-priced" not in _rules(option)
    assert any("new jobs are refused" in why for why in option.why_not)
    assert option.one_time_usd == recommend(CLOSED_NARROW, today=BEFORE).option("provider_tuning").one_time_usd


def test_provider_tuning_needs_a_provider_that_tunes_enough_examples_and_no_residency() -> None:
    for answers in (_answers("seed-03"), _answers("seed-11")):  # open weights; a closed API without tuning
        option = recommend(answers, today=BEFORE).option("provider_tuning")
        assert not option.feasible and "provider-tuning-needs-provider" in _rules(option)
    google = recommend(_closed({"api_model": "gemini-2.5-flash", "n_examples": 50}),
                       today=BEFORE).option("provider_tuning")
    assert not google.feasible and "provider-tuning-too-few-examples" in _rules(google)  # Vertex: 100 or more
    resident = recommend(_closed({"no_external_api": True, "open_weights_acceptable": True}), today=BEFORE)
    assert "residency-excludes-api" in _rules(resident.option("provider_tuning"))


def test_seed_primaries_keep_provider_tuning_out() -> None:
    for scenario in SCENARIOS:
        rec = recommend(Answers(**scenario["inputs"]), today=BEFORE)
        assert not rec.option("provider_tuning").feasible, scenario["id"]


def test_tried_keeps_the_plain_names_and_checks_the_new_form() -> None:
    assert Answers(goal=["style_format"], tried=["few_shot"]).attempts()["few_shot"].reached is None
    with pytest.raises(ValidationError, match="twice"):
        Answers(goal=["style_format"], tried=["rag", {"method": "rag", "recall": 0.9}])
    with pytest.raises(ValidationError, match="recall applies to method: rag"):
        Answers(goal=["style_format"], tried=[{"method": "few_shot", "recall": 0.9}])
    plain, mapped = recommend(_answers("seed-02", tried=["few_shot"])), \
        recommend(_answers("seed-02", tried=[{"method": "few_shot", "outcome": "failed"}]))
    assert plain.primary == mapped.primary and not plain.option("prompting_few_shot").feasible


def test_few_shot_that_got_close_makes_fine_tuning_on_the_same_examples_next() -> None:
    assert recommend(_answers("seed-02")).primary == "prompting_few_shot"
    close = recommend(_answers("seed-02", tried=[{"method": "few_shot", "reached": 0.8}]))
    assert close.primary == "qlora" and "tried-few-shot-close" in _rules(close.option("qlora"))
    assert "few-clean-examples-prompt-first" not in _rules(close.option("qlora"))  # the prompt was tried
    partly = recommend(_answers("seed-02", tried=[{"method": "few_shot", "outcome": "partly"}]))
    assert partly.primary == "qlora"
    badly = recommend(_answers("seed-02", tried=[{"method": "few_shot", "reached": 0.3}]))
    assert not badly.option("prompting_few_shot").feasible and "tried-few-shot" in _rules(
        badly.option("prompting_few_shot"))


def test_few_shot_that_got_close_raises_provider_tuning_for_a_closed_api() -> None:
    answers = _closed({"n_examples": 60, "task_type": "generation"})
    base = recommend(answers, today=BEFORE).option("provider_tuning")
    close = recommend(_closed({"n_examples": 60, "task_type": "generation",
                               "tried": [{"method": "few_shot", "reached": 0.8}]}), today=BEFORE).option("provider_tuning")
    assert close.score == base.score + 15 + 30  # tried-few-shot-close, and no few-clean-examples penalty


def test_rag_with_good_recall_keeps_retrieval_and_fine_tunes_for_format() -> None:
    assert recommend(_answers("seed-06")).stack == ["rag"]
    good = recommend(_answers("seed-06", tried=[{"method": "rag", "recall": 0.9}]))
    assert good.stack == ["rag", "lora"] and "tried-rag-retrieves" in _rules(good.option("lora"))
    poor = recommend(_answers("seed-06", tried=[{"method": "rag", "recall": 0.3}]))
    assert not poor.option("rag").feasible and "tried-rag" in _rules(poor.option("rag"))


def test_zero_shot_that_got_close_favours_few_shot() -> None:
    base = recommend(_answers("seed-02"))
    close = recommend(_answers("seed-02", tried=[{"method": "zero_shot", "reached": 0.9}]))
    assert close.option("prompting").feasible and "tried-zero-shot-close" in _rules(close.option("prompting"))
    assert close.option("prompting_few_shot").score == base.option("prompting_few_shot").score + 10
    assert close.option("prompting").score == base.option("prompting").score - 10
