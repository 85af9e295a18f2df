"""Catalog facts beyond list prices (rules/catalog/prices.yaml): API windows and cache prices, provider-side
tuning with its deadline, and what an owned GPU costs to run (electricity at board power)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["ApiLimits", "ProviderTuning", "api_limits", "owned_power", "provider_tuning"]


@dataclass(frozen=True)
class ApiLimits:
    """An API model's context window and cached-input price."""

    name: str
    context_tokens: int
    cached_input_per_mtok_usd: float
    source: str


@dataclass(frozen=True)
class ProviderTuning:
    """A provider's own fine-tuning service: its price, its limits and the last day it accepts a new job."""

    provider: str
    model: str
    training_per_mtok_usd: float
    input_per_mtok_usd: float
    output_per_mtok_usd: float
    new_jobs_until: dt.date | None
    min_examples: int
    limits: str
    source: str
    as_of: str = ""

    def open_on(self, today: dt.date) -> bool:
        """New training jobs are still accepted on `today`."""
        return self.new_jobs_until is None or today <= self.new_jobs_until


@cache
def _doc() -> dict[str, Any]:
    from advisor.core.catalog import rules_dir
    from advisor.core.yamlio import load_yaml_file

    return load_yaml_file(rules_dir() / "catalog" / "prices.yaml", "price catalog")


def api_limits(name: str) -> ApiLimits | None:
    """The window and cache price of an API model; None when the catalog has no row for it."""
    row = next((r for r in _doc().get("api_limits", []) if r["name"] == name), None)
    if row is None:
        return None
    return ApiLimits(name=name, context_tokens=int(row["context_tokens"]),
                     cached_input_per_mtok_usd=float(row["cached_input_per_mtok_usd"]), source=row["source"])


def provider_tuning() -> list[ProviderTuning]:
    """Every provider-side fine-tuning service in the catalog."""
    rows = []
    for r in _doc().get("provider_tuning", []):
        until = r.get("new_jobs_until")
        rows.append(ProviderTuning(
            provider=r["provider"], model=r["model"], training_per_mtok_usd=float(r["training_per_mtok_usd"]),
            input_per_mtok_usd=float(r["input_per_mtok_usd"]), output_per_mtok_usd=float(r["output_per_mtok_usd"]),
            new_jobs_until=dt.date.fromisoformat(str(until)) if until else None,
            min_examples=int(r["min_examples"]), limits=r["limits"], source=r["source"],
            as_of=str(r.get("as_of", ""))))
    return rows


def owned_power(gpu_name: str) -> tuple[float, float, str] | None:
    """(board power in W, electricity USD/kWh, sources) of an owned GPU; None when its power is not in the catalog."""
    hw = _doc().get("owned_hardware") or {}
    watts = (hw.get("board_power_watts") or {}).get(gpu_name)
    if watts is None:
        return None
    return float(watts), float(hw["electricity_usd_per_kwh"]), \
        f"{hw['board_power_source']}; {hw['electricity_source']}"
