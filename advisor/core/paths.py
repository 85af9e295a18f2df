"""Path fields made absolute when a file is loaded and relative when it is saved: the only place that does it.

Fields carry their role in the model (`advisor.core.models.steps.PATH_ROLE`): `input` paths are made absolute
against the file's folder; `model` values only when they name something that exists there (else they are
Hugging Face ids); `output` paths stay relative to the step's own folder and are never rewritten. On save,
a path inside the file's folder is written relative to it (the plan moves with its data), one outside it
absolute (never `../../...`). Backends therefore only ever see absolute input paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from advisor.core.models.steps import PATH_ROLE

__all__ = ["absolute_fields", "absolute_step", "path_roles", "relative_fields", "relative_step"]


def path_roles(model_cls: Any) -> dict[str, str]:
    """Field name → role (`input`, `model`, `output`) of every path field of a model class."""
    roles = {}
    for name, field in model_cls.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get(PATH_ROLE):
            roles[name] = str(extra[PATH_ROLE])
    return roles


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~"))


def _absolute(value: str, role: str, base: Path) -> str:
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = base / path
    if role == "input" or candidate.exists() or (role == "model" and _looks_like_path(value)):
        return str(candidate.resolve())
    return value  # a Hugging Face id, a catalog name, `tiny-demo`, or a reference to an earlier step


def absolute_fields(model_cls: Any, data: dict, base_dir: str | Path) -> dict:
    """`data` (a model's fields as a dict) with its relative input/model paths resolved against `base_dir`."""
    base = Path(base_dir).resolve()
    out = dict(data)
    for name, role in path_roles(model_cls).items():
        value = out.get(name)
        if role != "output" and isinstance(value, str) and value:
            out[name] = _absolute(value, role, base)
    return out


def relative_fields(model_cls: Any, data: dict, base_dir: str | Path) -> dict:
    """`data` with every absolute input/model path inside `base_dir` written relative to it."""
    base = Path(base_dir).resolve()
    out = dict(data)
    for name, role in path_roles(model_cls).items():
        value = out.get(name)
        if role == "output" or not isinstance(value, str) or not Path(value).is_absolute():
            continue
        path = Path(value).resolve()
        if path == base or base in path.parents:
            out[name] = os.path.relpath(path, base)
    return out


def absolute_step(step: Any, base_dir: str | Path) -> Any:
    """The step with its input and model paths made absolute against `base_dir`."""
    update = absolute_fields(type(step), {n: getattr(step, n) for n in path_roles(type(step))}, base_dir)
    return step.model_copy(update=update)


def relative_step(step: Any, base_dir: str | Path) -> Any:
    """The step with its absolute paths inside `base_dir` made relative to it."""
    update = relative_fields(type(step), {n: getattr(step, n) for n in path_roles(type(step))}, base_dir)
    return step.model_copy(update=update)
