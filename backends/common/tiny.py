"""The offline demonstration model `tiny-demo`: a byte-level BPE tokenizer trained on the run's own data and a
two-layer Llama-style model built from a config with random weights. No downloads.

It exists so that every method runs end to end on a laptop CPU in seconds. It learns the toy data it is given
and nothing else; every result made with it says so.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEMO_MODELS", "DEMO_NOTE", "TINY_DEMO", "TINY_DEMO_SMALL", "build_tiny_demo", "build_tokenizer",
           "demo_note_of", "is_demo_model", "tiny_config"]

TINY_DEMO = "tiny-demo"
# A smaller sibling (one layer, 32 wide): the student when the demo distils `tiny-demo` into something smaller.
TINY_DEMO_SMALL = "tiny-demo-small"
DEMO_NOTE = (
    "demonstration model: a 2-layer, 64-wide Llama-style model with random initial weights and a tokenizer "
    "trained on this run's data; its numbers show the pipeline works, not what a real model would reach"
)
DEMO_NOTE_SMALL = DEMO_NOTE.replace("a 2-layer, 64-wide", "a 1-layer, 32-wide")
MARKER_FILE = "ADVISOR_DEMO_MODEL.txt"

# Sizes: small enough that a CPU step takes milliseconds, large enough that LoRA has something to adapt.
HIDDEN_SIZE = 64
INTERMEDIATE_SIZE = 128
N_LAYERS = 2
N_HEADS = 4
N_KV_HEADS = 2  # grouped-query attention, like Llama 3
# name → (hidden, intermediate, layers, attention heads, KV heads)
DEMO_MODELS = {TINY_DEMO: (HIDDEN_SIZE, INTERMEDIATE_SIZE, N_LAYERS, N_HEADS, N_KV_HEADS),
               TINY_DEMO_SMALL: (32, 64, 1, 2, 1)}
MAX_POSITIONS = 2048
# 256 byte tokens plus merges learnt from the data; small data stops earlier on its own.
BPE_VOCAB_SIZE = 1024

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
# Each turn: role token, newline, content; assistant turns end with EOS so the model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _texts(records: list[dict]) -> list[str]:
    texts = []
    for record in records:
        if "messages" in record:
            texts.extend(m["content"] for m in record["messages"])
        else:
            texts.extend(record[k] for k in ("prompt", "chosen", "rejected"))
    return texts


def build_tokenizer(records: list[dict]):
    """Train a byte-level BPE tokenizer on the records and wrap it with special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_texts(records), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=ROLE_TOKENS,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_config(tokenizer, name: str = TINY_DEMO, vocab_size: int | None = None):
    """The `LlamaConfig` of the demonstration model `name` (`tiny-demo` or `tiny-demo-small`) for `tokenizer`
    (`vocab_size`: logits that wide instead of `len(tokenizer)`, to match a teacher's)."""
    from transformers import LlamaConfig

    hidden, intermediate, layers, heads, kv_heads = DEMO_MODELS[name]
    return LlamaConfig(
        vocab_size=vocab_size or len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def build_tiny_demo(records: list[dict], out_dir: str | Path, seed: int = 0, name: str = TINY_DEMO,
                    tokenizer_from: str | None = None) -> Path:
    """Build and save the tokenizer and a randomly initialised tiny Llama to `out_dir`, owner-only.

    Written into a hidden sibling folder, marker last, then renamed to `out_dir`: a build killed part-way leaves
    no `out_dir` (only the hidden folder, removed by the next build), so a half-written model is never loaded.

    Args:
        records: Normalised training records (the tokenizer learns their text).
        out_dir: Folder to write; must not exist yet, or be empty.
        seed: Seed for the random weights.
        name: `tiny-demo` or `tiny-demo-small` (`DEMO_MODELS`).
        tokenizer_from: A model folder whose tokenizer (and logits width) the demo takes instead of training one
            (a student distilled logit to logit from that model); None: trained on `records`.

    Returns:
        `out_dir`, loadable with `from_pretrained`.
    """
    import os
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from advisor.core.fileio import private_files

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.partial-*"):  # killed builds of ours
        shutil.rmtree(stale, ignore_errors=True)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if tokenizer_from is None:
        tokenizer, vocab_size = build_tokenizer(records), None
    else:
        import json

        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, trust_remote_code=False)
        config_file = Path(tokenizer_from) / "config.json"
        vocab_size = json.loads(config_file.read_text())["vocab_size"] if config_file.is_file() else None
    config = tiny_config(tokenizer, name, vocab_size)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with private_files():
        try:
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
            (partial / MARKER_FILE).write_text((DEMO_NOTE_SMALL if name == TINY_DEMO_SMALL else DEMO_NOTE) + "\n")
            os.rename(partial, out_dir)  # onto nothing or an empty folder; atomic
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return out_dir


def is_demo_model(model_dir: str | Path) -> bool:
    """Whether `model_dir` holds the demonstration model (it carries a marker file)."""
    return (Path(model_dir) / MARKER_FILE).is_file()


def demo_note_of(model_dir: str | Path) -> str:
    """What the demonstration model in `model_dir` is (its marker file's note)."""
    return (Path(model_dir) / MARKER_FILE).read_text(encoding="utf-8").strip()
