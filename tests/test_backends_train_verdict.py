"""Slow: a training run on the tiny demonstration model carries a verdict (IMPROVED: it learnt the labels); the
base model against itself gets NO CLEAR CHANGE."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from advisor.core.models import TrainStep

FIXTURES = Path(__file__).parent / "fixtures" / "verdict"
pytestmark = [pytest.mark.slow, pytest.mark.extras("train")]


def _step() -> TrainStep:
    # Reviews labelled positive/negative (100 lines, balanced): a label the tiny model can learn in 30 steps, so
    # held-out answers go from nothing right to about half right. (On `train/sft_instruction.jsonl`, "add one to
    # the number", the held-out answers' loss rises with training: the tiny model memorises, and says so.)
    return TrainStep(base_model="tiny-demo", data_path=str(FIXTURES / "labels.jsonl"), seq_len=64, batch_size=8,
                     eval_fraction=0.2, grad_ckpt=False, method="full", max_steps=30, learning_rate=3e-3)


def test_training_run_carries_a_verdict_and_an_unchanged_model_gets_none(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from backends.common.data import load_examples, split_examples
    from backends.common.verdict import MIN_EXAMPLES, RULE
    from backends.train import run
    from backends.train.accuracy import DEMO_SUITE_PER_CATEGORY, assess
    from backends.train.report import report_step
    from backends.train.results import TrainResult

    step = _step()
    result = run(step, tmp_path / "lora")
    verdict = result.verdict
    assert verdict is not None and verdict.comparison == "base vs trained" and verdict.rule == RULE
    assert verdict.n_examples == result.task_accuracy.n_examples >= MIN_EXAMPLES
    # Trained to fit the task: more held-out answers right, and their loss falls for every resample.
    assert verdict.outcome == "IMPROVED", verdict.headline()
    assert verdict.exact_match.n_b_only > verdict.exact_match.n_a_only and verdict.nll.high < 0
    suite = verdict.suite
    assert suite is not None and not suite.is_decisive and "demonstration model" in suite.note
    assert suite.after.n_items == DEMO_SUITE_PER_CATEGORY * 5
    assert verdict.wall_seconds is not None and verdict.wall_seconds > 0

    report = report_step(step, result)
    assert report.compare[0].quantity == "verdict (base vs trained)"
    assert report.compare[0].measured.startswith("IMPROVED (n=")
    assert report.benefit[0][0] == "verdict" and ("verdict rule", RULE) in report.benefit
    assert report.data["verdict"]["outcome"] == "IMPROVED"
    written = TrainResult.model_validate_json((tmp_path / "lora" / "result.json").read_text())
    assert written.verdict == verdict

    # A deliberately unchanged model: the base compared with itself.
    examples = load_examples(Path(step.data_path), for_preference=False)
    _, held_out = split_examples(examples, step.eval_fraction, step.seed)
    base = Path(result.base_model_path)
    start = time.perf_counter()
    _, same = assess(str(base), base, held_out, step.seed, method="full", is_demo=True)
    assert same is not None and same.outcome == "NO CLEAR CHANGE"
    assert same.exact_match.n_a_only == same.exact_match.n_b_only == 0
    assert same.token_f1.low == same.token_f1.high == 0.0 and same.nll.mean_difference == 0.0
    assert same.suite.regressed == []
    assert time.perf_counter() - start < 120
