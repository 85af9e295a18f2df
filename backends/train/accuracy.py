"""Task accuracy before and after training: greedy answers to held-out examples, exact match and token F1.

The base model and the trained one answer the same held-out questions with the same prompt (the data's own
system message, no shots); answers are compared with the references as the prompting backend does (SQuAD
exact match and word-overlap F1 after normalisation). Meaningful where answers are short and checkable
(labels, fields, JSON); for free prose the F1 is the better read. torch and transformers load inside.

`assess` also draws the verdict (`backends.common.verdict`): paired tests on those same answers, and the
shipped regression suite on both models.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from advisor.core.models import Model
from backends.common.evaluation import PromptScores
from backends.common.verdict import Verdict

__all__ = ["TaskAccuracy", "assess", "suite_before_after", "task_accuracy"]

# Generation is far slower than a loss pass; 20 held-out examples bound the cost (a few seconds on a tiny
# model) and still move exact match in steps of 5%.
MAX_EXAMPLES = 20
# The demonstration model starts from random weights: it has no general ability to lose, so the suite runs on a
# few prompts per category (to show the pipeline, and to keep the demo's extra time small) and does not decide.
DEMO_SUITE_PER_CATEGORY = 2
DEMO_SUITE_MAX_NEW_TOKENS = 24
DEMO_SUITE_NOTE = (f"demonstration model (random initial weights, nothing to forget): {DEMO_SUITE_PER_CATEGORY} "
                   f"prompts per category, {DEMO_SUITE_MAX_NEW_TOKENS} new tokens each; shown, not counted")


class TaskAccuracy(Model):
    """Greedy answers of the base and the trained model on the same held-out examples."""

    n_examples: int = Field(description="Held-out examples answered")
    base: PromptScores = Field(description="The base model, before training")
    trained: PromptScores = Field(description="The trained model (base + adapter, or the fully trained weights)")
    note: str = Field(description="How answers were produced and compared")


def task_accuracy(base_model: str, trained_dir: Path, held_out: list[dict], seed: int = 0) -> TaskAccuracy | None:
    """Score base and trained model on up to `MAX_EXAMPLES` held-out chat records; None when there are none."""
    return assess(base_model, trained_dir, held_out, seed, with_verdict=False)[0]


def suite_before_after(before: str | Path, after: str | Path, *, is_demo: bool,
                       labels: tuple[str, str] = ("base", "trained")):
    """The regression suite on both models, compared (capped and not decisive on the demonstration model)."""
    from backends.common.suite import MAX_NEW_TOKENS, compare_suites, run_suite

    per_category, max_new_tokens = (DEMO_SUITE_PER_CATEGORY, DEMO_SUITE_MAX_NEW_TOKENS) if is_demo else (None, MAX_NEW_TOKENS)
    return compare_suites(
        run_suite(before, label=labels[0], per_category=per_category, max_new_tokens=max_new_tokens),
        run_suite(after, label=labels[1], per_category=per_category, max_new_tokens=max_new_tokens),
        is_decisive=not is_demo, note=DEMO_SUITE_NOTE if is_demo else "",
    )  # fmt: skip


def assess(base_model: str, trained_dir: Path, held_out: list[dict], seed: int = 0, *, method: str | None = None,
           is_demo: bool = False, with_verdict: bool = True) -> tuple[TaskAccuracy | None, Verdict | None]:
    """Task accuracy of base and trained model and, with `with_verdict`, the verdict on the training.

    Args:
        base_model: The base model's folder.
        trained_dir: The trained model (or adapter) folder.
        held_out: Held-out records; chat records only, the first `MAX_EXAMPLES` of them.
        seed: torch seed of the evaluation and the bootstrap's seed.
        method: Training method, to tailor the verdict's remedies.
        is_demo: The base is the demonstration model (the suite is capped and does not decide).
        with_verdict: Also run the regression suite on both models and draw the verdict.

    Returns:
        (accuracy, verdict); (None, None) when there are no chat records. The verdict's `wall_seconds` is the
        time it adds beyond the task accuracy (the suite on both models and the tests).
    """
    import time

    from backends.common.chat import shared_system
    from backends.common.evaluation import NORMALISATION, evaluate_prompts
    from backends.common.verdict import decide

    records = [r for r in held_out if "messages" in r][:MAX_EXAMPLES]
    if not records:
        return None, None
    system = shared_system(records)
    before, rows_a = evaluate_prompts(base_model, system, [], records, seed, label="the base model")
    after, rows_b = evaluate_prompts(trained_dir, system, [], records, seed, label="the trained model")
    accuracy = TaskAccuracy(
        n_examples=len(records), base=before.zero_shot, trained=after.zero_shot,
        note=f"greedy decoding, up to {before.max_new_tokens} new tokens; exact match and token F1 after "
             f"normalisation ({NORMALISATION})",
    )
    if not with_verdict:
        return accuracy, None
    start = time.perf_counter()
    suite = suite_before_after(base_model, trained_dir, is_demo=is_demo)
    verdict = decide(
        "base vs trained", [r["zero_shot_exact_match"] == 1.0 for r in rows_a],
        [r["zero_shot_exact_match"] == 1.0 for r in rows_b], [r["zero_shot_f1"] for r in rows_a],
        [r["zero_shot_f1"] for r in rows_b], [r["zero_shot_nll"] for r in rows_a], [r["zero_shot_nll"] for r in rows_b],
        suite, method=method, seed=seed,
    )  # fmt: skip
    return accuracy, verdict.model_copy(update={"wall_seconds": time.perf_counter() - start})
