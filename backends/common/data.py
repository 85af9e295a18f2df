"""Training data: detect the JSON Lines format, validate every line, normalise, split.

Formats (one JSON object per line; other keys are ignored):

- ``instruction``: ``instruction``, optional ``input``, ``output`` (Alpaca style)
- ``chat``: ``messages``, a list of ``{"role", "content"}`` with roles system/user/assistant
- ``prompt_completion``: ``prompt``, ``completion``
- ``preference``: ``prompt``, ``chosen``, ``rejected`` (DPO)

Supervised formats are normalised to chat ``messages``; preference pairs stay as three strings. Exact duplicates
(the same normalised record twice) are dropped and counted, the first copy kept; ``strict=True`` refuses them.
The split keeps groups of related records (``backends.common.groups.split_groups``) on one side. Pure Python:
nothing heavy is imported here, so ``advisor train check`` can report bad lines before loading any library.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.models import Model

__all__ = ["DataFormat", "Examples", "detect_format", "held_out_indices", "load_examples", "split_examples"]

DataFormat = Literal["instruction", "chat", "prompt_completion", "preference"]

# Checked in this order: `preference` before `prompt_completion` because both have `prompt`.
FORMAT_FIELDS: dict[DataFormat, tuple[str, ...]] = {
    "preference": ("prompt", "chosen", "rejected"),
    "chat": ("messages",),
    "instruction": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
}
ROLES = ("system", "user", "assistant")
# More bad lines than this are summarised, so a wrong file does not flood the terminal.
MAX_PROBLEMS_SHOWN = 50


class Examples(Model):
    """Validated examples of one file, normalised; `line_numbers[i]` is the 1-based line of `records[i]`."""

    path: str = Field(description="The file they came from")
    format: DataFormat = Field(description="Format detected from the fields")
    records: list[dict] = Field(description="`{messages}` for supervised data, `{prompt, chosen, rejected}` for DPO")
    line_numbers: list[int] = Field(description="Line of each record in the file, 1-based")
    dropped_duplicates: list[tuple[int, int]] = Field(
        default_factory=list, description="(line dropped, line of the copy kept) for each exact duplicate, 1-based")


def detect_format(record: dict) -> DataFormat | None:
    """The format whose required fields `record` has, or None when it matches none."""
    for name, fields in FORMAT_FIELDS.items():
        if all(field in record for field in fields):
            return name
    return None


def _check_text(record: dict, field: str, *, required: bool = True) -> str | None:
    if field not in record:
        return f"missing field `{field}`" if required else None
    value = record[field]
    if not isinstance(value, str):
        return f"`{field}` must be a string, got {type(value).__name__}"
    if required and not value.strip():
        return f"empty `{field}`"
    return None


def _check_messages(messages: object) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "`messages` must be a non-empty list"
    expected = "user"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            return f"messages[{i}] must be an object with `role` and `content`"
        role, content = message["role"], message["content"]
        if role not in ROLES:
            return f"messages[{i}]: unknown role `{role}` (expected one of {', '.join(ROLES)})"
        if not isinstance(content, str) or not content.strip():
            return f"messages[{i}]: empty `content`"
        if role == "system":
            if i:
                return f"messages[{i}]: `system` is only allowed as the first message"
            continue
        if role != expected:
            return f"messages[{i}]: expected role `{expected}`, got `{role}` (turns must alternate user/assistant)"
        expected = "assistant" if role == "user" else "user"
    if messages[-1]["role"] != "assistant":
        return "the last message must be from `assistant` (nothing to learn otherwise)"
    return None


def _normalise(record: dict, fmt: DataFormat) -> tuple[dict | None, str | None]:
    """Validate one record against `fmt`; return (normalised record, None) or (None, reason)."""
    if fmt == "chat":
        problem = _check_messages(record.get("messages")) if "messages" in record else "missing field `messages`"
        if problem:
            return None, problem
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in record["messages"]]}, None
    if fmt == "instruction":
        problem = _check_text(record, "instruction") or _check_text(record, "output")
        problem = problem or _check_text(record, "input", required=False)
        if problem:
            return None, problem
        user = record["instruction"] + (f"\n\n{record['input']}" if record.get("input", "").strip() else "")
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]}, None
    if fmt == "prompt_completion":
        problem = _check_text(record, "prompt") or _check_text(record, "completion")
        if problem:
            return None, problem
        messages = [{"role": "user", "content": record["prompt"]}, {"role": "assistant", "content": record["completion"]}]
        return {"messages": messages}, None
    problem = _check_text(record, "prompt") or _check_text(record, "chosen") or _check_text(record, "rejected")
    if problem:
        return None, problem
    if record["chosen"].strip() == record["rejected"].strip():
        return None, "`chosen` and `rejected` are identical (nothing to prefer)"
    return {"prompt": record["prompt"], "chosen": record["chosen"], "rejected": record["rejected"]}, None


def _parse_lines(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    parsed, problems = [], []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}:{number}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(value, dict):
                problems.append(f"{path.name}:{number}: expected a JSON object, got {type(value).__name__}")
                continue
            parsed.append((number, value))
    return parsed, problems


def _majority_format(parsed: list[tuple[int, dict]]) -> DataFormat | None:
    counts: dict[DataFormat, int] = {}
    for _, record in parsed:
        fmt = detect_format(record)
        if fmt:
            counts[fmt] = counts.get(fmt, 0) + 1
    return max(counts, key=lambda f: counts[f]) if counts else None


def load_examples(path: str | Path, *, for_preference: bool | None, strict: bool = False) -> Examples:
    """Read a JSON Lines file, detect its format and validate every line.

    Args:
        path: The file.
        for_preference: True for DPO (needs prompt/chosen/rejected), False for supervised fine-tuning, None for
            whichever the file holds (`advisor data audit`).
        strict: Refuse exact duplicates as bad lines instead of dropping them (the first copy is kept).

    Returns:
        Every record, normalised, with its line number; `dropped_duplicates` lists what was dropped.

    Raises:
        AdvisorError: the file is missing or empty, or its format does not suit the method.
        InvalidInputError: lines are bad; `problems` lists every one as `file:line: reason`.
    """
    path = Path(path)
    if not path.is_file():
        raise AdvisorError(f"data file `{path}` does not exist", "set `data_path` in the plan to a JSON Lines file")
    parsed, problems = _parse_lines(path)
    fmt = _majority_format(parsed)
    if fmt is None:
        if not parsed and not problems:
            raise AdvisorError(f"data file `{path}` is empty")
        known = "; ".join(f"{name}: {', '.join(fields)}" for name, fields in FORMAT_FIELDS.items())
        raise InvalidInputError([*problems, f"{path.name}: no line has the fields of a known format"][:MAX_PROBLEMS_SHOWN],
                                hint=f"known formats — {known}")
    if for_preference is not None and for_preference != (fmt == "preference"):
        wanted = "prompt/chosen/rejected pairs" if for_preference else "instruction/output, messages or prompt/completion"
        raise AdvisorError(f"`{path.name}` holds {fmt} data, but this method needs {wanted}",
                           "use method `dpo` for preference pairs and full/lora/qlora for the others")
    records, line_numbers, seen, dropped = [], [], {}, []
    for number, record in parsed:
        normalised, problem = _normalise(record, fmt)
        if problem:
            problems.append(f"{path.name}:{number}: {problem}")
            continue
        key = json.dumps(normalised, sort_keys=True)
        if key in seen:
            if strict:
                problems.append(f"{path.name}:{number}: duplicate of line {seen[key]}")
            else:
                dropped.append((number, seen[key]))
            continue
        seen[key] = number
        records.append(normalised)
        line_numbers.append(number)
    if problems:
        problems.sort(key=lambda p: int(p.split(":")[1]) if p.split(":")[1].isdigit() else 0)
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more bad lines")
        raise InvalidInputError(shown, hint=f"fix these {len(problems)} lines of `{path}`; nothing was trained")
    return Examples(path=str(path), format=fmt, records=records, line_numbers=line_numbers,
                    dropped_duplicates=dropped)


def split_examples(examples: Examples, eval_fraction: float, seed: int, *,
                   groups: list[int] | None = None) -> tuple[list[dict], list[dict]]:
    """Shuffle with `seed` and hold out `eval_fraction` of the records, whole groups at a time.

    Records in one group (near-duplicates, the same prompt, the same long answer: see
    `backends.common.groups.split_groups`) all land on the same side, so the validation split does not score
    what training already showed. Groups are taken in shuffled order while they fit the held-out size; with
    no groups this is exactly the plain shuffled split. If no group fits, the plain split is used (the audit's
    leakage check then reports the straddling groups).

    Args:
        examples: The loaded file.
        eval_fraction: Share held out (at least one record when > 0).
        seed: Shuffle seed.
        groups: A group id per record; None computes them with `split_groups`.

    Raises:
        AdvisorError: too few records to leave both splits non-empty.
    """
    order = list(range(len(examples.records)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(order) * eval_fraction)) if eval_fraction > 0 else 0
    if len(order) - n_eval < 1:
        raise AdvisorError(
            f"`{examples.path}` has {len(order)} examples: too few to hold out {n_eval} for validation",
            "add examples or lower `eval_fraction`",
        )
    if groups is None:
        from backends.common.groups import split_groups

        groups = split_groups(examples.records)
    held_out = held_out_indices(order, groups, n_eval)
    records = examples.records
    return [records[i] for i in order if i not in held_out], [records[i] for i in order if i in held_out]


def held_out_indices(order: list[int], groups: list[int], n_eval: int) -> set[int]:
    """Indices held out: whole groups in `order` of first appearance while they fit `n_eval`; plain if none fits."""
    members: dict[int, list[int]] = {}
    for index in order:
        members.setdefault(groups[index], []).append(index)
    held_out: set[int] = set()
    for group in members.values():  # dicts keep insertion order: first appearance in the shuffle
        if len(held_out) + len(group) <= n_eval:
            held_out.update(group)
        if len(held_out) == n_eval:
            break
    return held_out if held_out or not n_eval else set(order[:n_eval])
