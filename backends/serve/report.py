"""The closing report's rows for a serve step: the serving estimate beside what was written and counted."""

from __future__ import annotations

from advisor.core.models import ServeStep
from advisor.core.units import fmt
from backends.base import ReportRow, StepReport
from backends.serve.results import ServeResult

__all__ = ["report_step"]


def _counted_bytes(result: ServeResult) -> int:
    """The replica's memory with the weights counted from the saved files instead of the config."""
    from advisor.core.estimate.serving import SERVING_BYTES_PER_PARAM

    here = result.serving
    adapters = sum(e.n_params or 0 for e in result.exports if e.form == "adapter")
    copies = (1 if here.n_adapters else 0) + (here.n_models - here.n_adapters)
    return copies * (result.base_params_files * SERVING_BYTES_PER_PARAM + here.kv_cache_bytes) \
        + adapters * SERVING_BYTES_PER_PARAM


def report_step(step: ServeStep, result: ServeResult) -> StepReport:
    """Rows and data for one serve step."""
    plan, here = step.prediction, result.serving
    n = here.n_models
    where = f"{plan.model} on {plan.gpu or 'its GPU'}" if plan else "the plan's model"
    compare = [
        ReportRow(quantity=f"memory per replica, {where} ({n} model(s), {here.concurrency} × "
                           f"{here.max_model_len:,} tokens)",
                  predicted=fmt(plan.replica_bytes if plan else None, "bytes"), measured="– (runs on that GPU only)"),
        ReportRow(quantity=f"one base + {here.n_adapters} adapter(s) vs {n} separate models, {where}",
                  predicted=(f"{fmt(plan.replica_bytes, 'bytes')} vs {fmt(plan.separate_bytes, 'bytes')}"
                             if plan else "–"), measured="–"),
        ReportRow(quantity="monthly serving cost: shared base vs separate models",
                  predicted=(f"{fmt(plan.monthly_usd, 'usd')} vs {fmt(plan.separate_monthly_usd, 'usd')}"
                             if plan else "–"), measured="–"),
        ReportRow(quantity="decode throughput per replica",
                  predicted=f"{plan.output_tokens_per_s:,.0f} tokens/s" if plan and plan.output_tokens_per_s
                  else "–", measured="–"),
        ReportRow(quantity="parameters of the served base (config.json vs safetensors headers)",
                  predicted=f"{result.base_params_config:,}", measured=f"{result.base_params_files:,}"),
        ReportRow(quantity="memory per replica of the model served here (16-bit weights + adapters + KV)",
                  predicted=fmt(here.replica_bytes, "bytes"),
                  measured=f"{fmt(_counted_bytes(result), 'bytes')} (parameters read from the files)"),
    ]
    benefit = [(what, path) for what, path in result.files.items()]
    benefit += [(f"export {e.form} ({e.name})", f"{e.path} ({fmt(e.size_bytes, 'bytes')})") for e in result.exports]
    benefit += [("note", note) for note in result.notes]
    adapters = sum(m.kind == "adapter" for m in result.models)
    headline = (f"serving files for {len(result.models)} model(s) ({adapters} adapter(s) on one base): vLLM, SGLang, "
                f"Ollama, OpenAI client; exports: {', '.join(sorted({e.form for e in result.exports})) or 'none'}")
    data = {"models": [m.model_dump(mode="json") for m in result.models], "files": result.files,
            "exports": [e.model_dump(mode="json") for e in result.exports],
            "predicted": plan.model_dump(mode="json") if plan else None,
            "served_here": here.model_dump(mode="json"), "served_base_params": result.base_params_files,
            "is_demo_model": result.is_demo_model}
    return StepReport(compare=compare, benefit=benefit, data=data, headline=headline)
