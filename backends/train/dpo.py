"""Direct preference optimisation with TRL's DPOTrainer, usually on top of an SFT adapter.

The reference model is the policy before training: with LoRA, the base with the adapter off (or, starting
from an SFT adapter, a frozen copy of it); with full fine-tuning, a frozen copy of the whole model.
"""

from __future__ import annotations

import json
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.models import TrainStep
from backends.common.tiny import TINY_DEMO, is_demo_model
from backends.train.builders import _to_dpo_config, _to_lora_config
from backends.train.model import load_model
from backends.train.tokens import PLAIN_ROLE_HEADERS

__all__ = ["adapter_base", "build_dpo_trainer", "preference_dataset"]


def adapter_base(adapter_dir: Path) -> str:
    """The base model an adapter was trained on (`base_model_name_or_path` in its `adapter_config.json`).

    Raises:
        AdvisorError: `adapter_dir` is not a PEFT adapter.
    """
    config = adapter_dir / "adapter_config.json"
    if not config.is_file():
        raise AdvisorError(f"`init_adapter` `{adapter_dir}` is not a PEFT adapter (no `adapter_config.json`)",
                           "point it at the `model` folder of an SFT run")
    return json.loads(config.read_text())["base_model_name_or_path"]


def resolve_dpo_base(step: TrainStep, adapter_dir: Path | None) -> str | None:
    """With `tiny-demo` and an SFT adapter, DPO must continue on that adapter's own demo base."""
    if step.base_model != TINY_DEMO or adapter_dir is None:
        return None
    base = adapter_base(adapter_dir)
    if not is_demo_model(base):
        raise AdvisorError(f"`init_adapter` was not trained on `tiny-demo` (its base is `{base}`)",
                           "set `base_model` to that base")
    return base


def preference_dataset(records: list[dict], tokenizer):
    """A `datasets.Dataset` of prompt/chosen/rejected, conversational when the tokenizer has a chat template."""
    from datasets import Dataset

    if getattr(tokenizer, "chat_template", None):
        rows = [{"prompt": [{"role": "user", "content": r["prompt"]}],
                 "chosen": [{"role": "assistant", "content": r["chosen"]}],
                 "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in records]
    else:
        eos = tokenizer.eos_token or ""
        rows = [{"prompt": f"{PLAIN_ROLE_HEADERS['user']}{r['prompt']}\n\n{PLAIN_ROLE_HEADERS['assistant']}",
                 "chosen": r["chosen"] + eos, "rejected": r["rejected"] + eos} for r in records]
    return Dataset.from_list(rows)


def build_dpo_trainer(step: TrainStep, base: str, tokenizer, train_records: list[dict], eval_records: list[dict],
                      output_dir: Path, precision: str, *, use_cpu: bool, adapter_dir: Path | None):
    """Load the policy (from `adapter_dir` when given) and wrap it in a `DPOTrainer`."""
    from trl import DPOTrainer

    model = load_model(base, step.dpo_policy, precision)
    peft_config = None
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    elif step.dpo_policy in ("lora", "qlora"):
        peft_config = _to_lora_config(step)
    callbacks = []
    if step.early_stopping_patience is not None:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=step.early_stopping_patience))
    return DPOTrainer(
        model=model,
        args=_to_dpo_config(step, output_dir, precision, use_cpu=use_cpu),
        train_dataset=preference_dataset(train_records, tokenizer),
        eval_dataset=preference_dataset(eval_records, tokenizer) if eval_records else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
