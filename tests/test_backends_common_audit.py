"""The data audit finds what was planted in `fixtures/audit/planted.jsonl`, with exact counts and line numbers.

Planted (1-based lines): 2 repeats 1 exactly; 3 is 1 with one word added (near); 5 is 4 with one word changed and
one added (near); 6 and 7 give one prompt two answers (conflict); 8 and 9 share a long answer; 10 and 11 leak
template markup; 12 an email; 13 a valid card, 14 a card failing Luhn; 15 a valid IBAN, 16 one failing mod-97;
17 a phone; 18 an answer of a zero-width space; 31 is far longer than the others.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from advisor.core.errors import InvalidInputError
from backends.common import audit as audit_module
from backends.common import groups as groups_module
from backends.common.audit import audit_examples, find_sensitive, mask_sensitive
from backends.common.data import load_examples, split_examples
from backends.common.groups import split_groups

pytest.importorskip("datasketch")

PLANTED = Path(__file__).parent / "fixtures" / "audit" / "planted.jsonl"
TRAIN_FIXTURES = Path(__file__).parent / "fixtures" / "train"


@pytest.fixture(scope="module")
def planted():
    return load_examples(PLANTED, for_preference=None)


@pytest.fixture(scope="module")
def report(planted):
    return audit_examples(planted, seq_len=200, eval_fraction=0.25, seed=0, n_sample=3)


def test_exact_duplicates_are_dropped_and_listed(planted, report) -> None:
    assert planted.dropped_duplicates == [(2, 1)]
    assert 2 not in planted.line_numbers and len(planted.records) == 30
    assert report.n_exact_duplicates == 1
    assert [(d.line, d.first_line) for d in report.exact_duplicates] == [(2, 1)]


def test_strict_refuses_duplicates() -> None:
    with pytest.raises(InvalidInputError, match=r"planted.jsonl:2: duplicate of line 1"):
        load_examples(PLANTED, for_preference=False, strict=True)


def test_near_duplicates_match_an_exhaustive_comparison(planted, report) -> None:
    assert report.n_near_duplicate_pairs == 2
    assert [(p.line_a, p.line_b) for p in report.near_duplicate_pairs] == [(1, 3), (4, 5)]
    # Independent count: every pair's exact Jaccard, no hashing; LSH must find the same pairs.
    shingles = [groups_module.shingles(groups_module.prompt_and_answers(r)[0] + "\n" + groups_module.final_answer(r))
                for r in planted.records]
    exhaustive = [(planted.line_numbers[a], planted.line_numbers[b])
                  for a in range(len(shingles)) for b in range(a + 1, len(shingles))
                  if len(shingles[a] & shingles[b]) / len(shingles[a] | shingles[b])
                  >= groups_module.NEAR_DUPLICATE_THRESHOLD]
    assert exhaustive == [(1, 3), (4, 5)]
    assert all(p.jaccard >= report.near_duplicate_threshold for p in report.near_duplicate_pairs)


def test_conflicts_empty_answers_and_template_leaks(report) -> None:
    assert report.n_conflicts == 1
    assert report.conflicts[0].lines == [6, 7] and report.conflicts[0].n_answers == 2
    assert report.n_empty_answers == 1 and [f.line for f in report.empty_answers] == [18]
    assert report.n_template_leaks == 2
    assert [(f.line, f.detail) for f in report.template_leaks] == [(10, "`### Assistant:`"), (11, "`<|assistant|>`")]


def test_sensitive_strings_are_counted_and_masked(report) -> None:
    assert report.sensitive_counts == {"email": 1, "phone": 1, "card": 1, "iban": 1}  # 14 and 16 fail their checks
    assert [(h.line, h.kind, h.masked) for h in report.sensitive] == [
        (12, "email", "j***@example.com"), (13, "card", "************1111"),
        (15, "iban", "DE****************3000"), (17, "phone", "**********58")]
    dumped = report.model_dump_json()
    for secret in ("jane.doe", "4111 1111 1111 1111", "DE89 3704", "7946 0958"):
        assert secret not in dumped


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("card 4111111111111111", ["card"]),
        ("card 4111-1111-1111-1112", []),  # Luhn fails
        ("IBAN DE89370400440532013000", ["iban"]),
        ("IBAN GB82 WEST 1234 5698 7654 32", ["iban"]),
        ("IBAN GB82 WEST 1234 5698 7654 33", []),  # mod-97 fails
        ("ring (415) 555-2671 or +1 415 555 2671", ["phone", "phone"]),
        ("VAT DE 318 442 907, order 1234567890, 2024-01-15, 10 20 30 40 50", []),
        ("write to a.b+c@mail.example.org", ["email"]),
    ],
)
def test_find_sensitive(text: str, kinds: list[str]) -> None:
    assert [kind for _, _, kind, _ in find_sensitive(text)] == kinds


def test_mask_sensitive_keeps_the_rest() -> None:
    assert mask_sensitive("pay 4111 1111 1111 1111 now") == "pay ************1111 now"


def test_lengths_without_a_tokenizer_say_so(planted, report) -> None:
    lengths = report.lengths
    assert lengths.counting == "approximate" and "characters per token" in lengths.counting_note
    record = json.loads(PLANTED.read_text().splitlines()[30])
    longest = sum(math.ceil(len(text) / audit_module.CHARS_PER_TOKEN) + audit_module.MESSAGE_OVERHEAD_TOKENS
                  for text in (record["prompt"], record["completion"]))
    assert (lengths.n_truncated, lengths.max_tokens, lengths.truncated_tokens) == (1, longest, longest - 200)
    counted = audit_examples(planted, seq_len=10, token_counts=[5] * 29 + [20])
    assert (counted.lengths.counting, counted.lengths.n_truncated, counted.lengths.truncated_tokens) == \
        ("tokenizer", 1, 10)


def test_grouped_split_keeps_related_records_together(planted, report) -> None:
    assert report.leakage.n_groups == 4  # 1+3, 4+5, 6+7 (one prompt), 8+9 (one long answer)
    assert report.leakage.n_grouped_examples == 8
    assert report.leakage.n_straddling_naive == 4  # this seed's plain split cuts every group
    assert report.leakage.n_straddling_grouped == 0
    train, held_out = split_examples(planted, 0.25, seed=0)
    assert len(held_out) == round(30 * 0.25) and len(train) + len(held_out) == 30
    groups = split_groups(planted.records)
    side = {json.dumps(r, sort_keys=True): r in held_out for r in planted.records}
    for group in set(groups):
        members = [planted.records[i] for i, g in enumerate(groups) if g == group]
        assert len({side[json.dumps(r, sort_keys=True)] for r in members}) == 1


def test_split_without_groups_is_the_plain_shuffle() -> None:
    import random

    examples = load_examples(TRAIN_FIXTURES / "sft_instruction.jsonl", for_preference=False)
    records = list(examples.records)
    random.Random(3).shuffle(records)
    assert split_examples(examples, 0.25, seed=3) == (records[12:], records[:12])


def test_sample_is_seeded_and_masked(planted, report) -> None:
    again = audit_examples(planted, seq_len=200, eval_fraction=0.25, seed=0, n_sample=3)
    assert [s.line for s in report.sample] == [s.line for s in again.sample] and len(report.sample) == 3
    every = audit_examples(planted, n_sample=100)
    assert len(every.sample) == 30
    assert all("jane.doe" not in s.prompt for s in every.sample)


def test_without_datasketch_near_duplicates_are_skipped_with_a_note(planted, monkeypatch) -> None:
    real = groups_module.importlib.util.find_spec
    monkeypatch.setattr(groups_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "datasketch" else real(name, *a))
    report = audit_examples(planted)
    assert report.n_near_duplicate_pairs is None and report.near_duplicate_pairs == []
    assert any("`datasketch` is not installed" in note for note in report.notes)
    assert report.n_conflicts == 1  # the rest still runs


def test_preference_files_skip_conflicts() -> None:
    report = audit_examples(load_examples(TRAIN_FIXTURES / "dpo_pairs.jsonl", for_preference=True))
    assert report.format == "preference" and report.n_conflicts == 0
    assert any("preference" in note for note in report.notes)
