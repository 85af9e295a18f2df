"""`advisor ask` with several tasks: after n_tasks > 1 it takes each task's name and examples file."""

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
    next_question,
    parse_answer,
    parse_empty,
    relocate_paths,
)
from advisor.core.models import Answers

BY_KEY = {q.key: q for q in QUESTIONS}


def _files(folder: Path) -> tuple[Path, Path]:
    a, b = folder / "billing.jsonl", folder / "shipping.jsonl"
    for path in (a, b):
        path.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    return a, b


def _walk(typed: dict[str, str], previous: Answers | None = None) -> tuple[list[str], Answers]:
    defaults = defaults_from(previous)
    values: dict = {}
    asked = []
    while (q := next_question(values)) is not None:
        asked.append(q.key)
        text = typed.get(q.key, "")
        values[q.key] = parse_answer(q, text) if text else parse_empty(q, default_for(q, defaults))
    return asked, build_answers(values)


def test_the_tasks_question_comes_only_with_several_tasks(tmp_path: Path) -> None:
    a, b = _files(tmp_path)
    asked, answers = _walk({"goal": "style", "n_examples": "300"})
    assert "tasks" not in asked and answers.tasks == [] and answers.n_tasks == 1
    asked, answers = _walk({"goal": "style", "examples_path": str(a), "n_tasks": "2",
                            "tasks": f"billing={a}, shipping={b}"})
    assert asked.index("tasks") == asked.index("n_tasks") + 1
    assert [(t.name, t.examples_path) for t in answers.tasks] == [("billing", str(a)), ("shipping", str(b))]
    # The tasks' files replace the single file given above; their number is n_tasks.
    assert answers.examples_path is None and answers.n_tasks == 2
    asked, answers = _walk({"goal": "style", "n_examples": "300", "n_tasks": "40"})
    assert "tasks" in asked and answers.tasks == [] and answers.n_tasks == 40  # Enter: a count only


@pytest.mark.parametrize(("text", "message"), [
    ("billing", "is not name=file"),
    ("billing=", "is not name=file"),
    ("Billing=x.jsonl, b=y.jsonl", "must be lower-case letters"),
    ("billing={a}", "at least two tasks"),
    ("billing={a}, billing={b}", "a name of its own"),
    ("billing={a}, shipping={missing}", "does not exist"),
])
def test_bad_task_lists_are_asked_again(tmp_path: Path, text: str, message: str) -> None:
    a, b = _files(tmp_path)
    with pytest.raises(AnswerError, match=message):
        parse_answer(BY_KEY["tasks"], text.format(a=a, b=b, missing=tmp_path / "missing.jsonl"))


def test_written_read_back_and_offered_again(tmp_path: Path) -> None:
    a, b = _files(tmp_path)
    answers = build_answers({"goal": ["style_format"], "n_tasks": 2,
                             "tasks": parse_answer(BY_KEY["tasks"], f"billing={a}, shipping={b}")})
    here = relocate_paths(answers, tmp_path, tmp_path)
    assert [t.examples_path for t in here.tasks] == ["billing.jsonl", "shipping.jsonl"]
    elsewhere = relocate_paths(answers, tmp_path / "out", tmp_path)
    assert [t.examples_path for t in elsewhere.tasks] == [str(a), str(b)]
    data = yaml.safe_load(answers_yaml(here))
    assert data["tasks"] == [{"name": "billing", "examples_path": "billing.jsonl"},
                             {"name": "shipping", "examples_path": "shipping.jsonl"}]
    previous = defaults_from(answers)
    shown = format_value(BY_KEY["tasks"], default_for(BY_KEY["tasks"], previous))
    assert shown == f"billing={a}, shipping={b}"
    assert parse_answer(BY_KEY["tasks"], shown) == [{k: t[k] for k in ("name", "examples_path")}
                                                    for t in previous["tasks"]]
    assert _walk({"goal": "style"}, answers)[1] == answers  # Enter everywhere gives the file back
