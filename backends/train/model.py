"""Find the base model, load it for a method (full / LoRA / QLoRA), measure eval loss, merge an adapter.

Every `from_pretrained` passes `trust_remote_code=False`: a model that needs code from its repository is refused
with an error instead of transformers asking `[y/N]` on the terminal (or running code nobody reviewed).
"""

from __future__ import annotations

import json
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.fileio import private_files
from backends.common.hub import load_tokenizer, unreachable
from backends.common.tiny import DEMO_MODELS, build_tiny_demo, is_demo_model
from backends.train.builders import _to_bnb_config, torch_dtype

__all__ = ["load_model", "load_tokenizer", "loss_batches", "mean_eval_loss", "merge_adapter", "read_hf_config", "resolve_base_model"]

DEMO_DIR = "base-model"
# Merged and adapter models must agree on validation loss within this relative difference. fp32: only the
# summation order changes (errors ~1e-6). 16-bit: merged weights are rounded once more to bf16/fp16, whose
# 8-/11-bit mantissa gives relative errors up to 2^-8 ≈ 0.4% per weight; 2% leaves room for that to add up.
MERGE_TOLERANCE = {"fp32": 1e-3, "bf16": 2e-2, "fp16": 2e-2}


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.endswith("/")


def resolve_base_model(base_model: str, run_dir: Path, train_records: list[dict] | None, *, seed: int = 0,
                       tokenizer_from: str | None = None) -> str:
    """Where the base model's files are: a local folder, or a Hub id already in the local cache.

    A local path is absolute already (`advisor.core.paths` made it so when the plan was loaded).

    `tiny-demo` is built into `run_dir/base-model` from `train_records` (or reused when a build finished there;
    `build_tiny_demo` writes its marker last, and a folder without it is a killed build, built again).
    `tokenizer_from` (a logit-distillation teacher's folder) gives it that model's tokenizer instead.

    Raises:
        AdvisorError: a local path that does not exist, or a Hub id that cannot be reached.
    """
    if base_model in DEMO_MODELS:  # `tiny-demo`, or its smaller sibling `tiny-demo-small`
        demo = run_dir / DEMO_DIR
        if not (is_demo_model(demo) and (demo / "config.json").is_file()):
            if train_records is None:
                raise AdvisorError(f"`{base_model}` is built at run time from the data; nothing to inspect yet")
            if demo.is_dir():  # a build killed part-way (this run folder's own `base-model`, see run.RUN_OUTPUTS)
                import shutil

                shutil.rmtree(demo)
            build_tiny_demo(train_records, demo, seed=seed, name=base_model, tokenizer_from=tokenizer_from)
        return str(demo.resolve())
    local = Path(base_model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise AdvisorError(f"base model folder `{local}` has no `config.json`", "point `base_model` at a "
                               "folder written by `save_pretrained`")
        return str(local.resolve())
    if not _looks_like_hub_id(base_model):
        raise AdvisorError(f"base model path `{local}` does not exist",
                           "set `base_model` to a local folder, a Hugging Face id, or `tiny-demo`")
    return base_model


def read_hf_config(model: str) -> dict:
    """The model's `config.json` as a dict (local folder, or the Hub/cache).

    Raises:
        AdvisorError: it cannot be found (offline and not cached, or no such model).
    """
    local = Path(model)
    if (local / "config.json").is_file():
        return json.loads((local / "config.json").read_text())
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=False).to_dict()
    except (OSError, ValueError) as exc:
        raise unreachable(model, exc) from None


def load_model(model: str, train_method: str, precision: str, *, dequantize: bool = False):
    """Load the base for `train_method`.

    full: fp32 weights (16-bit precisions autocast on top, keeping fp32 master weights). lora, ia3 and the soft
    prompts: the frozen base in `precision`. qlora: NF4 4-bit base with `precision` compute, other weights in `precision` (or, with
    `dequantize`, turned back into `precision` weights carrying the NF4 rounding, for merging).
    """
    from transformers import AutoModelForCausalLM

    if train_method == "full":
        return AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype("fp32"), trust_remote_code=False)
    if train_method != "qlora":  # LoRA, IA3, soft prompts: the frozen base in `precision`
        return AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype(precision), trust_remote_code=False)
    quantized = AutoModelForCausalLM.from_pretrained(
        model, quantization_config=_to_bnb_config(precision), dtype=torch_dtype(precision), trust_remote_code=False
    )
    if dequantize:
        return quantized.dequantize(dtype=torch_dtype(precision))
    # No peft.prepare_model_for_kbit_training: it upcasts every unquantized weight (embeddings, LM head,
    # norms) to fp32, which for Llama-3-8B adds ~2 GiB and fp32 logits; TRL's SFTTrainer does not call it,
    # keeps compute in `precision` as the QLoRA paper does, and enables input gradients for checkpointing.
    # advisor.core.estimate.memory models exactly this set-up.
    return quantized


def mean_eval_loss(model, batches, precision: str) -> float:
    """Token-weighted mean loss of `model` over `batches` (dicts with input_ids, attention_mask, labels)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32"):
        for batch in batches:
            inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
            n_tokens = int((inputs["labels"][:, 1:] != -100).sum())
            total_loss += float(model(**inputs).loss) * n_tokens
            total_tokens += n_tokens
    return total_loss / max(total_tokens, 1)


def loss_batches(records: list[dict], tokenizer, seq_len: int) -> list[dict]:
    """One-example batches with labels on the answer tokens (DPO pairs: the chosen answer), cut to `seq_len`."""
    import torch

    from backends.train.tokens import tokenize_messages

    batches = []
    for record in records:
        messages = record.get("messages") or [{"role": "user", "content": record["prompt"]},
                                              {"role": "assistant", "content": record["chosen"]}]
        tokens = tokenize_messages(messages, tokenizer)
        ids = torch.tensor([tokens["input_ids"][:seq_len]])
        mask = torch.tensor([tokens["completion_mask"][:seq_len]])
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                        "labels": ids.masked_fill(mask == 0, -100)})
    return batches


def merge_adapter(base: str, adapter_dir: Path, merged_dir: Path, train_method: str, precision: str, batches) -> dict:
    """Merge the saved adapter into its base, save it, and check both give the same validation loss.

    Returns:
        `adapter_eval_loss`, `merged_eval_loss`, `relative_difference`, `tolerance`, `is_match`.
    """
    from peft import PeftModel

    batches = list(batches)
    # The adapter as trained (on the 4-bit base for QLoRA), loaded back from disk.
    trained = PeftModel.from_pretrained(load_model(base, train_method, precision), str(adapter_dir))
    adapter_loss = mean_eval_loss(trained, batches, precision)
    if train_method == "qlora":
        # Merge into the dequantized base: 16-bit weights that carry the NF4 rounding the adapter was trained on.
        del trained
        dequantized = load_model(base, train_method, precision, dequantize=True)
        trained = PeftModel.from_pretrained(dequantized, str(adapter_dir))
    merged = trained.merge_and_unload()
    merged_loss = mean_eval_loss(merged, batches, precision)
    with private_files():
        merged.save_pretrained(merged_dir)
    difference = abs(merged_loss - adapter_loss) / max(abs(adapter_loss), 1e-12)
    tolerance = MERGE_TOLERANCE[precision]
    return {"adapter_eval_loss": adapter_loss, "merged_eval_loss": merged_loss, "relative_difference": difference,
            "tolerance": tolerance, "is_match": difference <= tolerance}
