"""Execution backends. The registry maps a plan step kind to the package whose `BACKEND` runs it.

Nothing heavy is imported here, nor by importing a backend package: torch & co. load inside functions.
A new path is a new package with a `BACKEND` descriptor (backends/base.py) and one line below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import Backend

REGISTRY: dict[str, str] = {
    "train": "backends.train",
    "rag": "backends.rag",
    "prompt": "backends.prompting",
    "serve": "backends.serve",
    "distill": "backends.distill",
}

__all__ = ["REGISTRY", "backend_for"]


def backend_for(kind: str) -> Backend:
    """The descriptor of the backend that runs steps of `kind`."""
    return importlib.import_module(REGISTRY[kind]).BACKEND
