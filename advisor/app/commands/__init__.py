"""CLI commands: each module has its own `app` (a Typer) that `advisor.app.cli` composes."""
