"""Slow: each method trains the tiny demonstration model on CPU; loss falls, artifacts load back, resume works."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from conftest import kill_when_ready

from advisor.core.models import TrainStep

FIXTURES = Path(__file__).parent / "fixtures" / "train"
ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.slow


def _step(**kwargs) -> TrainStep:
    defaults = {"base_model": "tiny-demo", "data_path": str(FIXTURES / "sft_instruction.jsonl"), "seq_len": 64,
                "batch_size": 8, "eval_fraction": 0.2, "grad_ckpt": False}
    return TrainStep(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def lora_run(runs: Path):
    from backends.train import run

    step = _step(method="lora", max_steps=12, learning_rate=1e-2, lora_rank=8, merge=True)
    return run(step, runs / "lora"), runs / "lora"


def _assert_learnt(result) -> None:
    assert result.status == "succeeded"
    assert result.is_demo_model and "demonstration" in result.demo_note
    assert result.fit.global_step == result.fit.max_steps
    assert result.fit.eval_loss_after < result.fit.eval_loss_before
    assert result.fit.measured.peak_rss_bytes > 0 and result.fit.measured.n_tokens > 0
    assert result.precision == "fp32"


def test_full_fine_tuning_learns_and_saves_a_model(runs: Path) -> None:
    from transformers import AutoModelForCausalLM

    from backends.train import run

    result = run(_step(method="full", max_steps=12, learning_rate=3e-3), runs / "full")
    _assert_learnt(result)
    assert result.fit.n_trainable_params == result.fit.n_params
    model = AutoModelForCausalLM.from_pretrained(runs / "full" / "model")
    assert sum(p.numel() for p in model.parameters()) == result.fit.n_params
    written = json.loads((runs / "full" / "result.json").read_text())
    assert written["memory"]["measured_bytes"] == result.fit.measured.peak_rss_delta_bytes
    assert written["versions"]["torch"] and (runs / "full" / "plan.yaml").is_file()


def test_lora_learns_and_merges_within_tolerance(lora_run) -> None:
    result, run_dir = lora_run
    _assert_learnt(result)
    assert (run_dir / "model" / "adapter_model.safetensors").is_file()
    assert result.merge is not None and result.merge.is_match
    # The adapter was loaded back from disk for the merge check: its loss is the trainer's final eval loss.
    assert result.merge.adapter_eval_loss == pytest.approx(result.fit.eval_loss_after, rel=1e-3)
    assert (run_dir / "merged" / "config.json").is_file()
    # Task accuracy: the base and the trained model answered the same held-out questions.
    accuracy = result.task_accuracy
    from backends.train.accuracy import MAX_EXAMPLES

    assert accuracy is not None and accuracy.n_examples == min(result.n_eval_examples, MAX_EXAMPLES)
    for scores in (accuracy.base, accuracy.trained):
        assert 0 <= scores.exact_match <= 1 and 0 <= scores.token_f1 <= 1 and scores.mean_nll > 0
    # The trained model is a different model: it must assign the references another likelihood.
    assert accuracy.trained.mean_nll != accuracy.base.mean_nll


def test_qlora_learns_on_a_4bit_base(runs: Path) -> None:
    pytest.importorskip("bitsandbytes")
    from peft import PeftModel

    from backends.train import run
    from backends.train.model import load_model

    result = run(_step(method="qlora", max_steps=10, learning_rate=1e-2, lora_rank=8), runs / "qlora")
    _assert_learnt(result)
    base = load_model(result.base_model_path, "qlora", "fp32")
    assert type(base.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    adapted = PeftModel.from_pretrained(base, str(runs / "qlora" / "model"))
    assert any("lora_A" in name for name, _ in adapted.named_parameters())


def _held_out_pairs(step: TrainStep) -> list[dict]:
    from backends.common.data import load_examples, split_examples

    return split_examples(load_examples(Path(step.data_path), for_preference=True), step.eval_fraction, step.seed)[1]


def test_dpo_on_top_of_the_sft_adapter(lora_run, runs: Path, tmp_path: Path) -> None:
    from backends.train import run

    _, lora_dir = lora_run
    # Preference pairs in the SFT tokenizer's words: the tiny tokenizer was trained on the SFT data.
    # The rule to learn generalises to held-out prompts: never answer with the instruction's own words.
    pairs = [{"prompt": f"Add one to the number.\n\n{i}", "chosen": str(i + 1), "rejected": "Add one to the"}
             for i in range(40)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    step = _step(method="dpo", data_path=str(data), init_adapter=str(lora_dir / "model"), max_steps=16,
                 learning_rate=2e-2)
    result = run(step, runs / "dpo")
    assert result.status == "succeeded"
    assert result.base_model_path == str((lora_dir / "base-model").resolve())
    assert result.fit.eval_loss_before == pytest.approx(0.6931, abs=1e-3)  # policy == reference: log 2
    assert result.fit.eval_loss_after < result.fit.eval_loss_before
    assert (runs / "dpo" / "model" / "adapter_config.json").is_file()
    # The verdict: the SFT adapter DPO started from against the trained policy, on the held-out pairs.
    from backends.train.preference import MATCH_NAME, preference_margins

    verdict = result.verdict
    assert verdict is not None and verdict.comparison == "before vs after DPO" and verdict.match_name == MATCH_NAME
    assert verdict.n_examples == result.n_eval_examples >= 6
    # The policy prefers the chosen answers by more than the adapter it started from did, on every resample.
    assert verdict.token_f1.mean_b > verdict.token_f1.mean_a and verdict.token_f1.low > 0
    assert verdict.outcome == "IMPROVED", verdict.headline()
    assert verdict.suite is not None and not verdict.suite.is_decisive  # the demo model has nothing to forget
    # The margins in the verdict are the model's own: recomputed from the saved adapter they agree.
    assert verdict.token_f1.mean_a == pytest.approx(
        sum(preference_margins(lora_dir / "model", _held_out_pairs(step))) / verdict.n_examples, rel=1e-4)


def test_resume_after_sigkill_finishes_the_run(runs: Path) -> None:
    from typer.testing import CliRunner

    from advisor.app.cli import _register, app

    plan = runs / "resume-plan.yaml"
    step = _step(method="lora", max_steps=100, learning_rate=1e-2, eval_fraction=0.1).model_dump()
    plan.write_text(yaml.safe_dump({"name": "resume", "steps": [step]}))
    out = runs / "resume"
    run_dir = out / "1-train-lora"  # the plan's first step, in the folder `advisor run` would give it
    kill_when_ready([sys.executable, "-m", "advisor", "train", "run", str(plan), "--out", str(out)],
                    lambda: bool(list((run_dir / "model").glob("checkpoint-*/trainer_state.json"))),
                    cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert not (run_dir / "result.json").exists()  # it really was interrupted

    _register()
    refused = CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(out)])
    assert refused.exit_code == 2 and "--resume" in refused.stderr
    resumed = CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    result = json.loads((run_dir / "result.json").read_text())
    assert result["fit"]["resumed_from_step"] >= 10
    assert result["fit"]["global_step"] == result["fit"]["max_steps"] == 100


def test_a_duplicate_line_is_dropped_and_the_run_trains(runs: Path, tmp_path: Path) -> None:
    # issue 10: one duplicate line used to refuse the whole file.
    from backends.train import run

    lines = (FIXTURES / "sft_instruction.jsonl").read_text().splitlines()
    data = tmp_path / "dup.jsonl"
    data.write_text("\n".join([*lines, lines[0]]) + "\n")
    result = run(_step(method="lora", max_steps=2, data_path=str(data)), runs / "dup")
    assert result.status == "succeeded"
    assert result.n_train_examples + result.n_eval_examples == len(lines)
    assert result.audit is not None and result.audit.n_exact_duplicates == 1
    written = json.loads((runs / "dup" / "result.json").read_text())
    assert written["audit"]["exact_duplicates"] == [{"line": len(lines) + 1, "first_line": 1}]
