"""The live tensor peak of one real training step, phase by phase: what `max_memory_allocated` would say, on CPU.

A `TorchDispatchMode` sees every ATen op of the step (forward, the autograd engine's backward ops, the optimizer's)
and each storage its outputs hold. A storage is counted once (keyed by its StorageImpl), from the op that first
returns it until a weak reference to it reports it freed; storages alive when the step begins (weights, optimizer
state, the fetched batch) are found by walking the tensors the garbage collector knows. So the figure is the sum
of live tensor bytes, the quantity the estimator predicts, not the process's resident memory.

Phases: `forward` until the first op of autograd's backward; `backward` from there until the optimizer step begins
(gradient clipping included: the estimator's backward is the larger of backward and "all gradients held");
`optimizer` the optimizer step. Buffers a kernel allocates inside itself and frees before returning (no ATen op)
are not seen; the allocator's caching does not apply on CPU.

The mode slows every op (Python per op), so one step is measured: the session's second optimizer step (its
optimizer state exists, as in every later step), or its first when it has only one. With gradient accumulation
the later micro-batches' forwards fall in `backward`.
"""

from __future__ import annotations

import gc
import types
import weakref
from typing import Any

from pydantic import Field

from advisor.core.models import MemoryEstimate, Model

__all__ = ["PHASES", "StorageTracker", "TensorPeak", "TensorPeakCallback", "predict_measured_step", "predicted_batch",
           "tensor_peak_callback", "with_prediction"]

PHASES = ("forward", "backward", "optimizer")
METHOD = "TorchDispatchMode over ATen ops; each storage counted once, freed by weakref; live storages at step start"


class TensorPeak(Model):
    """Live tensor bytes in one measured training step, beside the estimate for the same batch shape."""

    optimizer_step: int = Field(ge=1, description="Which optimizer step was measured (1-based, over the run)")
    batch_rows: int = Field(ge=1, description="Rows of the input batch as the model saw it (DPO: chosen + rejected)")
    seq_len: int = Field(ge=1, description="Tokens per row of that batch (padded length)")
    start_bytes: int = Field(ge=0, description="Live tensor bytes when the step began (weights, optimizer state, "
                                               "the batch)")
    phases_bytes: dict[str, int] = Field(description="Peak live tensor bytes in each phase (forward, backward, "
                                                     "optimizer)")
    n_storages: int = Field(ge=0, description="Distinct storages seen in the step")
    method: str = Field(METHOD, description="How it was measured")
    predicted_phases_bytes: dict[str, int] | None = Field(
        None, description="The estimator's allocated bytes per phase for this batch shape on CPU; None without one")

    @property
    def peak_bytes(self) -> int:
        """The step's live tensor peak."""
        return max(self.phases_bytes.values())

    @property
    def predicted_peak_bytes(self) -> int | None:
        """The estimate's allocated peak over the same phases."""
        if not self.predicted_phases_bytes:
            return None
        return max(self.predicted_phases_bytes[p] for p in PHASES if p in self.predicted_phases_bytes)

    def ratios(self) -> dict[str, float]:
        """measured / predicted per phase (phases with both figures)."""
        predicted = self.predicted_phases_bytes or {}
        return {p: self.phases_bytes[p] / predicted[p] for p in PHASES if predicted.get(p) and p in self.phases_bytes}


def _add_storages(value: Any, tensor_type: type, found: list) -> None:
    # Module-level and recursive by name: a nested closure would form a reference cycle holding `found`, and
    # the storages in it would outlive the op until the cycle collector ran.
    if isinstance(value, tensor_type):
        if value.device.type != "meta":
            found.append(value.untyped_storage())
    elif isinstance(value, (list, tuple)):
        for item in value:
            _add_storages(item, tensor_type, found)
    elif isinstance(value, dict):
        for item in value.values():
            _add_storages(item, tensor_type, found)


def _make_tracker_class():
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Tracker(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live: dict[int, tuple[int, weakref.ref]] = {}
            self.current = 0
            self.phase = "forward"
            self.peaks = dict.fromkeys(PHASES, 0)
            self.seen = 0
            self.first_indices_shape: tuple[int, ...] | None = None

        def add(self, storage) -> None:
            key, size = storage._cdata, storage.nbytes()
            known = self.live.get(key)
            if known is not None:
                if known[0] != size:  # resized in place
                    self.current += size - known[0]
                    self.live[key] = (size, known[1])
                return
            ref = weakref.ref(storage, lambda r, key=key: self._freed(key, r))
            self.live[key] = (size, ref)
            self.current += size
            self.seen += 1

        def _freed(self, key: int, ref: weakref.ref) -> None:
            known = self.live.get(key)
            if known is not None and known[1] is ref:
                del self.live[key]
                self.current -= known[0]

        def add_live_tensors(self, roots: list | None = None) -> None:
            gc.collect()  # unreachable tensors awaiting the cycle collector would count as live
            for obj in (gc.get_objects() if roots is None else _reachable(roots)):
                # type(), not isinstance(): proxies (deprecated torch aliases) answer isinstance through __class__
                if issubclass(type(obj), torch.Tensor) and obj.device.type != "meta":
                    self.add(obj.untyped_storage())
            self.seen = 0  # storages alive before the step are its starting bytes, not storages it created
            for phase in PHASES:
                self.peaks[phase] = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if self.phase == "forward" and torch._C._current_graph_task_id() != -1:
                self.phase = "backward"
            if self.first_indices_shape is None and func is torch.ops.aten.embedding.default:
                self.first_indices_shape = tuple(args[1].shape)
            out = func(*args, **kwargs)
            found: list = []
            _add_storages(out, torch.Tensor, found)
            for storage in found:
                self.add(storage)
            del found
            if self.current > self.peaks[self.phase]:
                self.peaks[self.phase] = self.current
            return out

    return _Tracker


# Not followed when collecting the tensors a trainer holds: through these, a walk would reach every module's
# globals and so every tensor of the process (another model loaded earlier, a test's fixtures).
_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, types.CodeType, types.FrameType)


def _reachable(roots: list) -> list:
    """Every object reachable from `roots` by references, not passing through modules, functions or classes."""
    seen: set[int] = set()
    found, stack = [], list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        found.append(obj)
        stack.extend(gc.get_referents(obj))
    return found


class StorageTracker:
    """Live tensor bytes while entered; `phase` is advanced by the caller (forward → backward is automatic).

    Args:
        roots: Count as the starting bytes only the tensors reachable from these (a trainer: its model, reference
            model, optimizer state and batch); None: every tensor alive in the process.
    """

    def __init__(self, roots: list | None = None) -> None:
        self._mode = _make_tracker_class()()
        self._roots = roots

    def __enter__(self) -> StorageTracker:
        self._mode.add_live_tensors(self._roots)
        self._roots = None
        self.start_bytes = self._mode.current
        for phase in PHASES:
            self._mode.peaks[phase] = self.start_bytes if phase == "forward" else 0
        # The cycle collector would free a step's cyclic garbage at moments that vary from run to run; held off
        # for the step, every run counts the same tensors (collected as usual after it).
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
        if self._gc_was_enabled:
            gc.enable()

    def set_phase(self, phase: str) -> None:
        """Move to `phase` (one of PHASES); its peak starts at the live bytes now."""
        self._mode.phase = phase
        self._mode.peaks[phase] = max(self._mode.peaks[phase], self._mode.current)

    @property
    def peaks(self) -> dict[str, int]:
        """Peak live bytes per phase so far (phases not reached: absent)."""
        return {p: v for p, v in self._mode.peaks.items() if v}

    @property
    def n_storages(self) -> int:
        return self._mode.seen

    @property
    def indices_shape(self) -> tuple[int, ...] | None:
        """Shape of the first embedding lookup's indices (the batch as the model saw it)."""
        return self._mode.first_indices_shape


class TensorPeakCallback:
    """Trainer callback: track one optimizer step of the session; `result` holds it afterwards."""

    def __init__(self) -> None:
        self.result: TensorPeak | None = None
        self._target: int | None = None
        self._tracker: StorageTracker | None = None
        self.trainer = None  # set by `MemoryMeter.callbacks(trainer)`: the starting bytes are what it holds

    def on_train_begin(self, args, state, control, **kwargs):
        start = state.global_step
        self._target = start + 1 if state.max_steps - start >= 2 else start

    def on_step_begin(self, args, state, control, **kwargs):
        if self._target is not None and state.global_step == self._target and self._tracker is None:
            roots = [self.trainer] if self.trainer is not None else [kwargs.get("model"), kwargs.get("optimizer")]
            self._tracker = StorageTracker([r for r in roots if r is not None]).__enter__()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self._tracker is not None:
            self._tracker.set_phase("backward")  # no backward op ran (nothing trains): still past the forward
            self._tracker.set_phase("optimizer")

    def on_optimizer_step(self, args, state, control, **kwargs):
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            return
        tracker.__exit__(None, None, None)
        self._target = None
        shape = tracker.indices_shape or (1, 1)
        rows = shape[0] if len(shape) > 1 else 1
        self.result = TensorPeak(
            optimizer_step=state.global_step + 1, batch_rows=rows, seq_len=shape[-1], start_bytes=tracker.start_bytes,
            phases_bytes=tracker.peaks, n_storages=tracker.n_storages,
        )


def tensor_peak_callback():
    """A `transformers.TrainerCallback` that measures one step's live tensor peak (see the module docstring)."""
    from transformers import TrainerCallback

    class _Callback(TensorPeakCallback, TrainerCallback):
        pass

    return _Callback()


def with_prediction(peak: TensorPeak, estimate: MemoryEstimate | None) -> TensorPeak:
    """`peak` with the estimator's phases for its batch shape (`estimate` made for that shape, on CPU)."""
    if estimate is None:
        return peak
    return peak.model_copy(update={"predicted_phases_bytes": dict(estimate.phases_bytes)})


def predicted_batch(peak: TensorPeak, *, pairs: bool) -> tuple[int, int]:
    """(micro-batch, seq_len) to give the estimator for the measured batch (DPO: pairs, half the rows)."""
    return (max(peak.batch_rows // 2, 1) if pairs else peak.batch_rows), peak.seq_len


def predict_measured_step(outcome, step, hf_config: dict, model_name: str, precision: str,
                          teacher_config: dict | None = None):
    """`outcome` (a `FitOutcome`) with the estimator's CPU phases for the batch its measured step ran, if any
    (with `teacher_config`, a logit-distillation teacher's weights, logits and forward counted too)."""
    measured = outcome.measured
    peak = measured.tensor_peak
    if peak is None:
        return outcome
    from backends.train.predict import predict_memory

    batch, seq_len = predicted_batch(peak, pairs=step.method == "dpo")
    estimate, _ = predict_memory(step, hf_config, model_name, precision, seq_len=seq_len, batch_size=batch,
                                 device="cpu", teacher_config=teacher_config)
    measured = measured.model_copy(update={"tensor_peak": with_prediction(peak, estimate)})
    return outcome.model_copy(update={"measured": measured})
