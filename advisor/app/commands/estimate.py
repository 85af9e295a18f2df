"""`advisor estimate`, `advisor models`, `advisor gpus`: memory, time and cost of one job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from advisor.app.console import user_errors

app = typer.Typer()


MethodOpt = Literal["inference", "full", "lora", "qlora", "dpo", "prompt_tuning", "prefix_tuning", "p_tuning", "ia3"]
PrecisionOpt = Literal["auto", "fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed", "bf16-pure", "fp16-pure"]
OptimizerOpt = Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "adafactor"]
StackOpt = Literal["trl", "hf-trainer", "axolotl", "llama-factory"]
ServeQuantOpt = Literal["gptq-4bit", "gptq-8bit", "awq-4bit", "int8", "nf4", "fp8"]  # quantized.SERVE_QUANT_FLAGS
KvCacheOpt = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
# CLI parameter -> EstimateSpec field, where the names differ.
SPEC_FIELDS = {"gpus": "n_gpus", "zero": "zero_stage", "context": "context_tokens"}
KNOB_HELP = "default: the --stack profile's"

# EstimateSpec field → the option a user typed, so validation messages name what to change.
OPTION_NAMES = {
    "lora_rank": "--lora-rank", "batch_size": "--batch-size", "seq_len": "--seq-len", "n_gpus": "--gpus",
    "zero_stage": "--zero", "lora_dropout": "--lora-dropout", "context_tokens": "--context",
    "lora_targets": "--lora-targets", "offload_params": "--offload-params",
    "num_virtual_tokens": "--num-virtual-tokens", "ia3_targets": "--ia3-targets",
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
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="Catalog name, HF id, or path to config.json/model folder (with --from: the file's)")] = None,
    method: Annotated[MethodOpt, typer.Option(help="What runs")] = "lora",
    gpu: Annotated[str | None, typer.Option(help="Catalog GPU (`advisor gpus`); none: memory only")] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in data parallel")] = 1,
    precision: Annotated[PrecisionOpt, typer.Option(help="Compute dtype as `advisor train` runs it (auto: bf16 where the GPU has it, else fp16 autocast; full fine-tuning keeps fp32 master weights); *-mixed / *-pure force fp32 master weights / pure 16-bit")] = "auto",
    optimizer: Annotated[OptimizerOpt | None, typer.Option(
        help=f"Optimizer of the trainable parameters ({KNOB_HELP}: adamw)")] = None,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank r")] = 16,
    lora_targets: Annotated[str, typer.Option(help="`all-linear` or comma-separated module names")] = "all-linear",
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout probability")] = 0.05,
    dpo_policy: Annotated[Literal["full", "lora", "qlora"], typer.Option(help="With --method dpo")] = "lora",
    num_virtual_tokens: Annotated[int, typer.Option(
        help="prompt_tuning / prefix_tuning / p_tuning: virtual tokens learned")] = 20,
    ia3_targets: Annotated[str, typer.Option(help="ia3: `default` (PEFT's list) or comma-separated module names")] = (
        "default"),
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Micro-batch per GPU, sequences")] = 1,
    seq_len: Annotated[int, typer.Option("--seq-len", "-s", help="Tokens per sequence (padded/packed)")] = 1024,
    context: Annotated[int | None, typer.Option(help="Inference: tokens in the KV cache; default --seq-len")] = None,
    grad_ckpt: Annotated[bool | None, typer.Option(
        "--grad-ckpt/--no-grad-ckpt", help=f"Gradient checkpointing ({KNOB_HELP}: on for trl, llama-factory)")] = None,
    attention: Annotated[Literal["sdpa", "flash", "eager"] | None, typer.Option(
        help=f"Attention kernel ({KNOB_HELP}: sdpa)")] = None,
    stack: Annotated[StackOpt | None, typer.Option(
        help="Training stack whose defaults fill the knobs not set (default trl, what `advisor train` runs; "
             "with --from: the file's tool)")] = None,
    loss_kernel: Annotated[Literal["chunked", "full"] | None, typer.Option(
        help=f"chunked: TRL's fused LM head, no b·s·V logits; full: fp32 logits ({KNOB_HELP})")] = None,
    adapter_dtype: Annotated[Literal["fp32", "bf16"] | None, typer.Option(
        help=f"dtype of the LoRA adapter weights ({KNOB_HELP}: fp32, bf16 for QLoRA under trl)")] = None,
    kbit_prep: Annotated[bool | None, typer.Option(
        "--kbit-prep/--no-kbit-prep", help="QLoRA: prepare_model_for_kbit_training upcasts embeddings, LM head "
        f"and norms to fp32 ({KNOB_HELP}: on for hf-trainer)")] = None,
    packing: Annotated[bool | None, typer.Option(
        "--packing/--no-packing", help=f"Examples packed into full --seq-len sequences ({KNOB_HELP}: off)")] = None,
    bitsandbytes: Annotated[str | None, typer.Option(
        "--bitsandbytes", help="QLoRA: bitsandbytes version, e.g. 0.42 (before 0.43.2 every 4-bit linear kept its "
        "input for backward); default: the installed one")] = None,
    transformers: Annotated[int | None, typer.Option(
        "--transformers", min=4, max=5, help="QLoRA: transformers major version, 4 or 5 (5 leaves fused MoE experts "
        "and nn.Linear subclasses such as Falcon's 16-bit; 4 quantizes them); default: the installed one")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from", exists=True, dir_okay=False,
        help="Read the job from an Axolotl or LLaMA-Factory YAML, or TRL/transformers TrainingArguments "
             "JSON/YAML; flags typed as well override it")] = None,
    accelerate_config: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="With --from: accelerate config (GPU count, FSDP/DeepSpeed sharding)")] = None,
    deepspeed: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="With --from: DeepSpeed JSON (ZeRO stage, offload, micro-batch)")] = None,
    zero: Annotated[int, typer.Option(help="DeepSpeed ZeRO stage 0-3 (3 = FSDP full shard)")] = 0,
    offload_optimizer: Annotated[bool, typer.Option(help="Optimizer state in CPU memory")] = False,
    offload_params: Annotated[bool, typer.Option(help="ZeRO-3: parameters in CPU memory")] = False,
    examples: Annotated[int | None, typer.Option(help="Training examples, for time and cost")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the examples")] = 1.0,
    mean_tokens: Annotated[float | None, typer.Option(help="Mean tokens per example; default --seq-len")] = None,
    utilization: Annotated[float | None, typer.Option(help="Model FLOPs utilisation 0-1; default by method/GPU")] = None,
    headroom: Annotated[float, typer.Option(help="Share of GPU memory kept free when judging fit")] = 0.05,
    fit: Annotated[bool, typer.Option("--fit", help="Check every catalog GPU; with --examples: the cheapest GPU × "
                                      "count (1, 2, 4, 8) and sharding layout for the whole job")] = False,
    max_batch: Annotated[bool, typer.Option("--max-batch", help="Largest micro-batch that fits --gpu")] = False,
    max_seq_len: Annotated[bool, typer.Option("--max-seq-len", help="Largest sequence length that fits --gpu")] = False,
    serve_quant: Annotated[ServeQuantOpt | None, typer.Option(
        help="Inference: weights stored quantized (gptq/awq: 4-bit group 128; int8: bitsandbytes; fp8: vLLM's "
             "online FP8); default: a model folder's `quantization_config`, else 16-bit")] = None,
    kv_cache_dtype: Annotated[KvCacheOpt, typer.Option(
        help="Inference: vLLM `--kv-cache-dtype`; fp8 stores keys and values in 1 byte")] = "auto",
    requests_per_day: Annotated[float, typer.Option(
        min=0, help="Inference with --gpu: requests a day, for replicas and the monthly bill")] = 0.0,
    output_tokens: Annotated[float, typer.Option(
        min=1, help="Inference: tokens generated per request (the rest of --context is prompt)")] = 256.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show every assumption and its source")] = False,
) -> None:
    """Estimate peak GPU memory, training time and cost of one job, component by component."""
    with user_errors():
        from advisor.core import catalog
        from advisor.core.estimate.job import JobRequest, run_estimate

        gpu_spec = catalog.resolve_gpu(gpu) if gpu else None
        request = JobRequest(
            gpu=gpu_spec, headroom=headroom, examples=examples, epochs=epochs, mean_tokens=mean_tokens,
            utilization=utilization, fit_all=fit, max_batch=max_batch, max_seq_len=max_seq_len,
        )
        from advisor.core.estimate.precision import estimate_precision

        model_spec, job, reading, typed = _job(ctx)
        method, dpo_policy = job.method, job.fields["dpo_policy"]
        trained = None if method == "inference" else (dpo_policy if method == "dpo" else method)
        chosen, reason = estimate_precision(precision, trained, gpu_spec)
        chosen, reason = _stack_precision(job, reading, typed, precision, chosen, reason, trained, gpu_spec)
        spec = _spec_from_options(model_spec, method, dict(precision=chosen, **job.fields))
        gpus_all = list(catalog.load_gpus().values())
        quant, kv_cache_dtype = _serve_quant(ctx, method)
        if method != "inference":
            def spec_for_gpu(g):  # the sweep: the job with the precision it gets on that GPU
                c, r = estimate_precision(precision, trained, g)
                c, _ = _stack_precision(job, reading, typed, precision, c, r, trained, g)
                return _spec_from_options(model_spec, method, dict(precision=c, **job.fields))

            if fit and examples is not None:
                typer.echo(f"sweeping {len(gpus_all)} GPU types × 1, 2, 4, 8 GPUs × sharding layouts", err=True)
            result = run_estimate(spec, request, precision_reason=reason, gpus=gpus_all, spec_for_gpu=spec_for_gpu)
            _print_training(result, as_json=as_json, explain=explain)
            return
        from advisor.core.estimate.serve_job import run_serving_estimate, serving_speed

        result = run_serving_estimate(spec, request, reason, gpus_all, quant, kv_cache_dtype)
        speed = serving_speed(spec, gpu_spec, quant, kv_cache_dtype, requests_per_day, output_tokens) \
            if gpu_spec else None
        _print_serving(result, speed, quant, kv_cache_dtype, requests_per_day, as_json=as_json, explain=explain)


def _print_training(result, *, as_json: bool, explain: bool) -> None:
    """The estimate, then (with --fit --examples) the GPU × count sweep; JSON: a `sweep` object beside it."""
    import json
    import sys

    from advisor.app.render import terminal as report
    from advisor.app.render.sweep import render_sweep, sweep_json

    if result.sweep is None:
        report.print_estimate(result, as_json=as_json, explain=explain)
    elif as_json:
        sys.stdout.write(json.dumps(report.estimate_json(result) | {"sweep": sweep_json(result.sweep)}, indent=2) + "\n")
    else:
        report.print_estimate(result, explain=explain)
        render_sweep(result.sweep, report.make_console())


def _serve_quant(ctx: typer.Context, method: str):
    """The quantized format and KV cache dtype: the flags, else the model folder's `quantization_config`."""
    from advisor.core.errors import InvalidInputError
    from advisor.core.estimate.quantized import (
        format_from_config,
        format_from_flag,
        kv_dtype_from_config,
        read_quantization_config,
    )

    params = dict(ctx.params)
    serve_flags = [f for f, v in (("--serve-quant", params["serve_quant"]),
                                  ("--kv-cache-dtype", params["kv_cache_dtype"] != "auto"),
                                  ("--requests-per-day", params["requests_per_day"])) if v]
    if method != "inference":
        if serve_flags:
            raise InvalidInputError([f"{', '.join(serve_flags)}: serving options, read only with --method inference"],
                                    hint="add `--method inference`, or drop them")
        return None, "auto"
    config = read_quantization_config(params["model"]) if params["model"] else None
    kv = params["kv_cache_dtype"] if params["kv_cache_dtype"] != "auto" else kv_dtype_from_config(config) or "auto"
    if params["serve_quant"]:
        return format_from_flag(params["serve_quant"]), kv
    return (format_from_config(config) if config else None), kv


def _print_serving(result, speed, quant, kv_cache_dtype: str, requests_per_day: float, *, as_json: bool,
                   explain: bool) -> None:
    """The estimate, then one replica's speed and the volume's GPUs and bill (JSON: a `serving` object)."""
    import json
    import sys

    from advisor.app.render import terminal as report

    serving = {"weights_format": quant.label if quant else "16-bit", "kv_cache_dtype": kv_cache_dtype}
    if speed is not None:
        serving |= {"output_tokens_per_s": speed.output_tokens_per_s, "max_batch": speed.max_batch,
                    "n_gpus": speed.n_gpus, "monthly_usd": speed.monthly_usd, "assumptions": speed.assumptions}
    if as_json:
        sys.stdout.write(json.dumps(report.estimate_json(result) | {"serving": serving}, indent=2) + "\n")
        return
    report.print_estimate(result, explain=explain)
    line = f"serving: {serving['weights_format']} weights, {'fp8' if kv_cache_dtype != 'auto' else '16-bit'} KV cache"
    if speed is not None:
        volume = f"{requests_per_day:,.0f} requests/day" if requests_per_day else "one always-on replica"
        line += (f"; a replica decodes {speed.output_tokens_per_s:,.0f} output tokens/s at batch {speed.max_batch} "
                 f"(as memory allows); {volume}: {speed.n_gpus} GPU(s), {speed.monthly_usd:,.0f} USD/month")
    typer.echo(line)
    if explain and speed is not None:
        for note in speed.assumptions:
            typer.echo(f"  - {note}")


def _installed(package: str) -> str | None:
    """The installed release of `package` as major.minor.patch, or None when it is not installed."""
    import re
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = re.match(r"\d+\.\d+(\.\d+)?", version(package))
    except PackageNotFoundError:
        return None
    return found.group(0) if found else None


def _job(ctx: typer.Context):
    """The model, the merged fields (flags typed > --from file > stack profile > defaults) and the reading."""
    from advisor.core import catalog
    from advisor.core.errors import InvalidInputError
    from advisor.core.estimate.configs import read_training_config
    from advisor.core.estimate.jobspec import describe_reading, job_fields, resolve_config_model

    params = dict(ctx.params)
    typed = {SPEC_FIELDS.get(name, name) for name in params
             if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"}  # typer may vendor click
    reading = None
    if params["from_file"] is not None:
        reading = read_training_config(params["from_file"], params["accelerate_config"], params["deepspeed"])
    elif params["accelerate_config"] or params["deepspeed"]:
        raise InvalidInputError(["--accelerate-config/--deepspeed: read only with --from FILE"],
                                hint="use --gpus, --zero, --offload-optimizer and --offload-params without a file")
    targets = params["lora_targets"]
    cli = {SPEC_FIELDS.get(name, name): params[name] for name in (
        "method", "optimizer", "lora_rank", "lora_dropout", "dpo_policy", "batch_size", "seq_len", "context",
        "grad_ckpt", "attention", "gpus", "zero", "offload_optimizer", "offload_params", "loss_kernel",
        "adapter_dtype", "kbit_prep", "packing", "num_virtual_tokens")}
    cli["bitsandbytes"] = params["bitsandbytes"] or _installed("bitsandbytes")
    installed = _installed("transformers")
    cli["transformers"] = params["transformers"] or (4 if installed and installed.startswith("4.") else 5)
    ia3 = params["ia3_targets"]
    cli["ia3_targets"] = "default" if ia3 == "default" else [t.strip() for t in ia3.split(",") if t.strip()]
    cli["lora_targets"] = "all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    job = job_fields(cli, typed, reading, params["stack"])
    if job.method == "prefix_tuning" and "grad_ckpt" not in typed:
        job.fields["grad_ckpt"] = False  # PEFT's prefix cache cannot be recomputed (see TrainStep)
    note = None
    if params["model"] is not None:
        model_spec = catalog.resolve_model(params["model"])
    elif reading is None or reading.model is None:
        where = f"`{reading.path}` names no base model" if reading else "no model given"
        raise InvalidInputError([f"--model: {where}"], hint="pass `--model NAME` (`advisor models` lists them)")
    else:
        model_spec, note = resolve_config_model(reading.model)
    for line in [*(describe_reading(reading) if reading else []), *([f"note: {note}"] if note else [])]:
        typer.echo(line, err=True)
    return model_spec, job, reading, typed


def _stack_precision(job, reading, typed, requested, chosen, reason, trained, gpu_spec):
    """The precision as the job's stack stores it: the --from file's dtype, or the profile's for full training."""
    from advisor.core.estimate.jobspec import reading_precision, stack_precision

    if reading is not None and "precision" not in typed:
        return reading_precision(reading, trained, gpu_spec)
    return stack_precision(job.stack, requested, chosen, reason, trained)


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
