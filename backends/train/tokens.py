"""Render examples with the tokenizer's chat template and tokenize them with a loss mask; length statistics.

A conversation is rendered turn by turn: the text each message adds to the rendering of the messages before it
is one segment, tokenized on its own, and only assistant segments count in the loss. Tokenizers without a chat
template get a plain `### User:` / `### Assistant:` layout with the EOS token after each answer.
"""

from __future__ import annotations

from pydantic import Field

from advisor.core.models import Model

__all__ = ["LengthStats", "example_lengths", "length_stats", "render_sample", "tokenize_messages"]

PLAIN_ROLE_HEADERS = {"system": "### System:\n", "user": "### User:\n", "assistant": "### Assistant:\n"}


class LengthStats(Model):
    """How long the tokenized examples are, and what truncation to `seq_len` cuts."""

    n_examples: int = Field(description="Examples measured")
    min_tokens: int = Field(description="Shortest example, in tokens")
    median_tokens: int = Field(description="Median example, in tokens")
    p95_tokens: int = Field(description="95th percentile, in tokens")
    max_tokens: int = Field(description="Longest example, in tokens")
    seq_len_tokens: int = Field(description="The plan's `seq_len`")
    n_truncated: int = Field(description="Examples longer than `seq_len` (their end is cut)")
    truncated_tokens_fraction: float = Field(description="Share of all tokens that truncation removes")


def _segments(messages: list[dict], tokenizer) -> list[tuple[str, bool]]:
    """(text, is_assistant) pieces whose concatenation is the rendered conversation."""
    if not getattr(tokenizer, "chat_template", None):
        return [
            (PLAIN_ROLE_HEADERS[m["role"]] + m["content"] + (tokenizer.eos_token or "") * (m["role"] == "assistant")
             + "\n\n", m["role"] == "assistant")
            for m in messages
        ]
    pieces, previous = [], ""
    for i, message in enumerate(messages):
        is_assistant = message["role"] == "assistant"
        if is_assistant:  # the assistant header belongs to the prompt, not to what is learnt
            header = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
            if header.startswith(previous) and header != previous:
                pieces.append((header[len(previous):], False))
                previous = header
        rendered = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not rendered.startswith(previous):
            # The template rewrites earlier turns (some add dates or strip reasoning): learn from all of it.
            return [(rendered, True)]
        pieces.append((rendered[len(previous):], is_assistant))
        previous = rendered
    return pieces


def tokenize_messages(messages: list[dict], tokenizer) -> dict[str, list[int]]:
    """Token ids of a rendered conversation and its loss mask.

    Returns:
        `input_ids`, and `completion_mask` with 1 on assistant tokens (those the loss is computed on).
    """
    input_ids: list[int] = []
    mask: list[int] = []
    for text, is_assistant in _segments(messages, tokenizer):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids.extend(ids)
        mask.extend([int(is_assistant)] * len(ids))
    return {"input_ids": input_ids, "completion_mask": mask}


def render_sample(record: dict, tokenizer) -> str:
    """The text one record becomes, for people to read (`advisor train check` prints it)."""
    if "messages" in record:
        return "".join(text for text, _ in _segments(record["messages"], tokenizer))
    prompt = [{"role": "user", "content": record["prompt"]}]
    chosen = "".join(t for t, _ in _segments([*prompt, {"role": "assistant", "content": record["chosen"]}], tokenizer))
    rejected = "".join(t for t, _ in _segments([*prompt, {"role": "assistant", "content": record["rejected"]}],
                                                tokenizer))
    return f"chosen:\n{chosen}\nrejected:\n{rejected}"


def example_lengths(records: list[dict], tokenizer) -> list[int]:
    """Tokens per example; for preference pairs, the longer of prompt+chosen and prompt+rejected."""
    lengths = []
    for record in records:
        if "messages" in record:
            lengths.append(len(tokenize_messages(record["messages"], tokenizer)["input_ids"]))
            continue
        prompt = [{"role": "user", "content": record["prompt"]}]
        lengths.append(max(
            len(tokenize_messages([*prompt, {"role": "assistant", "content": record[k]}], tokenizer)["input_ids"])
            for k in ("chosen", "rejected")
        ))
    return lengths


def length_stats(lengths: list[int], seq_len: int) -> LengthStats:
    """Distribution of `lengths` and what cutting each at `seq_len` tokens removes."""
    ordered = sorted(lengths)
    n = len(ordered)
    total = sum(ordered)
    cut = sum(max(0, length - seq_len) for length in ordered)
    return LengthStats(
        n_examples=n,
        min_tokens=ordered[0],
        median_tokens=ordered[n // 2],
        p95_tokens=ordered[min(n - 1, (95 * n) // 100)],
        max_tokens=ordered[-1],
        seq_len_tokens=seq_len,
        n_truncated=sum(length > seq_len for length in ordered),
        truncated_tokens_fraction=cut / total if total else 0.0,
    )
