"""Continued pretraining as a recommended path: a domain the base lacks, 10^8+ corpus tokens and the budget make
it first, with RAG stacked (the plan: continued pretraining → SFT on its model → index → serve); a base that
knows the domain, too few tokens or too small a budget exclude it."""

from __future__ import annotations

import datetime

from advisor.core.estimate.compute import estimate_training_compute
from advisor.core.estimate.pretrain import packed_blocks
from advisor.core.models import CONTINUED, Answers, RagStep, ServeStep, TrainStep
from advisor.core.planning import build_plan, load_plan, save_plan
from advisor.core.recommend import recommend
from advisor.core.recommend.continued import CPT_SEQ_LEN

TODAY = datetime.date(2026, 1, 1)
DOMAIN_TEAM = dict(goal=["knowledge", "style_format"], task="answer turbine engineers from their maintenance logs",
                   n_examples=2000, data_quality="clean", n_documents=40_000, corpus_tokens=300_000_000,
                   freshness="monthly", model_access="open_weights", base_model="llama-3.1-8b", allow_renting=True,
                   budget_usd=5000, requests_per_day=5000)


def _rules(option) -> set[str]:  # noqa: ANN001
    return {r.rule_id for r in option.reasons}


def test_a_domain_the_base_lacks_gets_continued_pretraining_then_sft_plus_rag(tmp_path) -> None:
    rec = recommend(Answers(**DOMAIN_TEAM, base_lacks_domain=True), today=TODAY)
    assert rec.primary == "continued_pretraining" and rec.stack == ["continued_pretraining", "rag"]
    option = rec.option("continued_pretraining")
    assert "cpt-domain-the-base-lacks" in _rules(option) and "cpt-keeps-retrieval" in _rules(rec.option("rag"))
    assert rec.option("lora").feasible and rec.option("lora").score < option.score
    (cpt,), sft = option.steps_before, option.step
    assert cpt.objective == "causal_lm" and cpt.method == "lora" and cpt.merge
    assert sft.base_model == CONTINUED and sft.objective == "sft"
    # Its cost: the packed corpus at the compute estimate, on top of the SFT stage's.
    pred = cpt.prediction
    n_train, _ = packed_blocks(300_000_000, 40_000, CPT_SEQ_LEN, cpt.eval_fraction)
    assert pred.n_examples == n_train and pred.mean_example_tokens == CPT_SEQ_LEN and pred.usd > 0
    assert option.one_time_usd == round(rec.option("lora").one_time_usd + pred.usd, 4)
    assert option.one_time_usd > 50 * rec.option("lora").one_time_usd  # 3·10^8 tokens against 2,000 examples
    plan = build_plan(rec, Answers(**DOMAIN_TEAM, base_lacks_domain=True))
    kinds = [(s.kind, getattr(s, "objective", None)) for s in plan.steps]
    assert kinds == [("train", "causal_lm"), ("train", "sft"), ("rag", None), ("serve", None)]
    assert isinstance(plan.steps[2], RagStep) and isinstance(plan.steps[3], ServeStep)
    assert plan.steps[3].prediction is not None and plan.steps[3].prediction.n_adapters == 1  # the SFT adapter only
    save_plan(plan, tmp_path / "plan.yaml")
    again = load_plan(tmp_path / "plan.yaml")
    assert isinstance(again.steps[0], TrainStep) and again.steps[1].base_model == CONTINUED


def test_hours_follow_the_compute_estimate_of_the_packed_corpus() -> None:
    rec = recommend(Answers(**DOMAIN_TEAM, base_lacks_domain=True), today=TODAY)
    cpt = rec.option("continued_pretraining").steps_before[0]
    from advisor.core.catalog import resolve_gpu, resolve_model
    from advisor.core.estimate.precision import choose_precision, device_of
    from advisor.core.estimate.translate import train_spec

    gpu = resolve_gpu(cpt.prediction.gpu)
    compute, _ = choose_precision(cpt.precision, device_of(gpu, cpt.n_gpus))
    spec = train_spec(cpt, resolve_model(cpt.base_model), compute)
    by_hand = estimate_training_compute(spec, gpu, cpt.prediction.n_examples, CPT_SEQ_LEN, cpt.epochs)
    assert cpt.prediction.hours == by_hand.hours and by_hand.n_tokens >= 0.98 * 300_000_000


def test_a_base_that_knows_the_domain_too_few_tokens_or_budget_exclude_it() -> None:
    knows = recommend(Answers(**DOMAIN_TEAM), today=TODAY)
    assert not knows.option("continued_pretraining").feasible
    assert "cpt-needs-a-domain-gap" in _rules(knows.option("continued_pretraining"))
    assert knows.primary == "lora" and "continued_pretraining" not in knows.stack
    small = recommend(Answers(**{**DOMAIN_TEAM, "corpus_tokens": 5_000_000}, base_lacks_domain=True), today=TODAY)
    assert "cpt-too-few-tokens" in _rules(small.option("continued_pretraining"))
    assert small.primary != "continued_pretraining" and "cpt-too-few-tokens" in {w.rule_id for w in small.warnings}
    poor = recommend(Answers(**{**DOMAIN_TEAM, "budget_usd": 20}, base_lacks_domain=True), today=TODAY)
    assert "over-budget" in _rules(poor.option("continued_pretraining"))
    assert poor.primary == "lora" and "cpt-keeps-retrieval" not in _rules(poor.option("rag"))
