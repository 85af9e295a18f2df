"""Zero-shot against few-shot on held-out examples: teacher-forced NLL of the reference, greedy exact match and F1.

For each held-out example, both prompts carry the same instructions and the same question; the few-shot prompt
adds the shots. The reference answer is scored token by token after the prompt (mean negative log-likelihood
per answer token, in nats), then the model answers greedily and the answer is compared with the reference after
normalisation (lower case, punctuation and extra whitespace removed; SQuAD's exact match and word-overlap F1,
Rajpurkar et al. 2016, without its English article stripping). torch and transformers load inside the functions.
"""

from __future__ import annotations

import re
import string
import sys
import time
from collections import Counter
from pathlib import Path

from pydantic import Field

from advisor.core.models import Model
from backends.common.chat import build_messages, render_text, split_record

__all__ = [
    "NORMALISATION",
    "PromptEvaluation",
    "PromptScores",
    "evaluate_prompts",
    "exact_match",
    "normalise_answer",
    "token_f1",
]

# Tokens generated beyond the longest reference answer, so a model that answers correctly and then stops
# (EOS) is not cut off; it also bounds the cost of a model that never stops.
GENERATION_MARGIN_TOKENS = 8
MAX_NEW_TOKENS = 256
PROGRESS_SECONDS = 2.0  # stderr gets a progress line at most this often (a phase over ~2 s shows progress)
NORMALISATION = "lower case, punctuation removed, whitespace collapsed"
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


class PromptScores(Model):
    """One prompt's quality on the held-out examples."""

    mean_nll: float = Field(description="Mean negative log-likelihood per reference-answer token (teacher forcing), nats")
    exact_match: float = Field(description="Share of greedy answers equal to the reference after normalisation")
    token_f1: float = Field(description="Mean word-overlap F1 of greedy answers against the reference (SQuAD style)")
    mean_prompt_tokens: float = Field(description="Mean prompt length fed to the model, in tokens")


class PromptEvaluation(Model):
    """Zero-shot against few-shot, same instructions, same held-out examples, same model."""

    n_examples: int = Field(description="Held-out examples evaluated")
    n_answer_tokens: int = Field(description="Reference-answer tokens the NLL is averaged over")
    max_new_tokens: int = Field(description="Generation limit: the longest reference answer plus a margin")
    normalisation: str = Field(description="What exact match and F1 ignore")
    device: str = Field(description="Where the model ran")
    zero_shot: PromptScores
    few_shot: PromptScores
    wall_seconds: float = Field(description="Time the evaluation took")



def normalise_answer(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalise_answer(prediction) == normalise_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of word precision and recall between the normalised strings (1.0 when both are empty)."""
    predicted, expected = normalise_answer(prediction).split(), normalise_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def _load(model_dir: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    if _is_prompt_adapter(model_dir):  # transformers' own adapter loading handles LoRA and IA3, not soft prompts
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir, dtype=dtype, trust_remote_code=False)
        return model.to(device).eval(), tokenizer, device
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, trust_remote_code=False).to(device).eval()
    return model, tokenizer, device


def _is_prompt_adapter(model_dir: str) -> bool:
    """The folder holds a PEFT prompt-learning adapter (prompt, prefix or P-tuning)."""
    import json

    config = Path(model_dir) / "adapter_config.json"
    try:
        peft_type = json.loads(config.read_text(encoding="utf-8")).get("peft_type")
    except (OSError, ValueError, AttributeError):
        return False
    return peft_type in ("PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING")


def _score(model, tokenizer, prompt_text: str, answer: str, max_new_tokens: int) -> tuple[float, int, str, int]:
    """(summed NLL of the answer tokens, their number, the greedy answer, prompt tokens)."""
    import torch

    device = next(model.parameters()).device
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids], device=device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -ids.shape[1] :]  # prompt tuning prepends its virtual tokens
        logits = logits[len(prompt_ids) - 1 : -1].float()
        nll = torch.nn.functional.cross_entropy(logits, ids[0, len(prompt_ids) :], reduction="sum")
        prompt = ids[:, : len(prompt_ids)]
        generated = model.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )  # fmt: skip
    text = tokenizer.decode(generated[0, len(prompt_ids) :], skip_special_tokens=True)
    return float(nll), len(answer_ids), text.strip(), len(prompt_ids)


def evaluate_prompts(model_dir: str | Path, system: str, shots: list[dict], held_out: list[dict],
                     seed: int = 0, label: str = "the model") -> tuple[PromptEvaluation, list[dict]]:
    """Score the zero-shot and the few-shot prompt on `held_out` with the local model in `model_dir`.

    Args:
        model_dir: A folder written by `save_pretrained` (model and tokenizer).
        system: System instructions, shared by both prompts.
        shots: The few-shot prompt's examples (normalised records).
        held_out: Examples never used as shots; the last assistant turn is the reference.
        seed: torch seed (greedy decoding is deterministic; this pins anything else).
        label: What is evaluated, for the progress lines on stderr (every `PROGRESS_SECONDS` at most).

    Returns:
        The scores, and one row per example (reference, both answers, their NLL per answer token, exact
        match and F1: `zero_shot_*`, `few_shot_*`) for `eval_examples.jsonl` and paired tests.
    """
    import torch

    torch.manual_seed(seed)
    start = time.perf_counter()
    model, tokenizer, device = _load(str(model_dir))
    references = [split_record(r) for r in held_out]
    longest = max(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for _, a in references)
    max_new_tokens = min(longest + GENERATION_MARGIN_TOKENS, MAX_NEW_TOKENS)
    totals = {kind: {"nll": 0.0, "tokens": 0, "em": 0.0, "f1": 0.0, "prompt": 0} for kind in ("zero", "few")}
    rows, last_report = [], start
    for question, answer in references:
        row = {"question": question[-1]["content"], "reference": answer}
        scored = None
        for kind, prompt_shots in (("zero", []), ("few", shots)):
            if scored is None or shots:  # without shots both prompts are the same: score once (half the time)
                text = render_text(build_messages(system, prompt_shots, question), tokenizer, add_generation_prompt=True)
                scored = _score(model, tokenizer, text, answer, max_new_tokens)
            nll, n_tokens, prediction, n_prompt = scored
            t = totals[kind]
            em, f1 = exact_match(prediction, answer), token_f1(prediction, answer)
            t["nll"] += nll
            t["tokens"] += n_tokens
            t["em"] += em
            t["f1"] += f1
            t["prompt"] += n_prompt
            row[f"{kind}_shot_answer"], row[f"{kind}_shot_nll"] = prediction, nll / max(n_tokens, 1)
            # Per-example scores, so two prompts or two models can be compared pair by pair (verdict.py).
            row[f"{kind}_shot_exact_match"], row[f"{kind}_shot_f1"] = em, f1
        rows.append(row)
        if time.perf_counter() - last_report >= PROGRESS_SECONDS:
            last_report = time.perf_counter()
            print(f"evaluating {label}: {len(rows)}/{len(references)} held-out examples, "
                  f"{last_report - start:.0f} s", file=sys.stderr)
    n = len(references)
    scores = {
        kind: PromptScores(mean_nll=t["nll"] / max(t["tokens"], 1), exact_match=t["em"] / n, token_f1=t["f1"] / n,
                           mean_prompt_tokens=t["prompt"] / n)
        for kind, t in totals.items()
    }
    evaluation = PromptEvaluation(
        n_examples=n, n_answer_tokens=totals["zero"]["tokens"], max_new_tokens=max_new_tokens,
        normalisation=NORMALISATION, device=device, zero_shot=scores["zero"], few_shot=scores["few"],
        wall_seconds=time.perf_counter() - start,
    )  # fmt: skip
    return evaluation, rows
