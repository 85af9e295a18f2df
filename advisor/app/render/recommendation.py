"""A recommendation for people and scripts: rich terminal output, Markdown, self-contained HTML, JSON.

The HTML page has inline CSS and inline SVG charts only (no script, no external resource): memory per
option against the GPU's capacity, and monthly cost against request volume with the break-even marked.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from advisor.app.render.labels import MEMORY_ROWS
from advisor.app.render.safe import markdown_text, one_line, terminal_text
from advisor.core.units import GiB, fmt_bytes

if TYPE_CHECKING:
    from rich.console import Console

    from advisor.core.models import Option, Recommendation

__all__ = ["recommendation_html", "recommendation_json", "recommendation_markdown", "render_recommendation"]

LABELS = {"prompting": "Prompting", "prompting_few_shot": "Few-shot prompting", "rag": "RAG", "lora": "LoRA",
          "qlora": "QLoRA", "full": "Full fine-tuning", "dpo": "DPO", "ia3": "IA3", "prompt_tuning": "Prompt tuning",
          "provider_tuning": "Provider tuning", "distillation": "Distillation",
          "continued_pretraining": "Continued pretraining + SFT"}
TABLE_VOLUMES = 6  # columns of the cost-against-volume table
COLORS = {"prompting": "#7f8c8d", "prompting_few_shot": "#8e44ad", "rag": "#2980b9", "lora": "#27ae60",
          "qlora": "#16a085", "full": "#c0392b", "dpo": "#d35400", "ia3": "#2c3e50", "prompt_tuning": "#b7950b",
          "provider_tuning": "#6c3483", "distillation": "#117a65",
          "continued_pretraining": "#784212"}
PART_COLORS = ("#2c3e50", "#a0522d", "#e67e22", "#f1c40f", "#3498db", "#9b59b6", "#1abc9c", "#95a5a6", "#e74c3c",
               "#bdc3c7")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def recommendation_json(rec: Recommendation) -> dict[str, Any]:
    """The `--json` object: `recommendation` (primary, stack, warnings, break-even) and one entry per option."""
    data = rec.model_dump(mode="json")
    return {
        "advisor_version": rec.advisor_version,
        "rules_version": rec.rules_version,
        "recommendation": {"primary": rec.primary, "stack": rec.stack, "warnings": data["warnings"],
                           "break_even": data["break_even"], "skipped_rules": rec.skipped_rules},
        "options": data["options"],
        "cost_curve": data["cost_curve"],
        "facts": {k: _finite(v) for k, v in rec.facts.items()},
        "measured": data["measured"],
        "assumptions": rec.assumptions,
    }


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if value < 0.01:
        return "<$0.01"
    return f"${value:,.2f}" if value < 1000 else f"${value:,.0f}"


def _stack_text(rec: Recommendation) -> str:
    return " + ".join(LABELS[name] for name in rec.stack)


def _memory_text(option: Option) -> str:
    if option.memory is None or option.gpu_memory_bytes is None:
        return "-"
    n_gpus = getattr(option.step, "n_gpus", 1)  # a training step's GPU count; other steps run on one
    gpus = f"{n_gpus}× " if n_gpus > 1 else ""
    return f"{fmt_bytes(option.memory.peak_bytes)} of {gpus}{fmt_bytes(option.gpu_memory_bytes)} {option.gpu}"


def _status(option: Option) -> str:
    return "yes" if option.feasible else "no: " + "; ".join(option.why_not)


def _volume_columns(rec: Recommendation) -> list[int]:
    curve = rec.cost_curve
    if curve is None or not curve.requests_per_day:
        return []
    n = len(curve.requests_per_day)
    picks = {round(i * (n - 1) / (TABLE_VOLUMES - 1)) for i in range(TABLE_VOLUMES)}
    if rec.answers.requests_per_day in curve.requests_per_day:
        picks.add(curve.requests_per_day.index(rec.answers.requests_per_day))
    return sorted(picks)


def _memory_parts(option: Option) -> list[tuple[str, int]]:
    mem = option.memory
    if mem is None:
        return []
    allocated = [(label, getattr(mem, field)) for field, label in MEMORY_ROWS if getattr(mem, field)]
    rest = mem.peak_bytes - sum(v for _, v in allocated)
    return [*allocated, ("fragmentation + CUDA context", max(rest, 0))]


# --- terminal -------------------------------------------------------------------------------------------


def _short_memory(option: Option) -> str:
    if option.memory is None or option.gpu_memory_bytes is None:
        return "-"
    return f"{option.memory.peak_bytes / GiB:.1f} / {option.gpu_memory_bytes / GiB:.0f}"


def _ties(rec: Recommendation) -> list[str]:
    """The recommendation's tie notes (scores equal to the primary's and how the tie was broken)."""
    return [a for a in rec.assumptions if a.startswith("tie:")]


def render_recommendation(rec: Recommendation, console: Console) -> None:
    """The recommendation in the terminal: headline, options, memory bars, cost by volume, reasons."""
    from rich.markup import escape
    from rich.table import Table

    primary = rec.option(rec.primary)
    console.print(f"[bold]Recommendation: {escape(_stack_text(rec))}[/bold]")
    if rec.task:
        console.print(f"task: {escape(one_line(rec.task))}")
    console.print(f"primary {rec.primary} · benefit {primary.benefit.label} ({primary.benefit.score:g}) · "
                  f"set-up {_usd(primary.one_time_usd)} · {_usd(primary.monthly_usd)}/month")
    console.print(f"advisor {rec.advisor_version} · rules {rec.rules_version}")
    for reason in primary.reasons:
        if reason.effect != "note":
            console.print(f"  because {escape(f'[{reason.rule_id}]')} {escape(terminal_text(reason.rationale))}")
    for tie in _ties(rec):
        console.print(f"  [yellow]{escape(terminal_text(tie))}[/yellow]")
    table = Table(title="Options, best first (why not: see Reasons)", title_justify="left")
    table.add_column("option", min_width=18, no_wrap=True)
    table.add_column("feasible", overflow="fold")
    for col, justify in (("score", "right"), ("benefit", "left"), ("GiB peak/GPU", "right"), ("GPU", "left"),
                         ("set-up", "right"), ("monthly", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for o in rec.options:
        blocked = ", ".join(r.rule_id for r in o.reasons if "excluded" in r.effect.split(", "))
        table.add_row(o.name, "yes" if o.feasible else f"no: {blocked}", f"{o.score:g}",
                      f"{o.benefit.label} {o.benefit.score:g}", _short_memory(o), o.gpu or "-",
                      _usd(o.one_time_usd), _usd(o.monthly_usd))
    console.print(table)
    _render_memory_bars(rec, console)
    _render_costs(rec, console)
    if rec.warnings:
        console.print("\n[bold]Warnings[/bold]")
        for w in rec.warnings:
            console.print(f"- [yellow]{escape(terminal_text(w.message))}[/yellow] {escape(f'[{w.rule_id}]')}")
    console.print("\n[bold]Reasons[/bold]")
    for o in rec.options:
        for r in o.reasons:
            console.print(escape(terminal_text(f"- {o.name} [{r.rule_id}] {r.effect}: {r.rationale} (source: {r.source})")))
    if rec.assumptions:
        console.print("\n[bold]Assumptions[/bold]")
        for note in rec.assumptions:
            console.print(escape(terminal_text(f"- {note}")))


def _render_memory_bars(rec: Recommendation, console: Console) -> None:
    from rich.markup import escape

    rows = [o for o in rec.options if o.memory is not None and o.gpu_memory_bytes]
    if not rows:
        return
    width = 30
    console.print("\n[bold]Peak memory per GPU against its capacity[/bold]")
    for o in rows:
        share = o.memory.peak_bytes / o.gpu_memory_bytes  # type: ignore[union-attr, operator]
        filled = min(width, round(share * width))
        bar = "█" * filled + "░" * (width - filled) + ("▶" if share > 1 else " ")
        console.print(escape(one_line(f"{o.name:<19}{bar} {share:>5.0%}  {_short_memory(o)} GiB {o.gpu}")))


def _render_costs(rec: Recommendation, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    curve = rec.cost_curve
    columns = _volume_columns(rec)
    if curve and columns:
        table = Table(title="Monthly cost by requests per day", title_justify="left")
        table.add_column("option")
        for i in columns:
            table.add_column(f"{curve.requests_per_day[i]:,.0f}", justify="right")
        for name, values in curve.monthly_usd.items():
            table.add_row(name, *(_usd(values[i]) for i in columns))
        console.print(table)
    if rec.break_even:
        console.print(escape(terminal_text(f"break-even: {rec.break_even.note}")))


# --- Markdown -------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return markdown_text(text)  # no raw HTML, links, code spans or extra table columns from any text


def recommendation_markdown(rec: Recommendation) -> str:
    """The recommendation as a Markdown document."""
    primary = rec.option(rec.primary)
    lines = [f"# Recommendation: {_stack_text(rec)}", ""]
    if rec.task:
        lines += [f"Task: {_md(rec.task)}", ""]
    lines += [f"- Primary: **{rec.primary}** (benefit {primary.benefit.label}, {primary.benefit.score:g}/100)",
              f"- Stack: {', '.join(rec.stack)}",
              f"- Set-up {_usd(primary.one_time_usd)}, running {_usd(primary.monthly_usd)} a month",
              f"- advisor {rec.advisor_version}, rules {rec.rules_version}", ""]
    if rec.break_even:
        lines += [f"**Break-even:** {rec.break_even.note}", ""]
    lines += [*(f"**Tie:** {_md(t.removeprefix('tie: '))}" for t in _ties(rec)), *([""] if _ties(rec) else [])]
    if rec.warnings:
        lines += ["## Warnings", "", *(f"- {_md(w.message)} (`{w.rule_id}`)" for w in rec.warnings), ""]
    lines += ["## Options", "", "| option | feasible | score | benefit | peak memory | set-up | monthly |",
              "|---|---|---:|---|---|---:|---:|"]
    lines += [f"| {o.name} | {_md(_status(o))} | {o.score:g} | {o.benefit.label} {o.benefit.score:g} | "
              f"{_md(_memory_text(o))} | {_usd(o.one_time_usd)} | {_usd(o.monthly_usd)} |" for o in rec.options]
    curve, columns = rec.cost_curve, _volume_columns(rec)
    if curve and columns:
        lines += ["", "## Monthly cost by requests per day", "",
                  "| option | " + " | ".join(f"{curve.requests_per_day[i]:,.0f}" for i in columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        lines += [f"| {name} | " + " | ".join(_usd(v[i]) for i in columns) + " |"
                  for name, v in curve.monthly_usd.items()]
    lines += ["", "## Memory of the primary", ""]
    parts = _memory_parts(primary)
    if parts:
        lines += ["| component | memory |", "|---|---:|", *(f"| {label} | {fmt_bytes(v)} |" for label, v in parts),
                  f"| **peak** | **{_memory_text(primary)}** |"]
    else:
        lines.append("Nothing runs on your GPUs for this option.")
    lines += ["", "## Reasons", ""]
    for o in rec.options:
        lines += [f"- **{o.name}** `{r.rule_id}` ({r.effect}): {_md(r.rationale)} — source: {_md(r.source)}"
                  for r in o.reasons]
    lines += ["", "## Expected benefit (priors from published evidence)", ""]
    lines += [f"- **{o.name}** {o.benefit.label} ({o.benefit.score:g}): {_md(o.benefit.summary)}. "
              f"Evidence: {_md('; '.join(o.benefit.evidence))}" for o in rec.options]
    lines += ["", "## Assumptions", "", *(f"- {_md(a)}" for a in rec.assumptions)]
    return "\n".join(lines) + "\n"


# --- HTML -----------------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2733;max-width:1100px;margin:24px auto;
padding:0 20px;background:#fafbfc}
h1{font-size:26px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.chips span{display:inline-block;padding:4px 12px;margin:4px 6px 4px 0;border-radius:14px;color:#fff;font-weight:600}
.meta{color:#5b6b7c;font-size:13px}.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:14px 18px;
margin:12px 0}table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{border-bottom:1px solid #e6ebf0;padding:6px 8px;text-align:left;vertical-align:top}th{background:#f0f3f6}
td.num{text-align:right;white-space:nowrap}tr.no td{color:#8795a1}.warn{background:#fff8e6;border-color:#f0c36d}
.rid{font-family:ui-monospace,Menlo,monospace;font-size:12px;background:#eef2f6;padding:1px 5px;border-radius:4px}
.src{color:#5b6b7c;font-size:12.5px}svg text{font:12px system-ui,sans-serif}ul{padding-left:20px}
"""


def _esc(text: Any) -> str:
    return html.escape(str(text))


def _svg_memory(rec: Recommendation) -> str:
    rows = [o for o in rec.options if o.memory is not None and o.gpu_memory_bytes]
    if not rows:
        return "<p>Nothing runs on your GPUs.</p>"
    scale_max = max(max(o.memory.peak_bytes, o.gpu_memory_bytes) for o in rows)  # type: ignore[union-attr]
    left, width, row_h = 150, 560, 34
    height = 40 + row_h * len(rows) + 70
    parts_seen: dict[str, str] = {}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 300}" height="{height}" '
           'role="img" aria-label="Peak memory per option against GPU capacity">']
    for i, o in enumerate(rows):
        y = 20 + i * row_h
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{_esc(o.name)}</text>')
        x = float(left)
        for label, value in _memory_parts(o):
            color = parts_seen.setdefault(label, PART_COLORS[len(parts_seen) % len(PART_COLORS)])
            w = value / scale_max * width
            out.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="18" fill="{color}">'
                       f'<title>{_esc(label)}: {fmt_bytes(value)}</title></rect>')
            x += w
        cap = left + o.gpu_memory_bytes / scale_max * width  # type: ignore[operator]
        color = "#c0392b" if not o.fits else "#1d2733"
        out.append(f'<line x1="{cap:.1f}" x2="{cap:.1f}" y1="{y}" y2="{y + 26}" stroke="{color}" stroke-width="2.5"/>')
        share = o.memory.peak_bytes / o.gpu_memory_bytes  # type: ignore[union-attr, operator]
        verdict = "" if o.fits else " ✗ does not fit"
        out.append(f'<text x="{left + width + 8}" y="{y + 17}" fill="{color}">{share:.0%} of '
                   f'{fmt_bytes(o.gpu_memory_bytes)} {_esc(o.gpu)}{verdict}</text>')
    y = 30 + row_h * len(rows)
    out.append(f'<text x="{left}" y="{y}">bar: peak memory per GPU · vertical line: the GPU\'s memory '
               '(red when the job does not fit)</text>')
    for j, (label, color) in enumerate(parts_seen.items()):
        lx, ly = left + (j % 3) * 280 - 120, y + 14 + (j // 3) * 16
        out.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="{ly + 9}">{_esc(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _svg_costs(rec: Recommendation) -> str:
    curve = rec.cost_curve
    if curve is None or not curve.monthly_usd:
        return ""
    left, top, width, height = 80, 20, 700, 300
    xs = [math.log10(v) for v in curve.requests_per_day]
    all_values = [v for values in curve.monthly_usd.values() for v in values]
    y_max = max(all_values) * 1.1 or 1.0
    x0, x1 = min(xs), max(xs)

    def px(volume: float) -> float:
        return left + (math.log10(volume) - x0) / ((x1 - x0) or 1) * width

    def py(usd: float) -> float:
        return top + height - usd / y_max * height

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 190}" height="{top + height + 60}" '
           'role="img" aria-label="Monthly cost against requests per day">',
           f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fff" stroke="#dde3ea"/>']
    for k in range(5):
        usd = y_max * k / 4
        out.append(f'<line x1="{left}" x2="{left + width}" y1="{py(usd):.1f}" y2="{py(usd):.1f}" stroke="#eef2f6"/>'
                   f'<text x="{left - 6}" y="{py(usd) + 4:.1f}" text-anchor="end">{_usd(usd)}</text>')
    for v in curve.requests_per_day:
        if math.log10(v).is_integer():
            out.append(f'<text x="{px(v):.1f}" y="{top + height + 16}" text-anchor="middle">{v:,.0f}</text>')
    out.append(f'<text x="{left + width / 2}" y="{top + height + 36}" text-anchor="middle">requests per day '
               '(log scale)</text>')
    volume = rec.answers.requests_per_day
    if volume > 0:
        anchor, dx = ("end", -4) if px(volume) > left + width * 0.6 else ("start", 4)
        out.append(f'<line x1="{px(volume):.1f}" x2="{px(volume):.1f}" y1="{top}" y2="{top + height}" '
                   f'stroke="#5b6b7c" stroke-dasharray="4 3"/><text x="{px(volume) + dx:.1f}" y="{top + 14}" '
                   f'text-anchor="{anchor}">your volume {volume:,.0f}/day</text>')
    be = rec.break_even
    if be and be.requests_per_day and curve.requests_per_day[0] <= be.requests_per_day <= curve.requests_per_day[-1]:
        x = px(be.requests_per_day)
        anchor, dx = ("end", -4) if x > left + width * 0.6 else ("start", 4)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + height}" stroke="#c0392b" stroke-width="2"/>'
                   f'<text x="{x + dx:.1f}" y="{top + 30}" fill="#c0392b" text-anchor="{anchor}">break-even '
                   f'{be.requests_per_day:,.0f}/day ({be.horizon_months}-month horizon)</text>')
    for j, (name, values) in enumerate(curve.monthly_usd.items()):
        points = " ".join(f"{px(v):.1f},{py(u):.1f}" for v, u in zip(curve.requests_per_day, values, strict=True))
        color = COLORS[name]
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        out.append(f'<rect x="{left + width + 16}" y="{top + 6 + j * 18}" width="12" height="4" fill="{color}"/>'
                   f'<text x="{left + width + 34}" y="{top + 12 + j * 18}">{_esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _html_options(rec: Recommendation) -> str:
    rows = []
    for o in rec.options:
        rows.append(f'<tr class="{"" if o.feasible else "no"}"><td><b>{_esc(o.name)}</b></td><td>{_esc(_status(o))}'
                    f'</td><td class="num">{o.score:g}</td><td>{o.benefit.label} ({o.benefit.score:g})</td>'
                    f'<td>{_esc(_memory_text(o))}</td><td class="num">{_usd(o.one_time_usd)}</td>'
                    f'<td class="num">{_usd(o.monthly_usd)}</td></tr>')
    return ("<table><tr><th>option</th><th>feasible</th><th>score</th><th>benefit</th><th>peak memory</th>"
            "<th>set-up</th><th>monthly</th></tr>" + "".join(rows) + "</table>")


def _html_reasons(rec: Recommendation) -> str:
    """Each rule once, with every option it touched and how; a rule shown as a warning is not repeated here."""
    warned = {w.rule_id for w in rec.warnings}
    by_rule: dict[str, tuple[Any, list[str]]] = {}
    for o in rec.options:
        for r in o.reasons:
            _, effects = by_rule.setdefault(r.rule_id, (r, []))
            effects.append(f"{o.name} ({r.effect})")
    items = [f'<li><span class="rid">{_esc(rule_id)}</span> {_esc(", ".join(effects))}: {_esc(r.rationale)}'
             + ("" if rule_id in warned else f'<br><span class="src">source: {_esc(r.source)}</span>') + "</li>"
             for rule_id, (r, effects) in by_rule.items()]
    return "<ul>" + "".join(items) + "</ul>"


def _answer_item(item: Any) -> str:
    """One list entry of an answer: a name, or a tried method with how far it got (`few_shot (reached 0.8)`)."""
    if not hasattr(item, "model_dump"):
        return str(item)
    data = item.model_dump(exclude_none=True)
    head = str(data.pop("method", ""))
    return f"{head} ({', '.join(f'{k} {v:g}' if isinstance(v, float) else f'{k} {v}' for k, v in data.items())})" \
        if data else head


def _html_answers(rec: Recommendation) -> str:
    """The answers the recommendation was made from, every field that is set (the new inputs included)."""
    rows = []
    for name in type(rec.answers).model_fields:
        value = getattr(rec.answers, name)
        if value is None or value == [] or value == "":
            continue
        if isinstance(value, list):
            value = ", ".join(map(_answer_item, value))
        elif hasattr(value, "model_dump"):
            value = ", ".join(f"{k}: {v}" for k, v in value.model_dump().items())
        rows.append(f"<tr><td>{_esc(name)}</td><td>{_esc(value)}</td></tr>")
    return "<table><tr><th>answer</th><th>value</th></tr>" + "".join(rows) + "</table>"


def recommendation_html(rec: Recommendation) -> str:
    """The recommendation as one self-contained HTML page (inline CSS and SVG, no scripts)."""
    primary = rec.option(rec.primary)
    chips = "".join(f'<span style="background:{COLORS[n]}">{_esc(LABELS[n])}</span>' for n in rec.stack)
    warnings = "".join(f'<div class="card warn">⚠ {_esc(w.message)} <span class="rid">{_esc(w.rule_id)}</span>'
                       f'<br><span class="src">source: {_esc(w.source)}</span></div>' for w in rec.warnings)
    because = "".join(f'<li><span class="rid">{_esc(r.rule_id)}</span> {_esc(r.rationale)}</li>'
                      for r in primary.reasons if r.effect != "note")
    benefits = "".join(f"<li><b>{_esc(o.name)}</b> {o.benefit.label} ({o.benefit.score:g}): {_esc(o.benefit.summary)}"
                       f'<br><span class="src">{_esc("; ".join(o.benefit.evidence))}</span></li>' for o in rec.options)
    be = f'<p><b>Break-even:</b> {_esc(rec.break_even.note)}</p>' if rec.break_even else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>advisor: {_esc(_stack_text(rec))}</title>
<style>{CSS}</style></head><body>
<h1>Recommendation: {_esc(_stack_text(rec))}</h1>
<div class="meta">{_esc(rec.task)} · advisor {_esc(rec.advisor_version)} · rules {_esc(rec.rules_version)}</div>
<div class="card"><div class="chips">{chips}</div>
<p>Primary <b>{_esc(rec.primary)}</b>: expected benefit <b>{primary.benefit.label}</b> ({primary.benefit.score:g}/100),
set-up {_usd(primary.one_time_usd)}, running {_usd(primary.monthly_usd)} a month.</p>
<ul>{because}</ul>{be}{"".join(f'<p><b>Tie:</b> {_esc(t.removeprefix("tie: "))}</p>' for t in _ties(rec))}</div>
{warnings}
<h2>Your answers</h2>{_html_answers(rec)}
<h2>All options</h2>{_html_options(rec)}
<h2>Peak memory per GPU against its capacity</h2><div class="card">{_svg_memory(rec)}</div>
<h2>Monthly cost against volume</h2><div class="card">{_svg_costs(rec)}</div>
<h2>Reasons, with their rules and sources</h2>{_html_reasons(rec)}
<h2>Expected benefit: priors from published evidence</h2><ul>{benefits}</ul>
<h2>Assumptions</h2><ul>{"".join(f"<li>{_esc(a)}</li>" for a in rec.assumptions)}</ul>
</body></html>
"""
