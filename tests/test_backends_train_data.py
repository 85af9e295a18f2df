"""Data detection and validation (with line numbers), splitting, rendering and token lengths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError, InvalidInputError
from backends.common.data import detect_format, load_examples, split_examples
from backends.train.tokens import length_stats

FIXTURES = Path(__file__).parent / "fixtures" / "train"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"instruction": "a", "output": "b"}, "instruction"),
        ({"instruction": "a", "input": "x", "output": "b"}, "instruction"),
        ({"messages": []}, "chat"),
        ({"prompt": "a", "completion": "b"}, "prompt_completion"),
        ({"prompt": "a", "chosen": "b", "rejected": "c"}, "preference"),
        ({"text": "a"}, None),
    ],
)
def test_detect_format(record: dict, expected: str | None) -> None:
    assert detect_format(record) == expected


@pytest.mark.parametrize(
    ("name", "fmt", "n_records", "for_preference"),
    [
        ("sft_instruction.jsonl", "instruction", 48, False),
        ("sft_chat.jsonl", "chat", 12, False),
        ("sft_prompt_completion.jsonl", "prompt_completion", 12, False),
        ("dpo_pairs.jsonl", "preference", 40, True),
    ],
)
def test_load_good_files(name: str, fmt: str, n_records: int, for_preference: bool) -> None:
    examples = load_examples(FIXTURES / name, for_preference=for_preference)
    assert examples.format == fmt
    assert len(examples.records) == n_records
    assert examples.line_numbers[0] == 1


def test_instruction_input_joins_the_user_turn() -> None:
    record = load_examples(FIXTURES / "sft_instruction.jsonl", for_preference=False).records[3]
    assert record["messages"] == [{"role": "user", "content": "Add one to the number.\n\n3"},
                                  {"role": "assistant", "content": "4"}]


def test_every_bad_line_is_listed_with_its_number() -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_examples(FIXTURES / "bad_lines.jsonl", for_preference=False, strict=True)
    assert caught.value.problems == [
        "bad_lines.jsonl:2: missing field `output`",
        "bad_lines.jsonl:3: empty `output`",
        "bad_lines.jsonl:4: not valid JSON (Expecting value at column 1)",
        "bad_lines.jsonl:5: duplicate of line 1",
        "bad_lines.jsonl:6: expected a JSON object, got list",
        "bad_lines.jsonl:7: `output` must be a string, got int",
    ]
    # Without `strict` the duplicate is dropped, not an error; the malformed lines still are.
    with pytest.raises(InvalidInputError) as caught:
        load_examples(FIXTURES / "bad_lines.jsonl", for_preference=False)
    assert not any("duplicate" in p for p in caught.value.problems) and len(caught.value.problems) == 5


def test_an_exact_duplicate_is_dropped_and_counted(tmp_path: Path) -> None:
    lines = (FIXTURES / "sft_instruction.jsonl").read_text().splitlines()
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join([*lines, lines[3]]) + "\n")
    examples = load_examples(path, for_preference=False)
    assert len(examples.records) == len(lines) and examples.dropped_duplicates == [(len(lines) + 1, 4)]


def test_chat_roles_are_checked() -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_examples(FIXTURES / "bad_chat.jsonl", for_preference=False)
    problems = caught.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6"]
    assert "unknown role `bot`" in problems[0]
    assert "expected role `assistant`, got `user`" in problems[1]
    assert "`system` is only allowed as the first message" in problems[2]
    assert "last message must be from `assistant`" in problems[3]
    assert "non-empty list" in problems[4]


def test_identical_chosen_and_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}) + "\n")
    with pytest.raises(InvalidInputError, match="identical"):
        load_examples(path, for_preference=True)


def test_method_and_format_must_agree() -> None:
    with pytest.raises(AdvisorError, match="holds preference data"):
        load_examples(FIXTURES / "dpo_pairs.jsonl", for_preference=False)
    with pytest.raises(AdvisorError, match="holds instruction data"):
        load_examples(FIXTURES / "sft_instruction.jsonl", for_preference=True)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(AdvisorError, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl", for_preference=False)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(AdvisorError, match="is empty"):
        load_examples(tmp_path / "empty.jsonl", for_preference=False)
    (tmp_path / "other.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(InvalidInputError, match="no line has the fields"):
        load_examples(tmp_path / "other.jsonl", for_preference=False)


def test_split_is_deterministic_and_disjoint() -> None:
    examples = load_examples(FIXTURES / "sft_instruction.jsonl", for_preference=False)
    train, evaluation = split_examples(examples, 0.25, seed=3)
    again_train, again_eval = split_examples(examples, 0.25, seed=3)
    assert (train, evaluation) == (again_train, again_eval)
    assert len(evaluation) == 12 and len(train) == 36
    assert not {json.dumps(r) for r in train} & {json.dumps(r) for r in evaluation}


def test_split_refuses_too_few_examples(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    with pytest.raises(AdvisorError, match="too few"):
        split_examples(load_examples(path, for_preference=False), 0.5, seed=0)


def test_length_stats_counts_truncation() -> None:
    stats = length_stats([10, 20, 30, 40], seq_len=25)
    assert (stats.min_tokens, stats.max_tokens, stats.n_truncated) == (10, 40, 2)
    assert stats.truncated_tokens_fraction == pytest.approx((5 + 15) / 100)


def test_tokenize_masks_only_assistant_tokens() -> None:
    pytest.importorskip("transformers")
    from backends.common.tiny import build_tokenizer
    from backends.train.tokens import render_sample, tokenize_messages

    examples = load_examples(FIXTURES / "sft_chat.jsonl", for_preference=False)
    tokenizer = build_tokenizer(examples.records)
    messages = examples.records[0]["messages"]
    tokens = tokenize_messages(messages, tokenizer)
    learnt = tokenizer.decode([t for t, m in zip(tokens["input_ids"], tokens["completion_mask"], strict=True) if m])
    assert learnt == "City 0.</s>\nYes.</s>\n"
    assert render_sample(examples.records[0], tokenizer).startswith("<|system|>\nYou answer briefly.\n<|user|>")
