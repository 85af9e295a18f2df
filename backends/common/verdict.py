"""The verdict on a step: did the change help the task, and did it cost the model its general abilities.

Paired tests on the same held-out examples answered by two models (or two prompts), A = before, B = after:

- exact match: exact McNemar test. b = examples A got right and B got wrong, c = the reverse; under "no
  change" each discordant pair is a fair coin, so p = min(1, 2 · Σ_{k ≤ min(b, c)} C(b+c, k) / 2^(b+c))
  (McNemar 1947; the exact form is the two-sided binomial test on b of b+c, Fagerland et al. 2013,
  doi:10.1186/1471-2288-13-91). `scipy.stats.binomtest` when scipy is installed, else `math.comb`.
- token F1 and per-example loss (mean NLL per answer token): percentile paired bootstrap (Efron &
  Tibshirani 1993, ch. 13) of the mean of B − A over `N_RESAMPLES` resamples of the examples, seeded, 95%.

The rule (`RULE`) turns those, and the regression suite's comparison (`backends.common.suite`), into
IMPROVED / NO CLEAR CHANGE / REGRESSED. Pure functions; no heavy imports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from advisor.core.models import Model
from backends.base import ReportRow
from backends.common.suite import SuiteComparison

__all__ = [
    "ALPHA",
    "MIN_EXAMPLES",
    "N_RESAMPLES",
    "RULE",
    "BootstrapInterval",
    "McNemarTest",
    "Remedy",
    "Verdict",
    "decide",
    "mcnemar_exact",
    "paired_bootstrap",
    "verdict_benefit",
    "verdict_rows",
]

Outcome = Literal["IMPROVED", "NO CLEAR CHANGE", "REGRESSED"]

ALPHA = 0.05  # two-sided significance level of every test here; the intervals are the matching 95%
CONFIDENCE = 0.95
N_RESAMPLES = 2000  # bootstrap resamples; percentile-interval endpoints settle to ~0.01 of F1 at n = 20
BOOTSTRAP_SEED = 0
# Below 6 pairs McNemar can never reach p < 0.05 (all 5 discordant one way: 2 · 0.5^5 = 0.0625), and a
# bootstrap over so few examples is overconfident; no verdict is drawn from fewer.
MIN_EXAMPLES = 6

RULE = (
    f"IMPROVED when at least one task measure is significantly better and none is significantly worse: "
    f"exact match by an exact McNemar test at p < {ALPHA}, token F1 when the {CONFIDENCE:.0%} paired-bootstrap "
    f"interval of its mean difference lies above 0, per-example loss when that interval lies below 0. "
    f"REGRESSED when any task measure is significantly worse by the same tests, or a regression-suite "
    f"category falls by more than its stated margin. Otherwise NO CLEAR CHANGE (also when fewer than "
    f"{MIN_EXAMPLES} paired examples were evaluated)."
)

# Remedies for forgetting, as the seed articles (../shared/seeds/) give them.
_SEED_001 = "seed article 001_01edf7ba5286cd2c.txt (LLM Fine-Tuning: When, Why, and How), 'Catastrophic Forgetting'"
_SEED_002 = "seed article 002_d4654768088ac833.txt (The Three Ways to Customize an LLM), 'Step 5: Iterate'"
_SEED_000 = "seed article 000_9b14d88f84fd27db.txt (Customizing LLMs), 'Does fine-tuning cause catastrophic forgetting?'"


class McNemarTest(Model):
    """Exact McNemar test on paired right/wrong outcomes."""

    n_examples: int = Field(description="Paired examples")
    n_a_only: int = Field(description="b: right before (A), wrong after (B)")
    n_b_only: int = Field(description="c: wrong before (A), right after (B)")
    rate_a: float = Field(description="Exact-match rate before")
    rate_b: float = Field(description="Exact-match rate after")
    p_value: float = Field(description="Two-sided exact binomial p of b on b + c (1.0 when b + c = 0)")
    method: str = Field(description="How p was computed: `scipy.stats.binomtest` or `math.comb`")

    @property
    def difference(self) -> float:
        """rate_b − rate_a."""
        return self.rate_b - self.rate_a


class BootstrapInterval(Model):
    """Paired bootstrap interval of the mean difference B − A of one per-example measure."""

    metric: str = Field(description="What was compared (`token_f1`, `nll`)")
    n_examples: int = Field(description="Paired examples")
    mean_a: float
    mean_b: float
    mean_difference: float = Field(description="mean(B − A)")
    low: float = Field(description="Lower end of the interval")
    high: float = Field(description="Upper end of the interval")
    confidence: float = Field(description="Two-sided coverage, 0.95")
    n_resamples: int = Field(description="Bootstrap resamples")
    seed: int = Field(description="Seed of the resampling")


class Remedy(Model):
    """One thing to try against forgetting, with where the advice comes from."""

    action: str
    source: str


class Verdict(Model):
    """The judgement on one step, with every figure it rests on."""

    outcome: Outcome
    comparison: str = Field(description="What A and B are, e.g. `base vs trained` or `zero-shot vs few-shot`")
    n_examples: int = Field(description="Paired held-out examples")
    exact_match: McNemarTest | None = Field(description="None: fewer than MIN_EXAMPLES or no examples")
    token_f1: BootstrapInterval | None = Field(description="None: fewer than MIN_EXAMPLES")
    match_name: str = Field("exact match", description="What `exact_match` counts (DPO: `preference accuracy`)")
    score_name: str = Field("token F1", description="What `token_f1` measures (DPO: the log-prob margin)")
    nll: BootstrapInterval | None = Field(description="Per-example loss, nats per answer token; None: not measured")
    suite: SuiteComparison | None = Field(None, description="Regression suite on A and B; None: not run")
    reasons: list[str] = Field(description="Each finding that decided the outcome, one line each")
    remedies: list[Remedy] = Field(default_factory=list, description="Against forgetting, when the suite regressed")
    rule: str = Field(RULE, description="The rule, as a sentence")
    wall_seconds: float | None = Field(None, description="Time the verdict's extra work took (suite etc.)")

    def headline(self) -> str:
        """`IMPROVED (n=20): exact match +0.25, McNemar p=0.016; F1 +0.20 [0.08, 0.31]; …` for the report."""
        parts = []
        if self.exact_match is not None:
            m = self.exact_match
            parts.append(f"{self.match_name} {m.difference:+.2f} (b={m.n_a_only}, c={m.n_b_only}, "
                         f"McNemar p={m.p_value:.3g})")
        for interval, name in ((self.token_f1, self.score_name), (self.nll, "loss")):
            if interval is not None:
                parts.append(f"{name} {interval.mean_difference:+.3f} "
                             f"[{interval.low:+.3f}, {interval.high:+.3f}]")
        if self.suite is not None:
            parts.append(f"suite: {self.suite.summary()}")
        return f"{self.outcome} (n={self.n_examples}): " + ("; ".join(parts) if parts else "; ".join(self.reasons))


def _binomial_two_sided(k: int, n: int) -> tuple[float, str]:
    """Two-sided exact p of k successes in n fair trials (the smaller tail doubled, capped at 1)."""
    if n == 0:
        return 1.0, "none (no discordant pairs)"
    try:
        from scipy.stats import binomtest
    except ImportError:
        return _binomial_two_sided_comb(k, n), "math.comb"
    return float(binomtest(k, n, 0.5, alternative="two-sided").pvalue), "scipy.stats.binomtest"


def _binomial_two_sided_comb(k: int, n: int) -> float:
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_exact(right_a: Sequence[bool], right_b: Sequence[bool]) -> McNemarTest:
    """Exact McNemar test of paired outcomes (True = right).

    Example:
        b = 0, c = 6: p = 2 · 1/64 = 0.03125.
    """
    if len(right_a) != len(right_b):
        raise ValueError(f"paired outcomes differ in length ({len(right_a)} vs {len(right_b)})")
    n = len(right_a)
    b = sum(1 for x, y in zip(right_a, right_b, strict=True) if x and not y)
    c = sum(1 for x, y in zip(right_a, right_b, strict=True) if y and not x)
    p, method = _binomial_two_sided(b, b + c)
    return McNemarTest(n_examples=n, n_a_only=b, n_b_only=c, rate_a=sum(map(bool, right_a)) / n if n else 0.0,
                       rate_b=sum(map(bool, right_b)) / n if n else 0.0, p_value=p, method=method)


def paired_bootstrap(metric: str, values_a: Sequence[float], values_b: Sequence[float], *,
                     n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     confidence: float = CONFIDENCE) -> BootstrapInterval:
    """Percentile interval of mean(B − A) over resamples of the examples (with replacement), pairs kept together.

    Args:
        metric: Name of the measure, for the report.
        values_a: Per-example values before.
        values_b: Per-example values after, in the same order.
        n_resamples: Bootstrap resamples.
        seed: Seed of `random.Random`, so the interval is the same every run.
        confidence: Two-sided coverage.
    """
    if len(values_a) != len(values_b) or not values_a:
        raise ValueError(f"need paired, non-empty values (got {len(values_a)} and {len(values_b)})")
    diffs = [b - a for a, b in zip(values_a, values_b, strict=True)]
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_resamples))
    tail = (1 - confidence) / 2
    low = means[int(math.floor(tail * n_resamples))]
    high = means[min(n_resamples - 1, int(math.ceil((1 - tail) * n_resamples)) - 1)]
    return BootstrapInterval(metric=metric, n_examples=n, mean_a=sum(values_a) / n, mean_b=sum(values_b) / n,
                             mean_difference=sum(diffs) / n, low=low, high=high, confidence=confidence,
                             n_resamples=n_resamples, seed=seed)


def _remedies(method: str | None) -> list[Remedy]:
    remedies = [
        Remedy(action="mix a small share of general instruction-following data into the training set "
                              "(`replay_fraction: 0.1` on the training step replays the general set shipped with "
                              "advisor, or your own file named in `replay_path`)", source=_SEED_001),
        Remedy(action="lower the learning rate", source=f"{_SEED_001}; {_SEED_002}"),
        Remedy(action="train for fewer steps (at most 3 epochs)", source=f"{_SEED_001}; {_SEED_002}"),
    ]
    if method in (None, "full"):
        remedies.insert(0, Remedy(action="use LoRA instead of full fine-tuning (the base weights stay frozen)",
                                  source=f"{_SEED_001}; {_SEED_000}"))
    return remedies


def _judge_task(em: McNemarTest, f1: BootstrapInterval, nll: BootstrapInterval | None, reasons: list[str],
                match_name: str = "exact match", score_name: str = "token F1") -> tuple[bool, bool]:
    """(some task measure significantly better, some significantly worse); appends a reason for each."""
    better = worse = False
    if em.p_value < ALPHA:
        better, worse = em.n_b_only > em.n_a_only, em.n_b_only < em.n_a_only
        reasons.append(f"{match_name} {'better' if better else 'worse'}: {em.rate_a:.2f} → {em.rate_b:.2f} "
                       f"(McNemar p={em.p_value:.3g} < {ALPHA})")
    for interval, name, higher_is_better in ((f1, score_name, True), (nll, "per-example loss", False)):
        if interval is None:
            continue
        ci = f"{interval.mean_difference:+.3f}, {interval.confidence:.0%} CI [{interval.low:+.3f}, {interval.high:+.3f}]"
        above, below = interval.low > 0, interval.high < 0
        if (above and higher_is_better) or (below and not higher_is_better):
            better = True
            reasons.append(f"{name} better: {ci}")
        elif above or below:
            worse = True
            reasons.append(f"{name} worse: {ci}")
    return better, worse


def decide(comparison: str, right_a: Sequence[bool], right_b: Sequence[bool], f1_a: Sequence[float],
           f1_b: Sequence[float], nll_a: Sequence[float] | None = None, nll_b: Sequence[float] | None = None,
           suite: SuiteComparison | None = None, *, method: str | None = None,
           seed: int = BOOTSTRAP_SEED, match_name: str = "exact match", score_name: str = "token F1") -> Verdict:
    """Apply `RULE` to paired per-example outcomes (A = before, B = after) and an optional suite comparison.

    Args:
        comparison: What A and B are, for the report.
        right_a, right_b: Exact match per example (True = right).
        f1_a, f1_b: Token F1 per example, 0–1.
        nll_a, nll_b: Mean NLL per answer token per example, nats (lower is better); None: not measured.
        suite: The regression suite on A and B; its `regressed` categories make the verdict REGRESSED
            unless `suite.is_decisive` is False (the demo model has nothing to forget).
        method: The training method, to tailor the remedies (`lora` is not told to use LoRA).
        seed: Bootstrap seed.
        match_name, score_name: What the paired booleans and the bootstrapped scores are, when they are not exact
            match and token F1 (a DPO step pairs "prefers the chosen answer" and the log-prob margin).
    """
    n = len(right_a)
    reasons: list[str] = []
    better = worse = False
    em = f1 = nll = None
    if n >= MIN_EXAMPLES:
        em = mcnemar_exact(right_a, right_b)
        f1 = paired_bootstrap(score_name.lower().replace(" ", "_"), f1_a, f1_b, seed=seed)
        if nll_a is not None and nll_b is not None:
            nll = paired_bootstrap("nll", nll_a, nll_b, seed=seed)
        better, worse = _judge_task(em, f1, nll, reasons, match_name, score_name)
    else:
        reasons.append(f"only {n} paired examples (fewer than {MIN_EXAMPLES}): too few to test")
    remedies: list[Remedy] = []
    if suite is not None and suite.regressed:
        if suite.is_decisive:
            worse = True
            reasons.append(f"regression suite: {', '.join(suite.regressed)} fell by more than the margin")
            remedies = _remedies(method)
        else:
            reasons.append(f"regression suite: {', '.join(suite.regressed)} fell, not counted ({suite.note})")
    if worse:
        outcome: Outcome = "REGRESSED"
    elif better:
        outcome = "IMPROVED"
    else:
        outcome = "NO CLEAR CHANGE"
        if n >= MIN_EXAMPLES:
            reasons.append("no task measure changed significantly")
    return Verdict(outcome=outcome, comparison=comparison, n_examples=n, exact_match=em, token_f1=f1, nll=nll,
                   match_name=match_name, score_name=score_name, suite=suite, reasons=reasons, remedies=remedies)


def verdict_rows(verdict: Verdict | None) -> list[ReportRow]:
    """The closing report's first row for a step with a verdict (none without)."""
    if verdict is None:
        return []
    return [ReportRow(quantity=f"verdict ({verdict.comparison})", predicted="– (the plan predicts cost, not quality)",
                      measured=verdict.headline())]


def verdict_benefit(verdict: Verdict | None) -> list[tuple[str, str]]:
    """(metric, value) rows: why, the suite category by category, remedies, and the rule itself."""
    if verdict is None:
        return []
    rows = [("verdict", f"{verdict.outcome}: " + "; ".join(verdict.reasons))]
    if verdict.suite is not None:
        suite = verdict.suite
        scope = f"{suite.after.n_items} of {suite.after.n_items_available} prompts"
        rows.append((f"regression suite before → after ({scope}{'; ' + suite.note if suite.note else ''})",
                     suite.summary()))
    rows += [("remedy", f"{r.action} ({r.source})") for r in verdict.remedies]
    if verdict.wall_seconds is not None:
        rows.append(("time the verdict added", f"{verdict.wall_seconds:.1f} s"))
    rows.append(("verdict rule", verdict.rule))
    return rows
