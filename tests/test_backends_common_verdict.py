"""The verdict's statistics against hand-computed values, and its rule on constructed paired outcomes."""

from __future__ import annotations

import math

import pytest

from backends.common import verdict as verdict_module
from backends.common.suite import CategoryScore, SuiteScores, compare_suites
from backends.common.verdict import (
    MIN_EXAMPLES,
    RULE,
    decide,
    mcnemar_exact,
    paired_bootstrap,
    verdict_benefit,
    verdict_rows,
)


# (b, c, p): p = min(1, 2 · Σ_{k ≤ min(b,c)} C(b+c, k) / 2^(b+c)), worked by hand.
@pytest.mark.parametrize(("b", "c", "p"), [
    (0, 6, 2 / 64),  # 0.03125
    (0, 5, 2 / 32),  # 0.0625: five discordant pairs can never be significant
    (1, 7, 2 * (1 + 8) / 256),  # 0.0703125
    (1, 6, 2 * (1 + 7) / 128),  # 0.125
    (2, 8, 2 * (1 + 10 + 45) / 1024),  # 0.109375
    (3, 3, 1.0),  # 2 · 42/64 > 1, capped
    (0, 0, 1.0),  # no discordant pairs
    (0, 10, 2 / 1024),
])
def test_exact_binomial_both_ways(b: int, c: int, p: float) -> None:
    assert verdict_module._binomial_two_sided_comb(b, b + c) == pytest.approx(p, abs=1e-12)
    pytest.importorskip("scipy")
    assert verdict_module._binomial_two_sided(b, b + c)[0] == pytest.approx(p, abs=1e-12)


def test_mcnemar_counts_discordant_pairs() -> None:
    # 3 both right, 1 only A right, 6 only B right, 2 both wrong.
    a = [True] * 3 + [True] + [False] * 6 + [False] * 2
    b = [True] * 3 + [False] + [True] * 6 + [False] * 2
    test = mcnemar_exact(a, b)
    assert (test.n_a_only, test.n_b_only, test.n_examples) == (1, 6, 12)
    assert test.rate_a == pytest.approx(4 / 12) and test.rate_b == pytest.approx(9 / 12)
    assert test.p_value == pytest.approx(0.125)
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_mcnemar_falls_back_to_math_comb_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    test = mcnemar_exact([False] * 6, [True] * 6)
    assert test.method == "math.comb" and test.p_value == pytest.approx(0.03125)


def test_bootstrap_of_a_constant_difference_is_that_difference() -> None:
    interval = paired_bootstrap("token_f1", [0.2, 0.4, 0.6], [0.5, 0.7, 0.9])
    assert interval.mean_difference == pytest.approx(0.3)
    assert interval.low == pytest.approx(0.3) and interval.high == pytest.approx(0.3)
    assert (interval.n_resamples, interval.confidence, interval.seed) == (2000, 0.95, 0)


def test_bootstrap_of_two_pairs_matches_the_exact_distribution() -> None:
    # Differences (0, 1): resample means are 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 2.5% and 97.5%
    # points are 0 and 1, and the share of resamples at 0.5 is 1/2 (binomial sd of the share ≈ 0.011 at 2000).
    interval = paired_bootstrap("nll", [1.0, 1.0], [1.0, 2.0])
    assert (interval.low, interval.high, interval.mean_difference) == (0.0, 1.0, 0.5)


def test_bootstrap_is_seeded() -> None:
    a, b = [0.1, 0.5, 0.3, 0.9, 0.2, 0.4, 0.8], [0.3, 0.4, 0.6, 0.9, 0.1, 0.7, 0.8]
    assert paired_bootstrap("f1", a, b) == paired_bootstrap("f1", a, b)
    assert paired_bootstrap("f1", a, b, seed=1) != paired_bootstrap("f1", a, b)


def test_bootstrap_interval_of_a_known_sample_brackets_the_normal_approximation() -> None:
    # 20 differences of ±1 with mean 0.5: the normal 95% interval is 0.5 ± 1.96·sd/√n; the percentile
    # bootstrap lands within 0.1 of it (tolerance: bootstrap ends move in steps of 0.1 at n = 20).
    diffs = [1.0] * 15 + [-1.0] * 5
    mean = sum(diffs) / 20
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 20)
    half = 1.96 * sd / math.sqrt(20)
    interval = paired_bootstrap("f1", [0.0] * 20, diffs)
    assert interval.low == pytest.approx(mean - half, abs=0.1) and interval.high == pytest.approx(mean + half, abs=0.1)


N = 20


def test_unchanged_model_gets_no_clear_change() -> None:
    right = [True] * 8 + [False] * 12
    f1 = [1.0] * 8 + [0.3] * 12
    nll = [0.5 + i / 10 for i in range(N)]
    v = decide("base vs trained", right, right, f1, f1, nll, nll)
    assert v.outcome == "NO CLEAR CHANGE"
    assert v.exact_match.p_value == 1.0 and v.token_f1.low == v.token_f1.high == 0.0
    assert v.rule == RULE and "no task measure changed significantly" in v.reasons


def test_a_clear_gain_is_improved() -> None:
    before = [True] * 4 + [False] * 16
    after = [True] * 14 + [False] * 6  # c = 10, b = 0: p = 2/1024
    v = decide("base vs trained", before, after, [float(x) for x in before], [float(x) for x in after])
    assert v.outcome == "IMPROVED"
    assert v.exact_match.p_value == pytest.approx(2 / 1024)
    assert v.token_f1.low > 0
    assert v.headline().startswith("IMPROVED (n=20): exact match +0.50")


def test_lower_loss_alone_is_improved_and_higher_loss_regressed() -> None:
    right, f1 = [False] * N, [0.0] * N
    nll_before = [3.0 + (i % 3) / 10 for i in range(N)]
    nll_after = [x - 1.0 for x in nll_before]
    assert decide("a vs b", right, right, f1, f1, nll_before, nll_after).outcome == "IMPROVED"
    assert decide("a vs b", right, right, f1, f1, nll_after, nll_before).outcome == "REGRESSED"


def test_a_clear_loss_is_regressed_even_with_lower_loss() -> None:
    before, after = [True] * 12 + [False] * 8, [True] * 2 + [False] * 18
    nll_before = [2.0] * N
    v = decide("a vs b", before, after, [float(x) for x in before], [float(x) for x in after],
               nll_before, [1.0] * N)
    assert v.outcome == "REGRESSED"
    assert any(r.startswith("exact match worse") for r in v.reasons)
    assert v.remedies == []  # remedies are for forgetting (the suite), not for a worse task


def test_too_few_examples_draw_no_verdict() -> None:
    n = MIN_EXAMPLES - 1
    v = decide("a vs b", [False] * n, [True] * n, [0.0] * n, [1.0] * n)
    assert v.outcome == "NO CLEAR CHANGE" and v.exact_match is None and "too few" in v.reasons[0]


def _suite(rates: dict[str, tuple[int, int]], perplexity: float) -> SuiteScores:
    return SuiteScores(categories=[CategoryScore(category=c, n_items=n, n_passed=k) for c, (k, n) in rates.items()],
                       perplexity=perplexity, n_perplexity_tokens=300, n_items=52, n_items_available=52,
                       max_new_tokens=64, passed={}, answers={}, wall_seconds=1.0)


BASE_SUITE = {"json_keys": (11, 12), "one_word": (12, 12), "list_n": (10, 12), "language": (9, 10), "refusal": (6, 6)}


def test_a_suite_category_that_falls_beyond_the_margin_makes_it_regressed() -> None:
    before = _suite(BASE_SUITE, 12.0)
    after = _suite({**BASE_SUITE, "json_keys": (5, 12)}, 12.5)  # 0.92 → 0.42, beyond 0.15
    suite = compare_suites(before, after)
    assert suite.regressed == ["json_keys"]
    right = [True] * 4 + [False] * 16
    v = decide("base vs trained", right, [True] * 14 + [False] * 6, [0.0] * N, [1.0] * N, suite=suite, method="full")
    assert v.outcome == "REGRESSED"  # a task gain does not buy back forgetting
    actions = [r.action for r in v.remedies]
    assert actions[0].startswith("use LoRA instead of full")
    assert any("general instruction" in a for a in actions) and any("learning rate" in a for a in actions)
    assert any("fewer steps" in a for a in actions)
    assert all("001_01edf7ba5286cd2c.txt" in r.source or "000_9b14d88f84fd27db.txt" in r.source for r in v.remedies)
    lora = decide("base vs trained", right, right, [0.0] * N, [0.0] * N, suite=suite, method="lora")
    assert not any("LoRA instead" in r.action for r in lora.remedies)


def test_suite_within_margin_and_perplexity_rise() -> None:
    before = _suite(BASE_SUITE, 12.0)
    small = compare_suites(before, _suite({**BASE_SUITE, "json_keys": (10, 12)}, 14.9))  # one item, +24%
    assert small.regressed == []
    high = compare_suites(before, _suite(BASE_SUITE, 15.1))  # +26%
    assert high.regressed == ["general_text_perplexity"]
    refusal = compare_suites(before, _suite({**BASE_SUITE, "refusal": (5, 6)}, 12.0))  # one refusal lost: 0.167
    assert refusal.regressed == ["refusal"]


def test_a_suite_that_does_not_decide_is_reported_but_not_counted() -> None:
    before = _suite(BASE_SUITE, 12.0)
    suite = compare_suites(before, _suite({**BASE_SUITE, "one_word": (0, 12)}, 12.0), is_decisive=False,
                           note="demonstration model")
    right = [False] * N
    v = decide("base vs trained", right, right, [0.0] * N, [0.0] * N, suite=suite)
    assert v.outcome == "NO CLEAR CHANGE" and any("not counted" in r for r in v.reasons)


def test_report_rows() -> None:
    assert verdict_rows(None) == [] and verdict_benefit(None) == []
    right = [True] * 4 + [False] * 16
    v = decide("zero-shot vs few-shot", right, [True] * 14 + [False] * 6, [0.0] * N, [1.0] * N)
    (row,) = verdict_rows(v)
    assert row.quantity == "verdict (zero-shot vs few-shot)" and row.measured.startswith("IMPROVED (n=20)")
    benefit = dict(verdict_benefit(v))
    assert benefit["verdict rule"] == RULE and benefit["verdict"].startswith("IMPROVED: exact match better")
