"""Which records the split keeps together: near-duplicates, one prompt, one long answer; short labels stay apart."""

from __future__ import annotations

import pytest

from backends.common.groups import near_duplicate_pairs, shingles, split_groups


def _record(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def test_shingles() -> None:
    assert shingles("One, two THREE four") == {"one two three", "two three four"}
    assert shingles("Hi there") == {"hi there"}
    assert shingles("...") == set()


@pytest.mark.parametrize(
    ("records", "together"),
    [
        ([_record("Is it red?", "Yes."), _record("Is it blue?", "Yes.")], False),  # a short label repeats by nature
        ([_record("Q one?", "The same long answer of six words."), _record("Q two?", "The same long answer of six "
                                                                                    "words.")], True),
        ([_record("Same  prompt?", "A."), _record("same prompt?", "B.")], True),  # compared lowercased, spaces collapsed
        ([_record("Is it red?", "No."), _record("Is it green?", "No, it is not.")], False),
    ],
)
def test_split_groups_without_near_duplicates(records: list[dict], together: bool) -> None:
    groups = split_groups(records, pairs=[])
    assert (groups[0] == groups[1]) is together


def test_near_duplicates_are_grouped() -> None:
    pytest.importorskip("datasketch")
    text = "please tell me how I can change the delivery address of an order that has already shipped today"
    records = [_record(text, "Contact us."), _record(text + " thanks", "Contact us."), _record("Unrelated?", "No.")]
    pairs, note = near_duplicate_pairs(records)
    assert note is None and [(a, b) for a, b, _ in pairs] == [(0, 1)]
    groups = split_groups(records)
    assert groups[0] == groups[1] != groups[2]


@pytest.mark.parametrize(
    ("order", "groups", "n_eval", "expected"),
    [
        ([0, 1, 2, 3], [0, 0, 1, 2], 2, {0, 1}),  # the first group in shuffled order fits exactly
        ([2, 0, 1, 3], [0, 0, 1, 2], 2, {2, 3}),  # group {0, 1} would overshoot after {2}: the next one fits
        ([0, 1, 2, 3], [0, 0, 1, 2], 1, {2}),  # a group larger than the held-out size is skipped
        ([2, 0, 1], [0, 0, 0], 1, {2}),  # nothing fits: the plain split (the leakage check reports it)
        ([1, 0], [0, 1], 0, set()),
    ],
)
def test_held_out_indices(order: list[int], groups: list[int], n_eval: int, expected: set[int]) -> None:
    from backends.common.data import held_out_indices

    assert held_out_indices(order, groups, n_eval) == expected
