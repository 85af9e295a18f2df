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
    from backends import backend_for

    lines = []
    rec = inp.recommendation
    if rec is not None:
        primary = rec.option(rec.primary)
        lines.append(f"recommended: {rec.primary} (stack {' + '.join(rec.stack)}), benefit {primary.benefit.label}, "
                     f"set-up ${primary.one_time_usd:,.2f}, ${primary.monthly_usd:,.2f}/month")
    lines.append(f"plan `{inp.plan.name}`, {len(inp.plan.steps)} step(s):")
    for i, step in enumerate(inp.plan.steps, start=1):
        lines.append(f"  {i}. {step_label(step)}: {backend_for(step.kind).describe(step)}")
    lines += [f"  demo: {note}" for note in inp.demo_substitutions]
    return lines


def _pre_check(inp, run_dir: Path, *, force: bool) -> None:
    """Run every backend's cheap check before anything starts; report all problems together.

    A step that starts from what an earlier step will produce (DPO on the LoRA step's adapter) is checked
    as it would start without it, since that input does not exist yet.
    """
    from advisor.app.runner import step_dir_name, step_label
    from advisor.core.errors import InvalidInputError
    from backends import backend_for
    from backends.base import RunContext

    problems: list[str] = []
    for i, step in enumerate(inp.plan.steps):
        backend = backend_for(step.kind)
        ready = step
        if backend.link is not None:
            earlier = [(s, run_dir / step_dir_name(j, s)) for j, s in enumerate(inp.plan.steps[:i])]
            ready = backend.link(step, earlier, for_check=True)
        ctx = RunContext(step_dir=run_dir / step_dir_name(i, step), plan_name=inp.plan.name, force=force)
        problems += [f"step {i + 1} ({step_label(step)}): {p}" for p in backend.check(ready, ctx)]
    if problems:
        raise InvalidInputError(problems, hint="fix the plan or the data; nothing has run yet")


def _with_llama_cpp(plan, folder: Path):
    """The plan with every step that takes a `llama_cpp_dir` (the serve step) pointed at a llama.cpp checkout."""
    from advisor.core.errors import AdvisorError

    def takes(step) -> bool:
        return "llama_cpp_dir" in type(step).model_fields

    if not any(takes(step) for step in plan.steps):
        raise AdvisorError("`--llama-cpp` exports GGUF in the serve step, and this plan has none",
                           "add a step with `kind: serve` after the training steps")
    steps = [step.model_copy(update={"llama_cpp_dir": str(folder.expanduser().resolve())}) if takes(step) else step
             for step in plan.steps]
    return plan.model_copy(update={"steps": steps})


def _emit_launch(inp, out_dir: Path, gpu_name: str | None) -> list[Path]:
    """Write each training step's multi-node and SkyPilot launch files into `out_dir` (one folder per step when
    the plan trains more than once), for `gpu_name` or else the GPU the plan was made for; nothing runs."""
    from advisor.app.runner import step_dir_name
    from advisor.core.errors import AdvisorError
    from backends.train.launch import emit_launch_on, training_steps

    steps = training_steps(inp.plan.steps)
    if not steps:
        raise AdvisorError(f"plan `{inp.plan.name}` has no training step to launch",
                           "`--emit-launch` writes launch files for `train` steps")
    written = []
    for i, step in steps:
        written += emit_launch_on(step, out_dir / step_dir_name(i, step) if len(steps) > 1 else out_dir, gpu_name)
    return written


@app.command("run")
def run_command(
    source: Annotated[Path, typer.Argument(help="answers.yaml (recommend and plan first) or plan.yaml")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Run without asking for confirmation")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory; default runs/<plan name>")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Train and prompt the offline demonstration model instead")] = False,
    force: Annotated[bool, typer.Option("--force", help="Train even when the estimate says it will not fit")] = False,
    llama_cpp: Annotated[Path | None, typer.Option("--llama-cpp", help="A llama.cpp checkout: the serve step also "
                                                   "exports GGUF with its convert_hf_to_gguf.py")] = None,
    emit_launch: Annotated[Path | None, typer.Option(
        "--emit-launch", help="Write the training step's accelerate config, multi-node script and SkyPilot task "
        "into this folder, for the plan's GPUs, and run nothing", file_okay=False)] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="With --emit-launch: the GPU to launch on (`advisor "
                                            "gpus`); default: the one the plan was made for")] = None,
) -> None:
    """Recommend, plan and execute every step, then report what was predicted beside what was measured."""
    with user_errors():
        from advisor.app import runner
        from advisor.app.outputs import check_output_dir
        from advisor.core.errors import AdvisorError

        inp = runner.prepare(source, demo=demo)
        if emit_launch is not None:
            check_output_dir(emit_launch, "--emit-launch")
            for path in _emit_launch(inp, emit_launch, gpu):
                typer.echo(str(path))
            return
        if llama_cpp is not None:
            inp.plan = _with_llama_cpp(inp.plan, llama_cpp)
        run_dir = out or Path("runs") / inp.plan.name
        check_output_dir(run_dir, "--out")
        for line in _preview(inp):
            typer.echo(line, err=True)
        _pre_check(inp, run_dir, force=force)
        if not yes:
            if not sys.stdin.isatty():
                raise AdvisorError("confirmation needed and there is no terminal to ask", "add `--yes` to run")
            typer.confirm("run it?", abort=True, err=True)
        runner.execute(inp, run_dir, force=force)
        typer.echo(f"report: {run_dir / 'report.md'} · {run_dir / 'report.html'} · {run_dir / 'result.json'}")
