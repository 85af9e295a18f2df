"""`advisor train check`: everything cheap that could make a training run fail later, found before it starts.

Data (every bad line), the chat template on one sample, token lengths and truncation, the memory estimate
against the device, free disk, known incompatibilities and the state of the run folder. Nothing is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from advisor.core.errors import AdvisorError
from advisor.core.estimate.fit import fits_device
from advisor.core.models import MemoryEstimate, Model, TrainStep
from backends.common.audit import DataAudit, audit_examples
from backends.common.data import load_examples, split_examples
from backends.common.replay import mix_replay
from backends.train.device import DeviceInfo, choose_precision, probe_device
from backends.train.fit import last_checkpoint
from backends.train.fitting import cheapest_fitting_change, count_params
from backends.train.predict import predict_memory
from backends.train.tokens import LengthStats, example_lengths, length_stats, render_sample

__all__ = ["Finding", "TrainCheck", "check", "raise_for_errors"]

# Bytes per value on disk: fp32 weights, and Adam's two fp32 moments per trainable parameter
# (torch.optim.AdamW state, saved in every checkpoint).
FP32_BYTES = 4
ADAM_STATE_BYTES = 8
SIXTEEN_BIT_BYTES = 2


class Finding(Model):
    """One thing the check found."""

    level: Literal["ok", "warn", "error"] = Field(description="error: the run would fail or is refused")
    topic: str = Field(description="What it is about: data, template, lengths, memory, disk, config, output")
    message: str = Field(description="One line")
    hint: str | None = Field(None, description="What to change")
    is_forceable: bool = Field(False, description="`--force` runs anyway (the estimate may be pessimistic)")


class TrainCheck(Model):
    """The dry run's report."""

    findings: list[Finding]
    data_format: str = Field(description="Detected data format")
    n_train_examples: int
    n_eval_examples: int
    base_model: str = Field(description="Where the base model is (a path, a Hub id, or `tiny-demo`)")
    sample_text: str = Field(description="The first training example as the model will see it")
    eos_token: str | None = Field(description="The end-of-sequence token the answers end with")
    lengths: LengthStats
    device: DeviceInfo
    precision: str
    precision_reason: str
    n_params: int = Field(description="Parameters of the model (counted on the meta device)")
    n_trainable_params: int = Field(description="Parameters that will be trained")
    predicted: MemoryEstimate | None = Field(description="Estimated training memory per device; None: see note")
    predicted_eval: MemoryEstimate | None = Field(description="Estimated evaluation (forward only) memory")
    prediction_note: str
    disk_free_bytes: int
    disk_needed_bytes: int = Field(description="Checkpoints kept, final weights and the merged model")
    resume_checkpoint: str | None = Field(description="Checkpoint `--resume` would continue from")
    audit: DataAudit | None = Field(None, description="The data audit (`advisor data audit`) of the step's file")

    @property
    def is_ok(self) -> bool:
        """No error findings."""
        return not any(f.level == "error" for f in self.findings)


def _inspect_base(step: TrainStep, run_dir: Path, train: list[dict], teacher=None) -> tuple[str, object, dict]:
    """(label, tokenizer, config dict) of the base model, without loading weights or writing anything.

    A demo student not built yet of a logit-distillation step (`teacher`: its `TeacherInfo`) takes the teacher's
    tokenizer and logits width, as the run builds it.
    """
    from backends.common.tiny import DEMO_MODELS, build_tokenizer, tiny_config
    from backends.train.dpo import resolve_dpo_base
    from backends.train.model import load_tokenizer, read_hf_config, resolve_base_model

    adapter = Path(step.init_adapter) if step.init_adapter else None
    base = resolve_dpo_base(step, adapter)
    if base is None and step.base_model in DEMO_MODELS and not (run_dir / "base-model" / "config.json").is_file():
        if teacher is not None and teacher.tokenizer_source is not None:
            tokenizer = load_tokenizer(teacher.tokenizer_source)
            config = tiny_config(tokenizer, step.base_model, teacher.config.get("vocab_size"))
            return step.base_model, tokenizer, config.to_dict()
        tokenizer = build_tokenizer(train)
        return step.base_model, tokenizer, tiny_config(tokenizer, step.base_model).to_dict()
    base = base or resolve_base_model(step.base_model, run_dir, None, seed=step.seed)
    return base, load_tokenizer(base), read_hf_config(base)


def _teacher_info(step: TrainStep, run_dir: Path, train: list[dict]):
    """The logit-distillation teacher as the check sees it (None: no teacher, or trained by an earlier step
    that has not run yet: its tokenizer is compared when this step runs)."""
    if step.distill_teacher is None:
        return None
    from backends.train.logit_distill import inspect_teacher

    return inspect_teacher(step, run_dir, train)


def _teacher_findings(step: TrainStep, teacher, train: list[dict], student_tokenizer, student_config: dict):
    """Logit-level distillation: one tokenizer and logits width for both models, and a teacher copied to every
    process (DDP) rather than sharded."""
    from backends.common.tiny import build_tokenizer
    from backends.train.logit_distill import SEQUENCE_LEVEL_HINT, tokenizer_mismatch
    from backends.train.model import load_tokenizer

    teacher_tokenizer = load_tokenizer(teacher.tokenizer_source) if teacher.tokenizer_source else build_tokenizer(train)
    problem = tokenizer_mismatch(teacher_tokenizer, student_tokenizer, teacher.config, student_config)
    if problem:
        found = [Finding(level="error", topic="distill", message=f"distill_teacher `{step.distill_teacher}`: "
                         f"{problem}", hint=SEQUENCE_LEVEL_HINT)]
    else:
        found = [Finding(level="ok", topic="distill", message=f"logit-level distillation from `{teacher.label}`: "
                         f"one tokenizer ({len(student_tokenizer)} tokens), temperature "
                         f"{step.distill_temperature:g}, alpha {step.distill_alpha:g}")]
    if step.n_gpus > 1 and step.distributed != "ddp":
        found.append(Finding(level="error", topic="distill", message=f"logit-level distillation with "
                             f"`distributed: {step.distributed}`: the frozen teacher is copied whole to every "
                             "process, not sharded", hint="use `distributed: ddp`, or one GPU"))
    return found


def _vocab_matched(teacher, hf_config: dict) -> dict | None:
    """The teacher's config for the memory estimate when its logits are as wide as the student's, else None."""
    if teacher is None or teacher.config.get("vocab_size") != hf_config.get("vocab_size"):
        return None
    return teacher.config


def _config_findings(step: TrainStep, device: DeviceInfo, hf_config: dict) -> list[Finding]:
    found = []
    train_method = step.dpo_policy if step.method == "dpo" else step.method
    if train_method == "qlora" and step.n_gpus > 1 and step.distributed == "zero3":
        found.append(Finding(level="error", topic="config", message="QLoRA with DeepSpeed ZeRO-3 is not supported "
                             "here: ZeRO-3 partitions the packed 4-bit weights",
                             hint="use `distributed: fsdp` (FSDP-QLoRA) or `zero2`"))
    if step.n_gpus > 1 and (device.kind == "cpu" or device.n_devices < step.n_gpus):
        found.append(Finding(level="error", topic="config", message=f"the plan asks for {step.n_gpus} GPUs; this "
                             f"machine has {device.n_devices if device.kind == 'cuda' else 0}",
                             hint="set `n_gpus` to the GPUs you have"))
    if step.merge and (step.method == "full" or (step.method == "dpo" and step.dpo_policy == "full")):
        found.append(Finding(level="warn", topic="config", message="`merge` does nothing with full fine-tuning",
                             hint="set `merge: false`"))
    if step.method == "dpo" and step.init_adapter and step.dpo_policy == "full":
        found.append(Finding(level="error", topic="config", message="`init_adapter` needs `dpo_policy` lora or qlora",
                             hint="set `dpo_policy: lora`"))
    if step.early_stopping_patience is not None and step.eval_fraction == 0:
        found.append(Finding(level="error", topic="config", message="early stopping needs a validation split",
                             hint="set `eval_fraction` above 0"))
    if step.packing and step.method == "dpo":
        found.append(Finding(level="warn", topic="config", message="`packing` is ignored for DPO (pairs stay whole)"))
    if "8bit" in step.optimizer and device.kind == "cpu":
        found.append(Finding(level="warn", topic="config", message=f"`{step.optimizer}` is a bitsandbytes GPU "
                             "optimizer", hint="use `optimizer: adamw` on a CPU"))
    n_experts = hf_config.get("num_local_experts") or hf_config.get("num_experts") or 0
    if train_method in ("lora", "qlora") and n_experts > 1 and step.lora_dropout > 0:
        found.append(Finding(level="error", topic="config", message=f"lora_dropout {step.lora_dropout:g} on a "
                             f"mixture-of-experts model: PEFT's wrapper for fused expert weights refuses dropout",
                             hint="set `lora_dropout: 0`"))
    if step.lora_rank > hf_config.get("hidden_size", step.lora_rank):
        found.append(Finding(level="error", topic="config", message=f"lora_rank must be ≤ hidden_size (got "
                             f"{step.lora_rank} > {hf_config['hidden_size']})", hint="lower `lora_rank`"))
    found += _peft_method_findings(step, hf_config)
    max_positions = hf_config.get("max_position_embeddings")
    if max_positions and step.seq_len > max_positions:
        found.append(Finding(level="warn", topic="lengths", message=f"seq_len {step.seq_len} is beyond the model's "
                             f"{max_positions} positions", hint=f"set `seq_len` ≤ {max_positions}"))
    return found


def _peft_method_findings(step: TrainStep, hf_config: dict) -> list[Finding]:
    """IA3 and prefix tuning settings PEFT would refuse for this architecture (module names, prefix shape)."""
    if step.method not in ("ia3", "prefix_tuning"):
        return []
    from advisor.core.catalog import model_spec_from_hf_config
    from advisor.core.estimate.params import prefix_width, resolve_ia3_targets

    try:
        model = model_spec_from_hf_config(hf_config, step.base_model, step.base_model)
    except (AdvisorError, ValueError):
        return []  # an architecture the estimator does not describe: PEFT decides at load
    try:
        if step.method == "ia3":
            resolve_ia3_targets(model, step.ia3_targets)
        else:
            prefix_width(model)
    except AdvisorError as exc:
        return [Finding(level="error", topic="config", message=exc.message.replace("\n", "; "), hint=exc.hint)]
    return []


def _audit_findings(audit: DataAudit) -> list[Finding]:
    """The audit's counts as warnings (lengths are reported by the length check itself) and the leakage check."""
    found = []

    def warn(count: int | None, message: str, hint: str) -> None:
        if count:
            found.append(Finding(level="warn", topic="data", message=message, hint=hint))

    lines = ", ".join(str(d.line) for d in audit.exact_duplicates[:5]) + (", ..." if audit.n_exact_duplicates > 5
                                                                           else "")
    warn(audit.n_exact_duplicates, f"exact duplicate lines dropped, first copies kept: {audit.n_exact_duplicates} "
         f"(lines {lines})",
         "remove them from the file to silence this, or refuse them with `advisor data audit --strict`")
    warn(audit.n_near_duplicate_pairs, f"near-duplicate pairs, kept on one side of the split: "
         f"{audit.n_near_duplicate_pairs}", "run `advisor data audit` to see them; drop near-copies that add nothing")
    warn(audit.n_conflicts, f"prompts with different answers: {audit.n_conflicts}",
         "keep one answer per prompt (`advisor data audit` lists the lines)")
    warn(audit.n_empty_answers, f"answers with no visible character: {audit.n_empty_answers}",
         "fill or remove them (`advisor data audit` lists the lines)")
    warn(audit.n_template_leaks, f"answers holding chat-template markup: {audit.n_template_leaks}",
         "strip role headers and special tokens from the answers; the trainer adds the template")
    n_sensitive = sum(audit.sensitive_counts.values())
    kinds = ", ".join(f"{n} {kind}" for kind, n in audit.sensitive_counts.items() if n)
    warn(n_sensitive, f"sensitive strings: {n_sensitive} ({kinds})",
         "remove or pseudonymise them before training (`advisor data audit` lists masked lines)")
    leak = audit.leakage
    if leak.n_groups:
        found.append(Finding(level="warn" if leak.n_straddling_grouped else "ok", topic="data",
                             message=f"split grouped: {leak.n_straddling_grouped} of {leak.n_groups} groups of related "
                                     f"examples straddle it (a plain shuffled split: {leak.n_straddling_naive})"))
    found.extend(Finding(level="warn", topic="data", message=note) for note in audit.notes
                 if note.startswith("near-duplicates not checked"))
    return found


def _disk_needed_bytes(step: TrainStep, n_params: int, n_trainable: int, precision: str) -> int:
    from backends.train.builders import CHECKPOINTS_KEPT

    checkpoint = n_trainable * (FP32_BYTES + ADAM_STATE_BYTES)
    final = n_trainable * FP32_BYTES
    merged = n_params * (FP32_BYTES if precision == "fp32" else SIXTEEN_BIT_BYTES) if step.merge else 0
    return CHECKPOINTS_KEPT * checkpoint + final + merged


def _free_bytes(path: Path) -> int:
    for parent in [path, *path.parents]:
        if parent.exists():
            return shutil.disk_usage(parent).free
    return 0


def check(step: TrainStep, run_dir: Path) -> TrainCheck:
    """Dry-run `step`: inspect data, tokenizer, memory, disk and configuration; load no weights.

    Args:
        step: The plan step.
        run_dir: Where the run would write (inspected, never written).

    Returns:
        The findings and the numbers behind them; `is_ok` is False when the run would fail.

    Raises:
        AdvisorError: input the run cannot even start from (missing files, bad lines, unknown model).
    """
    if step.objective == "causal_lm":
        return _check_corpus(step, run_dir)
    examples = load_examples(Path(step.data_path), for_preference=step.method == "dpo")
    train, evaluation = split_examples(examples, step.eval_fraction, step.seed)
    device = probe_device()
    precision, precision_reason = choose_precision(step.precision, device)
    teacher = _teacher_info(step, run_dir, train)
    base, tokenizer, hf_config = _inspect_base(step, run_dir, train, teacher)
    token_counts = example_lengths(examples.records, tokenizer)  # the split's records, in file order
    lengths = length_stats(token_counts, step.seq_len)
    audit = audit_examples(examples, seq_len=step.seq_len, eval_fraction=step.eval_fraction, seed=step.seed,
                           token_counts=token_counts)
    findings = _audit_findings(audit) + _config_findings(step, device, hf_config)
    if teacher is not None:
        findings += _teacher_findings(step, teacher, train, tokenizer, hf_config)
    train, replay = mix_replay(train, step.replay_fraction, step.replay_path, step.seed)  # a bad file raises here
    if replay is not None:
        findings.append(Finding(level="ok", topic="replay", message=f"{replay.n_added} examples from {replay.source} "
                                f"mixed into the {len(train) - replay.n_added} training examples "
                                f"(replay_fraction {replay.fraction:g}); the held-out split is the task's own",
                                hint="replay_fraction 0 turns it off"))
    if lengths.n_truncated:
        findings.append(Finding(level="warn", topic="lengths", message=f"{lengths.n_truncated} of "
                                f"{lengths.n_examples} examples are longer than seq_len {step.seq_len}; truncation "
                                f"cuts {lengths.truncated_tokens_fraction:.1%} of all tokens",
                                hint=f"raise `seq_len` to {lengths.max_tokens} to keep every token"))
    seq_len = step.seq_len if step.packing else min(step.seq_len, lengths.max_tokens)
    n_params, n_trainable = count_params(hf_config, step)
    predicted, note = predict_memory(step, hf_config, base, precision, seq_len=seq_len, device=device.kind,
                                     teacher_config=_vocab_matched(teacher, hf_config))
    predicted_eval = None
    if predicted is not None:
        predicted_eval, _ = predict_memory(step, hf_config, base, precision, seq_len=seq_len, for_eval=True,
                                            device=device.kind)
        if not fits_device(predicted, device):
            change = cheapest_fitting_change(step, hf_config, base, precision, seq_len, device)
            findings.append(Finding(
                level="error", topic="memory", is_forceable=True,
                message=f"estimated peak {predicted.peak_bytes / 2**30:.1f} GiB per device does not fit in "
                        f"{device.memory_bytes / 2**30:.1f} GiB ({device.name})",
                hint=f"cheapest change that fits: {change}" if change else "no single plan change fits; use a "
                     "larger GPU or more GPUs"))
    disk_needed = _disk_needed_bytes(step, n_params, n_trainable, precision)
    disk_free = _free_bytes(run_dir)
    if disk_needed > disk_free:
        findings.append(Finding(level="error", topic="disk", message=f"needs {disk_needed / 2**30:.1f} GiB for "
                                f"checkpoints and weights; {disk_free / 2**30:.1f} GiB free", hint="free disk space "
                                "or choose another `--out`"))
    checkpoint = last_checkpoint(run_dir / step.output_dir)
    if checkpoint is not None:
        findings.append(Finding(level="ok", topic="output", message=f"`{run_dir}` holds a run stopped at "
                                f"{checkpoint.name}", hint="`--resume` continues it; `--force` starts afresh"))
    elif run_dir.exists() and any(run_dir.iterdir()):
        findings.append(Finding(level="warn", topic="output", message=f"`{run_dir}` is not empty",
                                hint="a fresh run there needs `--force`, or choose another `--out`"))
    return TrainCheck(
        findings=findings, data_format=examples.format, n_train_examples=len(train),
        n_eval_examples=len(evaluation), base_model=base, sample_text=render_sample(train[0], tokenizer),
        eos_token=tokenizer.eos_token, lengths=lengths, device=device, precision=precision,
        precision_reason=precision_reason, n_params=n_params, n_trainable_params=n_trainable, predicted=predicted,
        predicted_eval=predicted_eval, prediction_note=note, disk_free_bytes=disk_free,
        disk_needed_bytes=disk_needed, resume_checkpoint=str(checkpoint) if checkpoint else None, audit=audit,
    )


def _check_corpus(step: TrainStep, run_dir: Path):
    """The dry run of a continued-pretraining step: corpus, packing, memory and disk (no weights loaded)."""
    from backends.common.tiny import DEMO_MODELS, build_tokenizer, tiny_config
    from backends.train.model import load_tokenizer, read_hf_config, resolve_base_model
    from backends.train.pretrain import CORPUS_FORMAT, corpus_records, load_corpus, pack_corpus, split_blocks

    texts = load_corpus(step.data_path)
    if step.base_model in DEMO_MODELS and not (run_dir / "base-model" / "config.json").is_file():
        tokenizer = build_tokenizer(corpus_records(texts))
        base, hf_config = step.base_model, tiny_config(tokenizer, step.base_model).to_dict()
    else:
        base = resolve_base_model(step.base_model, run_dir, None, seed=step.seed)
        tokenizer, hf_config = load_tokenizer(base), read_hf_config(base)
    packed = pack_corpus(texts, tokenizer, step.seq_len)
    train, held = split_blocks(packed.blocks, step.eval_fraction, step.seed)
    device = probe_device()
    precision, precision_reason = choose_precision(step.precision, device)
    predicted, note = predict_memory(step, hf_config, base, precision, seq_len=step.seq_len, device=device.kind)
    n_params, n_trainable = count_params(hf_config, step)
    findings = [Finding(level="ok", topic="corpus", message=f"{packed.n_documents} documents, {packed.n_tokens} "
                        f"tokens with EOS → {len(packed.blocks)} blocks of {step.seq_len} ({len(train)} train, "
                        f"{len(held)} held out; {packed.n_dropped_tokens} tail tokens dropped)")]
    disk_needed, disk_free = _disk_needed_bytes(step, n_params, n_trainable, precision), _free_bytes(run_dir)
    if disk_needed > disk_free:
        findings.append(Finding(level="error", topic="disk", message=f"needs {disk_needed / 2**30:.1f} GiB; "
                                f"{disk_free / 2**30:.1f} GiB free", hint="free disk space or choose another `--out`"))
    checkpoint = last_checkpoint(run_dir / step.output_dir)
    return TrainCheck(
        findings=findings, data_format=CORPUS_FORMAT, n_train_examples=len(train), n_eval_examples=len(held),
        base_model=base, sample_text=tokenizer.decode(train[0][:64]), eos_token=tokenizer.eos_token,
        lengths=length_stats([len(b) for b in packed.blocks], step.seq_len), device=device, precision=precision,
        precision_reason=precision_reason, n_params=n_params, n_trainable_params=n_trainable, predicted=predicted,
        predicted_eval=None, prediction_note=note, disk_free_bytes=disk_free, disk_needed_bytes=disk_needed,
        resume_checkpoint=str(checkpoint) if checkpoint else None,
    )


def raise_for_errors(report: TrainCheck, *, force: bool) -> None:
    """Refuse a run the check says would fail (`force` overrides memory findings only).

    Raises:
        AdvisorError: one line per error finding.
    """
    errors = [f for f in report.findings if f.level == "error" and not (force and f.is_forceable)]
    if errors:
        hints = [f.hint for f in errors if f.hint]
        message = "; ".join(f.message for f in errors)
        if any(f.is_forceable for f in errors):
            hints.append("`--force` runs anyway")
        raise AdvisorError(message, "; ".join(hints) or None)
