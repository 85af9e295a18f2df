"""Training backend: full, LoRA and QLoRA supervised fine-tuning and DPO, with measured memory beside the estimate.

`check(step, run_dir, base_dir=...)` is the dry run; `run(step, run_dir, ...)` trains and writes `result.json`.
Nothing heavy is imported here: torch, transformers, peft, trl and bitsandbytes load inside the functions.
"""

from backends.train.check import Finding, TrainCheck, check
from backends.train.results import TrainResult
from backends.train.run import run

__all__ = ["Finding", "TrainCheck", "TrainResult", "check", "run"]
