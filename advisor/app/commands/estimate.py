"""`advisor estimate`, `advisor models`, `advisor gpus`: memory, time and cost of one job."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from advisor.app.console import user_errors

app = typer.Typer()


MethodOpt = Literal["inference", "full", "lora", "qlora", "dpo"]
PrecisionOpt = Literal["auto", "fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed", "bf16-pure", "fp16-pure"]
OptimizerOpt = Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "adafactor"]

# EstimateSpec field → the option a user typed, so validation messages name what to change.
OPTION_NAMES = {
    "lora_rank": "--lora-rank", "batch_size": "--batch-size", "seq_len": "--seq-len", "n_gpus": "--gpus",
    "zero_stage": "--zero", "lora_dropout": "--lora-dropout", "context_tokens": "--context",
    "lora_targets": "--lora-targets", "offload_params": "--offload-params",
}


def _spec_from_options(model, method, options: dict):
    from pydantic import ValidationError

    from advisor.core.errors import InvalidInputError
    from advisor.core.models import EstimateSpec
    from advisor.core.validation import validation_problems

    try:
        return EstimateSpec(model=model, method=method, **options)
    except ValidationError as exc:
        problems = []
        for line in validation_problems(exc):
            field, _, message = line.partition(": ")
            problems.append(f"{OPTION_NAMES.get(field, '--' + field.replace('_', '-'))}: {message}")
        raise InvalidInputError(problems, hint="fix the options above; `advisor estimate --help` lists them") from None


@app.command()
def estimate(
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog name, HF id, or path to config.json/model folder")],
    method: Annotated[MethodOpt, typer.Option(help="What runs")] = "lora",
    gpu: Annotated[str | None, typer.Option(help="Catalog GPU (`advisor gpus`); none: memory only")] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in data parallel")] = 1,
    precision: Annotated[PrecisionOpt, typer.Option(help="Compute dtype as `advisor train` runs it (auto: bf16 where the GPU has it, else fp16 autocast; full fine-tuning keeps fp32 master weights); *-mixed / *-pure force fp32 master weights / pure 16-bit")] = "auto",
    optimizer: Annotated[OptimizerOpt, typer.Option(help="Optimizer of the trainable parameters")] = "adamw",
    lora_rank: Annotated[int, typer.Option(help="LoRA rank r")] = 16,
    lora_targets: Annotated[str, typer.Option(help="`all-linear` or comma-separated module names")] = "all-linear",
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout probability")] = 0.05,
    dpo_policy: Annotated[Literal["full", "lora", "qlora"], typer.Option(help="With --method dpo")] = "lora",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Micro-batch per GPU, sequences")] = 1,
    seq_len: Annotated[int, typer.Option("--seq-len", "-s", help="Tokens per sequence (padded/packed)")] = 1024,
    context: Annotated[int | None, typer.Option(help="Inference: tokens in the KV cache; default --seq-len")] = None,
    grad_ckpt: Annotated[bool, typer.Option("--grad-ckpt/--no-grad-ckpt", help="Gradient checkpointing")] = True,
    attention: Annotated[Literal["sdpa", "flash", "eager"], typer.Option(help="Attention kernel")] = "sdpa",
    zero: Annotated[int, typer.Option(help="DeepSpeed ZeRO stage 0-3 (3 = FSDP full shard)")] = 0,
    offload_optimizer: Annotated[bool, typer.Option(help="Optimizer state in CPU memory")] = False,
    offload_params: Annotated[bool, typer.Option(help="ZeRO-3: parameters in CPU memory")] = False,
    examples: Annotated[int | None, typer.Option(help="Training examples, for time and cost")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the examples")] = 1.0,
    mean_tokens: Annotated[float | None, typer.Option(help="Mean tokens per example; default --seq-len")] = None,
    utilization: Annotated[float | None, typer.Option(help="Model FLOPs utilisation 0-1; default by method/GPU")] = None,
    headroom: Annotated[float, typer.Option(help="Share of GPU memory kept free when judging fit")] = 0.05,
    fit: Annotated[bool, typer.Option("--fit", help="Check every catalog GPU")] = False,
    max_batch: Annotated[bool, typer.Option("--max-batch", help="Largest micro-batch that fits --gpu")] = False,
    max_seq_len: Annotated[bool, typer.Option("--max-seq-len", help="Largest sequence length that fits --gpu")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show every assumption and its source")] = False,
) -> None:
    """Estimate peak GPU memory, training time and cost of one job, component by component."""
    with user_errors():
        from advisor.app.render import terminal as report
        from advisor.core import catalog
        from advisor.core.estimate.job import JobRequest, run_estimate

        gpu_spec = catalog.resolve_gpu(gpu) if gpu else None
        request = JobRequest(
            gpu=gpu_spec, headroom=headroom, examples=examples, epochs=epochs, mean_tokens=mean_tokens,
            utilization=utilization, fit_all=fit, max_batch=max_batch, max_seq_len=max_seq_len,
        )
        from advisor.core.estimate.precision import estimate_precision

        trained = None if method == "inference" else (dpo_policy if method == "dpo" else method)
        chosen, reason = estimate_precision(precision, trained, gpu_spec)
        targets = "all-linear" if lora_targets == "all-linear" else [t.strip() for t in lora_targets.split(",") if t.strip()]
        spec = _spec_from_options(catalog.resolve_model(model), method, dict(
            precision=chosen, optimizer=optimizer, lora_rank=lora_rank, lora_targets=targets,
            lora_dropout=lora_dropout, dpo_policy=dpo_policy, batch_size=batch_size, seq_len=seq_len,
            context_tokens=context, grad_ckpt=grad_ckpt, attention=attention, n_gpus=gpus, zero_stage=zero,
            offload_optimizer=offload_optimizer, offload_params=offload_params,
        ))
        result = run_estimate(spec, request, precision_reason=reason, gpus=list(catalog.load_gpus().values()))
        report.print_estimate(result, as_json=as_json, explain=explain)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List the model catalog: architecture and parameter counts."""
    with user_errors():
        from advisor.app.render import terminal as report
        from advisor.core import catalog

        report.print_models(catalog.load_models(), as_json=as_json)


@app.command("gpus")
def gpus_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    api: Annotated[bool, typer.Option("--api", help="List LLM API prices instead")] = False,
) -> None:
    """List the GPU catalog: memory, throughput, bf16 support and price."""
    with user_errors():
        from advisor.app.render import terminal as report
        from advisor.core import catalog

        if api:
            report.print_api_prices(catalog.load_api_prices(), as_json=as_json)
        else:
            report.print_gpus(catalog.load_gpus(), as_json=as_json)
