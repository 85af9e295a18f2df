"""From answers to a Recommendation: estimates → facts → rules → ranked options, stack and break-even.

Score of an option = its benefit prior (advisor/estimate/benefit.py) + the `score` of every rule that fired
for it. Options a `block` rule excluded rank last. The primary is the best feasible option; the stack is
the primary plus every feasible option a `stack` rule named, best first.

Break-even: between the feasible option cheapest to start (lowest one-time cost) and the one cheapest to
run (lowest monthly cost at the stated volume), in months (extra set-up / monthly saving) and in requests
per day (the volume above which the cheaper-to-run option costs less over HORIZON_MONTHS, set-up included).
"""

from __future__ import annotations

import datetime
import math
from collections import defaultdict
from functools import cache

from advisor import __version__
from advisor.core.engine import RuleSet, build_facts, evaluate, fact_catalog, load_rules
from advisor.core.errors import AdvisorError
from advisor.core.estimate.benefit import estimate_benefit
from advisor.core.models import (
    Answers,
    BenefitEstimate,
    BreakEven,
    CostCurve,
    GpuSpec,
    Option,
    OptionName,
    Reason,
    Recommendation,
)
from advisor.core.recommend.facts import FactSheet, fact_sheet
from advisor.core.recommend.inputs import Situation, resolve_situation
from advisor.core.recommend.options import (
    OPTIONS,
    PROVIDER_EXECUTED,
    OptionEstimate,
    corpus_in_context,
    estimate_options,
    monthly_at,
    serving_gpu,
)

__all__ = ["HORIZON_MONTHS", "load_ruleset", "recommend"]

HORIZON_MONTHS = 12  # a year: the usual budgeting period for a running cost (assumption)
CURVE_VOLUMES = (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
SEARCH_VOLUMES = tuple(10 ** (1 + k / 10) for k in range(61))  # 10 … 10^7 requests/day, 10 per decade


@cache
def load_ruleset(directory: str | None = None) -> RuleSet:
    """The decision rules, loaded and type-checked against the fact sheet (cached per folder)."""
    from advisor.core.catalog import rules_dir

    return load_rules(directory or rules_dir(), fact_catalog(FactSheet), OPTIONS)


def _apply(fired, estimates, benefits) -> tuple[dict, dict, dict, list[str], list[Reason]]:  # noqa: ANN001
    scores = {name: benefits[name].score for name in estimates}
    why_not: dict[str, list[str]] = defaultdict(list)
    reasons: dict[str, list[Reason]] = defaultdict(list)
    stacked: list[str] = []
    warnings: dict[str, Reason] = {}
    for firing in fired:
        rule = firing.rule

        def reason(effect: str, rule=rule, firing=firing) -> Reason:
            return Reason(rule_id=rule.id, rationale=rule.rationale, source=rule.source, severity=rule.severity,
                          effect=effect, message=firing.message)

        for target in rule.exclude:
            why_not[target].append(rule.rationale)
            reasons[target].append(reason("excluded"))
        for target, delta in rule.score:
            scores[target] += delta
            reasons[target].append(reason(f"score {delta:+g}"))
        for target in rule.stack:
            stacked.append(target)
            reasons[target].append(reason("stacked"))
        for target in rule.note:
            reasons[target].append(reason("note"))
        if rule.warn:
            warnings.setdefault(firing.message, reason("warning"))
    return scores, why_not, _one_per_rule(reasons), stacked, list(warnings.values())


def _one_per_rule(reasons: dict[str, list[Reason]]) -> dict[str, list[Reason]]:
    """Each rule once per option: a rule that both scores and stacks an option reads `score +10, stacked`."""
    merged: dict[str, list[Reason]] = defaultdict(list)
    for target, items in reasons.items():
        by_rule: dict[str, Reason] = {}
        for reason in items:
            seen = by_rule.get(reason.rule_id)
            by_rule[reason.rule_id] = reason if seen is None else seen.model_copy(
                update={"effect": f"{seen.effect}, {reason.effect}"})
        merged[target] = list(by_rule.values())
    return merged


def _option(est: OptionEstimate, score: float, why_not: list[str], reasons: list[Reason], benefit) -> Option:  # noqa: ANN001
    return Option(
        name=est.name, feasible=not why_not, why_not=why_not, score=round(score, 1), benefit=benefit,
        model=est.model, memory=est.memory, gpu=est.gpu.name if est.gpu else None,
        gpu_memory_bytes=est.gpu.memory_bytes if est.gpu else None, fits=est.fits, step=est.step,
        steps_before=est.steps_before, compute=est.compute, one_time_usd=round(est.one_time_usd, 4), out_of_pocket_usd=round(est.out_of_pocket_usd, 4),
        monthly_usd=round(est.monthly_usd, 2), serving=est.serving, prompt_tokens=est.prompt_tokens,
        payback_months=est.payback_months, reasons=reasons, assumptions=est.assumptions,
    )


def _monthly(sit: Situation, est: OptionEstimate, volume: float, gpu: GpuSpec) -> float:
    fixed = est.monthly_usd - (est.serving.monthly_usd if est.serving else 0.0)
    return monthly_at(sit, est.name, volume, gpu).monthly_usd + fixed


def _volume_break_even(sit: Situation, start: OptionEstimate, run: OptionEstimate, gpu: GpuSpec) -> float | None:
    extra = run.one_time_usd - start.one_time_usd

    def gain(volume: float) -> float:
        return (_monthly(sit, start, volume, gpu) - _monthly(sit, run, volume, gpu)) * HORIZON_MONTHS - extra

    previous = None
    for volume in SEARCH_VOLUMES:
        if gain(volume) > 0:
            if previous is None:
                return volume
            low, high = previous, volume
            for _ in range(30):
                mid = math.sqrt(low * high)
                low, high = (low, mid) if gain(mid) > 0 else (mid, high)
            return high
        previous = volume
    return None


def _break_even(sit: Situation, feasible: list[Option], estimates: dict, gpu: GpuSpec) -> BreakEven | None:
    if not feasible:
        return None
    start = min(feasible, key=lambda o: (o.one_time_usd, o.monthly_usd))
    # Set-up costs within a cent tie (IA3 and LoRA train at nearly the same cost): the better-ranked option wins.
    run = min(feasible, key=lambda o: (o.monthly_usd, round(o.one_time_usd, 2)))
    volume_now = sit.answers.requests_per_day
    if start.name == run.name:
        # Cheapest both ways at this volume: name the option that runs cheapest at the top of the curve instead.
        top = CURVE_VOLUMES[-1]
        run = min(feasible, key=lambda o: (_monthly(sit, estimates[o.name], top, gpu), round(o.one_time_usd, 2)))
        if run.name == start.name:
            return BreakEven(cheapest_to_start=start.name, cheapest_to_run=run.name, horizon_months=HORIZON_MONTHS,
                             note=f"{start.name} is the cheapest to start and to run up to {top:,} requests/day")
        volume = _volume_break_even(sit, estimates[start.name], estimates[run.name], gpu)
        note = (f"{start.name} is the cheapest to start and to run at {volume_now:,.0f} requests/day; "
                f"{run.name} runs cheaper at high volume")
        if volume is not None:
            note += f" and, {run.one_time_usd - start.one_time_usd:,.2f} USD of set-up included, wins over " \
                    f"{HORIZON_MONTHS} months above {volume:,.0f} requests/day"
        return BreakEven(cheapest_to_start=start.name, cheapest_to_run=run.name, requests_per_day=volume,
                         horizon_months=HORIZON_MONTHS, note=note)
    saving = start.monthly_usd - run.monthly_usd
    months = (run.one_time_usd - start.one_time_usd) / saving if saving > 0 else None
    volume = _volume_break_even(sit, estimates[start.name], estimates[run.name], gpu)
    parts = [f"{run.name} costs {run.one_time_usd - start.one_time_usd:,.2f} USD more to start than {start.name} "
             f"and saves {saving:,.2f} USD a month at {volume_now:,.0f} requests/day"]
    if months is not None:
        parts.append(f"it pays back in {months:,.1f} months")
    if volume is not None:
        parts.append(f"over {HORIZON_MONTHS} months it wins above {volume:,.0f} requests/day")
    return BreakEven(cheapest_to_start=start.name, cheapest_to_run=run.name, months=months,
                     requests_per_day=volume, horizon_months=HORIZON_MONTHS, note="; ".join(parts))


def _cost_curve(sit: Situation, feasible: list[Option], estimates: dict, gpu: GpuSpec) -> CostCurve:
    volumes = sorted({*CURVE_VOLUMES, *([sit.answers.requests_per_day] if sit.answers.requests_per_day else [])})
    return CostCurve(
        requests_per_day=[float(v) for v in volumes],
        monthly_usd={o.name: [round(_monthly(sit, estimates[o.name], v, gpu), 2) for v in volumes] for o in feasible},
    )


def _ties(feasible: list[Option]) -> list[str]:
    """Options scoring the same as the primary, and how the tie was broken (stated, never silent)."""
    tied = [o for o in feasible if o.score == feasible[0].score]
    if len(tied) < 2:
        return []
    names = ", ".join(o.name for o in tied)
    return [f"tie: {names} all score {feasible[0].score:g}; broken by the lower one-time cost, then the fixed "
            f"order {', '.join(OPTIONS)}: {tied[0].name} first ("
            + "; ".join(f"{o.name} {o.one_time_usd:,.2f} USD" for o in tied) + ")"]


def _benefit(name: OptionName, answers: Answers, sit: Situation) -> BenefitEstimate:
    """The option's benefit prior; provider-side tuning and distillation are supervised fine-tuning (LoRA's)."""
    sft = name in ("provider_tuning", "distillation", "continued_pretraining")
    prior = estimate_benefit("lora" if sft else name, answers.goal, sit.n_examples,
                             sit.n_preference_pairs, answers.data_quality == "clean" or answers.usable_fraction
                             is not None, corpus_in_context(sit))
    if not sft:
        return prior
    how = {"provider_tuning": "provider-side tuning: LoRA's prior (supervised fine-tuning on the same examples)",
           "distillation": "distillation: LoRA's prior (the student's supervised fine-tuning on the teacher's "
           "answers to the same prompts)",
           "continued_pretraining": "continued pretraining: LoRA's prior for its SFT stage (what the domain text "
           "adds is the rules' judgement, not a measured prior)"}[name]
    return prior.model_copy(update={"assumptions": [*prior.assumptions, how]})


def recommend(answers: Answers, skip_rules: frozenset[str] = frozenset(),
              today: datetime.date | None = None) -> Recommendation:
    """Decide which path (or stack of paths) to take, with every option estimated, ranked and explained.

    Args:
        answers: The team's answers.
        skip_rules: Rule ids to leave out (`--skip-rule`).
        today: The date deadlines in the catalog are compared with; None: the real date.

    Returns:
        The recommendation: primary, stack, ranked options with reasons, warnings, break-even, cost curve.

    Raises:
        AdvisorError: Unknown model/GPU/API name or skipped rule id, a missing data path, rules that do not
            load, or no feasible option at all.
    """
    sit = resolve_situation(answers, today)
    estimates = estimate_options(sit)
    benefits = {
        name: _benefit(name, answers, sit)
        for name in OPTIONS
    }
    values = build_facts(fact_sheet(sit, estimates, benefits))
    ruleset = load_ruleset()
    fired = evaluate(ruleset, values, skip_rules)
    scores, why_not, reasons, stacked, warnings = _apply(fired, estimates, benefits)
    options = [_option(estimates[n], scores[n], why_not[n], reasons[n], benefits[n]) for n in OPTIONS]
    options.sort(key=lambda o: (not o.feasible, -o.score, o.one_time_usd, OPTIONS.index(o.name)))
    feasible = [o for o in options if o.feasible]
    if not feasible:
        raise AdvisorError("no path is feasible for these answers",
                           "; ".join(f"{o.name}: {o.why_not[0]}" for o in options))
    primary: OptionName = feasible[0].name
    stack = [primary, *(o.name for o in feasible if o.name in stacked and o.name != primary)]
    gpu = serving_gpu(sit)
    handoff = [a for name in stack if name in PROVIDER_EXECUTED
               for a in next(o for o in options if o.name == name).assumptions if a.startswith("carried out by")]
    return Recommendation(
        advisor_version=__version__, rules_version=ruleset.version, task=answers.task, primary=primary,
        stack=stack, options=options, warnings=warnings,
        break_even=_break_even(sit, feasible, estimates, gpu), cost_curve=_cost_curve(sit, feasible, estimates, gpu),
        skipped_rules=sorted(skip_rules), facts=values, measured=sit.measured, answers=answers,
        assumptions=[*sit.notes, *(f"provider_tuning: {h}" for h in handoff), f"served on {'the API ' + sit.api.name if sit.api else gpu.name}", *_ties(feasible),
                     *_per_task(sit, options, stack)],
    )


def _per_task(sit: Situation, options: list[Option], stack: list[OptionName]) -> list[str]:
    """Several tasks: how the stack's trained option covers them (one base + N adapters) and each task's training."""
    from advisor.core.recommend.options import PER_TASK

    if not sit.tasks:
        return []
    by_name = {o.name: o for o in options}
    return [f"{name}: {line}" for name in stack if name in PER_TASK and by_name[name].steps_before
            for line in by_name[name].assumptions[:len(sit.tasks) + 1]]
