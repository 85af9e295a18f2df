"""The fact sheet: every name a rule's `when` may use, with its type and a one-line description.

The classes below *are* the fact definitions: `advisor.core.engine.fact_catalog(FactSheet)` reads names, types
and descriptions off them to type-check the rules at load, and `advisor.core.engine.build_facts(sheet)` flattens
a filled sheet into the namespace the rules are evaluated in (`data.n_examples`, `qlora.fits`, ...).
`fact_sheet` is the only place that fills one.
"""

from __future__ import annotations

import math

from pydantic import Field

from advisor.core.models import (
    BenefitEstimate,
    ExampleSource,
    Freshness,
    Model,
    ModelAccess,
    OptionName,
    TaskType,
    TrainStep,
)
from advisor.core.recommend.inputs import Situation, covers_languages
from advisor.core.recommend.options import (
    OptionEstimate,
    corpus_in_context,
    prompt_tokens_of,
    provider_service,
    serving_window,
)

__all__ = ["FactSheet", "fact_sheet"]

GiB = 1024**3
# An attempt that reached this share of the target quality got close: its next step is more attractive
# (assumption; the answers can say `outcome: partly` instead of a number).
CLOSE_SHARE = 0.75
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
    n_examples_stated: int = Field(description="Examples before the usable fraction is applied")
    usable_fraction: float = Field(description="Share of the examples that survive filtering (1: all)")
    source: ExampleSource = Field(description="human, synthetic or distilled (from a teacher model)")
    measured: bool = Field(description="At least one data path was measured")


class CorpusFacts(Model):
    n_documents: int = Field(description="Documents in the knowledge source")
    tokens: int = Field(description="Size of the knowledge source in tokens (assumed from documents when unknown)")
    size_known: bool = Field(description="The size was stated or measured, not assumed")
    fits_in_context: bool = Field(description="The whole source fits in the serving model's real window")
    freshness: Freshness = Field(description="How often the knowledge changes")
    refresh_days: float = Field(description="Days one version of the knowledge stays true (static: 3650)")


class AccessFacts(Model):
    model_access: ModelAccess = Field(description="open_weights, closed_api_with_tuning or closed_api_no_tuning")
    has_weights: bool = Field(description="The team can train and run the weights (open, or open acceptable)")
    provider_tunes: bool = Field(description="A closed model whose provider offers fine-tuning")


class ModelFacts(Model):
    name: str = Field(description="The model weight-based paths are estimated on")
    n_params_b: float = Field(description="Its parameters, in billions")
    max_context: int = Field(description="Its context window, in tokens")
    chosen_by_advisor: bool = Field(description="No base model was given; the advisor picked it")
    qlora_16bit_share: float = Field(description="Share of its parameters bitsandbytes leaves 16-bit in a QLoRA "
                                                 "load under transformers 5 (fused MoE experts, nn.Linear subclasses)")


class GpuFacts(Model):
    owned: bool = Field(description="The team owns GPUs for this work")
    name: str = Field(description="The owned GPU type; empty when none")
    count: int = Field(description="Owned GPUs one job may use; 0 when none")
    memory_gib: float = Field(description="Memory of one owned GPU in GiB; 0 when none")
    supports_bf16: bool = Field(description="The owned GPU computes in bf16 (true when none is owned)")
    allow_renting: bool = Field(description="Renting cloud GPUs is acceptable")


class LanguageFacts(Model):
    multilingual: bool = Field(description="A language other than English is among the answers' languages")
    n_languages: int = Field(description="How many languages the answers and documents are in")
    model_covers: bool = Field(description="The base model's card names every one of those languages")


class DeployFacts(Model):
    edge: bool = Field(description="The model runs on an edge/on-device target without a network")
    memory_gib: float = Field(description="Edge memory budget in GB; 0 on a server")
    model_4bit_gib: float = Field(description="The base model's 4-bit weights in GB (what an edge device holds)")


class ConstraintFacts(Model):
    no_external_api: bool = Field(description="Data residency: nothing may be sent to an external API")
    open_weights_acceptable: bool = Field(description="A closed model is used today; open weights are acceptable")


class TriedFacts(Model):
    zero_shot: bool = Field(description="Zero-shot prompting was tried and failed (a plain name, or not close)")
    few_shot: bool = Field(description="Few-shot prompting was tried and failed (a plain name, or not close)")
    rag: bool = Field(description="Retrieval was tried and failed (a plain name, or not close)")
    fine_tuning: bool = Field(description="Fine-tuning was tried and fell short (however far it got)")
    zero_shot_close: bool = Field(description="Zero-shot prompting got close: outcome partly, or reached >= 0.75")
    few_shot_close: bool = Field(description="Few-shot prompting got close: outcome partly, or reached >= 0.75")
    rag_close: bool = Field(description="Retrieval got close: outcome partly, or reached >= 0.75")
    few_shot_reached: float = Field(description="Share of the target quality few-shot prompting reached; -1: unknown")
    rag_recall: float = Field(description="Share of questions whose source retrieval found when it was tried; "
                                          "-1: unknown")


class TaskFacts(Model):
    type: TaskType = Field(description="generation, extraction, classification or tool_calling")
    n_tasks: int = Field(description="Separate tasks (or tenants) one served base handles, each with its own weights")
    fewest_examples: int = Field(description="Examples of the task with the fewest, each task training on its own "
                                 "(tasks listed in the answers); otherwise every example")


class AlignmentFacts(Model):
    keep: bool = Field(description="An aligned model's refusals must survive tuning")


class ProviderFacts(Model):
    known: bool = Field(description="The catalog has a fine-tuning service of the serving API's provider")
    model: str = Field(description="The model that service tunes; empty when none")
    open: bool = Field(description="It still accepts new training jobs today")
    days_left: float = Field(description="Days until it stops taking new jobs (negative: stopped; inf: no end)")
    last_day: str = Field(description="Last day new jobs are accepted (ISO date); empty when none announced")
    tuning_usd: float = Field(description="Training the examples there for the planned epochs, USD")
    tuned_monthly_usd: float = Field(description="Serving the tuned model at the stated volume, USD a month")
    meets_minimum: bool = Field(description="There are at least the service's minimum number of examples")


class DistillFacts(Model):
    has_teacher: bool = Field(description="A teacher is named (teacher_model, or the API model that does the task)")
    teacher_does_task: bool = Field(description="The teacher already does the task at the target quality")
    teacher_api: bool = Field(description="The teacher is a hosted API model (its prompts leave for the provider)")
    teacher_usd: float = Field(description="The teacher answering the examples' prompts, USD; 0: not costed")
    requests_per_month: float = Field(description="The stated volume per month (requests_per_day × 30)")
    break_even_requests_per_month: float = Field(
        description="Volume per month from which serving the student instead of the teacher repays distillation "
        "within 12 months (inf: never or not costed)")
    logit_level: bool = Field(description="The student learns the teacher's token distribution (shared tokenizer, "
                              "both fit the student's GPU) instead of its written answers")


class CptFacts(Model):
    base_lacks_domain: bool = Field(description="The documents' domain or language is one the base barely saw")
    corpus_tokens: int = Field(description="Tokens of the documents (measured, else stated, else estimated)")
    usd: float = Field(description="The continued-pretraining step alone on the SFT path's GPU, USD; 0: not costed")


class BudgetFacts(Model):
    usd: float = Field(description="One-time budget for training and set-up, USD")


class ServingFacts(Model):
    requests_per_day: float = Field(description="Expected requests per day")
    latency_p95_ms: int = Field(description="95th-percentile latency target in ms; 0: no target")
    needs_citations: bool = Field(description="Answers must point at their sources")
    through_api: bool = Field(description="Prompting paths are served by a closed API (else self-hosted)")
    window_tokens: int = Field(description="Context window of the model serving the prompting paths")
    compare_api: bool = Field(description="Open weights, with an API model named to compare with")
    api_name: str = Field(description="The API model compared with; empty when none")
    api_monthly_usd: float = Field(description="Few-shot prompting through that API at this volume, USD a month")


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
    latency_ms: float = Field(description="Self-hosted latency of one request at full batch, ms; 0: not estimated")
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
    lang: LanguageFacts
    deploy: DeployFacts
    constraints: ConstraintFacts
    tried: TriedFacts
    task: TaskFacts
    alignment: AlignmentFacts
    provider: ProviderFacts
    distill: DistillFacts
    cpt: CptFacts
    prompting: OptionFacts
    prompting_few_shot: OptionFacts
    rag: OptionFacts
    lora: OptionFacts
    qlora: OptionFacts
    full: OptionFacts
    dpo: OptionFacts
    ia3: OptionFacts
    prompt_tuning: OptionFacts
    provider_tuning: OptionFacts
    distillation: OptionFacts
    continued_pretraining: OptionFacts


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
        latency_ms=round(est.latency_ms, 1),
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
    compare, compare_usd = sit.compare_api, 0.0
    if compare is not None:
        from advisor.core.estimate.serving import estimate_api_monthly

        compare_usd = estimate_api_monthly(compare, a.requests_per_day, prompt_tokens_of(sit, "prompting_few_shot"),
                                           a.output_tokens).monthly_usd
    return FactSheet(
        goal=GoalFacts(knowledge="knowledge" in a.goal, style_format="style_format" in a.goal,
                       reasoning="reasoning" in a.goal, safety_alignment="safety_alignment" in a.goal,
                       n_goals=len(set(a.goal))),
        data=DataFacts(n_examples=sit.n_examples, is_clean=a.data_quality == "clean" or a.usable_fraction is not None,
                       n_examples_stated=sit.n_examples_stated, usable_fraction=a.usable_fraction or 1.0,
                       source=a.example_source,
                       mean_example_tokens=sit.mean_example_tokens,
                       train_tokens=sit.n_examples * sit.mean_example_tokens,
                       n_preference_pairs=sit.n_preference_pairs, measured=sit.measured is not None),
        corpus=CorpusFacts(n_documents=sit.n_documents, tokens=sit.corpus_tokens, size_known=sit.corpus_size_known,
                           fits_in_context=corpus_in_context(sit), freshness=a.freshness,
                           refresh_days=REFRESH_DAYS[a.freshness]),
        access=AccessFacts(model_access=a.model_access,
                           has_weights=a.model_access == "open_weights" or a.open_weights_acceptable,
                           provider_tunes=a.model_access == "closed_api_with_tuning"),
        model=ModelFacts(name=sit.model.name, n_params_b=round(count_params(sit.model).n_params / 1e9, 2),
                         max_context=sit.model.max_context, chosen_by_advisor=sit.model_chosen_by_advisor,
                         qlora_16bit_share=_qlora_16bit_share(sit)),
        gpu=GpuFacts(owned=gpu is not None, name=gpu.name if gpu else "", count=sit.n_owned_gpus,
                     memory_gib=round(gpu.memory_bytes / GiB, 1) if gpu else 0.0,
                     supports_bf16=gpu.supports_bf16 if gpu else True, allow_renting=a.allow_renting),
        budget=BudgetFacts(usd=a.budget_usd),
        serving=ServingFacts(requests_per_day=a.requests_per_day, latency_p95_ms=a.latency_p95_ms or 0,
                             needs_citations=a.needs_citations, through_api=sit.api is not None,
                             window_tokens=serving_window(sit)[0], compare_api=compare is not None,
                             api_name=compare.name if compare else "", api_monthly_usd=round(compare_usd, 2)),
        lang=LanguageFacts(multilingual=not set(a.languages) <= {"en"}, n_languages=len(set(a.languages)),
                           model_covers=covers_languages(sit.model.name, a.languages)),
        deploy=DeployFacts(edge=a.deployment == "edge", memory_gib=sit.edge_memory_gb,
                           model_4bit_gib=round(count_params(sit.model).n_params * 0.5 / 1e9, 2)),
        constraints=ConstraintFacts(no_external_api=a.no_external_api,
                                    open_weights_acceptable=a.open_weights_acceptable),
        tried=_tried_facts(a),
        task=TaskFacts(type=a.task_type, n_tasks=a.n_tasks,
                       fewest_examples=min((t.n_examples for t in sit.tasks), default=sit.n_examples)),
        alignment=AlignmentFacts(keep=a.keep_alignment),
        provider=_provider_facts(sit, estimates["provider_tuning"]),
        distill=_distill_facts(sit, estimates["distillation"]),
        cpt=_cpt_facts(sit, estimates["continued_pretraining"]),
        **options,
    )


def _cpt_facts(sit: Situation, est: OptionEstimate) -> CptFacts:
    """The domain gap and the corpus size continued pretraining would train on."""
    pred = est.steps_before[0].prediction if est.steps_before else None
    return CptFacts(base_lacks_domain=sit.answers.base_lacks_domain, corpus_tokens=sit.corpus_tokens,
                    usd=round(pred.usd or 0.0, 2) if pred else 0.0)


def _distill_facts(sit: Situation, est: OptionEstimate) -> DistillFacts:
    """The teacher and the break-even volume of the distillation estimate."""
    from advisor.core.estimate.serving import DAYS_PER_MONTH

    a = sit.answers
    pred = est.distill_prediction
    even = pred.break_even_requests_per_month if pred else None
    return DistillFacts(
        has_teacher=pred is not None, teacher_does_task=pred is not None and a.teacher_does_task,
        teacher_api=pred is not None and pred.teacher_kind == "api",
        teacher_usd=round(pred.teacher_usd or 0.0, 2) if pred else 0.0,
        requests_per_month=a.requests_per_day * DAYS_PER_MONTH,
        break_even_requests_per_month=math.inf if even is None else round(even, 1),
        logit_level=getattr(est.step, "distill_teacher", None) is not None)


def _qlora_16bit_share(sit: Situation) -> float:
    from advisor.core.estimate.memory import BNB_UNQUANTIZED_ARCHS
    from advisor.core.estimate.params import count_params, nf4_bytes

    if sit.model.arch in BNB_UNQUANTIZED_ARCHS:
        return 1.0
    total = count_params(sit.model).n_params
    return round(nf4_bytes(sit.model, True).unquantized_bytes / 2 / total, 4) if total else 0.0


def _tried_facts(a) -> TriedFacts:  # noqa: ANN001
    """What was tried: failed (skipped) or close (its next step gains), from the name or how far it got."""
    attempts = a.attempts()

    def close(method: str) -> bool:
        t = attempts.get(method)
        if t is None:
            return False
        return t.outcome == "partly" if t.outcome else (t.reached is not None and t.reached >= CLOSE_SHARE)

    few, rag = attempts.get("few_shot"), attempts.get("rag")
    return TriedFacts(
        zero_shot="zero_shot" in attempts and not close("zero_shot"),
        few_shot="few_shot" in attempts and not close("few_shot"),
        rag="rag" in attempts and not close("rag"),
        fine_tuning="fine_tuning" in attempts,
        zero_shot_close=close("zero_shot"), few_shot_close=close("few_shot"), rag_close=close("rag"),
        few_shot_reached=few.reached if few is not None and few.reached is not None else -1.0,
        rag_recall=rag.recall if rag is not None and rag.recall is not None else -1.0,
    )


def _provider_facts(sit: Situation, est: OptionEstimate) -> ProviderFacts:
    """The serving API's provider-side tuning: its estimated price, its deadline against `sit.today`."""
    service = provider_service(sit)
    if service is None:
        return ProviderFacts(known=False, model="", open=False, days_left=0.0, last_day="", tuning_usd=0.0,
                             tuned_monthly_usd=0.0, meets_minimum=False)
    until = service.new_jobs_until
    return ProviderFacts(
        known=True, model=service.model, open=service.open_on(sit.today),
        days_left=math.inf if until is None else float((until - sit.today).days),
        last_day=until.isoformat() if until else "", tuning_usd=round(est.one_time_usd, 2),
        tuned_monthly_usd=round(est.monthly_usd, 2), meets_minimum=sit.n_examples >= service.min_examples)
