"""`advisor estimate --fit --examples N`: the GPU × count sweep as a table, cheapest first, and as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from advisor.core.estimate.sweep import Sweep

__all__ = ["render_sweep", "sweep_json"]


def sweep_json(sweep: Sweep) -> dict[str, Any]:
    """The sweep's rows (cheapest first), the near-ties and the excluded combinations with their reasons."""
    from advisor.core.estimate.sweep import near_ties

    return {
        "examples": sweep.examples,
        "epochs": sweep.epochs,
        "near_tie": sweep.near_tie,
        "rows": [row.model_dump(mode="json") for row in sweep.rows],
        "near_ties": [f"{row.gpu}x{row.n_gpus}" for row in near_ties(sweep)],
        "excluded": [row.model_dump(mode="json") for row in sweep.excluded],
    }


def _hours(h: float | None) -> str:
    if h is None:
        return "-"
    return f"{h * 60:.1f}m" if h < 1 else f"{h:,.1f}h"


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}G"


def render_sweep(sweep: Sweep, console: Console) -> None:
    """The fitting GPU × count rows cheapest first, near-ties marked, then one line per excluded GPU type."""
    from rich import box
    from rich.table import Table

    from advisor.core.estimate.sweep import near_ties

    ties = {(r.gpu, r.n_gpus) for r in near_ties(sweep)}
    best = sweep.rows[0].usd if sweep.rows and sweep.rows[0].usd is not None else None
    table = Table(title=f"Cheapest GPU × count for {sweep.examples:,} examples × {sweep.epochs:g} epochs "
                  "(GiB per GPU; host: offloaded state of the node; time (communication, as a share of it))", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for col, justify in (("GPU", "left"), ("n", "right"), ("layout", "left"), ("peak", "right"),
                         ("host", "right"), ("time", "right"), ("USD", "right"), ("×best", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for row in sweep.rows:
        ratio = f"×{row.usd / best:.2f}" if best and row.usd is not None else "-"
        if (row.gpu, row.n_gpus) in ties and len(ties) > 1:
            ratio += "≈"
        table.add_row(row.gpu, str(row.n_gpus), row.layout, _gib(row.peak_bytes),
                      _gib(row.host_bytes) if row.host_bytes else "-",
                      _hours(row.hours) + (f" ({row.communication_hours / row.hours:.0%})"
                                           if row.hours and row.communication_hours / row.hours >= 0.01 else ""),
                      f"{row.usd:,.2f}" if row.usd is not None else "no price", ratio)
    if sweep.rows:
        console.print(table)
    else:
        console.print("[red]no catalog GPU at 1, 2, 4 or 8 per node fits this job[/red]")
    if len(ties) > 1:
        console.print(f"near-tie (within {sweep.near_tie:.0%} of the cheapest, ≈): "
                      + ", ".join(f"{g}×{n}" for g, n in sorted(ties)))
    by_gpu: dict[str, list[Any]] = {}
    for row in sweep.excluded:
        by_gpu.setdefault(row.gpu, []).append(row)
    if by_gpu:
        console.print(f"excluded ({len(sweep.excluded)} GPU × count combinations):")
    for gpu, rows in by_gpu.items():
        counts = ",".join(f"×{r.n_gpus}" for r in rows)
        console.print(f"- {gpu} {counts}: at ×{rows[-1].n_gpus} {rows[-1].reason}")
