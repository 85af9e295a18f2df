"""`advisor rag ...` commands."""

from __future__ import annotations

import typer

from advisor.cli import app

rag_app = typer.Typer(help="(rag commands)", no_args_is_help=True)
app.add_typer(rag_app, name="rag")
