"""Prompt messages, token counting and fitting whole shots into `max_prompt_tokens`.

A prompt is chat messages: system instructions (plus any context documents), then each shot's user and assistant
turns, then the question's user turns. Tokens are counted on the rendered prompt with the model's tokenizer and
chat template when the model is local; otherwise with OpenAI's rule of thumb of about 4 characters per English
token, plus their documented per-message overhead (both stated in the result). Room is always kept for the longest
example's question and answer, and a shot is either in the prompt whole or not at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from advisor.core.errors import AdvisorError
from backends.common.chat import build_messages, render_text, shared_system, split_record
from backends.prompting.selection import Cluster

__all__ = [
    "FitResult",
    "HeuristicCounter",
    "TokenCounter",
    "TokenizerCounter",
    "build_messages",
    "fit_shots",
    "render_text",
    "shared_system",
    "split_record",
]

# "1 token ~= 4 chars in English": https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them
CHARS_PER_TOKEN = 4
# Chat formatting overhead, from OpenAI's cookbook "How to count tokens with tiktoken" (gpt-3.5/4 family):
# 3 tokens per message, and 3 that prime the assistant's reply.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
# Layout for tokenizers without a chat template (base models); the same headers the training backend uses.
QUESTION_PLACEHOLDER = "{question}"
# Members of a cluster tried when its medoid does not fit. Bounds tokenizer calls on big pools; a member further
# from the medoid than the 16 most central ones no longer stands well for its cluster anyway.
MAX_CANDIDATES_PER_CLUSTER = 16


class TokenCounter(Protocol):
    """Counts the tokens of rendered messages."""

    description: str

    def count(self, messages: list[dict]) -> int: ...


class TokenizerCounter:
    """Exact counts with the target model's tokenizer and chat template."""

    def __init__(self, tokenizer, model_name: str) -> None:
        self._tokenizer = tokenizer
        template = "its chat template" if getattr(tokenizer, "chat_template", None) else "`### Role:` headers"
        self.description = f"tokenizer of `{model_name}`, rendered with {template}"

    def count(self, messages: list[dict]) -> int:
        text = render_text(messages, self._tokenizer, add_generation_prompt=False)
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])


class HeuristicCounter:
    """Estimated counts for a model whose tokenizer is not here."""

    description = (f"heuristic: {CHARS_PER_TOKEN} characters per token plus {TOKENS_PER_MESSAGE} per message and "
                   f"{REPLY_PRIMING_TOKENS} for the reply (OpenAI's rules of thumb; the model's tokenizer is not local)")

    def count(self, messages: list[dict]) -> int:
        chars = sum(len(m["content"]) for m in messages)
        return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages) + REPLY_PRIMING_TOKENS


@dataclass(frozen=True)
class FitResult:
    """Shots that fit, as pool indices in prompt order, with the token accounting."""

    shots: list[int]
    shot_tokens: list[int]
    cluster_sizes: list[int]
    is_replacement: list[bool]
    n_clusters_dropped: int
    instructions_tokens: int
    reserved_tokens: int
    total_tokens: int


def _longest(records: list[dict], counter: TokenCounter) -> tuple[dict, int]:
    sizes = [counter.count([m for m in r["messages"] if m["role"] != "system"]) for r in records]
    i = max(range(len(records)), key=sizes.__getitem__)
    return records[i], sizes[i]


def fit_shots(system: str, pool: list[dict], clusters: list[Cluster], all_records: list[dict],
              counter: TokenCounter, max_prompt_tokens: int) -> FitResult:
    """Take one whole shot per cluster, largest cluster first, while the prompt stays within the budget.

    A cluster's medoid that does not fit is replaced by its most central member that does; a cluster with no
    such member is dropped. The budget always keeps room for the longest example in `all_records`.

    Raises:
        AdvisorError: not even the instructions, the longest example and one shot (or, with no clusters, the
            instructions and the longest example) fit in `max_prompt_tokens`.
    """
    longest, reserved = _longest(all_records, counter) if all_records else ({"messages": []}, 0)
    question, answer = split_record(longest) if all_records else ([], None)

    def total(shots: list[int]) -> int:
        return counter.count(build_messages(system, [pool[i] for i in shots], question, answer))

    base = total([])
    instructions_tokens = counter.count(build_messages(system, [], [])) if system else 0
    chosen, tokens, sizes, replaced, dropped = [], [], [], [], 0
    current = base
    for cluster in clusters:
        for position, candidate in enumerate(cluster.members[:MAX_CANDIDATES_PER_CLUSTER]):
            size = total([*chosen, candidate])
            if size <= max_prompt_tokens:
                chosen.append(candidate)
                tokens.append(size - current)
                sizes.append(len(cluster.members))
                replaced.append(position > 0)
                current = size
                break
        else:
            dropped += 1
    if base > max_prompt_tokens or (clusters and not chosen):
        shortest = min((total([i]) - base for c in clusters for i in c.members[:MAX_CANDIDATES_PER_CLUSTER]), default=0)
        raise AdvisorError(
            f"max_prompt_tokens {max_prompt_tokens} is too small for even "
            + ("one shot plus " if clusters else "")
            + f"the question and answer: instructions and the longest example take {base} tokens"
            + (f", the shortest shot {shortest} more" if clusters else ""),
            f"raise `max_prompt_tokens` to at least {base + shortest}, or shorten the instructions or examples",
        )
    return FitResult(shots=chosen, shot_tokens=tokens, cluster_sizes=sizes, is_replacement=replaced,
                     n_clusters_dropped=dropped, instructions_tokens=instructions_tokens,
                     reserved_tokens=reserved, total_tokens=current)
