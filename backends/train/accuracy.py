"""Task accuracy before and after training: greedy answers to held-out examples, exact match and token F1.

The base model and the trained one answer the same held-out questions with the same prompt (the data's own
system message, no shots); answers are compared with the references as the prompting backend does (SQuAD
exact match and word-overlap F1 after normalisation). Meaningful where answers are short and checkable
(labels, fields, JSON); for free prose the F1 is the better read. torch and transformers load inside.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from advisor.core.models import Model
from backends.common.evaluation import PromptScores

__all__ = ["TaskAccuracy", "task_accuracy"]

# Generation is far slower than a loss pass; 20 held-out examples bound the cost (a few seconds on a tiny
# model) and still move exact match in steps of 5%.
MAX_EXAMPLES = 20


class TaskAccuracy(Model):
    """Greedy answers of the base and the trained model on the same held-out examples."""

    n_examples: int = Field(description="Held-out examples answered")
    base: PromptScores = Field(description="The base model, before training")
    trained: PromptScores = Field(description="The trained model (base + adapter, or the fully trained weights)")
    note: str = Field(description="How answers were produced and compared")


def task_accuracy(base_model: str, trained_dir: Path, held_out: list[dict], seed: int = 0) -> TaskAccuracy | None:
    """Score base and trained model on up to `MAX_EXAMPLES` held-out chat records; None when there are none."""
    from backends.common.chat import shared_system
    from backends.common.evaluation import NORMALISATION, evaluate_prompts

    records = [r for r in held_out if "messages" in r][:MAX_EXAMPLES]
    if not records:
        return None
    system = shared_system(records)
    before, _ = evaluate_prompts(base_model, system, [], records, seed)
    after, _ = evaluate_prompts(trained_dir, system, [], records, seed)
    return TaskAccuracy(
        n_examples=len(records), base=before.zero_shot, trained=after.zero_shot,
        note=f"greedy decoding, up to {before.max_new_tokens} new tokens; exact match and token F1 after "
             f"normalisation ({NORMALISATION})",
    )
