"""Run a built TRL trainer: eval loss before, train (or resume), eval loss after, save; with measurements.

Shared by SFT and DPO: both trainers are `transformers.Trainer`s, so the loop is the same.

Survives `kill -9`: a resume starts from the newest *complete* checkpoint (one whose trainer state, written last
by the Trainer, reads back, and whose weights and optimizer state are there), and checkpoints left half-written
are removed first. The state files written here go through `write_text_atomic`, and one that does not read back
counts as absent. Everything written is owner-only (`private_files`). A non-finite loss or gradient norm stops
the run with one `RunFailedError` line naming the step.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field

from advisor.core.errors import RunFailedError
from advisor.core.fileio import private_files, write_text_atomic
from advisor.core.models import Model
from backends.train.measure import (
    SESSIONS_FILE,
    Measurement,
    MemoryMeter,
    TrainingSession,
    read_sessions,
    write_sessions,
)

__all__ = ["FitOutcome", "fit", "is_complete_checkpoint", "last_checkpoint"]

EVAL_BEFORE_FILE = "eval_before.json"
CHECKPOINT_PREFIX = "checkpoint-"  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR
TRAINER_STATE_FILE = "trainer_state.json"  # transformers.trainer.TRAINER_STATE_NAME; `_save_checkpoint` writes it last
# A complete checkpoint holds weights and optimizer state: one file (single device, DDP) or a folder of shards
# (FSDP's `pytorch_model_fsdp_0/` and `optimizer_0/`, DeepSpeed's `global_stepN/`).
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json")
WEIGHT_DIR_PREFIXES = ("pytorch_model_fsdp_", "global_step")
OPTIMIZER_FILES = ("optimizer.pt",)
OPTIMIZER_DIR_PREFIXES = ("optimizer_", "global_step")
# Logged values that must stay finite; the fp16 loss scaler skips steps whose gradient norm is inf by design.
FINITE_LOG_KEYS = ("loss", "train_loss", "grad_norm")


class FitOutcome(Model):
    """What training did."""

    global_step: int = Field(description="Optimizer steps done, over all sessions of this run")
    max_steps: int = Field(description="Optimizer steps the run was set up for")
    is_early_stopped: bool = Field(description="Early stopping ended the run before `max_steps`")
    resumed_from_step: int | None = Field(description="The checkpoint step this session resumed from; None: fresh")
    train_loss: float | None = Field(description="Mean training loss of this session")
    eval_loss_before: float | None = Field(description="Validation loss before training; None without a split")
    eval_loss_after: float | None = Field(description="Validation loss after training (the best model's, with "
                                                      "early stopping)")
    n_params: int = Field(description="Parameters of the model as trained")
    n_trainable_params: int = Field(description="Parameters that received gradients")
    measured: Measurement


def _diverged(key: str, value: float, step: int, learning_rate: float, loss: object) -> RunFailedError:
    also = f" (loss {loss:.4g})" if key != "loss" and isinstance(loss, (int, float)) else ""
    return RunFailedError(
        f"training diverged at step {step}: `{key}` is {value}{also}",
        f"lower `learning_rate` (now {learning_rate:g}), check the data, or train in `fp32`/`bf16` instead of `fp16`; "
        "nothing after the last checkpoint was kept",
    )


def _callbacks(sessions_file: Path, previous: list[TrainingSession], resumed_from_step: int | None):
    import sys

    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per log on stderr (stdout is for the result)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            parts = [f"{key} {logs[key]:.4f}" for key in ("loss", "eval_loss") if key in logs]
            if parts:
                print(f"step {state.global_step}/{state.max_steps} " + " ".join(parts), file=sys.stderr, flush=True)

    class Sessions(TrainerCallback):
        """This session's time and tokens, kept beside earlier sessions' in `sessions_file` as training goes.

        Written (main process only) at the start, at every log and checkpoint, and at the end, so a kill loses at
        most the time since the last of them. A resumed run's token count starts from the checkpoint's. Logs
        before the loop (the eval before) and after it (the eval after) change nothing.
        """

        started: float | None = None
        is_finished = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.started, self.tokens_at_start, self.first_step = (time.perf_counter(), state.num_input_tokens_seen,
                                                                   state.global_step)
            self.n_tokens, self.wall_seconds, self.is_finished = 0, 0.0, False
            self._write(state)

        def _write(self, state) -> None:
            if self.started is None or self.is_finished:
                return
            self.n_tokens = state.num_input_tokens_seen - self.tokens_at_start
            self.wall_seconds = time.perf_counter() - self.started
            self.last_step = state.global_step
            if state.is_world_process_zero:
                write_sessions(sessions_file, self.all())

        def all(self) -> list[TrainingSession]:
            """Earlier sessions, then this one as measured at the last write."""
            return [*previous, TrainingSession(
                started_at=self.started_at, resumed_from_step=resumed_from_step, first_step=self.first_step,
                last_step=self.last_step, wall_seconds=self.wall_seconds,
                n_tokens=self.n_tokens, is_finished=self.is_finished,
            )]

        def on_log(self, args, state, control, logs=None, **kwargs):
            self._write(state)

        def on_save(self, args, state, control, **kwargs):
            self._write(state)

        def on_train_end(self, args, state, control, **kwargs):
            self._write(state)
            self.is_finished = True
            if state.is_world_process_zero:
                write_sessions(sessions_file, self.all())

    class FiniteLoss(TrainerCallback):
        """Stop at the first logged loss or gradient norm that is NaN or infinite."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            for key in FINITE_LOG_KEYS:
                if key not in (logs or {}) or (key == "grad_norm" and args.fp16):
                    continue
                try:
                    value = float(logs[key])
                except (TypeError, ValueError):
                    continue
                if not math.isfinite(value):
                    raise _diverged(key, value, state.global_step, args.learning_rate, logs.get("loss"))

    return Sessions(), Progress(), FiniteLoss()


def _checkpoint_step(path: Path) -> int | None:
    number = path.name[len(CHECKPOINT_PREFIX):]
    return int(number) if path.name.startswith(CHECKPOINT_PREFIX) and number.isdigit() else None


def _holds(folder: Path, files: tuple[str, ...], dir_prefixes: tuple[str, ...]) -> bool:
    if any((folder / name).is_file() and (folder / name).stat().st_size > 0 for name in files):
        return True
    return any(p.is_dir() and p.name.startswith(dir_prefixes) for p in folder.iterdir())


def is_complete_checkpoint(path: Path) -> bool:
    """Whether `checkpoint-N` was written to the end: its trainer state reads back and says step N, and its
    weights and optimizer state are there. A kill during the write leaves a folder that fails one of these."""
    step = _checkpoint_step(path)
    if step is None or not path.is_dir():
        return False
    try:
        state = json.loads((path / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict) or state.get("global_step") != step:
        return False
    try:
        return _holds(path, WEIGHT_FILES, WEIGHT_DIR_PREFIXES) and _holds(path, OPTIMIZER_FILES, OPTIMIZER_DIR_PREFIXES)
    except OSError:  # removed while we looked
        return False


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder (see `is_complete_checkpoint`), or None."""
    if not output_dir.is_dir():
        return None
    candidates = [p for p in output_dir.glob(CHECKPOINT_PREFIX + "*") if is_complete_checkpoint(p)]
    return max(candidates, key=_checkpoint_step, default=None)


def _remove_unfinished_checkpoints(output_dir: Path) -> None:
    """Delete `checkpoint-N` folders a killed session left half-written (the Trainer would write into them)."""
    for path in output_dir.glob(CHECKPOINT_PREFIX + "*"):
        if _checkpoint_step(path) is not None and path.is_dir() and not is_complete_checkpoint(path):
            shutil.rmtree(path, ignore_errors=True)


def _cached_eval_loss(path: Path) -> float | None:
    """The eval loss an earlier session saved before training; None when absent, torn or not a finite number."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["eval_loss"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _unprepare_after_eval(trainer) -> None:
    """Let `train()` wrap the model in DDP after an `evaluate()` that ran first.

    `Trainer.evaluate` prepares a bare model for evaluation only (no DDP) and accelerate marks it prepared;
    `train()` then skips wrapping it (the double-wrap guard of `Accelerator.prepare_model`, accelerate PR
    #3977), so with several
    processes each would train its own copy, gradients never averaged (seen: the two processes' weights differed
    after one step; transformers 5.24, accelerate 1.15). FSDP and DeepSpeed are prepared in full by that
    evaluation (FSDP2 shards the model in place, so it must not be prepared twice) and are left alone.
    """
    model = trainer.model
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled or trainer.args.world_size == 1:
        return
    if trainer.model_wrapped is model and getattr(model, "_is_accelerate_prepared", False):
        model._is_accelerate_prepared = False
        trainer.accelerator._models = [m for m in trainer.accelerator._models if m is not model]


def fit(trainer, meter: MemoryMeter, run_dir: Path, output_dir: Path, *, resume: bool) -> FitOutcome:
    """Evaluate, train, evaluate, save the weights (adapter or full model) and tokenizer to `output_dir`.

    Args:
        trainer: A built `transformers.Trainer` (SFT or DPO) whose `output_dir` is `output_dir`.
        meter: Started before the model was loaded.
        run_dir: The run folder (`eval_before.json` goes there).
        output_dir: The model folder: checkpoints, `training_sessions.json`, then the final weights.
        resume: Continue from the newest complete checkpoint, if there is one.

    Returns:
        What training did; time and tokens are summed over every session of the run.

    Raises:
        RunFailedError: the loss or gradient norm became NaN or infinite.
    """
    with private_files():
        if output_dir.is_dir():  # the Trainer made it when it was built
            output_dir.chmod(0o700)
        return _fit(trainer, meter, run_dir, output_dir, resume=resume)


def _fit(trainer, meter: MemoryMeter, run_dir: Path, output_dir: Path, *, resume: bool) -> FitOutcome:
    has_eval = trainer.eval_dataset is not None
    is_main = trainer.args.should_save
    from transformers import PrinterCallback

    checkpoint = last_checkpoint(output_dir) if resume else None
    if checkpoint is not None and is_main:
        _remove_unfinished_checkpoints(output_dir)
    resumed_from = _checkpoint_step(checkpoint) if checkpoint else None
    sessions_file = output_dir / SESSIONS_FILE
    previous = read_sessions(sessions_file) if checkpoint is not None else []
    sessions, progress, finite = _callbacks(sessions_file, previous, resumed_from)
    trainer.remove_callback(PrinterCallback)  # it prints raw dicts to stdout
    for callback in (sessions, progress, finite, *meter.callbacks(trainer)):
        trainer.add_callback(callback)
    before_file = run_dir / EVAL_BEFORE_FILE
    # The model is the untrained one until `train` loads the checkpoint, so recomputing is always right.
    eval_before = _cached_eval_loss(before_file) if checkpoint is not None and has_eval else None
    if eval_before is None and has_eval:
        eval_before = trainer.evaluate()["eval_loss"]
        if is_main:
            write_text_atomic(before_file, json.dumps({"eval_loss": eval_before}) + "\n")
        _unprepare_after_eval(trainer)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    measured = meter.stop(n_tokens=sessions.n_tokens, wall_seconds=sessions.wall_seconds, sessions=sessions.all())
    eval_after = trainer.evaluate()["eval_loss"] if has_eval else None
    trainer.save_model(str(output_dir))
    model = trainer.model
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return FitOutcome(
        global_step=trainer.state.global_step,
        max_steps=trainer.state.max_steps,
        is_early_stopped=trainer.state.global_step < trainer.state.max_steps,
        resumed_from_step=resumed_from,
        train_loss=output.training_loss,
        eval_loss_before=eval_before,
        eval_loss_after=eval_after,
        n_params=n_params,
        n_trainable_params=n_trainable,
        measured=measured,
    )
