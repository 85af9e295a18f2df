"""The executable plan: load and save `plan.yaml`, validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from advisor import __version__
from advisor.errors import AdvisorError
from advisor.schema import Model, RagStep, TrainStep

__all__ = ["Plan", "PlanStep", "load_plan", "save_plan"]

PlanStep = Annotated[RagStep | TrainStep, Field(discriminator="kind")]


class Plan(Model):
    """Concrete, editable steps that the backends execute in order."""

    name: str = Field("plan", description="Short name of the plan, used for the run directory")
    advisor_version: str = Field(__version__, description="advisor version that wrote the plan")
    rules_version: str = Field("", description="Version of the rules that decided it; empty when written by hand")
    steps: list[PlanStep] = Field(min_length=1, description="What runs, in order")


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    Raises:
        AdvisorError: the file is missing or is not YAML.
        pydantic.ValidationError: a field is missing or invalid (the CLI lists them all).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise AdvisorError(f"plan file `{path}` does not exist", "write one with `advisor plan answers.yaml -o plan.yaml`")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise AdvisorError(f"`{path}` is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise AdvisorError(f"`{path}` must hold a mapping with a `steps` list")
    return Plan.model_validate(data)


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write `plan` as YAML, atomically (a crash leaves the old file or none, never half of one)."""
    import os

    import yaml

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False))
    os.replace(tmp, path)
