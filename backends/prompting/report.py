"""The closing report's rows for a prompting step: the prediction stored in the step beside what was written.

The monthly cost at the measured prompt length is the stored prediction moved along its stored marginal rate
(`PromptPrediction.monthly_usd_per_prompt_token`): arithmetic on the prediction, not a new estimate.
"""

from __future__ import annotations

from advisor.core.models import PromptStep
from advisor.core.units import fmt
from backends.base import ReportRow, StepReport
from backends.common.verdict import verdict_benefit, verdict_rows
from backends.prompting.results import PromptResult

__all__ = ["report_step"]


def report_step(step: PromptStep, result: PromptResult) -> StepReport:
    """Rows and data for one prompting step."""
    p = step.prediction
    measured_tokens = result.budget.total_tokens
    at_measured = None
    if p is not None and p.monthly_usd is not None and p.monthly_usd_per_prompt_token is not None:
        at_measured = max(0.0, p.monthly_usd + (measured_tokens - p.prompt_tokens) * p.monthly_usd_per_prompt_token)
    predicted_tokens = p.prompt_tokens if p else step.max_prompt_tokens
    compare = [
        *verdict_rows(result.verdict),
        ReportRow(quantity="prompt tokens", predicted=fmt(predicted_tokens),
                  measured=f"{fmt(measured_tokens)} ({len(result.shots)} shots, {result.selection_method} selection)"),
        ReportRow(quantity="monthly cost at the stated volume", predicted=fmt(p.monthly_usd if p else None, "usd"),
                  measured=f"{fmt(at_measured, 'usd')} (at the measured prompt length)"),
    ]
    evaluation = result.evaluation
    if evaluation is None:
        benefit = [("evaluation", result.evaluation_note or "none")]
    else:
        benefit = [(f"{name}: answer NLL per token / exact match / token F1",
                    f"{fmt(s.mean_nll)} / {fmt(s.exact_match)} / {fmt(s.token_f1)}")
                   for name, s in (("zero-shot", evaluation.zero_shot), ("few-shot", evaluation.few_shot))]
        benefit.append(("held-out examples", fmt(evaluation.n_examples)))
    benefit = [*verdict_benefit(result.verdict), *benefit]
    data = {
        "verdict": result.verdict.model_dump(mode="json") if result.verdict is not None else None,
        "model": result.model, "is_demo_model": result.is_demo_model,
        "predicted": {"prompt_tokens": predicted_tokens, "monthly_usd": p.monthly_usd if p else None},
        "measured": {"prompt_tokens": measured_tokens, "n_shots": len(result.shots),
                     "selection": result.selection_method, "token_counter": result.budget.token_counter,
                     "monthly_usd_at_measured_tokens": at_measured},
        "benefit": {"zero_shot": evaluation.zero_shot.model_dump(mode="json") if evaluation else None,
                    "few_shot": evaluation.few_shot.model_dump(mode="json") if evaluation else None,
                    "n_examples": evaluation.n_examples if evaluation else None, "note": result.evaluation_note},
    }
    return StepReport(compare=compare, benefit=benefit, data=data,
                      headline=result.verdict.headline() if result.verdict is not None else None)
