"""`advisor train ...` commands."""

from __future__ import annotations

import typer

from advisor.cli import app

train_app = typer.Typer(help="(train commands)", no_args_is_help=True)
app.add_typer(train_app, name="train")
