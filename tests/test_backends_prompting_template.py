"""Prompt messages, token counting and budget fitting: whole shots only, room kept for the longest example."""

from __future__ import annotations

import math

import pytest

from advisor.core.errors import AdvisorError
from backends.prompting.selection import Cluster
from backends.prompting.template import (
    CHARS_PER_TOKEN,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    HeuristicCounter,
    build_messages,
    fit_shots,
    render_text,
    shared_system,
    split_record,
)


def _record(question: str, answer: str, system: str | None = None) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": [*messages, {"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


class WordCounter:
    """One token per whitespace word of every message: easy to count by hand."""

    description = "words"

    def count(self, messages: list[dict]) -> int:
        return sum(len(m["content"].split()) for m in messages)


POOL = [_record("a b", "c"), _record("d e f g h i", "j"), _record("k", "l"), _record("m n", "o")]  # 3, 7, 2, 3 words


def test_heuristic_counter_follows_its_stated_rule() -> None:
    messages = [{"role": "system", "content": "x" * 10}, {"role": "user", "content": "y" * 7}]
    expected = math.ceil(17 / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * 2 + REPLY_PRIMING_TOKENS
    assert HeuristicCounter().count(messages) == expected
    assert "4 characters per token" in HeuristicCounter.description


def test_everything_fits_when_the_budget_is_large() -> None:
    clusters = [Cluster([0, 2]), Cluster([1]), Cluster([3])]
    fit = fit_shots("be brief", POOL, clusters, POOL, WordCounter(), max_prompt_tokens=100)
    assert fit.shots == [0, 1, 3]
    assert fit.shot_tokens == [3, 7, 3]
    assert fit.reserved_tokens == 7  # the longest example, kept free for a question and its answer
    assert fit.instructions_tokens == 2
    assert fit.total_tokens == 2 + 7 + 3 + 7 + 3
    assert fit.n_clusters_dropped == 0 and not any(fit.is_replacement)


def test_shots_are_dropped_whole_to_respect_the_budget() -> None:
    clusters = [Cluster([0]), Cluster([1]), Cluster([3])]
    fit = fit_shots("be brief", POOL, clusters, POOL, WordCounter(), max_prompt_tokens=16)
    # 2 instructions + 7 reserved leave 7: shot 0 (3) fits, shot 1 (7) would overflow, shot 3 (3) fits.
    assert fit.shots == [0, 3]
    assert fit.total_tokens == 15 <= 16
    assert fit.n_clusters_dropped == 1


def test_a_medoid_too_long_is_replaced_by_a_member_that_fits() -> None:
    fit = fit_shots("", POOL, [Cluster([1, 0, 2])], POOL, WordCounter(), max_prompt_tokens=10)
    assert fit.shots == [0] and fit.is_replacement == [True]


@pytest.mark.parametrize("has_clusters", [True, False])
def test_budget_too_small_names_the_numbers(has_clusters: bool) -> None:
    clusters = [Cluster([0, 2])] if has_clusters else []
    with pytest.raises(AdvisorError) as error:
        fit_shots("be brief", POOL, clusters, POOL, WordCounter(), max_prompt_tokens=8 if has_clusters else 5)
    assert "too small" in error.value.message
    assert ("one shot" in error.value.message) == has_clusters
    # instructions 2 + longest 7 = 9; shortest shot adds 2
    assert "at least 11" in error.value.hint if has_clusters else "at least 9" in error.value.hint


def test_held_out_examples_only_reserve_room() -> None:
    held_out = [_record("a very long held out question with many words", "and answer")]
    fit = fit_shots("", POOL, [Cluster([0])], POOL + held_out, WordCounter(), max_prompt_tokens=100)
    assert fit.reserved_tokens == 11 and fit.shots == [0]


def test_messages_and_plain_rendering() -> None:
    shot = _record("2+2?", "4", system="ignored in shots")
    messages = build_messages("Answer.", [shot], [{"role": "user", "content": "{question}"}])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    text = render_text(messages, add_generation_prompt=True)
    assert text == "### System:\nAnswer.\n\n### User:\n2+2?\n\n### Assistant:\n4\n\n### User:\n{question}\n\n### Assistant:\n"
    assert build_messages("", [], [])[:1] == []


def test_split_record_and_shared_system() -> None:
    record = _record("q", "a", system="s")
    assert split_record(record) == ([{"role": "user", "content": "q"}], "a")
    assert shared_system([record, _record("q2", "a2", system="s")]) == "s"
    assert shared_system([record, _record("q2", "a2")]) == ""
