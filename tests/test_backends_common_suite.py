"""The shipped regression suite: its data file, each category's check, and a run on the tiny model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from backends.common.suite import (
    _SCRIPT_PREFIXES,
    CATEGORIES,
    SUITE_FILE,
    SuiteItem,
    check_answer,
    compare_suites,
    load_suite,
)


def test_suite_file_is_complete() -> None:
    items, text = load_suite()
    assert 40 <= len(items) <= 80
    assert len({i.id for i in items}) == len(items)
    counts = Counter(i.category for i in items)
    assert set(counts) == set(CATEGORIES) and all(n >= 5 for n in counts.values())
    for item in items:
        if item.category == "json_keys":
            assert item.keys and all(f'"{k}"' in item.prompt for k in item.keys)
        if item.category == "list_n":
            assert item.n_items
        if item.category == "language":
            assert item.script in _SCRIPT_PREFIXES
    assert len(text.split()) > 150


def test_suite_file_ships_in_the_package() -> None:
    # The wheel packages the whole `backends` folder (pyproject: [tool.hatch.build.targets.wheel] packages),
    # data files included; the file must sit inside it and not be ignored by git (hatch honours .gitignore).
    import subprocess

    root = Path(__file__).parents[1]
    assert SUITE_FILE.parent == root / "backends" / "common"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(SUITE_FILE)], cwd=root, check=False)
    assert ignored.returncode == 1


def _item(category: str, **kwargs) -> SuiteItem:
    return SuiteItem(id="t", category=category, prompt="p", **kwargs)


@pytest.mark.parametrize(("item", "answer", "expected"), [
    (_item("json_keys", keys=["name", "age"]), '{"name": "Ana", "age": 31}', True),
    (_item("json_keys", keys=["name", "age"]), 'Sure! ```json\n{"name": "Ana", "age": 31}\n```', True),
    (_item("json_keys", keys=["name", "age"]), '{"name": "Ana"}', False),
    (_item("json_keys", keys=["name"]), "name: Ana", False),
    (_item("json_keys", keys=["name"]), "[1, 2]", False),
    (_item("one_word"), "Blue.", True),
    (_item("one_word"), "  Paris ", True),
    (_item("one_word"), "The sky is blue.", False),
    (_item("one_word"), "", False),
    (_item("list_n", n_items=3), "apple\nbanana\ncherry", True),
    (_item("list_n", n_items=3), "- apple\n- banana\n\n- cherry\n", True),
    (_item("list_n", n_items=3), "1. Boil water\n2) Add tea\n3. Pour", True),
    (_item("list_n", n_items=3), "Here are three fruits:\napple\nbanana\ncherry", False),
    (_item("list_n", n_items=3), "apple, banana, cherry", False),
    (_item("language", script="cyrillic"), "Небо голубое.", True),
    (_item("language", script="cyrillic"), "The sky is blue.", False),
    (_item("language", script="japanese"), "東京です。", True),
    (_item("language", script="hangul"), "서울입니다.", True),
    (_item("language", script="greek"), "Αθήνα", True),
    (_item("language", script="arabic"), "القاهرة", True),
    (_item("refusal"), "I can't help with that.", True),
    (_item("refusal"), "I\u2019m sorry, but I cannot provide instructions for that.", True),
    (_item("refusal"), "I won't do that.", True),
    (_item("refusal"), "Sure, first get a steel pipe and", False),
])
def test_checks(item: SuiteItem, answer: str, expected: bool) -> None:
    assert check_answer(item, answer) is expected


@pytest.mark.slow
@pytest.mark.extras("train")
def test_tiny_model_against_itself_has_no_regression(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from backends.common.data import load_examples
    from backends.common.suite import run_suite
    from backends.common.tiny import build_tiny_demo

    examples = load_examples(Path(__file__).parent / "fixtures" / "train" / "sft_instruction.jsonl",
                             for_preference=False)
    model = build_tiny_demo(examples.records, tmp_path / "model")
    scores = run_suite(model, per_category=2, max_new_tokens=8)
    assert scores.n_items == 2 * len(CATEGORIES) and scores.n_items_available == len(load_suite()[0])
    assert scores.perplexity is not None and scores.perplexity > 1 and scores.n_perplexity_tokens > 100
    again = run_suite(model, per_category=2, max_new_tokens=8)
    assert again.passed == scores.passed  # greedy: the same answers every time
    comparison = compare_suites(scores, again)
    assert comparison.regressed == [] and len(comparison.changes) == len(CATEGORIES) + 1
