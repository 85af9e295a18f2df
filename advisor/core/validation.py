"""Turns pydantic validation errors into `field.path: message` lines, all at once."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["format_validation_error", "validation_problems"]


def validation_problems(exc: ValidationError) -> list[str]:
    """One `field.path: message` string per problem pydantic found."""
    problems = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(input)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling)"
        problems.append(f"{path}: {msg}")
    return problems


def format_validation_error(exc: ValidationError) -> str:
    """All problems of `exc` as one message: a header and an indented line each."""
    problems = validation_problems(exc)
    if len(problems) == 1:
        return f"invalid input: {problems[0]}"
    return f"invalid input ({len(problems)} problems):\n" + "\n".join(f"  {p}" for p in problems)
