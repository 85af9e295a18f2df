"""Run a built TRL trainer: eval loss before, train (or resume), eval loss after, save; with measurements.

Shared by SFT and DPO: both trainers are `transformers.Trainer`s, so the loop is the same.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import Field

from advisor.core.models import Model
from backends.train.measure import Measurement, MemoryMeter

__all__ = ["FitOutcome", "fit"]

EVAL_BEFORE_FILE = "eval_before.json"


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


def _callbacks():
    import sys

    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per log on stderr (stdout is for the result)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            parts = [f"{key} {logs[key]:.4f}" for key in ("loss", "eval_loss") if key in logs]
            if parts:
                print(f"step {state.global_step}/{state.max_steps} " + " ".join(parts), file=sys.stderr, flush=True)

    class Throughput(TrainerCallback):
        """Tokens and time of this session only (a resumed run starts from the checkpoint's count)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.tokens_at_start, self.started = state.num_input_tokens_seen, time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.n_tokens, self.wall_seconds = state.num_input_tokens_seen - self.tokens_at_start, \
                time.perf_counter() - self.started

    return Throughput(), Progress()


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-N` folder with a trainer state in it, or None."""
    if not output_dir.is_dir():
        return None
    candidates = [p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()
                  and p.name.split("-")[-1].isdigit()]
    return max(candidates, key=lambda p: int(p.name.split("-")[-1]), default=None)


def fit(trainer, meter: MemoryMeter, run_dir: Path, output_dir: Path, *, resume: bool) -> FitOutcome:
    """Evaluate, train, evaluate, save the weights (adapter or full model) and tokenizer to `output_dir`."""
    has_eval = trainer.eval_dataset is not None
    from transformers import PrinterCallback

    throughput, progress = _callbacks()
    trainer.remove_callback(PrinterCallback)  # it prints raw dicts to stdout
    trainer.add_callback(throughput)
    trainer.add_callback(progress)
    before_file = run_dir / EVAL_BEFORE_FILE
    checkpoint = last_checkpoint(output_dir) if resume else None
    if checkpoint is not None and before_file.is_file():
        eval_before = json.loads(before_file.read_text())["eval_loss"]
    else:
        eval_before = trainer.evaluate()["eval_loss"] if has_eval else None
        before_file.write_text(json.dumps({"eval_loss": eval_before}))
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    measured = meter.stop(n_tokens=throughput.n_tokens, wall_seconds=throughput.wall_seconds)
    eval_after = trainer.evaluate()["eval_loss"] if has_eval else None
    trainer.save_model(str(output_dir))
    model = trainer.model
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return FitOutcome(
        global_step=trainer.state.global_step,
        max_steps=trainer.state.max_steps,
        is_early_stopped=trainer.state.global_step < trainer.state.max_steps,
        resumed_from_step=int(checkpoint.name.split("-")[-1]) if checkpoint else None,
        train_loss=output.training_loss,
        eval_loss_before=eval_before,
        eval_loss_after=eval_after,
        n_params=n_params,
        n_trainable_params=n_trainable,
        measured=measured,
    )
