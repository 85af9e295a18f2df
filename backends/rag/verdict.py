"""The verdict on an index step: does its search mode retrieve better than plain lexical search (BM25)?

Paired on the same questions (`EvalResult.by_mode`): per-question hit@k by the exact McNemar test, and the
reciprocal rank by a paired bootstrap of the MRR difference, both from `backends.common.verdict`. A = the baseline
(lexical; dense when the step itself is lexical), B = the step's mode (reranked, when it was).
"""

from __future__ import annotations

from backends.common.verdict import ALPHA, CONFIDENCE, MIN_EXAMPLES, mcnemar_exact, paired_bootstrap
from backends.rag.results import EvalResult, RagVerdict

__all__ = ["RAG_RULE", "rag_verdict"]

RAG_RULE = (
    f"IMPROVED when the step's mode beats the baseline on the same questions and is worse on neither measure: "
    f"hit@k by an exact McNemar test at p < {ALPHA}, or MRR when the {CONFIDENCE:.0%} paired-bootstrap interval of "
    f"its difference lies above 0. REGRESSED when either is significantly worse by the same tests. Otherwise NO "
    f"CLEAR CHANGE (also with fewer than {MIN_EXAMPLES} questions)."
)


def rag_verdict(evaluation: EvalResult | None, baseline: str = "lexical") -> RagVerdict | None:
    """Judge `evaluation.retrieval` (the step's mode) against `baseline`; None without an evaluation or scores.

    When the step's mode is the baseline itself, dense is the baseline instead.
    """
    if evaluation is None or evaluation.retrieval not in evaluation.by_mode:
        return None
    mode = evaluation.retrieval
    if mode == baseline:
        baseline = "dense"
    if baseline not in evaluation.by_mode:
        return None
    a, b = evaluation.by_mode[baseline], evaluation.by_mode[mode]
    n = len(a.hits)
    reasons: list[str] = []
    hit = interval = None
    better = worse = False
    if n >= MIN_EXAMPLES:
        hit = mcnemar_exact(a.hits, b.hits)
        interval = paired_bootstrap("reciprocal_rank", a.reciprocal_ranks, b.reciprocal_ranks)
        if hit.p_value < ALPHA:
            is_up = hit.n_b_only > hit.n_a_only
            better, worse = better or is_up, worse or not is_up
            reasons.append(f"hit@{evaluation.k} {'better' if is_up else 'worse'}: {hit.rate_a:.2f} → {hit.rate_b:.2f} "
                           f"(McNemar p={hit.p_value:.3g} < {ALPHA})")
        ci = f"{interval.mean_difference:+.3f}, {interval.confidence:.0%} CI [{interval.low:+.3f}, {interval.high:+.3f}]"
        if interval.low > 0:
            better = True
            reasons.append(f"MRR better: {ci}")
        elif interval.high < 0:
            worse = True
            reasons.append(f"MRR worse: {ci}")
        if not reasons:
            reasons.append("neither hit@k nor MRR changed significantly")
    else:
        reasons.append(f"only {n} questions (fewer than {MIN_EXAMPLES}): too few to test")
    outcome = "REGRESSED" if worse else "IMPROVED" if better else "NO CLEAR CHANGE"
    return RagVerdict(outcome=outcome, comparison=f"{baseline} vs {mode}", baseline=baseline, mode=mode,
                      k=evaluation.k, n_questions=n, hit=hit, reciprocal_rank=interval, reasons=reasons, rule=RAG_RULE)
