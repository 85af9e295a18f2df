"""What a training run leaves behind in `result.json`: outcome, measurements beside the prediction, provenance."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from advisor.core.models import MemoryEstimate, Model
from backends.common.audit import DataAudit
from backends.common.replay import ReplayMix
from backends.common.verdict import Verdict
from backends.train.accuracy import TaskAccuracy
from backends.train.device import DeviceInfo
from backends.train.fit import FitOutcome
from backends.train.logit_distill import LogitDistillResult

__all__ = ["MemoryComparison", "MergeCheck", "TrainResult", "compare_memory", "library_versions"]

RESULT_FILE = "result.json"
VERSIONED_PACKAGES = ("advisor", "torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets",
                      "tokenizers")


class MergeCheck(Model):
    """The merged model against the adapter it came from, on the validation split."""

    adapter_eval_loss: float = Field(description="Adapter (loaded back from disk) on its base")
    merged_eval_loss: float = Field(description="The merged model")
    relative_difference: float = Field(description="|merged - adapter| / adapter")
    tolerance: float = Field(description="Largest relative difference accepted (backends.train.model.MERGE_TOLERANCE)")
    is_match: bool = Field(description="`relative_difference <= tolerance`")

    def failure(self) -> str | None:
        """Why the merge is refused (the merged model differs from the adapter), or None."""
        if self.is_match:
            return None
        return (f"merged model's validation loss {self.merged_eval_loss:.4f} differs from the adapter's "
                f"{self.adapter_eval_loss:.4f} by {self.relative_difference:.2%} (tolerance {self.tolerance:.2%})")


class MemoryComparison(Model):
    """Measured peak memory beside the estimator's prediction for the same settings."""

    quantity: str = Field(description="What is compared with what")
    predicted_bytes: int | None = Field(description="The estimator's number; None when there is no prediction")
    measured_bytes: int | None = Field(description="The measured number")
    measured_to_predicted: float | None = Field(description="measured / predicted")


class TrainResult(Model):
    """One training run, as written to `result.json`."""

    status: Literal["succeeded", "failed"]
    failure: str | None = Field(None, description="Why it failed; None when it succeeded")
    method: str = Field(description="full, lora, qlora or dpo")
    train_method: str = Field(description="How weights were trained (DPO resolved to its policy)")
    base_model: str = Field(description="As named in the plan")
    base_model_path: str = Field(description="Where it was loaded from")
    is_demo_model: bool = Field(description="The offline demonstration model: numbers show the pipeline, not quality")
    demo_note: str | None = Field(description="What the demonstration model is; None for a real model")
    data_format: str
    n_train_examples: int
    n_eval_examples: int
    seq_len_tokens: int = Field(description="Longest sequence as run: `seq_len`, or the longest example if shorter")
    is_packed: bool
    device: DeviceInfo
    precision: str
    precision_reason: str
    fit: FitOutcome
    predicted: MemoryEstimate | None = Field(description="Estimator's prediction for these settings")
    prediction_note: str
    memory: MemoryComparison
    merge: MergeCheck | None = Field(description="None when the plan did not ask for a merge")
    task_accuracy: TaskAccuracy | None = Field(
        None, description="Greedy answers of base and trained model on held-out examples; None for DPO or no eval split"
    )
    verdict: Verdict | None = Field(
        None, description="Base vs trained: paired tests on the held-out answers and the regression suite; "
                          "DPO: before vs after on the held-out pairs; None with no eval split, or in a result written "
                          "before verdicts existed"
    )
    audit: DataAudit | None = Field(
        None, description="The data audit of the training file (`advisor data audit`); None in results written "
                          "before the audit existed"
    )
    replay: ReplayMix | None = Field(
        None, description="General examples mixed into the training split against forgetting; None: no replay"
    )
    logit_distill: LogitDistillResult | None = Field(
        None, description="Logit-level distillation: the teacher, temperature and alpha, and the held-out loss of "
                          "teacher and student and their KL before and after; None: no teacher"
    )
    artifacts: dict[str, str] = Field(description="Name → path relative to the run directory")
    versions: dict[str, str] = Field(description="Package versions the run used")


def library_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on (`missing` when absent)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "missing"
    return versions


def compare_memory(fit: FitOutcome, predicted: MemoryEstimate | None) -> MemoryComparison:
    """Pair the measurement with the matching predicted quantity.

    On CUDA `max_memory_allocated` is compared with the predicted allocated peak. On CPU the closest analogue is
    the rise of resident memory over the run, which also holds the autograd graph, the data and allocator caches
    of a CPU process; the estimator models a GPU, so treat the CPU ratio as a sanity check, not a calibration.
    """
    measured = fit.measured
    if measured.device_kind == "cuda":
        quantity = "torch.cuda.max_memory_allocated vs predicted peak_allocated_bytes"
        measured_bytes = measured.peak_allocated_bytes
    else:
        quantity = "CPU peak RSS minus RSS before loading the model vs predicted peak_allocated_bytes"
        measured_bytes = measured.peak_rss_delta_bytes
    predicted_bytes = predicted.peak_allocated_bytes if predicted else None
    ratio = measured_bytes / predicted_bytes if measured_bytes and predicted_bytes else None
    return MemoryComparison(quantity=quantity, predicted_bytes=predicted_bytes, measured_bytes=measured_bytes,
                            measured_to_predicted=ratio)
