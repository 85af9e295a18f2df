"""Run a plan end to end: each step through its backend, with state on disk so an interrupted run resumes.

A run directory holds `answers.yaml` (when the run started from answers), `plan.yaml` (with every step's
prediction), `recommendation.json`, `state.json`, one folder per step (`1-train-lora/`, `2-rag/`, ...) with
that step's artifacts, `logs/` with each step's console output and result, and the closing report
(`report.md`, `report.html`, `result.json`). `state.json` records each step's status; running again into
the same directory skips finished steps and resumes the others (training from its last checkpoint, indexing
from its finished embedding batches). Every step kind is handled through its backend's descriptor
(`backends.REGISTRY`); nothing here names a kind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from advisor import __version__
from advisor.core.errors import AdvisorError, RunFailedError
from advisor.core.fileio import write_text_atomic
from advisor.core.models import Answers, Model, Recommendation
from advisor.core.paths import path_roles
from advisor.core.planning import Plan, absolute_plan, load_plan, predict_missing, save_plan

__all__ = [
    "RunInput",
    "RunState",
    "StepState",
    "demo_plan",
    "execute",
    "prepare",
    "step_dir_name",
    "step_label",
    "steps_of_kind",
]

STATE_FILE = "state.json"
LOG_DIR = "logs"  # each step's console output, its result as JSON, and a failed step's traceback


class StepState(Model):
    """One step of a run as `state.json` records it."""

    model_config = Model.model_config | {"frozen": False}

    index: int = Field(description="Position in the plan, from 0")
    label: str = Field(description="`train lora`, `rag`, `prompt`: what the step is, for people")
    dir: str = Field(description="The step's folder inside the run directory")
    fingerprint: str = Field(description="SHA-256 of the step's settings; a changed step is not resumed")
    status: Literal["pending", "running", "done", "failed"] = "pending"
    seconds: float = Field(0.0, description="Wall time of the last attempt")
    error: str | None = Field(None, description="Why the last attempt failed")
    result_file: str | None = Field(None, description="The backend's result, relative to the run directory")


class RunState(Model):
    """The whole run as `state.json` records it."""

    model_config = Model.model_config | {"frozen": False}

    advisor_version: str = __version__
    plan_name: str
    plan_fingerprint: str
    demo_substitutions: list[str] = Field(default_factory=list)
    steps: list[StepState]


@dataclass
class RunInput:
    """What `advisor run` was given, made into a plan whose input paths are absolute."""

    source: Path
    plan: Plan
    base_dir: Path  # the folder the answers or plan file lives in (relative paths were resolved against it)
    answers: Answers | None = None
    recommendation: Recommendation | None = None
    demo_substitutions: list[str] = field(default_factory=list)


def _backend(step):
    from backends import backend_for

    return backend_for(step.kind)


def step_label(step) -> str:
    """`train lora`, `train dpo`, `rag`, `prompt few-shot`, `prompt zero-shot`: the backend's label."""
    return _backend(step).label(step)


def step_dir_name(index: int, step) -> str:
    """The folder of the step at `index` (from 0) inside a run directory: `1-train-lora`, `2-rag`, ...

    The one step-folder scheme, shared by `advisor run`, `advisor train run` and `advisor prompt run`.
    """
    return f"{index + 1}-{step_label(step).replace(' ', '-')}"


def steps_of_kind(plan_path: str | Path, kind: str, out: Path | None) -> list[tuple[Any, Path, str]]:
    """(step, its folder, plan name) for each `kind` step of a plan, in the folders `advisor run` uses.

    For `advisor train run` and `advisor prompt run`: `out/<i>-<label>` (default `runs/<plan name>/...`),
    the same folder the step gets in a whole run, so the two never disagree about where a step's files are.

    Raises:
        AdvisorError: the plan has no step of that kind.
    """
    plan = load_plan(plan_path)
    run_dir = out or Path("runs") / plan.name
    found = [(step, run_dir / step_dir_name(i, step), plan.name) for i, step in enumerate(plan.steps)
             if step.kind == kind]
    if not found:
        raise AdvisorError(f"plan `{plan_path}` has no `{kind}` step", f"add a step with `kind: {kind}`")
    return found


def _fingerprint(obj: Any) -> str:
    payload = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def prepare(path: str | Path, *, demo: bool = False) -> RunInput:
    """Read an answers file (recommend, then plan) or a plan file, and optionally swap in the demo model.

    Raises:
        AdvisorError: the file is missing or neither answers nor a plan; data paths do not exist.
        pydantic.ValidationError: invalid fields (the CLI lists them all).
    """
    from advisor.core.yamlio import load_yaml_file

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise AdvisorError(f"`{path}` {what}", "give an answers.yaml (from `advisor ask`) or a plan.yaml")
    data = load_yaml_file(path, "answers or plan file")
    base_dir = path.parent.resolve()
    if isinstance(data, dict) and "steps" in data:
        plan, _ = predict_missing(load_plan(path))  # made once, before the run; the report only compares
        inp = RunInput(source=path, plan=plan, base_dir=base_dir)
    else:
        from advisor.core.planning import build_plan
        from advisor.core.recommend import load_answers, recommend

        answers = load_answers(path)
        rec = recommend(answers)
        plan = absolute_plan(build_plan(rec, answers), base_dir)  # placeholders are relative to the answers file
        inp = RunInput(source=path, plan=plan, base_dir=base_dir, answers=answers, recommendation=rec)
    _check_paths(inp)
    if demo:
        inp.plan, inp.demo_substitutions = demo_plan(inp.plan)
    return inp


def _check_paths(inp: RunInput) -> None:
    """Every input path the plan reads must exist; all missing ones are reported together."""
    problems = []
    for i, step in enumerate(inp.plan.steps, start=1):
        for name, role in path_roles(type(step)).items():
            value = getattr(step, name)
            if role == "input" and value and not Path(value).exists():
                problems.append(f"step {i} ({step_label(step)}): {name} `{value}` does not exist")
    if problems:
        from advisor.core.errors import InvalidInputError

        raise InvalidInputError(problems, hint=f"paths are relative to `{inp.base_dir}`; fix them in `{inp.source}`")


def demo_plan(plan: Plan) -> tuple[Plan, list[str]]:
    """The plan with every model a backend would load replaced by the offline demo model (the backend says how)."""
    steps, notes = [], []
    for i, step in enumerate(plan.steps, start=1):
        demo = _backend(step).demo
        if demo is not None:
            step, note = demo(step)
            if note:
                notes.append(f"step {i} ({step_label(step)}): {note}")
        steps.append(step)
    return plan.model_copy(update={"steps": steps}), notes


def _initial_state(inp: RunInput) -> RunState:
    steps = []
    for i, step in enumerate(inp.plan.steps):
        steps.append(StepState(index=i, label=step_label(step), dir=step_dir_name(i, step),
                               fingerprint=_fingerprint(step.model_dump(mode="json", exclude={"prediction"}))))
    return RunState(plan_name=inp.plan.name, plan_fingerprint=_fingerprint([s.fingerprint for s in steps]),
                    demo_substitutions=inp.demo_substitutions, steps=steps)


def _save_state(run_dir: Path, state: RunState) -> None:
    write_text_atomic(run_dir / STATE_FILE, state.model_dump_json(indent=2))


def _read_state(path: Path) -> RunState | None:
    """The recorded state, or None when the file is torn or unreadable (then every step is looked at afresh)."""
    try:
        return RunState.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError):
        return None


def _load_or_start(inp: RunInput, run_dir: Path) -> RunState:
    fresh = _initial_state(inp)
    path = run_dir / STATE_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise AdvisorError(f"`{run_dir}` is a file, not a folder", "choose another `--out` folder")
    if not path.is_file():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise AdvisorError(f"`{run_dir}` is not empty and holds no advisor run",
                               "choose another `--out` folder")
        return fresh
    state = _read_state(path)
    if state is None:
        return fresh  # steps found finished on disk are recognised by their backends (resume)
    if state.plan_fingerprint != fresh.plan_fingerprint:
        raise AdvisorError(f"`{run_dir}` holds a run of a different plan",
                           "choose another `--out` folder, or delete that one to start over")
    return state


@contextlib.contextmanager
def _tee(log_path: Path) -> Iterator[None]:
    """Copy what the step prints (stdout and stderr) into its log, still showing it."""

    class Tee:
        def __init__(self, stream, log):
            self.stream, self.log = stream, log

        def write(self, text):
            self.log.write(text)
            return self.stream.write(text)

        def flush(self):
            self.log.flush()
            self.stream.flush()

        def __getattr__(self, name):
            return getattr(self.stream, name)

    with log_path.open("a", encoding="utf-8") as log:
        with contextlib.redirect_stdout(Tee(sys.stdout, log)), contextlib.redirect_stderr(Tee(sys.stderr, log)):
            yield


def _ready(step, index: int, plan: Plan, run_dir: Path):
    """The step as it runs: linked to what earlier steps of the plan produce (the backend says how)."""
    link = _backend(step).link
    if link is None:
        return step
    earlier = [(s, run_dir / step_dir_name(i, s)) for i, s in enumerate(plan.steps[:index])]
    return link(step, earlier)


def _write_inputs(inp: RunInput, run_dir: Path) -> None:
    import shutil

    if inp.answers is not None and not (run_dir / "answers.yaml").exists():
        shutil.copyfile(inp.source, run_dir / "answers.yaml")
    save_plan(inp.plan, run_dir / "plan.yaml")
    if inp.recommendation is not None:
        write_text_atomic(run_dir / "recommendation.json", inp.recommendation.model_dump_json(indent=2))


def execute(
    inp: RunInput,
    run_dir: str | Path,
    *,
    force: bool = False,
    announce: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> RunState:
    """Run every unfinished step of `inp.plan` in `run_dir`, then write the closing report.

    Args:
        inp: The prepared input.
        run_dir: The run directory (created; re-used to resume).
        force: Passed to backends that refuse a run the estimator says will not fit.
        announce: Where one-line progress goes (stderr by default).

    Returns:
        The final state (every step `done`).

    Raises:
        AdvisorError: the directory holds another plan or other files.
        RunFailedError: a step failed; the finished steps and the state are kept.
    """
    run_dir = Path(run_dir)
    state = _load_or_start(inp, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_inputs(inp, run_dir)
    _save_state(run_dir, state)
    start, total = time.perf_counter(), len(state.steps)
    for step, st in zip(inp.plan.steps, state.steps, strict=True):
        head = f"[{st.index + 1}/{total}] {st.label}"
        if st.status == "done" and st.result_file and (run_dir / st.result_file).is_file():
            announce(f"{head}: done earlier, skipped ({st.dir})")
            continue
        resuming = (run_dir / st.dir).exists()
        announce(f"{head}: {'resuming' if resuming else 'starting'} in {run_dir / st.dir}")
        _run_step(step, st, inp, state, run_dir, force=force)
        announce(f"{head}: done in {st.seconds:.1f} s (run {time.perf_counter() - start:.0f} s so far)")
    from advisor.app.render.run_report import write_run_report

    write_run_report(inp, state, run_dir)
    return state


def _run_step(step, st: StepState, inp: RunInput, state: RunState, run_dir: Path, *, force: bool) -> None:
    from backends.base import RunContext

    step_dir = run_dir / st.dir
    ready = _ready(step, st.index, inp.plan, run_dir)
    # The folder is this run's own (the run directory holds nothing else): an earlier attempt there is resumed.
    ctx = RunContext(step_dir=step_dir, plan_name=inp.plan.name, resume=step_dir.exists(), force=force)
    st.status, st.error = "running", None
    _save_state(run_dir, state)
    began = time.perf_counter()
    log_dir = run_dir / LOG_DIR
    log_dir.mkdir(exist_ok=True)
    try:
        with _tee(log_dir / f"{st.dir}.log"):
            result = _backend(step).run(ready, ctx)
    except Exception as exc:  # every failure is recorded; bugs keep their traceback in the log
        st.status, st.seconds = "failed", time.perf_counter() - began
        cause = exc.message if isinstance(exc, AdvisorError) else f"{type(exc).__name__}: {exc}"
        cause = cause.splitlines()[0] if cause else type(exc).__name__
        if not isinstance(exc, AdvisorError) or isinstance(exc, RunFailedError):
            error_log = log_dir / f"{st.dir}.error.log"
            error_log.write_text(traceback.format_exc(), encoding="utf-8")
            cause += f" (details: {error_log})"
        st.error = cause
        _save_state(run_dir, state)
        hint = getattr(exc, "hint", None)
        raise RunFailedError(f"step {st.index + 1} ({st.label}) failed: {cause}",
                             hint or f"fix it, then run the same command again: finished steps are kept in `{run_dir}`") from exc
    result_path = run_dir / LOG_DIR / f"{st.dir}.result.json"
    write_text_atomic(result_path, result.model_dump_json(indent=2))
    st.status, st.seconds, st.result_file = "done", time.perf_counter() - began, str(result_path.relative_to(run_dir))
    _save_state(run_dir, state)
