"""How the CLI reports expected failures: one `error:` line and a hint, exit 2 (1 for a failed run), no traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from advisor.core.errors import AdvisorError

__all__ = ["DEBUG", "print_error", "user_errors"]

DEBUG = {"on": False}  # set by the root callback (`--debug`, or ADVISOR_DEBUG in the environment)


def print_error(message: str, hint: str | None) -> None:
    from advisor.app.render.safe import terminal_text

    # Messages quote what the user gave (paths, names, values): its control characters are shown, not obeyed.
    typer.echo(f"error: {terminal_text(message)}", err=True)
    if hint:
        typer.echo(f"\nhint: {terminal_text(hint)}", err=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one `error:` line (exit 2, or 1 for a failed run); bugs keep tracebacks."""
    from pydantic import ValidationError

    try:
        yield
    except AdvisorError as exc:
        if DEBUG["on"]:
            raise
        print_error(exc.message, exc.hint)
        raise typer.Exit(exc.exit_code) from None
    except ValidationError as exc:
        if DEBUG["on"]:
            raise
        from advisor.core.validation import format_validation_error

        print_error(format_validation_error(exc), None)
        raise typer.Exit(2) from None
