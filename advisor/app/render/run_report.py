"""The closing report of `advisor run`: for every step, what was predicted beside what was measured.

A pure comparison. The predictions were made before the run and stored in the plan's steps (for the plan's
GPU), and by each backend for the device it ran on (inside its result); the measurements are the results.
Each backend's descriptor turns its (step, result) pair into rows (`Backend.report`); nothing is estimated,
looked up in the catalog or read from disk here beyond the results themselves.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from advisor.app.runner import RunInput, RunState

__all__ = ["collect_run", "write_run_report"]


def _step_row(step, st, run_dir: Path) -> dict[str, Any]:
    from backends import backend_for

    backend = backend_for(step.kind)
    row: dict[str, Any] = {"step": st.index + 1, "label": st.label, "dir": st.dir, "status": st.status,
                           "seconds": st.seconds, "kind": step.kind}
    if not st.result_file:
        return {**row, "compare": [], "benefit": [], "note": st.error or "not run"}
    result = backend.result_model.model_validate_json((run_dir / st.result_file).read_text(encoding="utf-8"))
    report = backend.report(step, result)
    return {**row, **report.data, "compare": [r.model_dump() for r in report.compare],
            "benefit_rows": [list(b) for b in report.benefit], "headline": report.headline}


def _verdict_lines(data: dict[str, Any]) -> list[str]:
    """One line per step: its verdict, or why it has none."""
    lines = []
    for row in data["steps"]:
        headline = row.get("headline") or ("no verdict: this kind of step makes none yet" if row.get("compare")
                                           else f"not run: {row.get('note', '')}")
        lines.append(f"Step {row['step']} ({row['label']}): {headline}")
    return lines


def collect_run(inp: RunInput, state: RunState, run_dir: Path) -> dict[str, Any]:
    """The run's `result.json`: inputs, recommendation, and every step's predicted, measured and benefit."""
    rec = inp.recommendation
    rows = [_step_row(step, st, run_dir) for step, st in zip(inp.plan.steps, state.steps, strict=True)]
    return {
        "advisor_version": state.advisor_version,
        "plan": inp.plan.name,
        "rules_version": inp.plan.rules_version,
        "input": str(inp.source),
        "recommendation": {"primary": rec.primary, "stack": rec.stack} if rec else None,
        "demo_substitutions": state.demo_substitutions,
        "steps": rows,
    }


def _step_lines(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["quantity"], r["predicted"], r["measured"]) for r in row.get("compare", [])]


def _benefit_lines(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(q, v) for q, v in row.get("benefit_rows", [])]


def _md(text: Any) -> str:
    from advisor.app.render.safe import markdown_text

    return markdown_text(text)


def _markdown(data: dict[str, Any]) -> str:
    lines = [f"# Run report: {_md(data['plan'])}", ""]
    rec = data["recommendation"]
    if rec:
        lines.append(f"Recommendation: **{rec['primary']}**, stack {' + '.join(rec['stack'])} "
                     f"(rules {data['rules_version']}, advisor {data['advisor_version']}).")
    lines.append(f"Input: {_md(data['input'])}.")
    if data["demo_substitutions"]:
        lines += ["", "**Executed with the offline demonstration model** (a tiny randomly initialised model built "
                  "from a config): its memory, time and losses show that the pipeline works, not what the real "
                  "model would achieve. Substituted:", *[f"- {_md(s)}" for s in data["demo_substitutions"]]]
    lines += ["", "## Verdict", "", *[f"- {_md(line)}" for line in _verdict_lines(data)]]
    for row in data["steps"]:
        lines += ["", f"## Step {row['step']}: {_md(row['label'])} ({row['status']}, {row['seconds']:.1f} s)", "",
                  "| quantity | predicted | measured |", "|---|---|---|"]
        lines += [f"| {_md(q)} | {_md(p)} | {_md(m)} |" for q, p, m in _step_lines(row)]
        lines += ["", "| measured benefit | value |", "|---|---|"]
        lines += [f"| {_md(q)} | {_md(v)} |" for q, v in _benefit_lines(row)]
    return "\n".join(lines) + "\n"


def _html(data: dict[str, Any]) -> str:
    body = []
    rec = data["recommendation"]
    body.append(f"<h1>Run report: {html.escape(data['plan'])}</h1>")
    if rec:
        body.append(f"<p class=rec>Recommendation: <b>{html.escape(rec['primary'])}</b> · stack "
                    f"{html.escape(' + '.join(rec['stack']))}</p>")
    if data["demo_substitutions"]:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in data["demo_substitutions"])
        body.append("<div class=demo><b>Executed with the offline demonstration model.</b> Its numbers show the "
                    f"pipeline works, not what the real model would achieve.<ul>{items}</ul></div>")
    verdicts = "".join(f"<li>{html.escape(line)}</li>" for line in _verdict_lines(data))
    body.append(f"<h2>Verdict</h2><ul class=verdict>{verdicts}</ul>")
    for row in data["steps"]:
        cells = "".join(f"<tr><td>{html.escape(q)}</td><td>{html.escape(p)}</td><td>{html.escape(m)}</td></tr>"
                        for q, p, m in _step_lines(row))
        benefit = "".join(f"<tr><td>{html.escape(q)}</td><td>{html.escape(v)}</td></tr>"
                          for q, v in _benefit_lines(row))
        body.append(f"<h2>Step {row['step']}: {html.escape(row['label'])} <small>{html.escape(row['status'])}, "
                    f"{row['seconds']:.1f} s</small></h2><table><tr><th>quantity</th><th>predicted</th>"
                    f"<th>measured</th></tr>{cells}</table><table class=benefit><tr><th>measured benefit</th>"
                    f"<th>value</th></tr>{benefit}</table>")
    style = ("body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:6px 8px;"
             "text-align:left}th{background:#f4f4f4}.demo{background:#fff4d6;border-left:4px solid #e0a800;"
             "padding:8px 12px}.rec{font-size:17px}small{color:#777;font-weight:normal}.benefit{margin-top:10px}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(data['plan'])}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_run_report(inp: RunInput, state: RunState, run_dir: Path) -> dict[str, Any]:
    """Write `result.json`, `report.md` and `report.html` into `run_dir` (each atomically) and return the data."""
    from advisor.core.fileio import write_text_atomic

    data = collect_run(inp, state, run_dir)
    text = _markdown(data)
    write_text_atomic(run_dir / "result.json", json.dumps(data, indent=2, default=str))
    write_text_atomic(run_dir / "report.md", text)
    write_text_atomic(run_dir / "report.html", _html(data))
    return data
