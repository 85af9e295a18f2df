"""AdvisorError and its subclasses: every expected failure a user can cause."""

from __future__ import annotations

__all__ = [
    "AdvisorError",
    "InvalidInputError",
    "MissingExtraError",
    "RunFailedError",
    "UnknownNameError",
]


class AdvisorError(Exception):
    """A failure the user can fix; printed as one `error:` line plus an optional hint, exit 2.

    Args:
        message: One line, lowercase, no trailing period, literals in backticks.
        hint: What to do about it, shown after a blank line.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInputError(AdvisorError):
    """Input values that cannot be used; `problems` lists every `field.path: message` at once."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        message = "invalid input:\n" + "\n".join(f"  {p}" for p in problems) if len(problems) > 1 else problems[0]
        super().__init__(message, hint)
        self.problems = problems


class UnknownNameError(AdvisorError):
    """A name (model, GPU, rule, fact) that is not known, with the closest known names as a hint."""

    def __init__(self, kind: str, name: str, known: list[str], list_command: str | None = None) -> None:
        import difflib

        by_lower = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)
        close_names = [by_lower[c] for c in close]  # closest first
        parts = []
        if close_names:
            parts.append("did you mean " + ", ".join(f"`{c}`" for c in close_names) + "?")
        if list_command:
            parts.append(f"Run `{list_command}` to list known {kind}s")
        super().__init__(f"unknown {kind} `{name}`", " ".join(parts) or None)
        self.name = name
        self.suggestions = close_names


class MissingExtraError(AdvisorError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this needs `{module}`, which is not installed",
            f'install it with `pip install "advisor[{extra}]"`',
        )


class RunFailedError(AdvisorError):
    """A run that started and failed; exit 1."""

    exit_code = 1
