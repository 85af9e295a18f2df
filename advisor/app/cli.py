"""The `advisor` command line: parse, build models, call pure code, render. No decisions here."""

from __future__ import annotations

import os
import sys

# pydantic looks up plugin entry points in every installed distribution on first use (~40 ms); a CLI
# has no use for them. Set before anything imports pydantic.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from advisor import __version__  # noqa: E402
from advisor.app.console import DEBUG  # noqa: E402

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
    DEBUG["on"] = debug or bool(os.environ.get("ADVISOR_DEBUG"))


_REGISTERED: list[bool] = []


def _register() -> None:
    # Each command module has its own Typer (top-level commands and its groups); this composes them, once.
    if _REGISTERED:
        return
    from advisor.app.commands import ask, estimate, prompt, rag, recommend, run, train

    for module in (ask, estimate, recommend, run, rag, train, prompt):
        app.add_typer(module.app)
    _REGISTERED.append(True)


def main() -> None:
    """Console-script entry point."""
    _register()
    app(prog_name="advisor")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
