"""Numbers as people read them: bytes in GiB/MiB, USD, seconds, hours. Shared by every renderer and report row."""

from __future__ import annotations

from typing import Any

__all__ = ["fmt", "fmt_bytes"]

GiB = 1024**3


def fmt_bytes(n: int | float) -> str:
    """Bytes as GiB with two decimals (MiB under 1 GiB)."""
    if abs(n) < GiB:
        return f"{n / 1024**2:,.1f} MiB"
    return f"{n / GiB:,.2f} GiB"


def fmt(value: Any, unit: str = "") -> str:
    """`value` in `unit` (`bytes`, `usd`, `s`, `h`, or none); `–` for a missing value."""
    if value is None:
        return "–"
    if unit == "bytes":
        return fmt_bytes(value)
    if unit == "usd":
        return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"
    if unit == "s":
        return f"{value:,.1f} s"
    if unit == "h":
        return f"{value:,.2f} h"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
