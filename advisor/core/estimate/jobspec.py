"""The fields of one `advisor estimate` job from three layers: flags typed, a `--from` config, a stack profile.

Precedence, per field: a flag typed on the command line, else the config file's value, else (for the
stack knobs: loss kernel, adapter dtype, k-bit prep, packing, attention, optimizer, checkpointing) the
stack profile's default, else the command's own default. The stack is `--stack` if typed, else the
config's tool, else `trl` (what `advisor train` runs), so a plain `advisor estimate` is unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from advisor.core.estimate.configs import ConfigReading
from advisor.core.estimate.stacks import KNOBS, resolve_knobs
from advisor.core.models import GpuSpec, Method, Model, Precision

__all__ = [
    "JobFields", "describe_reading", "job_fields", "reading_precision", "resolve_config_model", "stack_precision",
]

DEFAULT_STACK = "trl"
# EstimateSpec field -> the flag that sets it, for messages.
FLAGS = {
    "method": "--method", "optimizer": "--optimizer", "attention": "--attention", "loss_kernel": "--loss-kernel",
    "n_gpus": "--gpus", "zero_stage": "--zero", "lora_targets": "--lora-targets", "precision": "--precision",
}
IGNORED_SHOWN = 12  # a TrainingArguments dump has ~100 such keys; unknown keys are always listed in full
# Suffixes of chat/instruct checkpoints whose config.json has the base model's shapes.
INSTRUCT_SUFFIXES = ("-instruct", "-it", "-chat", "-hf")


class JobFields(Model):
    """What the estimator is given, before precision and the model are resolved."""

    method: Method
    fields: dict[str, Any] = Field(description="EstimateSpec keyword arguments except model, method, precision")
    stack: str = Field(description="The stack profile whose defaults filled the knobs")
    knob_lines: list[str] = Field(description="Each stack knob with its value and where it came from")


def job_fields(cli: dict[str, Any], typed: set[str], reading: ConfigReading | None, stack: str | None) -> JobFields:
    """Merge the command line, the config reading and the stack profile (see the module docstring).

    Args:
        cli: EstimateSpec field -> the command's value (knob flags not typed are None), plus `method`.
        typed: Fields whose flags were typed on the command line.
        reading: The `--from` config, if any.
        stack: `--stack` if typed, else None.

    Raises:
        InvalidInputError: The config asks for something advisor cannot model and no flag overrides it, or it
            shards over GPUs without saying how many.
    """
    from advisor.core.errors import InvalidInputError

    fields = {k: v for k, v in cli.items() if k != "method"}
    method = cli["method"]
    if reading is not None:
        fields.update(reading.options)
        if "method" not in typed:
            method = reading.method
            if "dpo_policy" not in typed:
                fields["dpo_policy"] = reading.dpo_policy
        fields.update({k: cli[k] for k in typed if k in fields})
    name = stack or (reading.tool if reading is not None else DEFAULT_STACK)
    from_file = set(reading.options) if reading is not None else set()
    given = {k: fields.get(k) for k in KNOBS if k in typed or k in from_file}
    train = None if method == "inference" else (fields.get("dpo_policy", "lora") if method == "dpo" else method)
    values, lines = resolve_knobs(name, method, train, given)
    fields.update(values)
    problems = []
    if reading is not None:
        problems += [f"{reading.path}: {why}; override with `{FLAGS.get(field, '--' + field)}`"
                     for field, why in reading.unsupported.items() if field not in typed]
        if fields.get("zero_stage") and fields.get("n_gpus", 1) == 1 and "n_gpus" not in typed and not (
                fields.get("offload_optimizer") or fields.get("offload_params")):
            problems.append(f"{reading.path}: ZeRO/FSDP shards over GPUs, but the GPU count is not known: pass "
                            "`--gpus N` or an accelerate config with `--accelerate-config`")
    if problems:
        raise InvalidInputError(problems, hint="flags typed on the command line override the file")
    return JobFields(method=method, fields=fields, stack=name, knob_lines=lines)


def reading_precision(reading: ConfigReading, train_method: str | None, gpu: GpuSpec | None) -> tuple[Precision, str]:
    """The estimator's precision for what the config asks (its compute dtype; fp32 master weights or not)."""
    from advisor.core.estimate.precision import choose_precision, device_of

    compute, reason = choose_precision(reading.compute, device_of(gpu) if gpu is not None else None)
    reason = f"{reading.path}: {reason}"
    fp32 = reading.fp32_weights
    if compute != "fp32" and (fp32 == "all" and train_method != "qlora" or fp32 == "trainable" and train_method == "full"):
        reason += f"; {reading.tool} keeps fp32 {'weights' if fp32 == 'all' else 'trainable weights'} under autocast"
        return f"{compute}-mixed", reason  # type: ignore[return-value]
    if compute != "fp32" and train_method == "full":
        reason += f"; {reading.tool} trains the 16-bit weights themselves (no fp32 master copy)"
    return compute, reason  # type: ignore[return-value]


def resolve_config_model(ref: str):
    """The architecture a config's model reference names: catalog, path or Hub id; an instruct/chat
    checkpoint falls back to its base model's catalog entry (same config.json shapes).

    Raises:
        UnknownNameError: Neither the reference nor its base is known (the hint says how to give a config.json).
    """
    from advisor.core import catalog
    from advisor.core.errors import UnknownNameError

    try:
        return catalog.resolve_model(ref), None
    except UnknownNameError:
        lower = ref.lower()
        for suffix in INSTRUCT_SUFFIXES:
            if lower.endswith(suffix):
                base = ref[: -len(suffix)]
                try:
                    return catalog.resolve_model(base), f"`{ref}` has the shapes of `{base}` (its base model)"
                except UnknownNameError:
                    continue
        raise


def describe_reading(reading: ConfigReading) -> list[str]:
    """Lines for people (stderr): what was read, what was defaulted, and every key not used."""
    from advisor.core.estimate.configs import TOOL_LABELS

    lines = [f"read `{reading.path}` as {TOOL_LABELS[reading.tool]} config: {reading.method}"
             + (f" ({reading.dpo_policy} policy)" if reading.method == "dpo" else "")
             + f"; {len(reading.used)} keys used"]
    lines += [f"default: {line}" for line in reading.defaulted]
    lines += [f"note: {line}" for line in reading.notes]
    if reading.ignored:
        shown = ", ".join(f"`{k}`" for k in reading.ignored[:IGNORED_SHOWN])
        more = len(reading.ignored) - IGNORED_SHOWN
        lines.append(f"ignored, no effect on memory ({len(reading.ignored)} keys): {shown}"
                     + (f" and {more} more" if more > 0 else ""))
    if reading.unknown:
        lines.append("warning: unknown keys, not read (check their spelling, or they are features advisor "
                     "does not model): " + ", ".join(f"`{k}`" for k in reading.unknown))
    return lines


def stack_precision(
    stack: str, requested: str, chosen: Precision, reason: str, train_method: str | None
) -> tuple[Precision, str]:
    """`--precision auto/bf16/fp16` on a full fine-tune, as the stack stores it: pure 16-bit weights for the
    stacks that train the loaded 16-bit model (HF Trainer, Axolotl), fp32 master weights for the others."""
    from advisor.core.estimate.stacks import stack_profile

    profile = stack_profile(stack)
    if train_method != "full" or requested not in ("auto", "bf16", "fp16") or not chosen.endswith("-mixed"):
        return chosen, reason
    if profile.full_master_fp32:
        return chosen, reason
    pure = chosen.removesuffix("-mixed")
    if pure == "fp16":
        return chosen, reason + f"; {stack} trains fp16 with a gradient scaler, which needs fp32 weights"
    return pure, f"{reason}; but {stack} trains the 16-bit weights themselves ({profile.sources['full_master_fp32']})"
