"""`advisor run`: from answers (or a plan) to an index, a trained adapter or a prompt, and a closing report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from advisor.app.console import user_errors

app = typer.Typer()



def _preview(inp) -> list[str]:
    from advisor.app.runner import step_label

    lines = []
    rec = inp.recommendation
    if rec is not None:
        primary = rec.option(rec.primary)
        lines.append(f"recommended: {rec.primary} (stack {' + '.join(rec.stack)}), benefit {primary.benefit.label}, "
                     f"set-up ${primary.one_time_usd:,.2f}, ${primary.monthly_usd:,.2f}/month")
    lines.append(f"plan `{inp.plan.name}`, {len(inp.plan.steps)} step(s):")
    for i, step in enumerate(inp.plan.steps, start=1):
        if step.kind == "train":
            what = (f"{step.base_model}, {step.precision} precision, micro-batch {step.batch_size} × {step.seq_len} "
                    f"tokens, {step.epochs:g} epoch(s), data {step.data_path}")
        elif step.kind == "rag":
            what = f"index `{step.docs_dir}` with {step.embedding_model}, {step.chunk_tokens}-token chunks"
        else:
            what = f"{step.model}, {step.n_shots} shots within {step.max_prompt_tokens} tokens"
        lines.append(f"  {i}. {step_label(step)}: {what}")
    lines += [f"  demo: {note}" for note in inp.demo_substitutions]
    return lines


def _pre_check(inp, run_dir: Path) -> None:
    """Run every backend's cheap check before anything starts; report all problems together."""
    from advisor.app.runner import step_dir_name, step_label
    from advisor.core.errors import InvalidInputError
    from advisor.core.planning import resolve_step_paths

    problems: list[str] = []
    for i, step in enumerate(inp.plan.steps):
        ready = resolve_step_paths(step, inp.base_dir)
        if step.kind == "rag":
            from backends.rag import check

            found = check(ready)
        elif step.kind == "prompt":
            from backends.prompting import check

            found = check(ready, run_dir / step_dir_name(i, step), base_dir=inp.base_dir)
        else:
            continue  # training checks itself first thing, with the device in hand
        problems += [f"step {i + 1} ({step_label(step)}): {p}" for p in found]
    if problems:
        raise InvalidInputError(problems, hint="fix the plan or the data; nothing has run yet")


@app.command("run")
def run_command(
    source: Annotated[Path, typer.Argument(help="answers.yaml (recommend and plan first) or plan.yaml")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Run without asking for confirmation")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory; default runs/<plan name>")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Train and prompt the offline demonstration model instead")] = False,
    force: Annotated[bool, typer.Option("--force", help="Train even when the estimate says it will not fit")] = False,
) -> None:
    """Recommend, plan and execute every step, then report what was predicted beside what was measured."""
    with user_errors():
        from advisor.app import runner
        from advisor.core.errors import AdvisorError

        inp = runner.prepare(source, demo=demo)
        run_dir = out or Path("runs") / inp.plan.name
        for line in _preview(inp):
            typer.echo(line, err=True)
        _pre_check(inp, run_dir)
        if not yes:
            if not sys.stdin.isatty():
                raise AdvisorError("confirmation needed and there is no terminal to ask", "add `--yes` to run")
            typer.confirm("run it?", abort=True, err=True)
        runner.execute(inp, run_dir, force=force)
        typer.echo(f"report: {run_dir / 'report.md'} · {run_dir / 'report.html'} · {run_dir / 'result.json'}")
