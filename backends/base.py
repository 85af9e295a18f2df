"""What every backend offers the runner: a cheap `check` and a `run` that writes only inside its folder.

Interfaces only, no implementation. The registry in `backends/__init__.py` names each backend's `run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from advisor.core.models import Model

__all__ = ["RunBackend"]


class RunBackend(Protocol):
    """`run(step, run_dir, *, base_dir, plan_name) -> result`, as `advisor run` calls it.

    `step` is the backend's plan step; relative paths in it resolve against `base_dir` (the plan file's
    folder). The backend writes only under `run_dir`, puts the step (or plan) and library versions beside
    its artifacts, and returns a pydantic result that the closing report reads as JSON.
    """

    def __call__(self, step: Model, run_dir: Path, *, base_dir: Path, plan_name: str) -> Model: ...
