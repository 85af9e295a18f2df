"""Slow: training that destroys formatting is caught by the regression suite (REGRESSED, with remedies), and
replaying the shipped general set keeps more of what the model could do.

The tiny demonstration model starts from random weights and has nothing to forget, so the test first makes a
base that has the suite's abilities: it is trained on the suite's own prompts with answers that pass its
checks (`tests/fixtures/verdict/suite_following.jsonl`; contaminated on purpose — the test needs a base with
something to lose). That base is then fine-tuned on requests answered in loose, unformatted prose
(`formatting_destroyer.jsonl`): it learns the task's style, and loses the formats.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.core.models import TrainStep

FIXTURES = Path(__file__).parent / "fixtures" / "verdict"
pytestmark = [pytest.mark.slow, pytest.mark.extras("train")]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    from backends.common.suite import run_suite
    from backends.train import run

    out = tmp_path_factory.mktemp("forgetting")
    step = TrainStep(base_model="tiny-demo", data_path=str(FIXTURES / "suite_following.jsonl"), method="full",
                     seq_len=96, batch_size=8, eval_fraction=0.0, grad_ckpt=False, max_steps=200, learning_rate=3e-3)
    run(step, out / "base")
    model = out / "base" / "model"
    scores = {c.category: c.pass_rate for c in run_suite(model, label="base").categories}
    # The base has abilities to lose: every category passes at least a quarter of its prompts.
    assert min(scores.values()) >= 0.25, scores
    return model


def _tune(base: Path, out: Path, **kwargs):
    from backends.train import run

    step = TrainStep(base_model=str(base), data_path=str(FIXTURES / "formatting_destroyer.jsonl"), method="full",
                     seq_len=96, batch_size=8, eval_fraction=0.2, grad_ckpt=False, max_steps=40,
                     learning_rate=2e-3, **kwargs)
    return step, run(step, out)


@pytest.fixture(scope="module")
def plain(base: Path, tmp_path_factory: pytest.TempPathFactory):
    """(step, result) of the formatting-destroying tuning without replay (two tests read it)."""
    return _tune(base, tmp_path_factory.mktemp("plain"))


def test_formatting_destroyed_is_regressed_with_remedies(plain) -> None:
    from backends.train.report import report_step

    step, result = plain
    verdict = result.verdict
    assert verdict is not None and verdict.suite is not None and verdict.suite.is_decisive
    assert verdict.outcome == "REGRESSED", verdict.headline()
    # The task itself got better (the model learnt the prose style), and the suite still says REGRESSED.
    assert verdict.token_f1.low > 0
    assert {"json_keys", "list_n", "one_word"} <= set(verdict.suite.regressed)
    actions = " ".join(r.action for r in verdict.remedies)
    assert "LoRA instead of full" in actions and "replay_fraction" in actions and "learning rate" in actions
    report = report_step(step, result)
    assert report.headline.startswith("REGRESSED") and "fell beyond margin" in report.headline


def test_replay_of_the_general_set_keeps_more_of_the_suite(base: Path, plain, tmp_path: Path) -> None:
    from backends.common.replay import GENERAL_SET

    _, plain = plain
    _, replayed = _tune(base, tmp_path / "replayed", replay_fraction=1.0)
    assert replayed.replay is not None and replayed.replay.source == GENERAL_SET
    assert replayed.n_train_examples == plain.n_train_examples + replayed.replay.n_added
    assert replayed.n_eval_examples == plain.n_eval_examples  # the held-out split is the task's own

    def passed(result) -> int:
        return sum(c.n_passed for c in result.verdict.suite.after.categories)

    assert passed(replayed) > passed(plain), (replayed.verdict.suite.summary(), plain.verdict.suite.summary())


def test_continued_pretraining_on_raw_text_that_erases_the_formats_is_regressed(base: Path, tmp_path: Path) -> None:
    """Held-out perplexity on the corpus falls, and the verdict is still REGRESSED: the suite caught the loss."""
    from backends.train import run
    from backends.train.report import report_step

    corpus = Path(__file__).parents[1] / "examples" / "domain-pretraining" / "corpus"
    step = TrainStep(base_model=str(base), data_path=str(corpus), objective="causal_lm", method="full", seq_len=64,
                     batch_size=8, eval_fraction=0.15, grad_ckpt=False, max_steps=40, learning_rate=2e-3)
    result = run(step, tmp_path / "cpt")
    verdict = result.verdict
    assert verdict.nll.high < 0  # the corpus was learnt
    assert verdict.suite is not None and verdict.suite.is_decisive and verdict.suite.regressed
    assert verdict.outcome == "REGRESSED", verdict.headline()
    actions = " ".join(r.action for r in verdict.remedies)
    assert "general-domain documents" in actions and "LoRA instead" in actions and "instruction-tuning" in actions
    assert "replay_fraction" not in actions  # refused on causal_lm steps: not offered
    assert report_step(step, result).headline.startswith("REGRESSED")
