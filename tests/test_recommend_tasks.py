"""Several tasks on one base: the answers name each task with its own data; the recommendation sums one training
per task and states one base + N adapters; the plan trains one step per task and serves them all under their names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from advisor.core.estimate.params import lora_params
from advisor.core.models import Answers, ServeStep, TrainStep
from advisor.core.planning import build_plan, load_plan, save_plan
from advisor.core.recommend import load_answers, recommend

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "two-adapters"
SCENARIOS = yaml.safe_load((Path(__file__).parent / "fixtures" / "seed-scenarios.yaml").read_text())


def _seed(scenario_id: str, **changes) -> Answers:
    inputs = next(s["inputs"] for s in SCENARIOS if s["id"] == scenario_id)
    return Answers(**{**inputs, **changes})


def _tasks(*counts: int) -> list[dict]:
    return [{"name": f"task-{i}", "n_examples": n} for i, n in enumerate(counts)]


def _rules(option) -> set[str]:  # noqa: ANN001
    return {r.rule_id for r in option.reasons}


# --- the answers -------------------------------------------------------------------------------------------------

def test_n_tasks_is_the_number_of_tasks() -> None:
    answers = Answers(goal=["style_format"], tasks=_tasks(200, 150, 120))
    assert answers.n_tasks == 3 and [t.name for t in answers.tasks] == ["task-0", "task-1", "task-2"]
    assert Answers(goal=["style_format"], tasks=_tasks(200, 150), n_tasks=2).n_tasks == 2


@pytest.mark.parametrize(("changes", "message"), [
    ({"tasks": _tasks(200)}, "at least two entries"),
    ({"tasks": [{"name": "a", "n_examples": 100}, {"name": "a", "n_examples": 100}]}, "names a more than once"),
    ({"tasks": _tasks(200, 150), "n_tasks": 3}, "n_tasks is 3 but tasks lists 2"),
    ({"tasks": _tasks(200, 150), "examples_path": "x.jsonl"}, "examples_path and tasks both given"),
    ({"tasks": _tasks(200, 150), "n_examples": 100}, "add up to 350"),
    ({"tasks": [{"name": "a", "n_examples": 100}, {"name": "b"}]}, "tasks b have no examples"),
    ({"tasks": [{"name": "Billing", "n_examples": 100}, {"name": "b", "n_examples": 100}]}, "lower-case letters"),
    ({"tasks": [{"name": "a b", "n_examples": 100}, {"name": "b", "n_examples": 100}]}, "lower-case letters"),
])
def test_bad_tasks_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Answers(goal=["style_format"], **changes)


def test_bad_tasks_are_one_line_and_exit_2(tmp_path: Path) -> None:
    from advisor.app.cli import _register, app

    _register()
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump({"goal": ["style_format"], "tasks": _tasks(200, 150), "n_tasks": 5}))
    result = CliRunner().invoke(app, ["recommend", str(path)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "n_tasks is 5 but tasks lists 2" in errors[0]
    assert "Traceback" not in result.output
    path.write_text(yaml.safe_dump({"goal": ["style_format"], "tasks": [
        {"name": "a", "examples_path": "missing.jsonl"}, {"name": "b", "n_examples": 100}]}))
    result = CliRunner().invoke(app, ["recommend", str(path)])
    assert result.exit_code == 2 and "tasks.a.examples_path" in result.output and "does not exist" in result.output


def test_task_paths_are_relative_to_the_answers_file() -> None:
    answers = load_answers(EXAMPLE / "answers.yaml")
    assert [Path(t.examples_path) for t in answers.tasks] == [EXAMPLE / "billing.jsonl", EXAMPLE / "shipping.jsonl"]


# --- the recommendation and the plan -----------------------------------------------------------------------------

def _example():  # noqa: ANN202
    answers = load_answers(EXAMPLE / "answers.yaml")
    return answers, recommend(answers)


def test_several_tasks_recommend_one_adapter_each_on_one_base() -> None:
    answers, rec = _example()
    assert rec.primary == "lora" and rec.stack == ["lora"]
    lora = rec.option("lora")
    assert "adapters-share-one-base" in _rules(lora) and "adapters-share-one-base" in _rules(rec.option("qlora"))
    assert lora.assumptions[0].startswith("one base + 2 adapters") and "billing, shipping" in lora.assumptions[0]
    assert any(a.startswith("lora: one base + 2 adapters") for a in rec.assumptions)  # what the report prints
    # Each adapter's prediction is from its own file; the option costs the sum of the trainings.
    steps = [*lora.steps_before, lora.step]
    lines = {len(p.read_text().splitlines()) for p in (EXAMPLE / "billing.jsonl", EXAMPLE / "shipping.jsonl")}
    assert {s.prediction.n_examples for s in steps} == lines == {144, 120}
    assert rec.measured.n_examples == 264
    assert lora.compute.hours == pytest.approx(sum(s.prediction.hours for s in steps))
    assert lora.compute.usd == pytest.approx(sum(s.prediction.usd for s in steps))
    assert lora.memory.peak_bytes == max(s.prediction.peak_bytes for s in steps)


def test_the_plan_trains_one_step_per_task_and_serves_all_under_their_names() -> None:
    answers, rec = _example()
    plan = build_plan(rec, answers)
    train = [s for s in plan.steps if isinstance(s, TrainStep)]
    assert [s.method for s in train] == ["lora", "lora"]
    assert len({s.base_model for s in train}) == 1
    assert [Path(s.data_path).name for s in train] == ["billing.jsonl", "shipping.jsonl"]
    assert [s.output_dir for s in train] == ["lora-billing", "lora-shipping"]
    assert all(s.merge for s in train)  # the merged copies are what the serve step exports
    serve = plan.steps[-1]
    assert isinstance(serve, ServeStep) and serve.names == ["billing", "shipping"]
    p = serve.prediction
    adapters = 2 * lora_params(_model("llama-3.2-3b"), train[0].lora_rank, train[0].lora_targets)
    assert (p.n_adapters, p.n_models) == (2, 2) and p.adapters_bytes == adapters * 2
    assert p.replica_bytes == p.weights_bytes + p.kv_cache_bytes + p.adapters_bytes
    assert p.separate_bytes == 2 * (p.weights_bytes + p.kv_cache_bytes)
    assert p.gpu == "a10g-24gb" and p.monthly_usd < p.separate_monthly_usd


def test_the_plan_saves_and_loads_back(tmp_path: Path) -> None:
    answers, rec = _example()
    plan = build_plan(rec, answers)
    save_plan(plan, tmp_path / "plan.yaml")
    loaded = load_plan(tmp_path / "plan.yaml")
    assert [s.model_dump(exclude={"prediction"}) for s in loaded.steps] == \
        [s.model_dump(exclude={"prediction"}) for s in plan.steps]


def _model(name: str):  # noqa: ANN202
    from advisor.core.catalog import resolve_model

    return resolve_model(name)


def test_many_listed_tasks_choose_ia3_one_step_per_task() -> None:
    answers = _seed("seed-09", tasks=_tasks(*(100 + i for i in range(12))), n_examples=0)
    rec = recommend(answers)
    assert rec.primary == "ia3" and "ia3-many-tasks-frozen-base" in _rules(rec.option("ia3"))
    assert rec.option("ia3").assumptions[0].startswith("one base + 12 IA3 vector sets")
    plan = build_plan(rec, answers)
    train = [s for s in plan.steps if isinstance(s, TrainStep)]
    assert [s.method for s in train] == ["ia3"] * 12 and len({s.output_dir for s in train}) == 12
    assert [s.prediction.n_examples for s in train] == [100 + i for i in range(12)]
    assert len({s.data_path for s in train}) == 12  # a placeholder of its own per task
    assert plan.steps[-1].names == [f"task-{i}" for i in range(12)]


def test_full_fine_tuning_of_several_tasks_serves_a_model_per_task() -> None:
    one = recommend(_seed("seed-09"))
    two = recommend(_seed("seed-09", tasks=_tasks(2000, 2000), n_examples=0))
    assert two.option("full").assumptions[0].startswith("2 separate fully fine-tuned models")
    # Two whole models, each at least one replica of its own, against one shared base for the adapters.
    assert two.option("full").monthly_usd >= 2 * one.option("full").monthly_usd - 0.01
    assert two.option("lora").monthly_usd == one.option("lora").monthly_usd


def test_each_task_needs_enough_examples_of_its_own() -> None:
    few = recommend(_seed("seed-09", tasks=_tasks(1000, 40), n_examples=0))
    assert "few-examples-per-task" in _rules(few.option("lora")) and few.option("lora").feasible
    enough = recommend(_seed("seed-09", tasks=_tasks(1000, 400), n_examples=0))
    assert "few-examples-per-task" not in _rules(enough.option("lora"))
    assert few.option("lora").score == enough.option("lora").score - 30
    tiny = recommend(_seed("seed-09", tasks=_tasks(1000, 5), n_examples=0))
    assert not tiny.option("lora").feasible and "too-few-examples-per-task" in _rules(tiny.option("lora"))


def test_one_task_plans_as_before() -> None:
    """No task list: one training step per method, its output folder the method, the serve step names nothing."""
    for scenario in SCENARIOS:
        answers = Answers(**scenario["inputs"])
        try:
            plan = build_plan(recommend(answers), answers)
        except Exception:  # noqa: BLE001  (a stack with nothing to plan: provider tuning alone)
            continue
        train = [s for s in plan.steps if isinstance(s, TrainStep) and s.objective != "causal_lm"]
        assert all(s.output_dir == s.method for s in train), scenario["id"]
        assert all(s.names == [] for s in plan.steps if isinstance(s, ServeStep)), scenario["id"]
        rec = recommend(answers)
        assert all(not o.assumptions or not o.assumptions[0].startswith("one base +") for o in rec.options)
        assert not any("one base +" in a for a in rec.assumptions)


def test_recommend_json_carries_a_step_per_task() -> None:
    from advisor.app.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["recommend", str(EXAMPLE / "answers.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    lora = next(o for o in json.loads(result.output)["options"] if o["name"] == "lora")
    assert [Path(s["data_path"]).name for s in (*lora["steps_before"], lora["step"])] == ["billing.jsonl",
                                                                                        "shipping.jsonl"]
