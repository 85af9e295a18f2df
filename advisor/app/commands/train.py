"""`advisor train check|run`: dry-run a plan's training step, then run it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from advisor.app.console import user_errors

if TYPE_CHECKING:
    from advisor.core.models import TrainStep
    from backends.train import TrainCheck, TrainResult


app = typer.Typer()
train_app = typer.Typer(help="Fine-tune a model (full, LoRA, QLoRA, DPO): dry-run a plan, then run it.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

PlanArgument = Annotated[Path, typer.Argument(help="Plan file (YAML) with a `train` step", dir_okay=False)]
OutOption = Annotated[Path | None, typer.Option("--out", help="Run folder; default: runs/<plan name>")]
GIB = 2**30


def _train_steps(plan_path: Path, out: Path | None) -> list[tuple[TrainStep, Path]]:
    """Each training step of the plan with its folder (`<out>/<i>-train-<method>`, as `advisor run` lays it out)."""
    from advisor.app.runner import steps_of_kind

    return [(step, folder) for step, folder, _ in steps_of_kind(plan_path, "train", out)]


def _require_train_extra() -> None:
    """One `error:` line naming the missing package when the `[train]` extra is not installed."""
    import importlib.util

    from advisor.core.errors import MissingExtraError

    for module in ("torch", "transformers", "peft", "trl", "datasets"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("train", module)


def _check_text(report: TrainCheck) -> str:
    lengths, lines = report.lengths, []
    lines.append(f"data      {report.data_format}: {report.n_train_examples} train, {report.n_eval_examples} "
                 f"validation")
    lines.append(f"model     {report.base_model}: {report.n_params:,} parameters, {report.n_trainable_params:,} "
                 f"trained")
    lines.append(f"device    {report.device.name}, {report.precision} ({report.precision_reason})")
    lines.append(f"tokens    min {lengths.min_tokens}, median {lengths.median_tokens}, p95 {lengths.p95_tokens}, "
                 f"max {lengths.max_tokens}; seq_len {lengths.seq_len_tokens} cuts {lengths.n_truncated} examples "
                 f"({lengths.truncated_tokens_fraction:.1%} of tokens)")
    if report.predicted is not None:
        lines.append(f"memory    estimated peak {report.predicted.peak_bytes / GIB:.2f} GiB training, "
                     + (f"{report.predicted_eval.peak_bytes / GIB:.2f} GiB evaluation; " if report.predicted_eval
                        else "") + f"{report.device.memory_bytes / GIB:.1f} GiB available")
    else:
        lines.append(f"memory    {report.prediction_note}")
    lines.append(f"disk      {report.disk_needed_bytes / GIB:.2f} GiB needed, {report.disk_free_bytes / GIB:.1f} "
                 f"GiB free")
    lines.append(f"sample    (EOS token {report.eos_token!r})")
    lines.extend(f"  | {line}" for line in report.sample_text.splitlines())
    for finding in report.findings:
        lines.append(f"{finding.level:<9} {finding.topic}: {finding.message}"
                     + (f" — {finding.hint}" if finding.hint else ""))
    lines.append("verdict   ready to run" if report.is_ok else "verdict   this run would fail")
    return "\n".join(lines)


def _result_text(result: TrainResult, run_dir: Path) -> str:
    fit, memory = result.fit, result.memory
    lines = [f"{result.status}: {result.method} on {result.base_model} in {run_dir}"]
    if result.is_demo_model:
        lines.append(f"note: {result.demo_note}")
    lines.append(f"steps {fit.global_step}/{fit.max_steps}" + (" (early stop)" if fit.is_early_stopped else ""))
    if fit.eval_loss_before is not None:
        lines.append(f"validation loss {fit.eval_loss_before:.4f} -> {fit.eval_loss_after:.4f}")
    lines.append(f"{fit.measured.wall_seconds:.1f} s, {fit.measured.tokens_per_second:,.0f} tokens/s, "
                 f"{result.precision} ({result.precision_reason})")
    measured = f"{memory.measured_bytes / GIB:.3f} GiB" if memory.measured_bytes else "n/a"
    predicted = f"{memory.predicted_bytes / GIB:.3f} GiB" if memory.predicted_bytes else result.prediction_note
    lines.append(f"memory measured {measured}, predicted {predicted} ({memory.quantity})")
    if result.merge is not None:
        lines.append(f"merge: loss {result.merge.merged_eval_loss:.4f} vs adapter {result.merge.adapter_eval_loss:.4f}"
                     f" ({result.merge.relative_difference:.2e}, tolerance {result.merge.tolerance:.0e})")
    return "\n".join(lines)


@train_app.command("check")
def check(
    plan_path: PlanArgument,
    out: OutOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")] = False,
) -> None:
    """Dry run: data, chat template, token lengths, memory, disk and settings; exit 1 when the run would fail."""
    with user_errors():
        from backends.train import inspect

        steps = _train_steps(plan_path, out)
        _require_train_extra()
        reports = [inspect(step, run_dir) for step, run_dir in steps]
        for report in reports:
            typer.echo(report.model_dump_json(indent=2) if as_json else _check_text(report))
        if not all(report.is_ok for report in reports):
            raise typer.Exit(1)


@train_app.command("run")
def run(
    plan_path: PlanArgument,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run folder's last checkpoint")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start afresh in a used folder; run even if the estimate "
                                                        "says it will not fit")] = False,
    out: OutOption = None,
    emit_launch: Annotated[Path | None, typer.Option(
        "--emit-launch", help="Write the accelerate config, multi-node script and SkyPilot task for the step's "
        "GPUs into this folder, and train nothing", file_okay=False)] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="With --emit-launch: the GPU to launch on (`advisor "
                                            "gpus`); default: the one the plan was made for")] = None,
) -> None:
    """Train the plan's `train` step(s); writes the model, plan, versions and result.json to the run folder."""
    with user_errors():
        from backends.train import run as run_step

        if emit_launch is not None:
            from advisor.app.outputs import check_output_dir
            from backends.train.launch import emit_launch_on

            check_output_dir(emit_launch, "--emit-launch")
            steps = _train_steps(plan_path, out)
            for step, run_dir in steps:
                folder = emit_launch / run_dir.name if len(steps) > 1 else emit_launch
                for path in emit_launch_on(step, folder, gpu):
                    typer.echo(str(path))
            return
        _require_train_extra()

        plan = _train_steps(plan_path, out)
        for step, run_dir in plan:
            result = run_step(step, run_dir, resume=resume, force=force)
            typer.echo(_result_text(result, run_dir))
