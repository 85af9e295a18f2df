"""The questionnaire's pure layer: which questions are asked for a profile, defaults, parsing and the answers file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advisor.app.questionnaire import (
    QUESTIONS,
    AnswerError,
    answers_yaml,
    build_answers,
    default_for,
    defaults_from,
    format_value,
    help_for,
    next_question,
    parse_answer,
    parse_empty,
    parse_yes_no,
    relocate_paths,
)
from advisor.core.models import Answers

BY_KEY = {q.key: q for q in QUESTIONS}
CORPUS_KEYS = {"corpus_path", "n_documents", "corpus_tokens", "freshness", "needs_citations"}
PAIR_KEYS = {"preferences_path", "n_preference_pairs"}
GPU_KEYS = {"gpu_type", "gpu_count"}


def _walk(typed: dict[str, str], previous: Answers | None = None) -> tuple[list[str], Answers]:
    """Answer every question that comes up: the typed text when given, else Enter (the default)."""
    defaults = defaults_from(previous)
    values: dict = {}
    asked = []
    while (q := next_question(values)) is not None:
        asked.append(q.key)
        text = typed.get(q.key, "")
        values[q.key] = parse_answer(q, text) if text else parse_empty(q, default_for(q, defaults))
    return asked, build_answers(values)


def test_style_only_without_gpu_skips_corpus_pairs_and_gpu_questions() -> None:
    asked, answers = _walk({"goal": "2", "n_examples": "300", "model_access": "1"})
    assert not CORPUS_KEYS & set(asked)
    assert not PAIR_KEYS & set(asked)
    assert not GPU_KEYS & set(asked)
    assert {"has_preference_pairs", "has_gpu", "base_model", "data_quality", "mean_example_tokens"} <= set(asked)
    assert answers.goal == ["style_format"] and answers.n_examples == 300 and answers.gpu is None


def test_knowledge_and_safety_ask_corpus_and_pairs_but_not_whether_pairs_exist(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    asked, answers = _walk({"goal": "knowledge, safety_alignment", "corpus_path": "docs", "n_preference_pairs": "500",
                            "freshness": "weekly", "needs_citations": "yes"})
    assert {"corpus_path", "freshness", "needs_citations", "preferences_path", "n_preference_pairs"} <= set(asked)
    assert "has_preference_pairs" not in asked
    assert "n_documents" not in asked and "corpus_tokens" not in asked  # measured from the folder
    assert answers.corpus_path == "docs" and answers.freshness == "weekly" and answers.needs_citations is True
    assert answers.n_preference_pairs == 500


def test_saying_you_have_pairs_asks_for_them() -> None:
    asked, answers = _walk({"goal": "reasoning", "has_preference_pairs": "y", "n_preference_pairs": "2k"})
    assert PAIR_KEYS <= set(asked)
    assert answers.n_preference_pairs == 2000


def test_closed_api_skips_base_model_and_owned_gpus_ask_type_and_count() -> None:
    asked, answers = _walk({"goal": "1", "model_access": "closed_api_no_tuning", "api_model": "gpt-5.4",
                            "has_gpu": "yes", "gpu_type": "h100", "gpu_count": "8"})
    assert "base_model" not in asked and GPU_KEYS <= set(asked)
    assert answers.model_access == "closed_api_no_tuning" and answers.api_model == "gpt-5.4"
    assert answers.gpu is not None and (answers.gpu.type, answers.gpu.count) == ("h100-80gb", 8)


def test_an_examples_file_replaces_the_count_and_size_questions(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"input": "a", "output": "b"}\n')
    asked, answers = _walk({"goal": "2", "examples_path": "train.jsonl", "data_quality": "noisy"})
    assert "n_examples" not in asked and "mean_example_tokens" not in asked and "data_quality" in asked
    assert answers.examples_path == "train.jsonl" and answers.data_quality == "noisy"


def test_no_examples_skip_quality_and_size() -> None:
    asked, _ = _walk({"goal": "2"})
    assert "data_quality" not in asked and "mean_example_tokens" not in asked


def test_every_answers_field_has_a_question_and_every_question_a_help_line() -> None:
    keys = {q.key for q in QUESTIONS}
    assert set(Answers.model_fields) - {"gpu"} <= keys
    assert {"has_gpu", "gpu_type", "gpu_count"} <= keys
    assert all(help_for(q) for q in QUESTIONS)


def test_defaults_without_and_with_an_earlier_file() -> None:
    assert default_for(BY_KEY["output_tokens"], {}) == 300
    assert default_for(BY_KEY["model_access"], {}) == "open_weights"
    assert default_for(BY_KEY["goal"], {}) is None
    earlier = Answers(goal=["knowledge"], output_tokens=120, gpu={"type": "l4", "count": 2}, n_preference_pairs=10)
    previous = defaults_from(earlier)
    assert default_for(BY_KEY["output_tokens"], previous) == 120
    assert (previous["has_gpu"], previous["gpu_type"], previous["gpu_count"]) == (True, "l4", 2)
    assert previous["has_preference_pairs"] is True


def test_enter_everywhere_with_an_earlier_file_gives_it_back() -> None:
    earlier = Answers(goal=["knowledge", "style_format"], task="faq", n_documents=40, freshness="daily",
                      base_model="qwen2.5-7b", gpu={"type": "a100-80gb", "count": 2}, budget_usd=50,
                      requests_per_day=1000, latency_p95_ms=900)
    assert _walk({}, earlier)[1] == earlier


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("n_examples", "1,200", 1200),
        ("n_examples", "20k", 20_000),
        ("corpus_tokens", "1.5M", 1_500_000),
        ("budget_usd", "$300", 300.0),
        ("requests_per_day", "2.5", 2.5),
        ("goal", "1,3", ["knowledge", "reasoning"]),
        ("goal", "style safety", ["style_format", "safety_alignment"]),
        ("goal", "3 1", ["knowledge", "reasoning"]),
        ("model_access", "2", "closed_api_with_tuning"),
        ("model_access", "open", "open_weights"),
        ("freshness", "d", "daily"),
        ("needs_citations", "y", True),
        ("needs_citations", "No", False),
        ("api_model", "1", None),
        ("gpu_type", "A10G", "a10g-24gb"),
        ("base_model", "meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
        ("base_model", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
        ("base_model", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("requests_per_day", "50k/month", 50_000 / 30),
        ("requests_per_day", "300 per hour", 7200.0),
        ("requests_per_day", "7k/week", 1000.0),
        ("languages", "en, DE ja", ["en", "de", "ja"]),
        ("usable_fraction", "70%", 0.7),
        ("tried", "1 rag", ["zero_shot", "rag"]),
        ("latency_p95_ms", "none", None),
        ("task", "  answer tickets  ", "answer tickets"),
    ],
)
def test_parse_answer(key: str, text: str, expected: object) -> None:
    assert parse_answer(BY_KEY[key], text) == expected


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("n_examples", "-5", "must be 0 or more (got -5)"),
        ("gpu_count", "0", "must be at least 1 (got 0)"),
        ("n_examples", "2.5", "type a whole number"),
        ("n_examples", "many", "`many` is not a number"),
        ("budget_usd", "nan", "not a finite number"),
        ("goal", "5", "`5` is not a choice: type a number from 1 to 4"),
        ("model_access", "closed", "`closed` is ambiguous"),
        ("freshness", "hourly", "`hourly` is not a choice"),
        ("gpu_type", "a100-80", "unknown GPU `a100-80`; did you mean a100-80gb"),
        ("gpu_type", "zzz", "known: h200"),
        ("base_model", "lama-3.1-8", "did you mean llama-3.1-8b"),
        ("base_model", "./no-such-model", "`./no-such-model` does not exist"),
        ("base_model", "someorg/some-model", "neither a catalog model nor a variant of one"),
        ("requests_per_day", "50k/fortnight", "`fortnight` is not a period"),
        ("languages", "english", "ISO 639-1 codes"),
        ("usable_fraction", "1.5", "at most 1"),
        ("n_examples", "", "an answer is needed"),
    ],
)
def test_parse_answer_errors(key: str, text: str, message: str) -> None:
    with pytest.raises(AnswerError) as info:
        parse_answer(BY_KEY[key], text)
    assert message in str(info.value)


def test_paths_must_exist_and_be_the_right_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples.jsonl").write_text("{}\n")
    (tmp_path / "kb").mkdir()
    with pytest.raises(AnswerError, match=r"`exampels.jsonl` does not exist .*did you mean `examples.jsonl`"):
        parse_answer(BY_KEY["examples_path"], "exampels.jsonl")
    with pytest.raises(AnswerError, match="is a folder"):
        parse_answer(BY_KEY["examples_path"], "kb")
    with pytest.raises(AnswerError, match="is a file"):
        parse_answer(BY_KEY["corpus_path"], "examples.jsonl")
    assert parse_answer(BY_KEY["corpus_path"], "kb") == "kb"


def test_enter_on_an_empty_line() -> None:
    assert parse_empty(BY_KEY["latency_p95_ms"], None) is None  # optional: no target
    assert parse_empty(BY_KEY["api_model"], None) is None  # a menu whose default is "the catalog's default"
    assert parse_empty(BY_KEY["output_tokens"], 300) == 300
    with pytest.raises(AnswerError, match="an answer is needed"):
        parse_empty(BY_KEY["gpu_type"], None)
    with pytest.raises(AnswerError, match="does not exist"):  # a stale path from an earlier file is checked again
        parse_empty(BY_KEY["examples_path"], "/no/such/file.jsonl")


def test_yes_no() -> None:
    assert parse_yes_no("", default=False) is False and parse_yes_no("", default=True) is True
    assert parse_yes_no(" Y ", default=False) is True and parse_yes_no("no", default=True) is False
    with pytest.raises(AnswerError, match="answer `y` or `n`"):
        parse_yes_no("maybe", default=False)


@pytest.mark.parametrize("key", ["goal", "n_examples", "budget_usd", "requests_per_day", "model_access", "has_gpu",
                                 "api_model", "gpu_type"])
def test_shown_defaults_parse_back(key: str) -> None:
    q = BY_KEY[key]
    value = {"goal": ["knowledge", "reasoning"], "n_examples": 12_000, "budget_usd": 1500.0,
             "requests_per_day": 2.5, "model_access": "closed_api_no_tuning", "has_gpu": True,
             "api_model": "gpt-5.4", "gpu_type": "l40s"}[key]
    assert parse_answer(q, format_value(q, value)) == value


def test_answers_yaml_round_trips() -> None:
    answers = build_answers({"goal": ["knowledge"], "task": "faq: über alles", "n_documents": 10,
                             "has_gpu": True, "gpu_type": "l4", "gpu_count": 2, "latency_p95_ms": None})
    text = answers_yaml(answers)
    assert text.startswith("# Written by `advisor ask`")
    data = yaml.safe_load(text)
    assert "latency_p95_ms" not in data and data["gpu"] == {"type": "l4", "count": 2}
    assert "freshness" not in data  # not asked: the schema default holds
    assert Answers.model_validate(data) == answers


def test_relocate_paths_relative_beside_the_file_absolute_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    answers = Answers(goal=["knowledge"], corpus_path="kb", base_model="llama-3.1-8b")
    assert relocate_paths(answers, tmp_path, tmp_path) == answers
    moved = relocate_paths(answers, tmp_path / "out", tmp_path)
    assert moved.corpus_path == str(tmp_path / "kb") and moved.base_model == "llama-3.1-8b"
    reopened = answers.model_copy(update={"corpus_path": str(tmp_path / "kb")})  # as `--from` reads it back
    assert relocate_paths(reopened, tmp_path, tmp_path).corpus_path == "kb"
