"""Benchmark: step time of our SFT trainer against a bare PyTorch loop, and predicted vs measured peak memory.

Same tiny model (`tiny-demo`), same batches, same sequence length, same process, one after the other:

1. Step time. Our trainer (TRL SFTTrainer as `backends.train` builds it) is timed per optimizer step with a
   callback (on_step_begin → on_step_end: forward, backward, clipping, AdamW, scheduler). The baseline is a
   plain loop over the very batches the trainer's dataloader yields: forward, backward, clip_grad_norm_(1.0)
   (the Trainer's default), AdamW, zero_grad. The two alternate for `--rounds` rounds (the CI machine's 2 cores
   are shared, so load drifts); the medians of all steps after warm-up are compared; target ≤ 1.3×.
2. Memory. Full `advisor train run` flows (full and LoRA) on CPU; result.json puts the measured peak RSS rise
   beside the estimator's predicted allocated peak.

Run: `python3 benchmarks/bench_train_step.py [--steps 40] [--out benchmarks/results/train_step.md]`
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "train" / "sft_instruction.jsonl"
WARMUP_STEPS = 5
BATCH_SIZE = 8
SEQ_LEN = 64


def _step(method: str, max_steps: int, **extra):
    from advisor.core.models import TrainStep

    return TrainStep(method=method, base_model="tiny-demo", data_path=str(DATA), seq_len=SEQ_LEN,
                     batch_size=BATCH_SIZE, max_steps=max_steps, learning_rate=1e-3, grad_ckpt=False,
                     eval_fraction=0.1, **extra)


def time_trainer_steps(work: Path, method: str, n_steps: int) -> tuple[list[float], list[dict]]:
    """Per-step seconds of our trainer, and the batches its dataloader yields (for the bare loop)."""
    from transformers import TrainerCallback

    from backends.common.data import load_examples, split_examples
    from backends.train.model import load_tokenizer, resolve_base_model
    from backends.train.sft import build_sft_trainer

    step = _step(method, n_steps)
    train, evaluation = split_examples(load_examples(DATA, for_preference=False), step.eval_fraction, step.seed)
    base = resolve_base_model("tiny-demo", work, train)
    trainer = build_sft_trainer(step, base, load_tokenizer(base), train, evaluation, work / "out", "fp32",
                                use_cpu=True)
    trainer.args.eval_strategy = "no"
    trainer.args.save_strategy = "no"
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.started)

    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # as backends.train.fit does
    trainer.add_callback(Timer())
    trainer.train()
    batches = list(trainer.get_train_dataloader())
    return times[WARMUP_STEPS:], batches


def time_bare_loop(work: Path, method: str, batches: list[dict], n_steps: int) -> list[float]:
    """Per-step seconds of a plain PyTorch loop on the same model and batches."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(work / "base-model", dtype=torch.float32)
    if method == "lora":
        from peft import get_peft_model

        from backends.train.builders import _to_lora_config

        model = get_peft_model(model, _to_lora_config(_step(method, n_steps)))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    times = []
    for i in range(n_steps):
        batch = batches[i % len(batches)]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels", "position_ids")}
        started = time.perf_counter()
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return times[WARMUP_STEPS:]


def memory_runs(work: Path) -> list[dict]:
    """Run full and LoRA through `backends.train.run` and read measured vs predicted from result.json."""
    from backends.train import run

    rows = []
    for method in ("full", "lora"):
        result = run(_step(method, 10), work / f"mem-{method}", base_dir=ROOT)
        rows.append({"method": method, "predicted": result.memory.predicted_bytes,
                     "measured": result.memory.measured_bytes, "ratio": result.memory.measured_to_predicted,
                     "quantity": result.memory.quantity, "note": result.prediction_note})
    return rows


def _machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per timing run")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of ours and the bare loop")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_step.md")
    args = parser.parse_args()
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    lines = [f"# Training step time and memory — {datetime.date.today().isoformat()}", "",
             f"Machine: {_machine()}", f"Command: `python3 benchmarks/bench_train_step.py --steps {args.steps} --rounds {args.rounds}`",
             f"Model: tiny-demo (2 layers, hidden 64), batch {BATCH_SIZE}, seq_len ≤ {SEQ_LEN} (examples are "
             f"~17 tokens, padded to the longest in the batch), fp32, no gradient checkpointing", "",
             "| method | ours median s/step | bare loop median s/step | ratio (target ≤ 1.3) |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("full", "lora"):
            ours, bare = [], []
            for round_index in range(args.rounds):
                work = Path(tmp) / f"{method}-{round_index}"
                ours_times, batches = time_trainer_steps(work, method, args.steps)
                ours += ours_times
                bare += time_bare_loop(work, method, batches, args.steps)
            ratio = statistics.median(ours) / statistics.median(bare)
            lines.append(f"| {method} | {statistics.median(ours):.4f} | {statistics.median(bare):.4f} | "
                         f"{ratio:.2f}× |")
            print(lines[-1], file=sys.stderr)
        lines += ["", "Peak memory on CPU, `advisor train run` (10 steps):", "",
                  "| method | predicted allocated peak (bytes) | measured peak RSS rise (bytes) | measured/predicted |",
                  "|---|---|---|---|"]
        for row in memory_runs(Path(tmp)):
            ratio = f"{row['ratio']:.1f}" if row["ratio"] else "n/a"
            lines.append(f"| {row['method']} | {row['predicted']} | {row['measured']} | {ratio} |")
        lines += ["", f"Compared: {row['quantity']}. Prediction: {row['note']}.",
                  "The estimator models GPU allocations; on a CPU the resident-set rise also holds the allocator's "
                  "caches, the autograd graph's bookkeeping and the tokenized data, so the CPU ratio is a sanity "
                  "check rather than a calibration (GPU measurements: `advisor train run` on a GPU writes "
                  "`torch.cuda.max_memory_allocated` into result.json)."]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    print(json.dumps({"written": str(args.out)}), file=sys.stderr)


if __name__ == "__main__":
    main()
