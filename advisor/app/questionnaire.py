"""The interactive questions as data: their order, defaults, when each applies, and how one typed answer parses.

No terminal here: `advisor.app.commands.ask` renders a `Question` and reads keys. The flow is driven by
`next_question(values)`, where `values` maps each question answered so far to its parsed value; a question that
does not apply to those values is skipped and leaves its `Answers` field at the schema default.
`parse_answer(question, text)` turns one typed answer into a value or raises `AnswerError` with the message to
show; `build_answers(values)` makes the validated `Answers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from advisor.core.models import Answers, GpuAnswer

__all__ = [
    "AnswerError",
    "Choice",
    "Question",
    "QUESTIONS",
    "answers_yaml",
    "choices_of",
    "build_answers",
    "default_for",
    "defaults_from",
    "format_value",
    "help_for",
    "next_question",
    "parse_answer",
    "parse_empty",
    "parse_yes_no",
    "relocate_paths",
]

Kind = Literal["choice", "multi", "int", "float", "text", "path", "gpu", "model"]
Values = Mapping[str, Any]
NONE_WORDS = ("none", "-")  # typed to clear an optional answer that has a default
PATH_FIELDS = ("examples_path", "preferences_path", "corpus_path", "eval_questions_path")
SUFFIXES = {"k": 1_000, "m": 1_000_000}  # "20k requests", "1.5M tokens"


class AnswerError(ValueError):
    """A typed answer that cannot be used; the message is shown under the question, which is asked again."""


@dataclass(frozen=True)
class Choice:
    """One entry of a menu: the value stored, and a few words on what it means."""

    value: Any
    label: str = ""

    @property
    def name(self) -> str:
        return {True: "yes", False: "no", None: "default"}.get(self.value, str(self.value))


@dataclass(frozen=True)
class Question:
    """One question: `key` is an `Answers` field, or one of the helper keys `build_answers` folds in."""

    key: str
    text: str
    kind: Kind
    choices: tuple[Choice, ...] = ()
    default: Any = None
    optional: bool = False  # an empty answer means None (the schema's "unknown" / "the advisor picks")
    minimum: float | None = None
    path_kind: Literal["file", "dir"] = "file"
    help: str = ""  # empty: the `Answers` field's description
    applies: Callable[[Values], bool] = lambda values: True


def _goal(name: str) -> Callable[[Values], bool]:
    return lambda values: name in values.get("goal", ())


def _pairs_apply(values: Values) -> bool:
    return "safety_alignment" in values.get("goal", ()) or bool(values.get("has_preference_pairs"))


def _has_examples(values: Values) -> bool:
    return bool(values.get("examples_path") or values.get("n_examples"))


YES_NO = (Choice(True), Choice(False))
GOALS = (
    Choice("knowledge", "facts the model lacks: your documents, product data"),
    Choice("style_format", "tone, structure, output format"),
    Choice("reasoning", "a task it does badly"),
    Choice("safety_alignment", "refusals, preferences between answers"),
)
ACCESS = (
    Choice("open_weights", "open weights you can run (Llama, Qwen, Mistral, ...)"),
    Choice("closed_api_with_tuning", "a closed API that offers fine-tuning"),
    Choice("closed_api_no_tuning", "a closed API, prompting only"),
)
FRESHNESS = tuple(Choice(f) for f in ("static", "quarterly", "monthly", "weekly", "daily", "realtime"))
QUALITY = (Choice("clean", "checked and consistent"), Choice("noisy", "unchecked or inconsistent"))


def _api_choices() -> tuple[Choice, ...]:
    from advisor.core.catalog import load_api_prices, resolve_api_model

    rows = [Choice(p.name, f"{p.provider}, ${p.input_per_mtok_usd:g}/${p.output_per_mtok_usd:g} per M tokens in/out")
            for p in load_api_prices().values()]
    return (Choice(None, f"the catalog's default ({resolve_api_model(None).name})"), *rows)


QUESTIONS: tuple[Question, ...] = (
    Question("goal", "What must the model do better?", "multi", GOALS),
    Question("task", "Describe the task in one line", "text", default=""),
    Question("examples_path", "Examples file (JSON Lines)? Enter: none", "path", optional=True,
             help="Input→output examples, one JSON object per line; when given, they are counted and measured"),
    Question("n_examples", "How many input→output examples do you have?", "int", default=0, minimum=0,
             applies=lambda v: not v.get("examples_path")),
    Question("data_quality", "Are the examples checked and consistent?", "choice", QUALITY, default="clean",
             applies=_has_examples),
    Question("mean_example_tokens", "About how many tokens is one example? Enter: assumed", "int",
             optional=True, minimum=1, applies=lambda v: bool(v.get("n_examples")) and not v.get("examples_path")),
    Question("has_preference_pairs", "Do you have preference pairs (a chosen and a rejected answer)?", "choice",
             YES_NO, default=False, help="Pairs are what DPO trains on",
             applies=lambda v: not _goal("safety_alignment")(v)),
    Question("preferences_path", "Preference pairs file (JSON Lines)? Enter: none", "path", optional=True,
             applies=_pairs_apply),
    Question("n_preference_pairs", "How many preference pairs do you have?", "int", default=0, minimum=0,
             applies=lambda v: _pairs_apply(v) and not v.get("preferences_path")),
    Question("corpus_path", "Folder of documents with the knowledge? Enter: none", "path", optional=True,
             path_kind="dir", applies=_goal("knowledge")),
    Question("n_documents", "How many documents hold the knowledge?", "int", default=0, minimum=0,
             applies=lambda v: _goal("knowledge")(v) and not v.get("corpus_path")),
    Question("corpus_tokens", "About how many tokens do they hold in all? Enter: unknown", "int", optional=True,
             minimum=0, applies=lambda v: bool(v.get("n_documents")) and not v.get("corpus_path")),
    Question("eval_questions_path", "Labelled questions to evaluate retrieval (JSON Lines)? Enter: none", "path",
             optional=True, applies=lambda v: bool(v.get("corpus_path"))),
    Question("freshness", "How often does the knowledge change?", "choice", FRESHNESS, default="static",
             applies=_goal("knowledge")),
    Question("needs_citations", "Must answers cite their sources?", "choice", YES_NO, default=False,
             applies=_goal("knowledge")),
    Question("model_access", "Which kind of model can you use?", "choice", ACCESS, default="open_weights"),
    Question("base_model", "Which open-weight model? Enter: the advisor picks", "model", optional=True,
             applies=lambda v: v.get("model_access", "open_weights") == "open_weights"),
    Question("api_model", "Which API model do you use, or want costs compared with?", "choice"),
    Question("has_gpu", "Do you own (or have reserved) GPUs for this work?", "choice", YES_NO, default=False,
             help="No: renting cloud GPUs is considered instead"),
    Question("gpu_type", "Which GPU?", "gpu", help=GpuAnswer.model_fields["type"].description or "",
             applies=lambda v: bool(v.get("has_gpu"))),
    Question("gpu_count", "How many of them may one job use?", "int", default=1, minimum=1,
             help="GPUs available to one training job", applies=lambda v: bool(v.get("has_gpu"))),
    Question("allow_renting", "May renting cloud GPUs be considered?", "choice", YES_NO, default=True),
    Question("budget_usd", "One-time budget for training and set-up, in USD?", "float", default=0, minimum=0),
    Question("requests_per_day", "How many requests per day do you expect?", "float", default=0, minimum=0),
    Question("latency_p95_ms", "p95 latency target in milliseconds? Enter: no target", "int", optional=True,
             minimum=1),
    Question("prompt_tokens", "How many tokens is today's prompt? Enter: assumed", "int", optional=True, minimum=1),
    Question("output_tokens", "How many tokens is a typical answer?", "int", default=300, minimum=1),
)


def choices_of(question: Question) -> tuple[Choice, ...]:
    """The menu entries of a choice or multi question (the API list is read from the catalog)."""
    return _api_choices() if question.key == "api_model" else question.choices


def help_for(question: Question) -> str:
    """The one-line help under a question: its own, else the `Answers` field's description."""
    field = Answers.model_fields.get(question.key)
    return question.help or (field.description if field and field.description else "")


def next_question(values: Values) -> Question | None:
    """The first question not yet answered that applies to the answers so far; None when done."""
    return next((q for q in QUESTIONS if q.key not in values and q.applies(values)), None)


def defaults_from(answers: Answers | None) -> dict[str, Any]:
    """Per-question defaults taken from an earlier answers file (`advisor ask --from`)."""
    if answers is None:
        return {}
    previous = answers.model_dump()
    previous["has_gpu"] = answers.gpu is not None
    previous["has_preference_pairs"] = bool(answers.n_preference_pairs or answers.preferences_path)
    if answers.gpu is not None:
        previous["gpu_type"], previous["gpu_count"] = answers.gpu.type, answers.gpu.count
    return previous


def default_for(question: Question, previous: Values) -> Any:
    """What Enter takes: the earlier file's value when there is one, else the question's default."""
    return previous.get(question.key, question.default)


def format_value(question: Question, value: Any) -> str:
    """A value as the user would type it (`parse_answer` reads it back)."""
    if question.kind == "choice":
        return next((c.name for c in choices_of(question) if c.value == value), str(value))
    if value is None:
        return ""
    if question.kind == "multi":
        return ", ".join(value)
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def parse_answer(question: Question, text: str) -> Any:
    """Turn one typed answer into the value stored for `question`.

    Args:
        question: The question asked.
        text: What was typed (not empty: Enter on an empty line takes `default_for` instead).

    Returns:
        The value: a choice's value, a list of goals, a number, a path as typed, a catalog GPU id, or None
        when an optional answer is cleared with `none`.

    Raises:
        AnswerError: The text does not answer the question; the message says what is expected.
    """
    text = text.strip()
    if question.optional and text.lower() in NONE_WORDS:
        return None
    if not text:
        raise AnswerError("an answer is needed here")
    match question.kind:
        case "choice":
            return _parse_choice(choices_of(question), text)
        case "multi":
            return _parse_multi(choices_of(question), text)
        case "int" | "float":
            return _parse_number(text, question.kind == "int", question.minimum)
        case "path":
            return _parse_path(text, question.path_kind)
        case "gpu":
            return _parse_gpu(text)
        case "model":
            return _parse_model(text)
    return text


def parse_empty(question: Question, default: Any) -> Any:
    """What Enter on an empty line means: the default, checked again where it names a path, GPU or model.

    Raises:
        AnswerError: No default and the question needs an answer, or the default no longer holds.
    """
    if default is None:
        if question.optional or question.kind == "choice":
            return None
        menu = ": space toggles, Enter confirms, or type numbers like 1,3" if question.kind == "multi" else ""
        raise AnswerError(f"an answer is needed here{menu}")
    if question.kind in ("path", "gpu", "model"):
        return parse_answer(question, str(default))
    return default


def parse_yes_no(text: str, default: bool) -> bool:
    """A y/N confirmation: empty takes `default`."""
    word = text.strip().lower()
    if not word:
        return default
    if word in ("y", "yes"):
        return True
    if word in ("n", "no"):
        return False
    raise AnswerError(f"answer `y` or `n` (got `{text.strip()}`)")


def _pick(choices: tuple[Choice, ...], token: str) -> Choice:
    if token.isdigit():
        if 1 <= int(token) <= len(choices):
            return choices[int(token) - 1]
        raise AnswerError(f"`{token}` is not a choice: type a number from 1 to {len(choices)}")
    matches = [c for c in choices if c.name.lower().startswith(token.lower())]
    exact = [c for c in matches if c.name.lower() == token.lower()]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    names = ", ".join(f"`{c.name}`" for c in (matches or choices))
    raise AnswerError(f"`{token}` is {'ambiguous' if matches else 'not a choice'}: type a number or one of {names}")


def _parse_choice(choices: tuple[Choice, ...], text: str) -> Any:
    return _pick(choices, text).value


def _parse_multi(choices: tuple[Choice, ...], text: str) -> list[Any]:
    tokens = [t for t in re.split(r"[,\s]+", text) if t]
    picked = {_pick(choices, t).value for t in tokens}
    if not picked:
        raise AnswerError("choose at least one: space toggles, Enter confirms, or type numbers like 1,3")
    return [c.value for c in choices if c.value in picked]


def _parse_number(text: str, integer: bool, minimum: float | None) -> int | float:
    cleaned = text.replace(",", "").replace("_", "").replace(" ", "").lstrip("$")
    scale = SUFFIXES.get(cleaned[-1:].lower(), 1)
    if scale != 1:
        cleaned = cleaned[:-1]
    try:
        number = float(cleaned) * scale
    except ValueError:
        raise AnswerError(f"`{text}` is not a number: type digits, e.g. {'1000' if integer else '250.5'}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise AnswerError(f"`{text}` is not a finite number")
    if integer and not number.is_integer():
        raise AnswerError(f"type a whole number (got {text})")
    if minimum is not None and number < minimum:
        floor = "0 or more" if minimum == 0 else f"at least {minimum:g}"
        raise AnswerError(f"must be {floor} (got {text})")
    return int(number) if integer else number


def _parse_path(text: str, kind: Literal["file", "dir"]) -> str:
    import difflib

    path = Path(text).expanduser()
    problem = ""
    if not path.exists():
        parent = path.parent if path.parent.is_dir() else None
        near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir()], n=3) if parent else []
        hint = f"; did you mean {', '.join(f'`{parent / n}`' for n in near)}?" if parent and near else ""
        problem = f"`{text}` does not exist (relative paths start at `{Path.cwd()}`){hint}"
    elif kind == "file" and not path.is_file():
        problem = f"`{text}` is a folder: give the JSON Lines file"
    elif kind == "dir" and not path.is_dir():
        problem = f"`{text}` is a file: give the folder that holds the documents"
    if problem:
        raise AnswerError(problem)
    return str(path)


def _parse_gpu(text: str) -> str:
    from advisor.core.catalog import resolve_gpu
    from advisor.core.errors import UnknownNameError

    try:
        return resolve_gpu(text).name
    except UnknownNameError as exc:
        if exc.suggestions:
            raise AnswerError(f"unknown GPU `{text}`; did you mean {', '.join(exc.suggestions)}?") from None
        from advisor.core.catalog import load_gpus

        raise AnswerError(f"unknown GPU `{text}`; known: {', '.join(load_gpus())}") from None


def _parse_model(text: str) -> str:
    import difflib

    from advisor.core.catalog import load_model_rows

    index = {}
    for row in load_model_rows():
        for key in (row["name"], row["hf_id"], *row.get("aliases", [])):
            index[str(key).lower()] = row["name"]
    if text.lower() in index:
        return index[text.lower()]
    if Path(text).expanduser().exists():
        return text
    if text.startswith((".", "/", "~")) or text.endswith(".json"):
        raise AnswerError(f"`{text}` does not exist: give a model folder or its config.json")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        return text  # a Hugging Face id: checked when the recommendation reads its config.json
    names = sorted({row["name"] for row in load_model_rows()})
    near = difflib.get_close_matches(text.lower(), names, n=3, cutoff=0.5)
    tip = f"did you mean {', '.join(near)}?" if near else "give a Hugging Face id (org/name) or a path"
    raise AnswerError(f"unknown model `{text}`; {tip} (`advisor models` lists them)")


def build_answers(values: Values) -> Answers:
    """The validated `Answers` from the questions that were asked; skipped ones keep the schema default.

    Raises:
        pydantic.ValidationError: A combination of answers the schema rejects.
    """
    data = {k: v for k, v in values.items() if k in Answers.model_fields and v is not None}
    if values.get("has_gpu"):
        data["gpu"] = {"type": values["gpu_type"], "count": values.get("gpu_count", 1)}
    return Answers.model_validate(data)


def relocate_paths(answers: Answers, answers_dir: Path, cwd: Path) -> Answers:
    """Write data paths so that they hold whether a reader takes them from the file's folder or from `cwd`.

    Beside the file (the usual case, `answers_dir` is `cwd`), paths under it become relative to it; anywhere
    else, they become absolute. A base model is a path only when it exists; a catalog name or a Hub id stays.
    """
    import os

    here, cwd = answers_dir.resolve() == cwd.resolve(), cwd.resolve()
    update = {}
    for field in (*PATH_FIELDS, "base_model"):
        value = getattr(answers, field)
        full = (cwd / Path(value).expanduser()).resolve() if value else None
        if full is None or not full.exists() or (field == "base_model" and here):
            continue
        update[field] = os.path.relpath(full, cwd) if here and full.is_relative_to(cwd) else str(full)
    return answers.model_copy(update=update)


def answers_yaml(answers: Answers) -> str:
    """The answers file's text: the fields that were answered (skipped ones, and None, are their defaults)."""
    import yaml

    data = answers.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return "# Written by `advisor ask`; edit freely, then run `advisor recommend` on this file.\n" + body
