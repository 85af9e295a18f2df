"""`advisor train run`: check → load → train → save → merge → result.json, for one `TrainStep`.

One GPU or a CPU trains in this process. Several processes (`n_gpus` > 1, or `n_processes` > 1 on a CPU): this
process writes an accelerate config, launches `python -m backends.train` in each through `accelerate launch`,
keeps their output in `launch.log` (progress lines are shown), and reads the result the main process wrote.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from advisor.core.errors import AdvisorError, RunFailedError
from advisor.core.estimate.compute import backend_matmul_precision
from advisor.core.fileio import private_files, write_text_atomic
from advisor.core.models import TrainStep
from backends.common.audit import audit_examples
from backends.common.data import load_examples, split_examples
from backends.common.replay import ReplayMix, mix_replay
from backends.common.tiny import demo_note_of, is_demo_model
from backends.train.check import check, raise_for_errors
from backends.train.device import choose_precision, probe_device
from backends.train.fit import fit, last_checkpoint
from backends.train.measure import MemoryMeter
from backends.train.results import RESULT_FILE, MergeCheck, TrainResult, compare_memory, library_versions
from backends.train.tensor_peak import predict_measured_step

__all__ = ["run", "train_here"]

PLAN_FILE = "plan.yaml"
VERSIONS_FILE = "versions.json"
MERGED_DIR = "merged"
# What a run writes into its folder; `--force` removes these (and nothing else) before a fresh run.
RUN_OUTPUTS = ("base-model", MERGED_DIR, PLAN_FILE, VERSIONS_FILE, RESULT_FILE, "eval_before.json", "accelerate.yaml",
               "launch.log")


def _same_job(a: TrainStep, b: TrainStep) -> bool:
    """Two steps describe the same training (the prediction made for them aside)."""
    return a.model_dump(exclude={"prediction"}) == b.model_dump(exclude={"prediction"})


def _saved_step(run_dir: Path) -> TrainStep | None:
    """The step an earlier run in `run_dir` wrote beside its artifacts; None when there is none or it is unreadable."""
    from pydantic import ValidationError

    from advisor.core.planning import load_plan

    saved = run_dir / PLAN_FILE
    if not saved.is_file():
        return None
    try:
        return next((s for s in load_plan(saved).steps if isinstance(s, TrainStep)), None)
    except (AdvisorError, ValidationError):
        return None


def _finished_result(step: TrainStep, run_dir: Path) -> TrainResult | None:
    """The result of an earlier run of this same step that finished (it died before its caller recorded it)."""
    from pydantic import ValidationError

    path = run_dir / RESULT_FILE
    previous = _saved_step(run_dir)
    if not path.is_file() or previous is None or not _same_job(previous, step):
        return None
    try:
        result = TrainResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, OSError):
        return None  # a torn result: train (or resume) again
    return result if result.status == "succeeded" else None


def _prepare_output(step: TrainStep, run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to mix runs: resume needs a checkpoint and the same plan; a fresh run needs an empty folder.

    `force` only ever replaces an earlier advisor run's outputs: a folder holding anything else is refused,
    so no plan can empty a folder the tool did not create.
    """
    if resume:
        if last_checkpoint(run_dir / step.output_dir) is None:
            raise AdvisorError(f"nothing to resume in `{run_dir}` (no finished checkpoint)",
                               "start it afresh (`advisor train run` without `--resume`)")
        previous = _saved_step(run_dir)
        if previous is not None and not _same_job(previous, step):
            raise AdvisorError(f"the plan changed since the run in `{run_dir}` started",
                               "resume with the same plan, or start afresh with `--force`")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise AdvisorError(f"run folder `{run_dir}` is not empty",
                               "use `--resume` to continue it, `--force` to start afresh there, or another `--out`")
        if not (run_dir / PLAN_FILE).is_file():
            raise AdvisorError(f"`{run_dir}` is not empty and holds no advisor training run",
                               "`--force` only replaces an earlier run's outputs; choose another `--out`")


def _clear_previous(step: TrainStep, run_dir: Path) -> None:
    """Remove an earlier run's outputs: only the names a run writes, inside `run_dir` (output_dir is relative)."""
    root = run_dir.resolve()
    for name in (*RUN_OUTPUTS, step.output_dir):
        target = (run_dir / name).resolve()
        if root not in target.parents:
            raise AdvisorError(f"`{name}` is outside the run folder `{run_dir}`; nothing was removed")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def _write_provenance(step: TrainStep, run_dir: Path, plan_name: str) -> None:
    from advisor.core.planning import Plan, save_plan

    save_plan(Plan(name=plan_name, steps=[step]), run_dir / PLAN_FILE)
    write_text_atomic(run_dir / VERSIONS_FILE, json.dumps(library_versions(), indent=2) + "\n")


def _write_result(result: TrainResult, run_dir: Path) -> None:
    write_text_atomic(run_dir / RESULT_FILE, result.model_dump_json(indent=2) + "\n")


def run(step: TrainStep, run_dir: str | Path, *, resume: bool = False, force: bool = False,
        plan_name: str = "plan") -> TrainResult:
    """Train `step` into `run_dir` and write `result.json` there.

    Args:
        step: The plan's training step (input paths absolute, as `advisor.core.planning.load_plan` makes them).
        run_dir: The step's folder; the model goes to `run_dir/step.output_dir`.
        resume: Continue from the last finished checkpoint in `run_dir`; a run that already finished there
            (killed before its caller recorded it) returns its result without training again.
        force: Replace an earlier run's outputs in `run_dir`, and run even when the estimate says it will not fit.
        plan_name: Name recorded in the `plan.yaml` written beside the artifacts.

    Returns:
        The result, also written to `run_dir/result.json`.

    Raises:
        AdvisorError: bad input, or a refused run; nothing is written then.
        RunFailedError: the run finished but failed its own checks (e.g. merged model differs).
    """
    run_dir = Path(run_dir)
    if resume and (finished := _finished_result(step, run_dir)) is not None:
        return finished
    _prepare_output(step, run_dir, resume=resume, force=force)
    raise_for_errors(check(step, run_dir), force=force)
    from backends.train.launch import n_processes

    processes = n_processes(step, probe_device().kind)
    if not resume:
        _clear_previous(step, run_dir)
    with private_files():  # adapters, checkpoints and results are the user's alone (0700/0600)
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_provenance(step, run_dir, plan_name)
        if processes > 1:
            result = _launch(step, run_dir, processes, resume=resume)
        else:
            result = train_here(step, run_dir, resume=resume)
    if result.status != "succeeded":
        raise RunFailedError(f"training in `{run_dir}` failed: {result.failure}", f"see `{run_dir / RESULT_FILE}`")
    return result


# backends.train.fit's progress line, e.g. `step 4/12 loss 4.8775 eval_loss 4.8620`.
PROGRESS_LINE = re.compile(r"step \d+/\d+( [a-z_]+ -?[0-9.]+(e-?\d+)?)+")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(step: TrainStep, run_dir: Path, processes: int, *, resume: bool) -> TrainResult:
    """Train in `processes` processes through `accelerate launch`; one `error:` line if one of them fails."""
    import os
    import sys

    from backends.train.launch import LAUNCH_LOG, failure_message, launch_command, write_accelerate_config
    from backends.train.model import resolve_base_model

    device = probe_device()
    precision, _ = choose_precision(step.precision, device)
    if step.objective == "causal_lm":
        from backends.train.pretrain import corpus_records, load_corpus

        resolve_base_model(step.base_model, run_dir, corpus_records(load_corpus(step.data_path)), seed=step.seed)
    elif step.method != "dpo" or not step.init_adapter:  # built once here, not by every process at once
        examples = load_examples(Path(step.data_path), for_preference=step.method == "dpo")
        train = training_split(step, examples)[0]
        _, tokenizer_from = _teacher(step, run_dir, train)
        resolve_base_model(step.base_model, run_dir, train, seed=step.seed, tokenizer_from=tokenizer_from)
    config = write_accelerate_config(step, precision, run_dir, num_processes=processes)
    command = launch_command(config, run_dir, resume=resume, port=_free_port())
    env = dict(os.environ)
    if device.kind == "cpu" and "OMP_NUM_THREADS" not in env:  # the cores shared out, not one each
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    log_path = run_dir / LAUNCH_LOG
    shown: set[str] = set()
    start = log_path.stat().st_size if resume and log_path.is_file() else 0
    with log_path.open("a" if resume else "w", encoding="utf-8") as log:  # a resume keeps what killed the last
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                   bufsize=1)
        for line in process.stdout:
            log.write(line)
            log.flush()
            if PROGRESS_LINE.fullmatch(line.rstrip("\n")) and line not in shown:  # each process logs the same line
                shown.add(line)
                print(line, end="", file=sys.stderr, flush=True)
        returncode = process.wait()
    if returncode != 0 or not (run_dir / RESULT_FILE).is_file():
        this_launch = log_path.read_bytes()[start:].decode("utf-8", errors="replace")
        raise failure_message(this_launch, returncode, log_path)
    return TrainResult.model_validate_json((run_dir / RESULT_FILE).read_text())


def _teacher_base(teacher: str) -> str:
    """The folder or id holding the teacher's config (an adapter's base)."""
    config = Path(teacher) / "adapter_config.json"
    if config.is_file():
        return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or teacher
    return teacher


def _heldout_distill(trainer, evaluation: list[dict], tokenizer, step: TrainStep, precision: str) -> dict | None:
    """The student's and teacher's held-out loss and their KL, as the student is now; None without held-out data."""
    from backends.train.logit_distill import MAX_HELDOUT, heldout_distill
    from backends.train.model import loss_batches

    if not evaluation:
        return None
    batches = loss_batches(evaluation[:MAX_HELDOUT], tokenizer, step.seq_len)
    measured = heldout_distill(trainer.model, trainer.teacher_model, batches, precision)
    return {**measured, "n_examples": len(batches)}


def _distill_result(step: TrainStep, teacher: str, trainer, before: dict | None, after: dict | None):
    from backends.train.logit_distill import LogitDistillResult

    if before is None or after is None:
        return None
    return LogitDistillResult(
        teacher=step.distill_teacher, teacher_path=teacher,
        n_teacher_params=sum(p.numel() for p in trainer.teacher_model.parameters()),
        temperature=step.distill_temperature, alpha=step.distill_alpha, n_heldout_examples=after["n_examples"],
        n_heldout_tokens=after["n_tokens"], teacher_loss=after["teacher_loss"],
        student_loss_before=before["student_loss"], student_loss_after=after["student_loss"],
        kl_before=before["kl"], kl_after=after["kl"],
    )


def training_split(step: TrainStep, examples) -> tuple[list[dict], list[dict], ReplayMix | None]:
    """(train, held-out, replay): the grouped split, then the step's replay mixed into the training part only."""
    train, evaluation = split_examples(examples, step.eval_fraction, step.seed)
    train, replay = mix_replay(train, step.replay_fraction, step.replay_path, step.seed)
    return train, evaluation, replay


def _teacher(step: TrainStep, run_dir: Path, train: list[dict]) -> tuple[str | None, str | None]:
    """(teacher, where the student's demo model takes its tokenizer from) of a logit-distillation step."""
    if step.distill_teacher is None:
        return None, None
    from backends.train.logit_distill import resolve_teacher, teacher_tokenizer_source

    teacher = resolve_teacher(step, run_dir, train)
    return teacher, teacher_tokenizer_source(teacher)


def _quiet_libraries() -> None:
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # per-load "Loading weights" bars of a fraction of a second


def train_here(step: TrainStep, run_dir: Path, *, resume: bool) -> TrainResult:
    """Load, train, save and (optionally) merge in this process; write `result.json` from the main process."""
    from backends.train.dpo import build_dpo_trainer, resolve_dpo_base
    from backends.train.model import (
        load_tokenizer,
        loss_batches,
        merge_adapter,
        read_hf_config,
        resolve_base_model,
    )
    from backends.train.predict import predict_memory
    from backends.train.sft import build_sft_trainer
    from backends.train.tokens import example_lengths

    _quiet_libraries()
    if step.objective == "causal_lm":  # continued pretraining on a folder of documents
        from backends.train.pretrain import pretrain_here

        result = pretrain_here(step, run_dir, resume=resume, merged_dir=MERGED_DIR,
                               artifacts={"model": step.output_dir, "plan": PLAN_FILE, "versions": VERSIONS_FILE})
        if result.model_fields_set:  # the main process (the others return an empty result)
            _write_result(result, run_dir)
        return result
    examples = load_examples(Path(step.data_path), for_preference=step.method == "dpo")
    train, evaluation, replay = training_split(step, examples)
    device = probe_device()
    precision, precision_reason = choose_precision(step.precision, device)
    matmul_precision = backend_matmul_precision(precision, device.kind)  # what the time estimate assumes
    if matmul_precision is not None:
        import torch

        torch.set_float32_matmul_precision(matmul_precision)
        precision_reason += f"; fp32 matmuls in TF32 (torch.set_float32_matmul_precision('{matmul_precision}'))"
    adapter = Path(step.init_adapter) if step.init_adapter else None
    teacher, tokenizer_from = _teacher(step, run_dir, train)
    base = resolve_dpo_base(step, adapter) or resolve_base_model(step.base_model, run_dir, train,
                                                                 seed=step.seed, tokenizer_from=tokenizer_from)
    tokenizer = load_tokenizer(base)
    output_dir = run_dir / step.output_dir
    meter = MemoryMeter(device.kind)
    meter.start()
    if step.method == "dpo":
        trainer = build_dpo_trainer(step, base, tokenizer, train, evaluation, output_dir, precision,
                                    use_cpu=device.kind == "cpu", adapter_dir=adapter)
    elif teacher is not None:
        from backends.train.logit_distill import build_distill_trainer

        trainer = build_distill_trainer(step, base, tokenizer, train, evaluation, output_dir, precision,
                                        use_cpu=device.kind == "cpu", teacher=teacher)
    else:
        trainer = build_sft_trainer(step, base, tokenizer, train, evaluation, output_dir, precision,
                                    use_cpu=device.kind == "cpu")
    distill_before = _heldout_distill(trainer, evaluation, tokenizer, step, precision) if teacher else None
    outcome = fit(trainer, meter, run_dir, output_dir, resume=resume)
    if not trainer.accelerator.is_main_process:
        return TrainResult.model_construct()
    logit_distill = _distill_result(step, teacher, trainer, distill_before,
                                    _heldout_distill(trainer, evaluation, tokenizer, step, precision)) if teacher else None
    teacher_config = read_hf_config(_teacher_base(teacher)) if teacher else None
    train_method = step.dpo_policy if step.method == "dpo" else step.method
    audit = audit_examples(examples, seq_len=step.seq_len, eval_fraction=step.eval_fraction, seed=step.seed,
                           token_counts=example_lengths(examples.records, tokenizer))
    merge = None
    artifacts = {"model": step.output_dir, "plan": PLAN_FILE, "versions": VERSIONS_FILE}
    if step.merge and train_method != "full" and evaluation:
        batches = loss_batches(evaluation, tokenizer, step.seq_len)
        merge = MergeCheck(**merge_adapter(base, output_dir, run_dir / MERGED_DIR, train_method, precision, batches))
        artifacts["merged"] = MERGED_DIR
    accuracy = verdict = None
    if step.method != "dpo" and evaluation:
        from backends.train.accuracy import assess

        # The verdict: paired tests on these answers and the regression suite on base and trained model.
        accuracy, verdict = assess(base, output_dir, evaluation, step.seed, method=train_method,
                                   is_demo=is_demo_model(base))
    elif evaluation:
        from backends.train.preference import assess_preferences

        # DPO: does the policy prefer the chosen answers more than the model it started from, and the suite.
        verdict = assess_preferences(adapter or base, output_dir, evaluation, step.seed, method=train_method,
                                     is_demo=is_demo_model(base))
    seq_len = step.seq_len if step.packing else min(step.seq_len, max(example_lengths(train, tokenizer)))
    predicted, note = predict_memory(step, read_hf_config(base), step.base_model, precision, seq_len=seq_len,
                                     device=device.kind, teacher_config=teacher_config)
    outcome = predict_measured_step(outcome, step, read_hf_config(base), step.base_model, precision,
                                    teacher_config=teacher_config)
    is_demo = is_demo_model(base)
    if is_demo and Path(base).parent == run_dir:
        artifacts["base_model"] = Path(base).name
    failure = merge.failure() if merge is not None else None
    result = TrainResult(
        status="failed" if failure else "succeeded", failure=failure, method=step.method, train_method=train_method,
        base_model=step.base_model, base_model_path=base, is_demo_model=is_demo, demo_note=demo_note_of(base) if is_demo else None,
        data_format=examples.format, n_train_examples=len(train), n_eval_examples=len(evaluation),
        seq_len_tokens=seq_len, is_packed=step.packing and step.method != "dpo", device=device, precision=precision,
        precision_reason=precision_reason, fit=outcome, predicted=predicted, prediction_note=note,
        memory=compare_memory(outcome, predicted), merge=merge, task_accuracy=accuracy, verdict=verdict,
        audit=audit, replay=replay, logit_distill=logit_distill, artifacts=artifacts,
        versions=library_versions(),
    )
    _write_result(result, run_dir)
    return result

