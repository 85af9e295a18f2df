"""Measuring the answers' paths: JSONL records and tokens, preference pairs, a corpus folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.core.errors import InvalidInputError
from advisor.core.measure import CHARS_PER_TOKEN, measure_answers, measure_corpus, measure_jsonl
from advisor.core.models import Answers

FIXTURES = Path(__file__).parent / "fixtures"


def test_jsonl_counts_records_and_mean_tokens(tmp_path: Path) -> None:
    path = tmp_path / "ex.jsonl"
    path.write_text("\n".join([json.dumps({"instruction": "a" * 40, "output": "b" * 40}),
                               json.dumps({"messages": [{"role": "user", "content": "c" * 120}]}),
                               "not json", "", json.dumps([1, 2])]) + "\n")
    n, mean, bad = measure_jsonl(path, "examples_path")
    assert (n, bad) == (2, 2)
    # record 1: 80 characters of text + 1 joining space; record 2: 120 + role "user" + a space
    assert mean == round(((81) + (125)) / CHARS_PER_TOKEN / 2)


def test_preference_pairs_need_chosen_and_rejected() -> None:
    n, _, skipped = measure_jsonl(FIXTURES / "train" / "dpo_pairs.jsonl", "preferences_path", ("chosen", "rejected"))
    lines = [json.loads(x) for x in (FIXTURES / "train" / "dpo_pairs.jsonl").read_text().splitlines() if x.strip()]
    assert n == sum(1 for r in lines if "chosen" in r and "rejected" in r) and n > 0
    assert skipped == len(lines) - n


def test_corpus_counts_files_and_text_tokens_and_leaves_pdfs_unsized() -> None:
    root = FIXTURES / "rag" / "corpus"
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    n_docs, tokens, unsized = measure_corpus(root)
    assert n_docs == len(files)
    assert unsized == sum(1 for p in files if p.suffix == ".pdf")
    chars = sum(len(p.read_text(errors="replace")) for p in files if p.suffix != ".pdf")
    assert tokens == chars // CHARS_PER_TOKEN


@pytest.mark.parametrize("field", ["examples_path", "preferences_path", "corpus_path"])
def test_missing_path_is_an_input_error_naming_the_field(field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        measure_answers(Answers(goal=["style_format"], **{field: "/no/such/path"}))


def test_nothing_to_measure_gives_none() -> None:
    assert measure_answers(Answers(goal=["knowledge"])) is None
