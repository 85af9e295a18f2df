"""The `advisor` command line: parse, build models, call pure code, render. No decisions here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

# pydantic looks up plugin entry points in every installed distribution on first use (~40 ms); a CLI
# has no use for them. Set before anything imports pydantic.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from advisor import __version__  # noqa: E402
from advisor.errors import AdvisorError  # noqa: E402

app = typer.Typer(
    name="advisor",
    help="Prompting, RAG, LoRA, QLoRA, full fine-tuning or DPO: which one, will it fit, what will it cost.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # Plain help and plain tracebacks: rich's help formatter pulls in markdown and pygments, which
    # alone would triple the start-up time of every command (benchmarks/bench_cold_start.py).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_DEBUG = {"on": False}


def _print_error(message: str, hint: str | None) -> None:
    typer.echo(f"error: {message}", err=True)
    if hint:
        typer.echo(f"\nhint: {hint}", err=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one `error:` line (exit 2, or 1 for a failed run); bugs keep tracebacks."""
    from pydantic import ValidationError

    try:
        yield
    except AdvisorError as exc:
        if _DEBUG["on"]:
            raise
        _print_error(exc.message, exc.hint)
        raise typer.Exit(exc.exit_code) from None
    except ValidationError as exc:
        if _DEBUG["on"]:
            raise
        from advisor.validation import format_validation_error

        _print_error(format_validation_error(exc), None)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"advisor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for every error"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version"),
) -> None:
    """Prompting, RAG, LoRA, QLoRA, full fine-tuning or DPO: which one, will it fit, what will it cost."""
    _DEBUG["on"] = debug or bool(os.environ.get("ADVISOR_DEBUG"))


def _register() -> None:
    # Each command group lives in advisor/commands/<group>.py and registers itself on `app`.
    from advisor.commands import ask, estimate, prompt, rag, recommend, run, train  # noqa: F401


def main() -> None:
    """Console-script entry point."""
    _register()
    app(prog_name="advisor")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
