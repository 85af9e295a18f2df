"""Continued pretraining (`objective: causal_lm`): a folder of raw documents, read by the RAG loaders, tokenized,
concatenated with EOS between documents and packed into `seq_len` blocks; every token of a block is a label.

`eval_fraction` of the blocks (chosen with the step's seed) is held out; the verdict compares the per-block loss
of the base and the trained model on them (paired bootstrap), and the result gives both perplexities. The shipped
regression suite runs on both models too: continued pretraining on raw text is where instruction following and
general ability are lost, and a held-out perplexity that fell says nothing about that.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.models import TrainStep

__all__ = ["CORPUS_FORMAT", "PackedCorpus", "block_losses", "corpus_records", "load_corpus", "pack_corpus",
           "pretrain_here", "split_blocks"]

CORPUS_FORMAT = "raw text (packed)"


@dataclass(frozen=True)
class PackedCorpus:
    """A corpus as blocks: `n_tokens` = documents' tokens + one EOS each; the tail shorter than a block is dropped."""

    blocks: list[list[int]]
    n_documents: int
    n_tokens: int
    n_dropped_tokens: int


def load_corpus(folder: str | Path) -> list[str]:
    """The text of every readable document under `folder`, in file order.

    Raises:
        AdvisorError: the folder is missing, or nothing in it holds text.
    """
    from backends.common.loaders import UnreadableFileError, extract_text, list_files

    root = Path(folder)
    if not root.is_dir():
        raise AdvisorError(f"data_path `{root}` is not a folder of documents",
                           "with `objective: causal_lm`, point `data_path` at the corpus folder")
    files, _ = list_files(root)
    texts = []
    for path in files:
        try:
            texts.append(extract_text(path, str(path.relative_to(root))).text)
        except UnreadableFileError:
            continue  # the RAG loaders skip it the same way
    if not texts:
        raise AdvisorError(f"no readable text in `{root}`", "add .txt, .md, .html, .pdf or .csv documents")
    return texts


def corpus_records(texts: list[str]) -> list[dict]:
    """The documents as records `tiny-demo` trains its tokenizer on."""
    return [{"messages": [{"role": "assistant", "content": text}]} for text in texts]


def pack_corpus(texts: list[str], tokenizer, seq_len: int) -> PackedCorpus:
    """Tokenize each document, append EOS, concatenate, and cut into consecutive `seq_len` blocks."""
    if tokenizer.eos_token_id is None:
        raise AdvisorError("the tokenizer has no EOS token to separate documents with")
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.append(tokenizer.eos_token_id)
    n_blocks = len(stream) // seq_len
    blocks = [stream[i * seq_len:(i + 1) * seq_len] for i in range(n_blocks)]
    return PackedCorpus(blocks=blocks, n_documents=len(texts), n_tokens=len(stream),
                        n_dropped_tokens=len(stream) - n_blocks * seq_len)


def split_blocks(blocks: list[list[int]], eval_fraction: float, seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """(train, held-out): `round(eval_fraction × n)` blocks held out (at least one when the fraction is > 0)."""
    order = list(range(len(blocks)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(eval_fraction * len(blocks))) if eval_fraction > 0 else 0
    if n_eval >= len(blocks):
        raise AdvisorError(f"the corpus packs into {len(blocks)} block(s) of seq_len tokens: too few to hold "
                           f"{eval_fraction:g} of them out and train on the rest",
                           "add documents, or lower `seq_len` or `eval_fraction`")
    held = set(order[:n_eval])
    return [b for i, b in enumerate(blocks) if i not in held], [b for i, b in enumerate(blocks) if i in held]


def block_losses(model, blocks: list[list[int]], precision: str) -> list[float]:
    """Mean next-token loss of `model` on each block (nats per predicted token)."""
    import torch

    from backends.train.model import torch_dtype

    model.eval()
    device = next(model.parameters()).device
    losses = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32"):
        for block in blocks:
            ids = torch.tensor([block], device=device)
            losses.append(float(model(input_ids=ids, labels=ids).loss))
    return losses


def _base_losses(base: str, method: str, precision: str, blocks: list[list[int]], device_kind: str) -> list[float]:
    """`block_losses` of the base before training: frozen, in `precision` (QLoRA: 4-bit), on the training device."""
    import gc

    import torch

    from backends.train.model import load_model

    model = load_model(base, "qlora" if method == "qlora" else "lora", precision)
    if device_kind == "cuda" and method != "qlora":  # bitsandbytes placed the 4-bit model already
        model.to("cuda")
    losses = block_losses(model, blocks, precision)
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return losses


def _dataset(blocks: list[list[int]]):
    from datasets import Dataset

    return Dataset.from_list([{"input_ids": b, "completion_mask": [1] * len(b)} for b in blocks])


def _prepare(step: TrainStep, run_dir: Path, *, build: bool):
    """(texts, base, tokenizer, packed, train, held-out); `build`: `tiny-demo` is built from the documents."""
    from backends.train.model import load_tokenizer, resolve_base_model

    texts = load_corpus(step.data_path)
    base = resolve_base_model(step.base_model, run_dir, corpus_records(texts) if build else None, seed=step.seed)
    tokenizer = load_tokenizer(base)
    packed = pack_corpus(texts, tokenizer, step.seq_len)
    train, held = split_blocks(packed.blocks, step.eval_fraction, step.seed)
    return texts, base, tokenizer, packed, train, held


# Against forgetting in continued pretraining: replay of general text (Ibrahim et al. 2024, "Simple and Scalable
# Strategies to Continually Pre-train Large Language Models", arXiv:2403.08763: a few percent of replay, learning
# rate re-warmed and re-decayed), and LoRA, which forgets less than full training (Biderman et al. 2024, "LoRA
# Learns Less and Forgets Less", arXiv:2405.09673); instruction tuning afterwards restores the chat behaviour.
_IBRAHIM = "Ibrahim et al. 2024, arXiv:2403.08763"


def _remedies(method: str):
    from backends.common.verdict import Remedy

    remedies = [
        Remedy(action="add general-domain documents to the corpus folder (a few percent of the tokens replay what "
                      "the base knew)", source=_IBRAHIM),
        Remedy(action="lower the learning rate, with warm-up and decay", source=_IBRAHIM),
        Remedy(action="follow with an instruction-tuning step (`base_model: continued`), which the plan's SFT step "
                      "does", source="the seeds: continued pretraining, then SFT"),
    ]
    if method == "full":
        remedies.insert(0, Remedy(action="train LoRA instead (`method: lora`): it forgets less than full training",
                                  source="Biderman et al. 2024, arXiv:2405.09673"))
    return remedies


def _verdict(before: list[float], after: list[float], suite=None, method: str = "full"):
    """The held-out block losses decide; a decisive regression-suite fall makes it REGRESSED (with remedies)."""
    from backends.common.verdict import ALPHA, CONFIDENCE, MIN_EXAMPLES, Verdict, paired_bootstrap

    nll = paired_bootstrap("nll", before, after)
    ppl = f"perplexity {math.exp(nll.mean_a):.2f} → {math.exp(nll.mean_b):.2f}"
    if len(before) < MIN_EXAMPLES:
        outcome, reason = "NO CLEAR CHANGE", f"only {len(before)} held-out blocks (fewer than {MIN_EXAMPLES}); {ppl}"
    elif nll.high < 0:
        outcome, reason = "IMPROVED", f"held-out loss fell: its {1 - ALPHA:.0%} interval lies below 0; {ppl}"
    elif nll.low > 0:
        outcome, reason = "REGRESSED", f"held-out loss rose: its {1 - ALPHA:.0%} interval lies above 0; {ppl}"
    else:
        outcome, reason = "NO CLEAR CHANGE", f"the held-out loss interval includes 0; {ppl}"
    reasons, remedies = [reason], []
    if suite is not None and suite.regressed:
        fell = ", ".join(suite.regressed)
        if suite.is_decisive:
            outcome = "REGRESSED"
            reasons.append(f"regression suite: {fell} fell by more than the margin")
            remedies = _remedies(method)
        else:
            reasons.append(f"regression suite: {fell} fell, not counted ({suite.note})")
    return Verdict(outcome=outcome, comparison="base vs continued (held-out corpus blocks)", n_examples=len(before),
                   exact_match=None, token_f1=None, nll=nll, suite=suite, reasons=reasons, remedies=remedies,
                   rule="The per-block loss on held-out corpus blocks, paired bootstrap of mean(after − before): "
                        f"IMPROVED when the {CONFIDENCE:.0%} interval lies below 0, REGRESSED when above, else NO "
                        "CLEAR CHANGE; "
                        "REGRESSED also when a regression-suite category falls beyond its margin")


def pretrain_here(step: TrainStep, run_dir: Path, *, resume: bool, artifacts: dict[str, str], merged_dir: str):
    """Pack, train (full, LoRA or QLoRA) on the blocks, save, and merge into `merged_dir` if asked.

    Returns the result (`artifacts` extended with what was written) for the caller to write.
    """
    from trl import SFTTrainer

    from backends.common.tiny import demo_note_of, is_demo_model
    from backends.train.builders import _to_peft_config, _to_sft_config
    from backends.train.device import choose_precision, probe_device
    from backends.train.fit import fit
    from backends.train.measure import MemoryMeter
    from backends.train.model import load_model, merge_adapter, read_hf_config
    from backends.train.predict import predict_memory
    from backends.train.results import MergeCheck, TrainResult, compare_memory, library_versions
    from backends.train.tensor_peak import predict_measured_step

    _, base, tokenizer, packed, train, held = _prepare(step, run_dir, build=True)
    device = probe_device()
    precision, precision_reason = choose_precision(step.precision, device)
    output_dir = run_dir / step.output_dir
    before = _base_losses(base, step.method, precision, held, device.kind) if held else []
    meter = MemoryMeter(device.kind)
    meter.start()
    trainer = SFTTrainer(model=load_model(base, step.method, precision),
                         args=_to_sft_config(step, output_dir, precision, use_cpu=device.kind == "cpu"),
                         train_dataset=_dataset(train), eval_dataset=_dataset(held) if held else None,
                         processing_class=tokenizer, peft_config=_to_peft_config(step))
    outcome = fit(trainer, meter, run_dir, output_dir, resume=resume)
    if not trainer.accelerator.is_main_process:
        return TrainResult.model_construct()
    artifacts = dict(artifacts)
    merge = None
    if step.merge and step.method != "full" and held:
        import torch

        batches = [{"input_ids": torch.tensor([b]), "attention_mask": torch.ones(1, len(b), dtype=torch.long),
                    "labels": torch.tensor([b])} for b in held]
        merge = MergeCheck(**merge_adapter(base, output_dir, run_dir / merged_dir, step.method, precision, batches))
        tokenizer.save_pretrained(str(run_dir / merged_dir))  # a later `base_model: continued` step loads it there
        artifacts["merged"] = merged_dir
    verdict = None
    if held:
        import time

        from backends.train.accuracy import suite_before_after

        trained = trainer.model  # the model as trained (the PEFT wrapper for adapters)
        after = block_losses(trained, held, precision)
        start = time.perf_counter()
        suite = suite_before_after(base, output_dir, is_demo=is_demo_model(base), labels=("base", "continued"))
        verdict = _verdict(before, after, suite, step.method).model_copy(
            update={"wall_seconds": time.perf_counter() - start})
    predicted, note = predict_memory(step, read_hf_config(base), step.base_model, precision, seq_len=step.seq_len,
                                     device=device.kind)
    outcome = predict_measured_step(outcome, step, read_hf_config(base), step.base_model, precision)
    is_demo = is_demo_model(base)
    if is_demo and Path(base).parent == run_dir:
        artifacts["base_model"] = Path(base).name
    failure = merge.failure() if merge is not None else None
    note += (f"; corpus: {packed.n_documents} documents, {packed.n_tokens} tokens with EOS, {len(packed.blocks)} "
             f"blocks of {step.seq_len} ({packed.n_dropped_tokens} tail tokens dropped)")
    return TrainResult(
        status="failed" if failure else "succeeded", failure=failure, method=step.method, train_method=step.method,
        base_model=step.base_model, base_model_path=base, is_demo_model=is_demo,
        demo_note=demo_note_of(base) if is_demo else None, data_format=CORPUS_FORMAT, n_train_examples=len(train),
        n_eval_examples=len(held), seq_len_tokens=step.seq_len, is_packed=True, device=device, precision=precision,
        precision_reason=precision_reason, fit=outcome, predicted=predicted, prediction_note=note,
        memory=compare_memory(outcome, predicted), merge=merge, verdict=verdict, artifacts=artifacts,
        versions=library_versions(),
    )
