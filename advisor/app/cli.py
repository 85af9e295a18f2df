"""The `advisor` command line: parse, build models, call pure code, render. No decisions here."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

# pydantic looks up plugin entry points in every installed distribution on first use (~40 ms); a CLI
# has no use for them. Set before anything imports pydantic.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from advisor import __version__  # noqa: E402
from advisor.app.console import DEBUG, print_error  # noqa: E402

# The Click that typer runs on (typer vendors its own copy): its exceptions are the ones to catch.
_errors = sys.modules[typer.BadParameter.__module__]


class _AdvisorGroup(TyperGroup):
    """The root command: Click's own usage errors become our one `error:` line and a `--help` hint, exit 2.

    Click prints "Usage: ... Error: ..." for a bad option value, a missing argument or a path that fails its
    check. Running the parser with standalone_mode=False hands those exceptions here instead; `--help`,
    `--version` and `typer.Exit` come back as exit codes, which are passed on unchanged. This is the root of
    every invocation (the console script and CliRunner alike), so no command needs to do anything.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
        except _errors.NoArgsIsHelpError as exc:  # `advisor` or `advisor rag` alone: the help
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except _errors.ClickException as exc:
            if not standalone_mode:
                raise
            print_error(*_usage_message(exc))
            sys.exit(2 if isinstance(exc, _errors.UsageError) else exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("aborted", err=True)
            sys.exit(1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_message(exc: Any) -> tuple[str, str]:
    """Click's message in our form: one lowercase line, literals in backticks, no period; a `--help` hint."""
    message = " ".join(exc.format_message().split()).rstrip(".").replace("Value error, ", "")
    message = message.replace(". Did you mean", "; did you mean")
    message = re.sub(r"(?<![\w`])'([^'`]+)'(?!\w)", r"`\1`", message)  # 'x' -> `x`
    message = re.sub(r"(?<![\w`-])(--?[A-Za-z][\w-]*)(?![\w`-])", r"`\1`", message)  # bare --option -> `--option`
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "advisor"
    hint = f"run `{command} --help` for its arguments and options"
    if message.startswith("no such command"):  # Click adds "did you mean" itself when a name is close
        hint = f"run `{command} --help` for the commands"
    return message, hint


app = typer.Typer(
    cls=_AdvisorGroup,
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
    from advisor.app.commands import ask, data, estimate, prompt, rag, recommend, run, train

    for module in (ask, estimate, recommend, run, rag, train, prompt, data):
        app.add_typer(module.app)
    _REGISTERED.append(True)


def main() -> None:
    """Console-script entry point."""
    _register()
    app(prog_name="advisor")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
