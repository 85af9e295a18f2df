"""The fact sheet: every name a rule's `when` may use, with its type and a one-line description.

The classes below *are* the fact definitions: `advisor.core.engine.fact_catalog(FactSheet)` reads names, types
and descriptions off them to type-check the rules at load, and `advisor.core.engine.build_facts(sheet)` flattens
a filled sheet into the namespace the rules are evaluated in (`data.n_examples`, `qlora.fits`, ...).
`fact_sheet` is the only place that fills one.
"""

from __future__ import annotations

import math

from pydantic import Field

from advisor.core.models import BenefitEstimate, Freshness, Model, ModelAccess, OptionName, TrainStep
from advisor.core.recommend.inputs import Situation
from advisor.core.recommend.options import OptionEstimate, corpus_in_context

__all__ = ["FactSheet", "fact_sheet"]

GiB = 1024**3
# How many days one state of the knowledge stays true: the retrain cycle a fine-tuned snapshot must beat.
REFRESH_DAYS = {"static": 3650.0, "quarterly": 91.0, "monthly": 30.0, "weekly": 7.0, "daily": 1.0, "realtime": 0.0}


class GoalFacts(Model):
    knowledge: bool = Field(description="Facts the model lacks are a goal")
    style_format: bool = Field(description="Tone, structure or output format is a goal")
    reasoning: bool = Field(description="A task the model does badly is a goal")
    safety_alignment: bool = Field(description="Refusals or preferences are a goal")
    n_goals: int = Field(description="How many goals were given")


class DataFacts(Model):
    n_examples: int = Field(description="Supervised examples (measured when examples_path is given)")
    is_clean: bool = Field(description="The examples are checked and consistent")
    mean_example_tokens: int = Field(description="Mean tokens per example (measured, stated or assumed 512)")
    train_tokens: int = Field(description="Tokens in one pass over the examples")
    n_preference_pairs: int = Field(description="Chosen/rejected pairs (measured when preferences_path is given)")
    measured: bool = Field(description="At least one data path was measured")


class CorpusFacts(Model):
    n_documents: int = Field(description="Documents in the knowledge source")
    tokens: int = Field(description="Size of the knowledge source in tokens (assumed from documents when unknown)")
    size_known: bool = Field(description="The size was stated or measured, not assumed")
    fits_in_context: bool = Field(description="The whole source fits in the prompt (< 200k tokens and the window)")
    freshness: Freshness = Field(description="How often the knowledge changes")
    refresh_days: float = Field(description="Days one version of the knowledge stays true (static: 3650)")


class AccessFacts(Model):
    model_access: ModelAccess = Field(description="open_weights, closed_api_with_tuning or closed_api_no_tuning")
    has_weights: bool = Field(description="The team can train and run the weights")
    provider_tunes: bool = Field(description="A closed model whose provider offers fine-tuning")


class ModelFacts(Model):
    name: str = Field(description="The model weight-based paths are estimated on")
    n_params_b: float = Field(description="Its parameters, in billions")
    max_context: int = Field(description="Its context window, in tokens")
    chosen_by_advisor: bool = Field(description="No base model was given; the advisor picked it")


class GpuFacts(Model):
    owned: bool = Field(description="The team owns GPUs for this work")
    name: str = Field(description="The owned GPU type; empty when none")
    count: int = Field(description="Owned GPUs one job may use; 0 when none")
    memory_gib: float = Field(description="Memory of one owned GPU in GiB; 0 when none")
    supports_bf16: bool = Field(description="The owned GPU computes in bf16 (true when none is owned)")
    allow_renting: bool = Field(description="Renting cloud GPUs is acceptable")


class BudgetFacts(Model):
    usd: float = Field(description="One-time budget for training and set-up, USD")


class ServingFacts(Model):
    requests_per_day: float = Field(description="Expected requests per day")
    latency_p95_ms: int = Field(description="95th-percentile latency target in ms; 0: no target")
    needs_citations: bool = Field(description="Answers must point at their sources")
    through_api: bool = Field(description="Prompting paths are served by a closed API (else self-hosted)")


class OptionFacts(Model):
    fits: bool = Field(description="Its job fits the GPU it runs on (true when nothing runs on your GPUs)")
    peak_share: float = Field(description="Peak memory at micro-batch 1 as a share of one GPU's memory; 0: none")
    micro_batch: int = Field(description="Largest micro-batch ≤ 4 that fits; 0 when nothing is trained")
    rented: bool = Field(description="Its training runs on rented GPUs")
    one_time_usd: float = Field(description="Set-up cost: training compute or embedding the corpus, USD")
    out_of_pocket_usd: float = Field(description="Set-up cost paid to others (0 on owned GPUs), USD")
    monthly_usd: float = Field(description="Running cost per month at the stated volume, USD")
    payback_months: float = Field(description="Months its saving over few-shot prompting takes to repay its set-up "
                                              "(inf: never)")
    prompt_tokens: int = Field(description="Tokens each request carries")
    benefit_score: float = Field(description="Expected benefit prior, 0-100 (advisor/estimate/benefit.py)")


class FactSheet(Model):
    """Everything the rules can see."""

    goal: GoalFacts
    data: DataFacts
    corpus: CorpusFacts
    access: AccessFacts
    model: ModelFacts
    gpu: GpuFacts
    budget: BudgetFacts
    serving: ServingFacts
    prompting: OptionFacts
    prompting_few_shot: OptionFacts
    rag: OptionFacts
    lora: OptionFacts
    qlora: OptionFacts
    full: OptionFacts
    dpo: OptionFacts


def _option_facts(est: OptionEstimate, benefit: BenefitEstimate) -> OptionFacts:
    return OptionFacts(
        fits=est.fits is not False,
        peak_share=round(est.peak_share, 4),
        micro_batch=est.step.batch_size if isinstance(est.step, TrainStep) and est.fits else 0,
        rented=bool(isinstance(est.step, TrainStep) and est.step.prediction and not est.step.prediction.gpu_owned),
        one_time_usd=est.one_time_usd,
        out_of_pocket_usd=est.out_of_pocket_usd,
        monthly_usd=est.monthly_usd,
        payback_months=math.inf if est.payback_months is None else est.payback_months,
        prompt_tokens=est.prompt_tokens,
        benefit_score=benefit.score,
    )


def fact_sheet(
    sit: Situation, estimates: dict[OptionName, OptionEstimate], benefits: dict[OptionName, BenefitEstimate]
) -> FactSheet:
    """Fill the fact sheet from the resolved answers, the estimates and the benefit priors."""
    from advisor.core.estimate.params import count_params

    a = sit.answers
    gpu = sit.owned_gpu
    options = {name: _option_facts(est, benefits[name]) for name, est in estimates.items()}
    return FactSheet(
        goal=GoalFacts(knowledge="knowledge" in a.goal, style_format="style_format" in a.goal,
                       reasoning="reasoning" in a.goal, safety_alignment="safety_alignment" in a.goal,
                       n_goals=len(set(a.goal))),
        data=DataFacts(n_examples=sit.n_examples, is_clean=a.data_quality == "clean",
                       mean_example_tokens=sit.mean_example_tokens,
                       train_tokens=sit.n_examples * sit.mean_example_tokens,
                       n_preference_pairs=sit.n_preference_pairs, measured=sit.measured is not None),
        corpus=CorpusFacts(n_documents=sit.n_documents, tokens=sit.corpus_tokens, size_known=sit.corpus_size_known,
                           fits_in_context=corpus_in_context(sit), freshness=a.freshness,
                           refresh_days=REFRESH_DAYS[a.freshness]),
        access=AccessFacts(model_access=a.model_access, has_weights=a.model_access == "open_weights",
                           provider_tunes=a.model_access == "closed_api_with_tuning"),
        model=ModelFacts(name=sit.model.name, n_params_b=round(count_params(sit.model).n_params / 1e9, 2),
                         max_context=sit.model.max_context, chosen_by_advisor=sit.model_chosen_by_advisor),
        gpu=GpuFacts(owned=gpu is not None, name=gpu.name if gpu else "", count=sit.n_owned_gpus,
                     memory_gib=round(gpu.memory_bytes / GiB, 1) if gpu else 0.0,
                     supports_bf16=gpu.supports_bf16 if gpu else True, allow_renting=a.allow_renting),
        budget=BudgetFacts(usd=a.budget_usd),
        serving=ServingFacts(requests_per_day=a.requests_per_day, latency_p95_ms=a.latency_p95_ms or 0,
                             needs_citations=a.needs_citations, through_api=sit.api is not None),
        **options,
    )
