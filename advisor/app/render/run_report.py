"""The closing report of `advisor run`: for every step, what was predicted beside what was measured.

Predictions come from two places: the recommendation (for the model and GPU the plan was made for) and the
backend itself (the estimator re-run for exactly what ran, on this device). Measurements come from the step's
result. Every number is read from those files or computed from them here; nothing is typed in.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from advisor.app.runner import RunInput, RunState

__all__ = ["collect_run", "write_run_report"]


def _load(run_dir: Path, rel: str | None) -> dict[str, Any]:
    return json.loads((run_dir / rel).read_text(encoding="utf-8")) if rel else {}


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _gpu_price(name: str | None) -> tuple[float | None, str]:
    if not name:
        return None, ""
    from advisor.core.catalog import resolve_gpu

    gpu = resolve_gpu(name)
    return gpu.price_per_hour_usd, gpu.name


def _train_row(step, result: dict, option) -> dict[str, Any]:
    fit = result.get("fit", {})
    measured = fit.get("measured", {})
    memory = result.get("memory", {})
    wall = measured.get("wall_seconds")
    gpu_name = option.setup.gpu if option and option.setup else step.gpu
    price, gpu = _gpu_price(gpu_name)
    row: dict[str, Any] = {
        "kind": "train", "method": step.method, "model": result.get("base_model"),
        "is_demo_model": result.get("is_demo_model", False), "device": result.get("device", {}).get("name"),
        "precision": result.get("precision"), "precision_reason": result.get("precision_reason"),
        "predicted": {
            "plan_peak_bytes": option.memory.peak_bytes if option and option.memory else None,
            "plan_gpu": gpu or None,
            "plan_hours": option.compute.hours if option and option.compute else None,
            "plan_one_time_usd": option.one_time_usd if option else None,
            "run_memory_bytes": memory.get("predicted_bytes"),
        },
        "measured": {
            "memory_bytes": memory.get("measured_bytes"), "memory_quantity": memory.get("quantity"),
            "measured_to_predicted": memory.get("measured_to_predicted"), "wall_seconds": wall,
            "tokens_per_second": measured.get("tokens_per_second"), "n_tokens": measured.get("n_tokens"),
            "cost_usd_at_plan_gpu_price": wall / 3600 * price if wall is not None and price is not None else None,
        },
        "benefit": {"eval_loss_before": fit.get("eval_loss_before"), "eval_loss_after": fit.get("eval_loss_after"),
                    "steps": fit.get("global_step"), "task_accuracy": result.get("task_accuracy")},
    }
    return row


def _rag_row(step, result: dict, run_dir: Path, st) -> dict[str, Any]:
    from advisor.core.estimate.index import estimate_index
    from advisor.core.measure import measure_corpus

    build, evaluation = result.get("build", {}), result.get("evaluation") or {}
    _, corpus_tokens, _ = measure_corpus(step.docs_dir) if Path(step.docs_dir).exists() else (0, 0, 0)
    stride = max(step.chunk_tokens - step.overlap_tokens, 1)
    predicted = estimate_index(max(1, -(-corpus_tokens // stride)), build.get("embedding_dim", 384),
                               step.index_type, step.chunk_tokens)
    return {
        "kind": "rag", "embedding_model": build.get("embedding_model"), "index_type": build.get("index_type"),
        "predicted": {"n_chunks": predicted.n_chunks, "index_bytes": predicted.total_bytes,
                      "build_seconds": predicted.build_seconds},
        "measured": {"n_chunks": build.get("n_chunks"), "index_bytes": _dir_bytes(run_dir / st.dir / step.index_dir),
                     "build_seconds": build.get("build_seconds"), "n_files": build.get("n_files")},
        "benefit": {key: evaluation.get(key) for key in ("mode", "k", "n_questions", "recall_at_k", "mrr", "hit_rate")},
    }


def _monthly_at_measured_tokens(option, answers, tokens: int | None) -> float | None:
    """The option's monthly cost recomputed with the prompt length the run measured."""
    if option is None or answers is None or option.serving is None or tokens is None:
        return None
    from advisor.core.catalog import resolve_api_model, resolve_gpu, resolve_model
    from advisor.core.estimate.serving import estimate_api_monthly, estimate_self_hosted_monthly

    volume, output = answers.requests_per_day, answers.output_tokens
    if option.serving.kind == "api":
        return estimate_api_monthly(resolve_api_model(answers.api_model), volume, tokens, output).monthly_usd
    if option.gpu is None:
        return None
    return estimate_self_hosted_monthly(resolve_model(option.model), resolve_gpu(option.gpu), volume, tokens,
                                        output).monthly_usd


def _prompt_row(step, result: dict, option, answers) -> dict[str, Any]:
    budget, evaluation = result.get("budget", {}), result.get("evaluation") or {}
    measured_tokens = budget.get("total_tokens")
    return {
        "kind": "prompt", "model": result.get("model"), "is_demo_model": result.get("is_demo_model", False),
        "predicted": {"prompt_tokens": option.prompt_tokens if option else step.max_prompt_tokens,
                      "monthly_usd": option.monthly_usd if option else None},
        "measured": {"prompt_tokens": measured_tokens, "n_shots": len(result.get("shots", [])),
                     "selection": result.get("selection_method"), "token_counter": budget.get("token_counter"),
                     "monthly_usd_at_measured_tokens": _monthly_at_measured_tokens(option, answers, measured_tokens)},
        "benefit": {"zero_shot": evaluation.get("zero_shot"), "few_shot": evaluation.get("few_shot"),
                    "n_examples": evaluation.get("n_examples"), "note": result.get("evaluation_note")},
    }


def collect_run(inp: RunInput, state: RunState, run_dir: Path) -> dict[str, Any]:
    """The run's `result.json`: inputs, recommendation, and every step's predicted, measured and benefit."""
    from advisor.core.models import PromptStep, TrainStep
    from advisor.core.planning import resolve_step_paths

    rec = inp.recommendation
    rows = []
    for step, st in zip(inp.plan.steps, state.steps, strict=True):
        result = _load(run_dir, st.result_file)
        abs_step = resolve_step_paths(step, inp.base_dir)
        if isinstance(step, TrainStep):
            option = rec.option(step.method) if rec else None
            row = _train_row(step, result, option)
        elif isinstance(step, PromptStep):
            option = rec.option("prompting_few_shot" if step.n_shots else "prompting") if rec else None
            row = _prompt_row(step, result, option, inp.answers)
        else:
            row = _rag_row(abs_step, result, run_dir, st)
        rows.append({"step": st.index + 1, "label": st.label, "dir": st.dir, "status": st.status,
                     "seconds": st.seconds, **row})
    return {
        "advisor_version": state.advisor_version,
        "plan": inp.plan.name,
        "rules_version": inp.plan.rules_version,
        "input": str(inp.source),
        "recommendation": {"primary": rec.primary, "stack": rec.stack} if rec else None,
        "demo_substitutions": state.demo_substitutions,
        "steps": rows,
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit == "bytes":
        from advisor.app.render.terminal import fmt_bytes

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


def _step_lines(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(quantity, predicted, measured) rows for one step."""
    p, m = row["predicted"], row["measured"]
    if row["kind"] == "train":
        on_cpu = row["device"] == "cpu"
        memory_what = ("process memory rise on cpu (Python, data and libraries too; the estimate counts tensors)"
                       if on_cpu else f"peak memory on {row['device']} ({m['memory_quantity']})")
        return [
            (f"peak memory, plan model on {p['plan_gpu'] or 'its GPU'}", _fmt(p["plan_peak_bytes"], "bytes"),
             "– (runs on that GPU only)"),
            (memory_what, _fmt(p["run_memory_bytes"], "bytes"), _fmt(m["memory_bytes"], "bytes")),
            ("training time", f"{_fmt(p['plan_hours'], 'h')} on {p['plan_gpu']}",
             f"{_fmt(m['wall_seconds'], 's')} on {row['device']}"),
            ("training cost", _fmt(p["plan_one_time_usd"], "usd"),
             f"{_fmt(m['cost_usd_at_plan_gpu_price'], 'usd')} (measured time at the plan GPU's price)"),
            ("throughput", "–", f"{m['tokens_per_second']:,.0f} tokens/s" if m["tokens_per_second"] else "–"),
        ]
    if row["kind"] == "rag":
        return [
            ("chunks", _fmt(p["n_chunks"]), _fmt(m["n_chunks"])),
            ("index on disk", _fmt(p["index_bytes"], "bytes"), _fmt(m["index_bytes"], "bytes")),
            ("build time", _fmt(p["build_seconds"], "s"), _fmt(m["build_seconds"], "s")),
        ]
    return [
        ("prompt tokens", _fmt(p["prompt_tokens"]),
         f"{_fmt(m['prompt_tokens'])} ({m['n_shots']} shots, {m['selection']} selection)"),
        ("monthly cost at the stated volume", _fmt(p["monthly_usd"], "usd"),
         f"{_fmt(m['monthly_usd_at_measured_tokens'], 'usd')} (at the measured prompt length)"),
    ]


def _benefit_lines(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) rows: the benefit the step measured."""
    b = row["benefit"]
    if row["kind"] == "train":
        lines = [("validation loss before training", _fmt(b["eval_loss_before"])),
                 ("validation loss after training", _fmt(b["eval_loss_after"])),
                 ("optimizer steps", _fmt(b["steps"]))]
        accuracy = b.get("task_accuracy")
        if accuracy:
            for name, key in (("before", "base"), ("after", "trained")):
                s = accuracy[key]
                lines.append((f"exact match / token F1 {name} training ({accuracy['n_examples']} held-out)",
                              f"{_fmt(s['exact_match'])} / {_fmt(s['token_f1'])}"))
        return lines
    if row["kind"] == "rag":
        k = b.get("k") or "k"
        return [("evaluation", f"{b.get('mode') or 'none'}, {b.get('n_questions') or 0} questions"),
                (f"recall@{k}", _fmt(b.get("recall_at_k"))), ("MRR", _fmt(b.get("mrr"))),
                (f"hit rate@{k}", _fmt(b.get("hit_rate")))]
    zero, few = b.get("zero_shot") or {}, b.get("few_shot") or {}
    if not zero:
        return [("evaluation", b.get("note") or "none")]
    return [(f"{name}: answer NLL per token / exact match / token F1",
             f"{_fmt(s.get('mean_nll'))} / {_fmt(s.get('exact_match'))} / {_fmt(s.get('token_f1'))}")
            for name, s in (("zero-shot", zero), ("few-shot", few))] + [("held-out examples", _fmt(b["n_examples"]))]


def _markdown(data: dict[str, Any]) -> str:
    lines = [f"# Run report: {data['plan']}", ""]
    rec = data["recommendation"]
    if rec:
        lines.append(f"Recommendation: **{rec['primary']}**, stack {' + '.join(rec['stack'])} "
                     f"(rules {data['rules_version']}, advisor {data['advisor_version']}).")
    lines.append(f"Input: `{data['input']}`.")
    if data["demo_substitutions"]:
        lines += ["", "**Executed with the offline demonstration model** (a tiny randomly initialised model built "
                  "from a config): its memory, time and losses show that the pipeline works, not what the real "
                  "model would achieve. Substituted:", *[f"- {s}" for s in data["demo_substitutions"]]]
    for row in data["steps"]:
        lines += ["", f"## Step {row['step']}: {row['label']} ({row['status']}, {row['seconds']:.1f} s)", "",
                  "| quantity | predicted | measured |", "|---|---|---|"]
        lines += [f"| {q} | {p} | {m} |" for q, p, m in _step_lines(row)]
        lines += ["", "| measured benefit | value |", "|---|---|"]
        lines += [f"| {q} | {v} |" for q, v in _benefit_lines(row)]
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
