"""Prompting step: zero-shot vs few-shot through the verdict's paired test, first in the report rows."""

from __future__ import annotations

from advisor.core.models import PromptStep
from backends.common.verdict import RULE
from backends.prompting.report import report_step
from backends.prompting.results import BudgetFit, PromptResult
from backends.prompting.run import _verdict


def _rows(zero_right: list[bool], few_right: list[bool]) -> list[dict]:
    return [{"zero_shot_exact_match": float(z), "few_shot_exact_match": float(f), "zero_shot_f1": float(z),
             "few_shot_f1": float(f), "zero_shot_nll": 2.0, "few_shot_nll": 2.0 - 0.5 * f}
            for z, f in zip(zero_right, few_right, strict=True)]


def _result(verdict) -> PromptResult:
    budget = BudgetFit(max_prompt_tokens=1000, token_counter="heuristic", instructions_tokens=10, shots_tokens=50,
                       reserved_tokens=20, total_tokens=80, n_shots_requested=2, n_clusters=2, n_clusters_dropped=0)
    return PromptResult(model="m", model_path=None, is_local_model=True, is_demo_model=False, demo_note=None,
                        data_format="messages", n_examples=30, n_pool_examples=20, n_eval_examples=10,
                        selection_method="lexical", selection_note="n", shots=[], budget=budget, evaluation=None,
                        evaluation_note="zero-shot vs 2-shot", verdict=verdict, artifacts={}, versions={})


def test_shots_that_help_are_improved_and_lead_the_report() -> None:
    verdict = _verdict(_rows([False] * 12, [True] * 8 + [False] * 4), seed=0)
    assert verdict.outcome == "IMPROVED" and verdict.comparison == "zero-shot vs few-shot"
    assert verdict.exact_match.n_b_only == 8 and verdict.exact_match.p_value == 2 / 256
    report = report_step(PromptStep(model="m", max_prompt_tokens=1000), _result(verdict))
    assert report.compare[0].quantity == "verdict (zero-shot vs few-shot)"
    assert report.compare[0].measured.startswith("IMPROVED (n=12)")
    assert report.benefit[0][0] == "verdict" and ("verdict rule", RULE) in report.benefit
    assert report.data["verdict"]["outcome"] == "IMPROVED"


def test_identical_prompts_are_no_clear_change() -> None:
    right = [True] * 5 + [False] * 7
    rows = [{**r, "few_shot_nll": r["zero_shot_nll"]} for r in _rows(right, right)]
    assert _verdict(rows, seed=0).outcome == "NO CLEAR CHANGE"


def test_no_evaluation_no_verdict_row() -> None:
    report = report_step(PromptStep(model="m", max_prompt_tokens=1000), _result(None))
    assert report.compare[0].quantity == "prompt tokens" and report.data["verdict"] is None
