"""Supervised fine-tuning (full, LoRA, QLoRA, soft prompts, IA3) with TRL's SFTTrainer, on our own tokenization.

We tokenize each conversation turn by turn (`backends.train.tokens`) so that the loss covers assistant tokens
only and `advisor train check` measures exactly the lengths that train; TRL then truncates or packs.
"""

from __future__ import annotations

from pathlib import Path

from advisor.core.models import TrainStep
from backends.train.builders import _to_peft_config, _to_sft_config
from backends.train.model import load_model
from backends.train.tokens import tokenize_messages

__all__ = ["build_sft_trainer", "tokenized_dataset"]


def tokenized_dataset(records: list[dict], tokenizer):
    """A `datasets.Dataset` of `input_ids` and `completion_mask` (1 on assistant tokens)."""
    from datasets import Dataset

    return Dataset.from_list([tokenize_messages(r["messages"], tokenizer) for r in records])


def _callbacks(step: TrainStep) -> list:
    if step.early_stopping_patience is None:
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=step.early_stopping_patience)]


def build_sft_trainer(step: TrainStep, base: str, tokenizer, train_records: list[dict], eval_records: list[dict],
                      output_dir: Path, precision: str, *, use_cpu: bool, trainer_class=None, **extra):
    """Load the model for `step.method` and wrap it in an `SFTTrainer` (all but full: PEFT adapters added).

    `trainer_class` (an SFTTrainer subclass) and `extra` (its own arguments) replace the plain trainer."""
    from trl import SFTTrainer

    model = load_model(base, step.method, precision)
    return (trainer_class or SFTTrainer)(
        **extra,
        model=model,
        args=_to_sft_config(step, output_dir, precision, use_cpu=use_cpu),
        train_dataset=tokenized_dataset(train_records, tokenizer),
        eval_dataset=tokenized_dataset(eval_records, tokenizer) if eval_records else None,
        processing_class=tokenizer,
        peft_config=_to_peft_config(step),
        callbacks=_callbacks(step),
    )
