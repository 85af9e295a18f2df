"""Measure what a run used: peak memory (CUDA allocator, or the process's peak RSS on CPU) and wall time.

On CPU the meter also measures the live tensor peak of one training step, phase by phase
(`backends.train.tensor_peak`): the quantity the estimator predicts, which RSS is not.

Time and tokens add up over every session of a run: each process that trains (the first one, and each resume
after a kill) keeps its own totals in `SESSIONS_FILE` in the model folder, rewritten atomically as it trains,
so a kill loses at most the time since its last log or checkpoint and the result reports what the run cost.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, computed_field

from advisor.core.fileio import write_text_atomic
from advisor.core.models import Model
from backends.train.tensor_peak import TensorPeak, tensor_peak_callback

__all__ = ["SESSIONS_FILE", "Measurement", "MemoryMeter", "TrainingSession", "read_sessions", "write_sessions"]

SESSIONS_FILE = "training_sessions.json"


class TrainingSession(Model):
    """One process's share of a training run, as last written while it trained."""

    started_at: str = Field(description="When its training loop began (ISO 8601, UTC)")
    resumed_from_step: int | None = Field(description="Checkpoint step it resumed from; None: it started afresh")
    first_step: int = Field(ge=0, description="Optimizer step the session began at")
    last_step: int = Field(ge=0, description="Optimizer step reached at the last write")
    wall_seconds: float = Field(ge=0, description="Wall time of its training loop up to the last write")
    n_tokens: int = Field(ge=0, description="Non-padding input tokens it trained on up to the last write")
    is_finished: bool = Field(description="Its training loop ended (False: killed or failed after the last write)")


def read_sessions(path: Path) -> list[TrainingSession]:
    """Sessions recorded in `path`; a missing or unreadable file (a torn write) counts as none."""
    try:
        return [TrainingSession.model_validate(s) for s in json.loads(path.read_text(encoding="utf-8"))["sessions"]]
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return []


def write_sessions(path: Path, sessions: list[TrainingSession]) -> None:
    """Replace `path` atomically with `sessions`."""
    payload = {"sessions": [s.model_dump(mode="json") for s in sessions]}
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


class Measurement(Model):
    """What one training run used, measured."""

    device_kind: Literal["cuda", "cpu"] = Field(description="Where it ran")
    peak_allocated_bytes: int | None = Field(description="CUDA: `torch.cuda.max_memory_allocated`; None on CPU")
    peak_reserved_bytes: int | None = Field(description="CUDA: `torch.cuda.max_memory_reserved`; None on CPU")
    peak_rss_bytes: int | None = Field(description="CPU: the process's peak resident set size; None on CUDA")
    baseline_rss_bytes: int | None = Field(
        description="CPU: resident set size before the model was loaded (Python, libraries, data); None on CUDA"
    )
    rss_method: str | None = Field(description="CPU: how the peak was read (`VmHWM after clear_refs`, `ru_maxrss`)")
    wall_seconds: float = Field(
        description="Wall time of the training loop over every session of the run (no load, eval, save); "
                    "what the run cost in device time, work redone after a resume included"
    )
    n_tokens: int = Field(description="Non-padding input tokens trained on over every session (redone steps twice)")
    tokens_per_second: float = Field(description="`n_tokens / wall_seconds`")
    n_sessions: int = Field(1, ge=1, description="Processes that trained this run: 1, plus one per resume")
    session_wall_seconds: float | None = Field(None, description="Wall time of the training loop of this session")
    session_n_tokens: int | None = Field(None, description="Tokens trained on in this session")
    tensor_peak: TensorPeak | None = Field(
        None, description="CPU: live tensor bytes of one measured training step, per phase; None on CUDA (there "
                          "`peak_allocated_bytes` is that quantity) or when no step ran in this session")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def peak_rss_delta_bytes(self) -> int | None:
        """CPU: peak RSS above the baseline, the closest CPU analogue of allocated device memory."""
        if self.peak_rss_bytes is None or self.baseline_rss_bytes is None:
            return None
        return self.peak_rss_bytes - self.baseline_rss_bytes


def _status_kib(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    # Writing 5 to clear_refs resets the kernel's peak RSS counter (VmHWM) to the current RSS (Linux >= 4.0,
    # Documentation/admin-guide/mm/soft-dirty.rst / proc.rst).
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class MemoryMeter:
    """Start before the model is loaded, stop after training; reads peaks for the device in use."""

    def __init__(self, device_kind: Literal["cuda", "cpu"]) -> None:
        self.device_kind = device_kind
        self._baseline_rss_bytes: int | None = None
        self._rss_method: str | None = None
        self._step = None

    def callbacks(self, trainer=None) -> list:
        """Trainer callbacks the meter needs: on CPU the one that tracks one step's live tensors, counting from
        what `trainer` holds (None: the model and optimizer the step is given)."""
        if self.device_kind != "cpu":
            return []
        self._step = self._step or tensor_peak_callback()
        self._step.trainer = trainer
        return [self._step]

    def start(self) -> None:
        """Reset the peak counters and note the baseline."""
        if self.device_kind == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._rss_method = "VmHWM after clear_refs" if _reset_peak_rss() else "ru_maxrss (process lifetime)"
            current = _status_kib("VmRSS")
            self._baseline_rss_bytes = current * 1024 if current is not None else None

    def stop(self, n_tokens: int, wall_seconds: float, sessions: list[TrainingSession] | None = None) -> Measurement:
        """Read the peaks; `n_tokens` and `wall_seconds` are this session's training loop's.

        With `sessions` (every session of the run, this one last), time and tokens are their sums.
        """
        if self.device_kind == "cuda":
            import torch

            torch.cuda.synchronize()
            allocated, reserved, rss = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved(), None
        else:
            allocated = reserved = None
            peak_kib = _status_kib("VmHWM") if self._rss_method and self._rss_method.startswith("VmHWM") else None
            # ru_maxrss is in KiB on Linux (getrusage(2)).
            rss = (peak_kib or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
        sessions = sessions or []
        total_seconds = sum(s.wall_seconds for s in sessions) if sessions else wall_seconds
        total_tokens = sum(s.n_tokens for s in sessions) if sessions else n_tokens
        return Measurement(
            device_kind=self.device_kind,
            peak_allocated_bytes=allocated,
            peak_reserved_bytes=reserved,
            peak_rss_bytes=rss,
            baseline_rss_bytes=self._baseline_rss_bytes,
            rss_method=self._rss_method,
            wall_seconds=total_seconds,
            n_tokens=total_tokens,
            tokens_per_second=total_tokens / total_seconds if total_seconds > 0 else 0.0,
            n_sessions=max(len(sessions), 1),
            session_wall_seconds=wall_seconds,
            session_n_tokens=n_tokens,
            tensor_peak=self._step.result if self._step is not None else None,
        )
