"""IA3 and prompt tuning as recommendation options: offered with their estimate, chosen only where the evidence says.

Many tasks (`n_tasks`) over one frozen served base is where a few KB to MB per task wins (Liu et al. 2022;
Lester et al. 2021); with one task LoRA stays ahead (seed: "more parameter-efficient than LoRA but generally
less capable"), and prompt tuning is held back below ~10B parameters.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from advisor.core.estimate.params import peft_params
from advisor.core.models import Answers, TrainStep
from advisor.core.planning import build_plan
from advisor.core.recommend import recommend

SCENARIOS = yaml.safe_load((Path(__file__).parent / "fixtures" / "seed-scenarios.yaml").read_text())


def _answers(scenario_id: str, **changes) -> Answers:
    inputs = next(s["inputs"] for s in SCENARIOS if s["id"] == scenario_id)
    return Answers(**{**inputs, **changes})


def _rules(option) -> set[str]:  # noqa: ANN001
    return {r.rule_id for r in option.reasons}


def test_both_are_offered_with_an_estimate_and_a_plan_step() -> None:
    rec = recommend(_answers("seed-09"))
    for name in ("ia3", "prompt_tuning"):
        option = rec.option(name)
        assert option.feasible and option.fits and option.memory is not None and option.compute is not None
        assert isinstance(option.step, TrainStep) and option.step.method == name
        assert option.step.prediction.peak_bytes == option.memory.peak_bytes
        expected = peft_params(_model("llama-3.1-8b"), name, n_virtual=option.step.num_virtual_tokens)
        assert option.memory.n_trainable_params == expected
    # Prompt tuning serves its virtual tokens with every request.
    assert rec.option("prompt_tuning").prompt_tokens == rec.option("lora").prompt_tokens + 20


def _model(name: str):  # noqa: ANN202
    from advisor.core.catalog import resolve_model

    return resolve_model(name)


def test_one_task_keeps_lora_ahead() -> None:
    rec = recommend(_answers("seed-09"))
    assert rec.primary == "lora"
    assert "soft-prompts-less-capable" in _rules(rec.option("ia3"))
    assert {"soft-prompts-less-capable", "prompt-tuning-needs-scale"} <= _rules(rec.option("prompt_tuning"))
    assert rec.option("ia3").score < rec.option("lora").score


def test_many_tasks_on_one_frozen_base_choose_ia3_and_plan_it() -> None:
    rec = recommend(_answers("seed-09", n_tasks=40))
    assert rec.primary == "ia3" and rec.stack == ["ia3", "rag"]
    assert "ia3-many-tasks-frozen-base" in _rules(rec.option("ia3"))
    plan = build_plan(rec, _answers("seed-09", n_tasks=40))
    step = next(s for s in plan.steps if isinstance(s, TrainStep))
    assert step.method == "ia3" and step.learning_rate == 3e-3 and step.merge  # merged: what vLLM can serve


def test_an_ia3_and_a_prompt_tuning_plan_save_and_load_back(tmp_path: Path) -> None:
    from advisor.core.planning import Plan, load_plan, save_plan

    rec = recommend(_answers("seed-09", n_tasks=40))
    steps = [rec.option("ia3").step, rec.option("prompt_tuning").step]
    save_plan(Plan(name="peft", steps=steps), tmp_path / "plan.yaml")
    loaded = [s for s in load_plan(tmp_path / "plan.yaml").steps if isinstance(s, TrainStep)]
    assert [(s.method, s.num_virtual_tokens, s.ia3_targets) for s in loaded] == [
        ("ia3", 20, "default"), ("prompt_tuning", 20, "default")]


def test_prompt_tuning_is_held_back_on_small_models_and_not_on_large_ones() -> None:
    small = recommend(_answers("seed-09", n_tasks=40))
    assert "prompt-tuning-needs-scale" in _rules(small.option("prompt_tuning"))
    assert small.option("prompt_tuning").score < small.option("lora").score
    large = recommend(_answers("seed-09", n_tasks=40, base_model="qwen2.5-14b"))
    pt = large.option("prompt_tuning")
    assert "prompt-tuning-at-scale-many-tasks" in _rules(pt) and "prompt-tuning-needs-scale" not in _rules(pt)
    assert pt.score > large.option("lora").score  # the 16-bit base is tight there: QLoRA leads


def test_a_tight_16bit_base_counts_against_ia3_as_against_lora() -> None:
    rec = recommend(_answers("seed-04", n_tasks=40))
    ia3 = rec.option("ia3")
    assert ia3.feasible and "ia3-when-its-base-is-tight" in _rules(ia3)


def test_without_weights_neither_is_feasible() -> None:
    rec = recommend(_answers("seed-11", n_tasks=40))
    for name in ("ia3", "prompt_tuning"):
        assert not rec.option(name).feasible and "weights-needed-to-train" in _rules(rec.option(name))
