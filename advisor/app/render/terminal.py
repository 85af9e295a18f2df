"""Rendering for people and scripts: rich tables in the terminal, and JSON (units formatted by `advisor.core.units`)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

from advisor.app.render.labels import MEMORY_ROWS
from advisor.core.units import fmt_bytes

if TYPE_CHECKING:
    from rich.console import Console

    from advisor.core.estimate.job import JobEstimate
    from advisor.core.models import ApiPriceSpec, GpuSpec, ModelSpec, Recommendation

__all__ = [
    "estimate_json",
    "fmt_bytes",
    "check_report_path",
    "make_console",
    "print_api_prices",
    "print_estimate",
    "print_gpus",
    "print_models",
    "print_recommendation",
    "render_estimate",
    "write_report",
]




def make_console(file: Any = None, width: int | None = None) -> Console:
    """A console that honours NO_COLOR; tests pass a StringIO and a fixed width."""
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR")) or file is not None
    return Console(file=file or sys.stdout, width=width, color_system=None if no_color else "auto",
                   highlight=False, soft_wrap=False)




def _fmt_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:,.2f}{unit}"
    return str(n)


def estimate_json(result: JobEstimate) -> dict[str, Any]:
    """The `--json` object: memory in bytes, time in hours, money in USD, and every assumption."""
    mem = result.memory
    data: dict[str, Any] = {
        "model": result.spec.model.name,
        "method": result.spec.method,
        "precision": result.spec.precision,
        "precision_reason": result.precision_reason,
        "spec": result.spec.model_dump(mode="json", exclude={"model"}),
        "memory": mem.model_dump(mode="json", exclude={"assumptions"}),
        "gpu": result.gpu.name if result.gpu else None,
        "gpu_memory_bytes": result.gpu.memory_bytes if result.gpu else None,
        "usable_bytes": result.usable_bytes,
        "fits": result.fits,
        "time": {"hours": result.compute.hours, "gpu_hours": result.compute.gpu_hours,
                 "n_tokens": result.compute.n_tokens, "flops": result.compute.flops,
                 "utilization": result.compute.utilization} if result.compute else None,
        "cost": {"usd": result.compute.usd, "price_per_hour_usd": result.compute.price_per_hour_usd}
        if result.compute else None,
        "assumptions": [*mem.assumptions, *(result.compute.assumptions if result.compute else [])],
    }
    if result.fit is not None:
        data["fit"] = [row.model_dump(mode="json") for row in result.fit]
    if result.spec.stack is not None:
        data["stack"] = _stack_json(result.spec)
    if result.max_batch_size is not None:
        data["max_batch_size"] = result.max_batch_size
    if result.max_seq_len is not None:
        data["max_seq_len"] = result.max_seq_len
    return data


def render_estimate(result: JobEstimate, console: Console, explain: bool = False) -> None:
    """The estimate as a table of components, the fit verdict, time, cost and (with explain) assumptions."""
    from rich.markup import escape
    from rich.table import Table

    from advisor.app.render.safe import one_line, terminal_text

    spec, mem = result.spec, result.memory
    what = spec.method if spec.method != "dpo" else f"dpo ({spec.dpo_policy} policy)"
    console.print(  # the model name may be a path the user typed: no markup, no control characters
        f"[bold]{escape(one_line(spec.model.name))}[/bold] · {what} · {spec.precision} · micro-batch {spec.batch_size} × "
        f"{spec.seq_len} tokens · checkpointing {'on' if spec.grad_ckpt else 'off'}"
        + (f" · {spec.n_gpus} GPUs ZeRO-{spec.zero_stage}" if spec.n_gpus > 1 else "")
    )
    console.print(
        f"parameters {_fmt_count(mem.n_params)}, trainable {_fmt_count(mem.n_trainable_params)}"
        f" · precision: {escape(terminal_text(result.precision_reason))}"
    )
    table = Table(title="Peak memory per GPU", title_justify="left")
    table.add_column("component")
    table.add_column("memory", justify="right")
    table.add_column("share", justify="right")
    total = mem.peak_bytes
    for field, label in MEMORY_ROWS:
        value = getattr(mem, field)
        if value:
            table.add_row(label, fmt_bytes(value), f"{value / total:.0%}")
    table.add_row("allocator fragmentation", fmt_bytes(mem.allocator_overhead_bytes),
                  f"{mem.allocator_overhead_bytes / total:.0%}")
    if mem.cuda_context_bytes:
        table.add_row("CUDA context", fmt_bytes(mem.cuda_context_bytes), f"{mem.cuda_context_bytes / total:.0%}")
    table.add_section()
    table.add_row(f"[bold]peak ({mem.peak_phase})[/bold]", f"[bold]{fmt_bytes(total)}[/bold]", "")
    console.print(table)
    phases = " · ".join(f"{name} {fmt_bytes(v)}" for name, v in mem.phases_bytes.items())
    console.print(f"allocated at the end of each phase: {phases}")
    if mem.cpu_offload_bytes:
        console.print(f"CPU memory for offloaded state: {fmt_bytes(mem.cpu_offload_bytes)}")
    if result.gpu is not None:
        verdict = "[green]fits[/green]" if result.fits else "[red]does not fit[/red]"
        console.print(
            f"{result.gpu.name} ({fmt_bytes(result.gpu.memory_bytes)}, {fmt_bytes(result.usable_bytes or 0)} "
            f"usable): {verdict} — {fmt_bytes(mem.peak_bytes)} needed"
        )
    if result.compute is not None:
        c = result.compute
        cost = f"{c.usd:,.2f} USD" if c.usd is not None else "no price known"
        console.print(
            f"training: {c.n_tokens:,} tokens · {c.flops:.3g} FLOPs · {c.hours:,.2f} h on {spec.n_gpus} GPU(s) "
            f"at MFU {c.utilization:g} · {cost}"
        )
    if result.max_batch_size is not None:
        console.print(f"largest micro-batch that fits: {result.max_batch_size}")
    if result.max_seq_len is not None:
        console.print(f"largest sequence length that fits: {result.max_seq_len}")
    if result.fit is not None:
        _render_fit(result, console)
    if explain and spec.stack is not None:
        _render_stack(spec, console)
    if explain:
        console.print("\n[bold]assumptions[/bold]")
        for note in [*mem.assumptions, *(result.compute.assumptions if result.compute else [])]:
            console.print(escape(terminal_text(f"- {note}")))


def _stack_json(spec: Any) -> dict[str, Any]:
    from advisor.core.estimate.stacks import describe_knobs, stack_profile

    profile = stack_profile(spec.stack)
    return {"name": profile.name, "label": profile.label, "knobs": describe_knobs(spec)}


def _render_stack(spec: Any, console: Console) -> None:
    stack = _stack_json(spec)
    console.print(f"\n[bold]stack profile[/bold] `{stack['name']}`: {stack['label']}")
    for line in stack["knobs"]:
        console.print(f"- {line}")


def _render_fit(result: JobEstimate, console: Console) -> None:
    from rich.table import Table

    table = Table(title="Catalog GPUs for this job", title_justify="left")
    for col, justify in (("GPU", "left"), ("memory", "right"), ("needs", "right"), ("fits", "left"),
                         ("USD/h", "right")):
        table.add_column(col, justify=justify)
    for row in result.fit or []:
        table.add_row(row.gpu, fmt_bytes(row.memory_bytes), fmt_bytes(row.peak_bytes),
                      "yes" if row.fits else "no",
                      f"{row.price_per_hour_usd:.2f}" if row.price_per_hour_usd is not None else "-")
    console.print(table)


def print_estimate(result: JobEstimate, as_json: bool = False, explain: bool = False) -> None:
    """Print an estimate on stdout, as a table or as one JSON object."""
    if as_json:
        sys.stdout.write(json.dumps(estimate_json(result), indent=2) + "\n")
        return
    render_estimate(result, make_console(), explain=explain)


def print_models(models: dict[str, ModelSpec], as_json: bool = False) -> None:
    """The model catalog."""
    from rich.table import Table

    from advisor.core.estimate.params import count_params

    rows = []
    for name, m in models.items():
        inv = count_params(m)
        rows.append({"name": name, "arch": m.arch, "n_params": inv.n_params, "n_active_params": inv.n_active_params,
                     "n_layers": m.n_layers, "hidden_size": m.hidden_size, "n_heads": m.n_heads,
                     "n_kv_heads": m.n_kv_heads, "vocab_size": m.vocab_size, "max_context": m.max_context,
                     "source": m.source})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="Model catalog (advisor estimate --model NAME)", title_justify="left")
    for col in ("name", "arch", "params", "active", "layers", "hidden", "heads/kv", "vocab", "context"):
        table.add_column(col, justify="left" if col in ("name", "arch") else "right")
    for r in rows:
        table.add_row(r["name"], r["arch"], _fmt_count(r["n_params"]), _fmt_count(r["n_active_params"]),
                      str(r["n_layers"]), str(r["hidden_size"]), f"{r['n_heads']}/{r['n_kv_heads']}",
                      f"{r['vocab_size']:,}", f"{r['max_context']:,}")
    make_console().print(table)


def print_gpus(gpus: dict[str, GpuSpec], as_json: bool = False) -> None:
    """The GPU catalog."""
    from rich.table import Table

    if as_json:
        sys.stdout.write(json.dumps([g.model_dump(mode="json") for g in gpus.values()], indent=2) + "\n")
        return
    table = Table(title="GPU catalog (advisor estimate --gpu NAME)", title_justify="left")
    for col in ("name", "GPU", "memory", "bf16 TFLOP/s", "fp32 TFLOP/s", "GB/s", "USD/h"):
        table.add_column(col, justify="left" if col in ("name", "GPU") else "right")
    for g in gpus.values():
        table.add_row(g.name, g.label, fmt_bytes(g.memory_bytes),
                      f"{g.bf16_tflops:g}" if g.supports_bf16 and g.bf16_tflops else "no bf16",
                      f"{g.fp32_tflops:g}", f"{g.bandwidth_gb_per_s:g}",
                      f"{g.price_per_hour_usd:.2f}" if g.price_per_hour_usd is not None else "-")
    make_console().print(table)


def print_api_prices(prices: dict[str, ApiPriceSpec], as_json: bool = False) -> None:
    """The LLM API price catalog."""
    from rich.table import Table

    if as_json:
        sys.stdout.write(json.dumps([p.model_dump(mode="json") for p in prices.values()], indent=2) + "\n")
        return
    table = Table(title="LLM API prices (USD per million tokens)", title_justify="left")
    for col in ("name", "provider", "input", "output", "as of"):
        table.add_column(col, justify="right" if col in ("input", "output") else "left")
    for p in prices.values():
        table.add_row(p.name, p.provider, f"{p.input_per_mtok_usd:g}", f"{p.output_per_mtok_usd:g}", p.as_of)
    make_console().print(table)


# --- Recommendation (the rendering lives in advisor/report_recommend.py) ----------------------------


def print_recommendation(rec: Recommendation, as_json: bool = False) -> None:
    """Print a recommendation on stdout, as rich text or as one JSON object."""
    from advisor.app.render.recommendation import recommendation_json, render_recommendation

    if as_json:
        sys.stdout.write(json.dumps(recommendation_json(rec), indent=2) + "\n")
        return
    render_recommendation(rec, make_console())


def check_report_path(path: str | os.PathLike[str]) -> str:
    """The report format a path asks for: `md` or `html`.

    Raises:
        AdvisorError: The suffix is neither `.md` nor `.html`/`.htm`.
    """
    from pathlib import Path

    from advisor.core.errors import AdvisorError

    suffix = Path(path).suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise AdvisorError(f"report `{path}` must end in `.md` or `.html`", "e.g. `--report report.html`")
    return "md" if suffix == ".md" else "html"


def write_report(rec: Recommendation, path: str | os.PathLike[str]) -> None:
    """Write the recommendation as Markdown (`.md`) or self-contained HTML (`.html`/`.htm`).

    Raises:
        AdvisorError: Any other suffix, or the file cannot be written.
    """
    from pathlib import Path

    from advisor.app.outputs import write_output_file
    from advisor.app.render.recommendation import recommendation_html, recommendation_markdown

    path = Path(path)
    text = recommendation_markdown(rec) if check_report_path(path) == "md" else recommendation_html(rec)
    write_output_file(path, text)  # atomic: a failed write leaves no half report
