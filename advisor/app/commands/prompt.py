"""`advisor prompt check|run`: choose few-shot examples within a token budget; score them against zero-shot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from advisor.app.console import user_errors

if TYPE_CHECKING:
    from advisor.core.models import PromptStep
    from backends.prompting import PromptResult


app = typer.Typer()
prompt_app = typer.Typer(help="Prompting: pick few-shot examples within a token budget, compare with zero-shot.",
                         no_args_is_help=True)
app.add_typer(prompt_app, name="prompt")

PlanArgument = Annotated[Path, typer.Argument(help="Plan file (YAML) with a `prompt` step", dir_okay=False)]
OutOption = Annotated[Path | None, typer.Option("--out", help="Run folder; default: runs/<plan name>")]


def _prompt_steps(plan_path: Path, out: Path | None) -> list[tuple[PromptStep, Path, str]]:
    """Each prompt step of the plan with its folder (`<out>/<i>-prompt-...`, as `advisor run` lays it out)."""
    from advisor.app.runner import steps_of_kind

    return steps_of_kind(plan_path, "prompt", out)


def _scores_line(label: str, scores) -> str:
    return (f"{label:<10} NLL {scores.mean_nll:.3f} nats/token, exact match {scores.exact_match:.1%}, "
            f"token F1 {scores.token_f1:.1%}, {scores.mean_prompt_tokens:.0f} prompt tokens")


def _result_text(result: PromptResult, run_dir: Path) -> str:
    budget = result.budget
    lines = [f"prompt for {result.model} in {run_dir}: {len(result.shots)} of {budget.n_shots_requested} shots "
             f"({result.selection_method} selection), {budget.total_tokens}/{budget.max_prompt_tokens} tokens "
             f"with the longest example"]
    lines.append(f"tokens    {budget.token_counter}")
    if result.is_demo_model:
        lines.append(f"note      {result.demo_note}")
    lines.append(f"eval      {result.evaluation_note}")
    if result.evaluation is not None:
        lines.append(_scores_line("zero-shot", result.evaluation.zero_shot))
        lines.append(_scores_line("few-shot", result.evaluation.few_shot))
    return "\n".join(lines)


@prompt_app.command("check")
def check(plan_path: PlanArgument, out: OutOption = None) -> None:
    """Dry run: examples, model folder, libraries and token budget; exit 1 when the run would fail."""
    with user_errors():
        from backends.prompting import check as check_step

        problems = [p for step, run_dir, _ in _prompt_steps(plan_path, out)
                    for p in check_step(step, run_dir)]
        for problem in problems:
            typer.echo(f"error     {problem}")
        typer.echo("verdict   this run would fail" if problems else "verdict   ready to run")
        if problems:
            raise typer.Exit(1)


@prompt_app.command("run")
def run(
    plan_path: PlanArgument,
    out: OutOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout")] = False,
) -> None:
    """Choose the shots, write the prompt template and, with a local model, score zero-shot against few-shot."""
    with user_errors():
        from backends.prompting import run as run_step

        for step, run_dir, plan_name in _prompt_steps(plan_path, out):
            result = run_step(step, run_dir, plan_name=plan_name)
            typer.echo(result.model_dump_json(indent=2) if as_json else _result_text(result, run_dir))
