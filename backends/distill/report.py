"""The closing report's rows for a distill step: the prediction stored in the step (tokens, time on the plan's GPU,
teacher and student cost, break-even) beside what the teacher's pass measured here. Nothing is estimated here."""

from __future__ import annotations

from advisor.core.models import DistillStep
from advisor.core.units import fmt
from backends.base import ReportRow, StepReport
from backends.distill.results import DistillResult

__all__ = ["report_step"]


def report_step(step: DistillStep, result: DistillResult) -> StepReport:
    """Rows and data for one distill step."""
    p = step.prediction
    on = f" ({p.gpu})" if p and p.gpu else ""
    compare = [
        ReportRow(quantity="prompts answered", predicted=fmt(p.n_prompts if p else None),
                  measured=f"{result.n_answers} (+{result.n_empty} empty; {result.n_resumed} kept from an earlier "
                  "attempt)"),
        ReportRow(quantity="prompt tokens", predicted=fmt(p.prompt_tokens if p else None) + " (chars / 4)",
                  measured=fmt(result.prompt_tokens)),
        ReportRow(quantity="tokens generated", predicted=fmt(p.answer_tokens if p else None) + " (reference length)",
                  measured=fmt(result.answer_tokens)),
        ReportRow(quantity=f"generation time{on}", predicted=fmt(p.teacher_seconds if p else None, "s"),
                  measured=f"{fmt(result.wall_seconds, 's')} on {result.device} "
                  f"({result.tokens_per_second:,.1f} tokens/s)"),
        ReportRow(quantity="teacher cost", predicted=fmt(p.teacher_usd if p else None, "usd"),
                  measured="– (priced, not billed)" if result.teacher_kind == "local" else "see the API's bill"),
    ]
    benefit = [
        ("teacher", f"{result.teacher} ({result.teacher_kind}" + (", demonstration model)" if result.is_demo_model
                                                                  else ")")),
        ("answers file", result.output_file),
    ]
    if p is not None:
        benefit += [
            ("student training (predicted)", f"{fmt(p.student_hours, 'h')}, {fmt(p.student_usd, 'usd')}"),
            ("one-time cost (predicted)", fmt(p.one_time_usd, "usd")),
            (f"serving per month at {p.requests_per_day:,.0f} requests/day",
             f"teacher {fmt(p.teacher_monthly_usd, 'usd')}, student {fmt(p.student_monthly_usd, 'usd')}"),
            (f"break-even volume (payback {p.payback_months:g} months)",
             "none: the student does not cost less to serve" if p.break_even_requests_per_month is None
             else "any volume: the teacher's fixed monthly cost alone repays it" if p.break_even_requests_per_month == 0
             else f"{p.break_even_requests_per_month:,.0f} requests/month"),
        ]
    data = {
        "predicted": p.model_dump(mode="json") if p else None,
        "measured": {"n_prompts": result.n_prompts, "n_answers": result.n_answers, "n_empty": result.n_empty,
                     "n_resumed": result.n_resumed, "prompt_tokens": result.prompt_tokens,
                     "answer_tokens": result.answer_tokens, "wall_seconds": result.wall_seconds,
                     "tokens_per_second": result.tokens_per_second, "device": result.device},
        "benefit": {"teacher": result.teacher, "teacher_kind": result.teacher_kind,
                    "is_demo_model": result.is_demo_model, "output_file": result.output_file},
    }
    return StepReport(compare=compare, benefit=benefit, data=data, headline=None)
