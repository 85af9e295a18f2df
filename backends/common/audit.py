"""Data audit of one loaded examples file: what would make training on it mislead, found before training.

Checks, each with counts and 1-based line numbers:

- exact duplicates: dropped by `load_examples` (first copy kept); listed here.
- near-duplicates: MinHash LSH over word shingles, confirmed by exact Jaccard (`backends.common.groups`);
  without datasketch the check is skipped with a note.
- conflicts: the same prompt with different answers (supervised data only; DPO files repeat prompts by design).
- empty answers: answers with no visible character (plain empty ones are refused by the loader as bad lines).
- template leaks: answers holding chat-template markup (`### Assistant:`, `<|assistant|>`, `[INST]`, ...).
- length: examples longer than `seq_len` and the tokens truncation would cut, counted with the run's tokenizer
  when the caller passes its counts, else approximated from characters (`CHARS_PER_TOKEN`).
- sensitive strings: emails, phone numbers, card numbers (Luhn check), IBANs (ISO 13616 mod-97 check); only
  masked values are ever stored or printed.
- leakage: related records (near-duplicates, one prompt, one long answer: `split_groups`) straddling the
  train/validation split, for the plain shuffled split and for the grouped split `split_examples` makes.
- a seeded random sample to read, masked.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from typing import Literal

from pydantic import Field

from advisor.core.models import Model
from backends.common.data import Examples, held_out_indices
from backends.common.groups import (
    NEAR_DUPLICATE_THRESHOLD,
    SHINGLE_WORDS,
    final_answer,
    near_duplicate_pairs,
    normal_text,
    prompt_and_answers,
    split_groups,
)

__all__ = ["DataAudit", "audit_examples", "find_sensitive", "mask_sensitive"]

# Length without a tokenizer: about 4 characters per token for English text with GPT-style BPE vocabularies
# (OpenAI, "What are tokens and how to count them"), plus role header and end-of-turn tokens per message
# (ChatML's `<|im_start|>role\n` ... `<|im_end|>\n` is 4 to 5 tokens).
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
MAX_LISTED = 20  # examples kept per finding; counts are always complete
SAMPLE_CHARS = 2000  # longest prompt or answer shown in a sample

# Chat-template markup of common formats (Alpaca `### Response:`, Zephyr/TinyLlama `<|assistant|>`, ChatML,
# Llama 2 `[INST]`/`<<SYS>>`, Llama 3 header and end-of-turn tokens, GPT-2 `<|endoftext|>`, SentencePiece `</s>`).
TEMPLATE_MARKER = re.compile(
    r"^[ \t]*###[ \t]*(?:assistant|human|user|system|instruction|response|input)\b[ \t]*:?"
    r"|<\|(?:assistant|user|system|im_start|im_end|eot_id|start_header_id|end_header_id|endoftext)\|>"
    r"|\[/?INST\]|<</?SYS>>|</s>",
    re.IGNORECASE | re.MULTILINE,
)
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")  # 13 to 19 digits (ISO/IEC 7812)
# Phones: an international number (`+` and country code, E.164: at most 15 digits, 8 is the shortest we flag) or
# the North American 3-3-4 form with separators. Bare digit runs are left alone: they are far more often VAT,
# order or account numbers than phone numbers.
PHONE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(0\))?(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\w)"
                   r"|(?<![\w+])(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w)")
PHONE_DIGITS = (8, 15)
IBAN_LENGTH = (15, 34)  # ISO 13616: Norway's 15 characters to the 34 the standard allows

SensitiveKind = Literal["email", "phone", "card", "iban"]
SENSITIVE_KINDS: tuple[SensitiveKind, ...] = ("email", "phone", "card", "iban")


class DuplicateLine(Model):
    """An exact duplicate the loader dropped."""

    line: int = Field(description="Line dropped, 1-based")
    first_line: int = Field(description="Line of the copy kept")


class NearDuplicatePair(Model):
    """Two records whose word shingles overlap at least `NEAR_DUPLICATE_THRESHOLD`."""

    line_a: int
    line_b: int
    jaccard: float = Field(description="Exact Jaccard similarity of the two shingle sets")


class Conflict(Model):
    """One prompt given different answers."""

    prompt: str = Field(description="The prompt, shortened and masked")
    lines: list[int] = Field(description="Lines with this prompt")
    n_answers: int = Field(description="Distinct answers among them")


class LineFinding(Model):
    """A line and what was found on it."""

    line: int
    detail: str


class SensitiveHit(Model):
    """A sensitive string; only its masked form is kept."""

    line: int
    kind: SensitiveKind
    masked: str = Field(description="The value with all but a few characters replaced by `*`")


class LengthAudit(Model):
    """Examples longer than the step's sequence length."""

    seq_len_tokens: int
    counting: Literal["tokenizer", "approximate"] = Field(description="How tokens were counted")
    counting_note: str
    n_truncated: int = Field(description="Examples longer than `seq_len_tokens`")
    truncated_tokens: int = Field(description="Tokens truncation would cut, all examples together")
    total_tokens: int
    max_tokens: int


class LeakageCheck(Model):
    """Groups of related records (`split_groups`) found on both sides of the train/validation split."""

    eval_fraction: float
    seed: int
    n_groups: int = Field(description="Groups of two or more related records")
    n_grouped_examples: int = Field(description="Records in those groups")
    n_straddling_naive: int = Field(description="Groups the plain shuffled split would put on both sides")
    n_straddling_grouped: int = Field(description="Groups on both sides of the split training uses (0 unless no "
                                                  "grouping fitted)")


class SampleExample(Model):
    """One record to read, masked."""

    line: int
    prompt: str
    answer: str


class DataAudit(Model):
    """What `advisor data audit` found in one examples file."""

    path: str
    format: str
    n_examples: int = Field(description="Records kept after dropping exact duplicates")
    n_exact_duplicates: int = Field(description="Exact duplicates dropped (first copy kept)")
    exact_duplicates: list[DuplicateLine] = Field(description=f"The first {MAX_LISTED}")
    near_duplicate_threshold: float = Field(description="Jaccard similarity of word shingles counted as near")
    near_duplicate_shingle_words: int = Field(description="Words per shingle")
    n_near_duplicate_pairs: int | None = Field(description="None: not checked (see notes)")
    near_duplicate_pairs: list[NearDuplicatePair] = Field(description=f"The first {MAX_LISTED}, most similar first")
    n_conflicts: int = Field(description="Prompts with more than one distinct answer")
    conflicts: list[Conflict]
    n_empty_answers: int = Field(description="Answers with no visible character")
    empty_answers: list[LineFinding]
    n_template_leaks: int = Field(description="Answers holding chat-template markup")
    template_leaks: list[LineFinding]
    lengths: LengthAudit | None = Field(description="None when no `seq_len` was given")
    sensitive_counts: dict[str, int] = Field(description="Hits per kind: email, phone, card, iban")
    sensitive: list[SensitiveHit] = Field(description=f"The first {MAX_LISTED} per kind, masked")
    leakage: LeakageCheck
    sample: list[SampleExample] = Field(description="Random records to read (seeded)")
    notes: list[str] = Field(description="What was not checked, and why")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    if not IBAN_LENGTH[0] <= len(compact) <= IBAN_LENGTH[1]:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _mask(kind: SensitiveKind, value: str) -> str:
    if kind == "email":
        local, domain = value.split("@", 1)
        return f"{local[0]}***@{domain}"
    compact = re.sub(r"[^0-9A-Za-z]", "", value)
    if kind == "iban":
        return compact[:2] + "*" * (len(compact) - 6) + compact[-4:]
    keep = 4 if kind == "card" else 2  # PCI DSS 3.4 allows a card's last four digits to be shown
    return "*" * (len(compact) - keep) + compact[-keep:]


def find_sensitive(text: str) -> list[tuple[int, int, SensitiveKind, str]]:
    """(start, end, kind, masked value) of every sensitive string in `text`, in order.

    IBANs and card-like digit runs are taken out before phones are looked for, so a card number that fails its
    Luhn check is not reported as a phone number instead.
    """
    hits: list[tuple[int, int, SensitiveKind, str]] = []
    remaining = text

    def take(match: re.Match, kind: SensitiveKind | None) -> None:
        nonlocal remaining
        if kind is not None:
            hits.append((match.start(), match.end(), kind, _mask(kind, match.group())))
        remaining = remaining[:match.start()] + " " * (match.end() - match.start()) + remaining[match.end():]

    for match in list(EMAIL.finditer(remaining)):
        take(match, "email")
    for match in list(IBAN.finditer(remaining)):
        if _iban_ok(match.group().replace(" ", "")):
            take(match, "iban")
    for match in list(CARD.finditer(remaining)):
        take(match, "card" if _luhn_ok(re.sub(r"\D", "", match.group())) else None)
    for match in list(PHONE.finditer(remaining)):
        value = match.group()
        n_digits = len(re.sub(r"\D", "", value))
        if PHONE_DIGITS[0] <= n_digits <= PHONE_DIGITS[1]:
            take(match, "phone")
    return sorted(hits)


def mask_sensitive(text: str) -> str:
    """`text` with every sensitive string replaced by its masked form."""
    for start, end, _, masked in reversed(find_sensitive(text)):
        text = text[:start] + masked + text[end:]
    return text


def _is_blank(text: str) -> bool:
    return all(unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in text)


def _approx_tokens(record: dict) -> int:
    def count(messages: list[dict]) -> int:
        return sum(math.ceil(len(m["content"]) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS for m in messages)

    if "messages" in record:
        return count(record["messages"])
    prompt = {"content": record["prompt"]}
    return max(count([prompt, {"content": record[k]}]) for k in ("chosen", "rejected"))


def _lengths(examples: Examples, seq_len: int, token_counts: list[int] | None) -> LengthAudit:
    if token_counts is None:
        counts = [_approx_tokens(r) for r in examples.records]
        counting, note = "approximate", (f"no tokenizer: about {CHARS_PER_TOKEN} characters per token plus "
                                         f"{MESSAGE_OVERHEAD_TOKENS} per message; `advisor train check` counts "
                                         "with the model's tokenizer")
    else:
        counts, counting, note = token_counts, "tokenizer", "counted with the model's tokenizer and chat template"
    return LengthAudit(seq_len_tokens=seq_len, counting=counting, counting_note=note,
                       n_truncated=sum(c > seq_len for c in counts),
                       truncated_tokens=sum(max(0, c - seq_len) for c in counts), total_tokens=sum(counts),
                       max_tokens=max(counts, default=0))


def _conflicts(examples: Examples) -> list[Conflict]:
    if examples.format == "preference":
        return []
    by_prompt: dict[str, list[int]] = {}
    for index, record in enumerate(examples.records):
        by_prompt.setdefault(normal_text(prompt_and_answers(record)[0]), []).append(index)
    found = []
    for indices in by_prompt.values():
        answers = {normal_text(final_answer(examples.records[i])) for i in indices}
        if len(answers) > 1:
            prompt = mask_sensitive(prompt_and_answers(examples.records[indices[0]])[0])
            found.append(Conflict(prompt=prompt if len(prompt) <= 80 else prompt[:77] + "...",
                                  lines=[examples.line_numbers[i] for i in indices], n_answers=len(answers)))
    return found


def _answer_findings(examples: Examples) -> tuple[list[LineFinding], list[LineFinding]]:
    empty, leaks = [], []
    for record, line in zip(examples.records, examples.line_numbers, strict=True):
        answers = prompt_and_answers(record)[1]
        if any(_is_blank(a) for a in answers):
            empty.append(LineFinding(line=line, detail="an answer has no visible character"))
        markers = sorted({m.group().strip() for a in answers for m in TEMPLATE_MARKER.finditer(a)})
        if markers:
            leaks.append(LineFinding(line=line, detail=", ".join(f"`{m}`" for m in markers)))
    return empty, leaks


def _sensitive(examples: Examples) -> tuple[dict[str, int], list[SensitiveHit]]:
    counts = dict.fromkeys(SENSITIVE_KINDS, 0)
    listed: list[SensitiveHit] = []
    for record, line in zip(examples.records, examples.line_numbers, strict=True):
        prompt, answers = prompt_and_answers(record)
        for text in (prompt, *answers):
            for _, _, kind, masked in find_sensitive(text):
                counts[kind] += 1
                if counts[kind] <= MAX_LISTED:
                    listed.append(SensitiveHit(line=line, kind=kind, masked=masked))
    return counts, listed


def _leakage(examples: Examples, groups: list[int], eval_fraction: float, seed: int) -> LeakageCheck:
    order = list(range(len(examples.records)))
    random.Random(seed).shuffle(order)  # the same shuffle as `split_examples`
    n_eval = min(max(1, round(len(order) * eval_fraction)) if eval_fraction > 0 else 0, max(0, len(order) - 1))
    sizes: dict[int, int] = {}
    for group in groups:
        sizes[group] = sizes.get(group, 0) + 1
    multi = {g for g, size in sizes.items() if size > 1}

    def straddling(held_out: set[int]) -> int:
        sides: dict[int, set[bool]] = {}
        for index in order:
            if groups[index] in multi:
                sides.setdefault(groups[index], set()).add(index in held_out)
        return sum(len(s) == 2 for s in sides.values())

    return LeakageCheck(eval_fraction=eval_fraction, seed=seed, n_groups=len(multi),
                        n_grouped_examples=sum(sizes[g] for g in multi),
                        n_straddling_naive=straddling(set(order[:n_eval])),
                        n_straddling_grouped=straddling(held_out_indices(order, groups, n_eval)))


def _sample(examples: Examples, n_sample: int, seed: int) -> list[SampleExample]:
    chosen = sorted(random.Random(seed).sample(range(len(examples.records)), min(n_sample, len(examples.records))))

    def shown(text: str) -> str:
        text = mask_sensitive(text)
        return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + " [...]"

    return [SampleExample(line=examples.line_numbers[i], prompt=shown(prompt_and_answers(examples.records[i])[0]),
                          answer=shown(final_answer(examples.records[i]))) for i in chosen]


def audit_examples(examples: Examples, *, seq_len: int | None = None, eval_fraction: float = 0.1, seed: int = 0,
                   n_sample: int = 0, token_counts: list[int] | None = None) -> DataAudit:
    """Audit a loaded examples file.

    Args:
        examples: From `load_examples` (exact duplicates already dropped and listed there).
        seq_len: The step's sequence length in tokens; None skips the length check.
        eval_fraction: The step's validation share, for the leakage check.
        seed: The step's seed: the split's shuffle and the sample.
        n_sample: Random records to include for reading.
        token_counts: Tokens per record (same order) counted with the run's tokenizer; None approximates.

    Returns:
        Counts, the first `MAX_LISTED` cases of each finding with line numbers, and notes on what was skipped.
    """
    pairs, note = near_duplicate_pairs(examples.records)
    groups = split_groups(examples.records, pairs)
    lines = examples.line_numbers
    empty, leaks = _answer_findings(examples)
    conflicts = _conflicts(examples)
    sensitive_counts, sensitive = _sensitive(examples)
    notes = [note] if note else []
    if examples.format == "preference":
        notes.append("conflicts not checked: preference files repeat prompts by design")
    return DataAudit(
        path=examples.path, format=examples.format, n_examples=len(examples.records),
        n_exact_duplicates=len(examples.dropped_duplicates),
        exact_duplicates=[DuplicateLine(line=a, first_line=b) for a, b in examples.dropped_duplicates[:MAX_LISTED]],
        near_duplicate_threshold=NEAR_DUPLICATE_THRESHOLD, near_duplicate_shingle_words=SHINGLE_WORDS,
        n_near_duplicate_pairs=None if note else len(pairs),
        near_duplicate_pairs=[NearDuplicatePair(line_a=lines[a], line_b=lines[b], jaccard=j)
                              for a, b, j in pairs[:MAX_LISTED]],
        n_conflicts=len(conflicts), conflicts=conflicts[:MAX_LISTED], n_empty_answers=len(empty),
        empty_answers=empty[:MAX_LISTED], n_template_leaks=len(leaks), template_leaks=leaks[:MAX_LISTED],
        lengths=_lengths(examples, seq_len, token_counts) if seq_len is not None else None,
        sensitive_counts=sensitive_counts, sensitive=sensitive,
        leakage=_leakage(examples, groups, eval_fraction, seed), sample=_sample(examples, n_sample, seed),
        notes=notes,
    )
