"""Slow: IA3 and prompt tuning train the tiny demonstration model through the real backend and end with a verdict.

The dry run's trainable count, the estimator's and the trained model's are the same number; IA3 merges into the
base within tolerance; a soft prompt is refused a merge when the plan loads; the adapters load back for answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advisor.core.models import TrainStep

FIXTURES = Path(__file__).parent / "fixtures" / "train"
pytestmark = pytest.mark.slow


def _step(**kwargs) -> TrainStep:
    defaults = {"base_model": "tiny-demo", "data_path": str(FIXTURES / "sft_instruction.jsonl"), "seq_len": 64,
                "batch_size": 8, "eval_fraction": 0.2, "grad_ckpt": False, "max_steps": 8,
                "learning_rate": 3e-2}
    return TrainStep(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    return tmp_path_factory.mktemp("peft-runs")


def _assert_trained(result, step: TrainStep, run_dir: Path) -> None:
    from backends.train import inspect

    assert result.status == "succeeded" and result.is_demo_model
    assert result.fit.global_step == result.fit.max_steps == step.max_steps
    assert result.fit.eval_loss_after < result.fit.eval_loss_before
    assert 0 < result.fit.n_trainable_params < result.fit.n_params / 100
    assert result.predicted is not None and result.predicted.n_trainable_params == result.fit.n_trainable_params
    assert inspect(step, run_dir).n_trainable_params == result.fit.n_trainable_params
    assert (run_dir / "model" / "adapter_model.safetensors").is_file()
    assert result.verdict is not None and result.verdict.outcome
    assert result.task_accuracy is not None and result.task_accuracy.n_examples > 0


def test_ia3_trains_merges_and_gets_a_verdict(runs: Path) -> None:
    from backends.train import run

    step = _step(method="ia3", merge=True)
    result = run(step, runs / "ia3")
    _assert_trained(result, step, runs / "ia3")
    assert result.merge is not None and result.merge.is_match
    assert (runs / "ia3" / "merged" / "config.json").is_file()


def test_prompt_tuning_trains_and_its_adapter_answers(runs: Path) -> None:
    from backends.common.evaluation import _load
    from backends.train import run

    step = _step(method="prompt_tuning", num_virtual_tokens=8)
    result = run(step, runs / "prompt")
    _assert_trained(result, step, runs / "prompt")
    assert result.fit.n_trainable_params == 8 * _hidden_size(runs / "prompt")  # PEFT's n_virtual × hidden
    model, _, _ = _load(str(runs / "prompt" / "model"))
    assert type(model).__name__ == "PeftModelForCausalLM"


def _hidden_size(run_dir: Path) -> int:
    import json

    return json.loads((run_dir / "base-model" / "config.json").read_text())["hidden_size"]


def test_a_soft_prompt_plan_asking_to_merge_is_refused_at_load(tmp_path: Path) -> None:
    from advisor.core.errors import AdvisorError
    from advisor.core.planning import load_plan

    step = _step(method="prefix_tuning").model_dump()
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "p", "steps": [{**step, "merge": True}]}))
    with pytest.raises((AdvisorError, ValueError), match="merge"):
        load_plan(plan)


def test_prompt_tuning_resumes_from_its_last_checkpoint(runs: Path) -> None:
    import shutil

    from backends.train import run
    from backends.train.fit import last_checkpoint

    step = _step(method="prompt_tuning", num_virtual_tokens=8, eval_fraction=0.0)
    run_dir = runs / "prompt-resume"
    first = run(step, run_dir)
    newest = last_checkpoint(run_dir / "model")
    # As if killed after the previous checkpoint: the newest one and the result never written.
    shutil.rmtree(newest)
    (run_dir / "result.json").unlink()
    earlier = last_checkpoint(run_dir / "model")
    assert earlier is not None and earlier.name != newest.name
    resumed = run(step, run_dir, resume=True)
    assert resumed.fit.resumed_from_step == int(earlier.name.split("-")[1])
    assert resumed.fit.global_step == first.fit.global_step == step.max_steps
    assert resumed.fit.n_trainable_params == first.fit.n_trainable_params


@pytest.mark.parametrize("method", ["prefix_tuning", "p_tuning"])
def test_prefix_and_p_tuning_train_and_predict_their_trainable_count(runs: Path, method: str) -> None:
    from backends.train import run

    step = _step(method=method, num_virtual_tokens=4, eval_fraction=0.0, max_steps=4)
    result = run(step, runs / method)
    assert result.status == "succeeded" and result.fit.global_step == 4
    assert result.predicted is not None and result.predicted.n_trainable_params == result.fit.n_trainable_params
    assert (runs / method / "model" / "adapter_config.json").is_file()
