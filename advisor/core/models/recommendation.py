"""What the advisor decides, with its evidence: options, reasons, break-even, the recommendation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from advisor.core.models.answers import Answers
from advisor.core.models.base import Model
from advisor.core.models.estimates import BenefitEstimate, ComputeEstimate, MemoryEstimate, ServingEstimate
from advisor.core.models.steps import DistillStep, PromptStep, RagStep, TrainStep

__all__ = [
    "PROVIDER_EXECUTED", "BreakEven", "CostCurve", "MeasuredData", "Option", "OptionName", "Reason", "Recommendation",
    "Severity",
]


OptionName = Literal["prompting", "prompting_few_shot", "rag", "lora", "qlora", "full", "dpo", "ia3", "prompt_tuning",
                     "provider_tuning", "distillation", "continued_pretraining"]
# Options the provider carries out on its own servers: priced and ranked, never a step of the plan.
PROVIDER_EXECUTED: tuple[OptionName, ...] = ("provider_tuning",)


Severity = Literal["info", "suggest", "warn", "block"]



class Reason(Model):
    """One rule that fired, as it applies to one option (or to the whole recommendation)."""

    rule_id: str = Field(description="Stable kebab-case id of the rule; `--skip-rule ID` turns it off")
    rationale: str = Field(description="Why the rule holds, in one sentence")
    source: str = Field(description="Seed article with a quote, or a paper/documentation reference")
    severity: Severity = Field(description="info | suggest | warn | block")
    effect: str = Field(description="What it did here: `excluded`, `score +10`, `stacked`, `warning`, `note`")
    message: str = Field("", description="A warning's text with the facts filled in; empty for other effects")



class Option(Model):
    """One path, estimated and judged: can it run, what it costs, what it buys, and the rules behind it."""

    name: OptionName
    feasible: bool = Field(description="No blocking rule fired")
    why_not: list[str] = Field(default_factory=list, description="Rationales of the blocking rules")
    score: float = Field(description="Benefit score plus every rule's adjustment; options rank by it")
    benefit: BenefitEstimate
    model: str = Field(description="Model the option runs on (catalog name, HF id, path or API model)")
    memory: MemoryEstimate | None = Field(None, description="Peak memory per GPU; None: nothing runs on your GPUs")
    gpu: str | None = Field(None, description="GPU the memory is judged against; None: none involved")
    gpu_memory_bytes: int | None = Field(None, description="Memory of that GPU")
    fits: bool | None = Field(None, description="Peak fits the GPU with 5% headroom; None: nothing to fit")
    step: Annotated[TrainStep | RagStep | PromptStep, Field(discriminator="kind")] | None = Field(
        None, description="The job as the plan will run it, with the prediction made for it; None: nothing to run"
    )
    steps_before: list[Annotated[DistillStep | TrainStep, Field(discriminator="kind")]] = Field(
        default_factory=list, description="Steps the plan runs before `step` (distillation: the teacher's answers; "
        "continued pretraining: the step on the documents)"
    )
    compute: ComputeEstimate | None = Field(None, description="Training FLOPs, hours and cost")
    one_time_usd: float = Field(ge=0, description="Set-up cost: training compute, or embedding the corpus")
    out_of_pocket_usd: float = Field(ge=0, description="The part of one_time_usd paid to others (0 on owned GPUs)")
    monthly_usd: float = Field(ge=0, description="Running cost per month at the stated volume")
    serving: ServingEstimate | None = Field(None, description="How monthly_usd was computed")
    prompt_tokens: int = Field(ge=0, description="Tokens sent with each request")
    payback_months: float | None = Field(
        None, description="Months for the saving over few-shot prompting to repay the extra set-up; None: never"
    )
    reasons: list[Reason] = Field(default_factory=list, description="Every rule that fired for this option")
    assumptions: list[str] = Field(default_factory=list, description="Constants and choices behind the costs")



class BreakEven(Model):
    """When the option that is cheapest to start stops being the cheaper one."""

    cheapest_to_start: OptionName
    cheapest_to_run: OptionName
    months: float | None = Field(None, description="Months until the extra set-up cost is repaid; None: never")
    requests_per_day: float | None = Field(
        None, description="Volume above which the cheaper-to-run option wins over the horizon; None: not found"
    )
    horizon_months: int = Field(description="Horizon of the volume break-even")
    note: str = Field(description="The break-even in words")



class CostCurve(Model):
    """Monthly cost of each feasible option over a range of request volumes."""

    requests_per_day: list[float]
    monthly_usd: dict[str, list[float]] = Field(description="Option name → monthly USD at each volume")



class MeasuredData(Model):
    """What was read from the paths in the answers (None where no path was given)."""

    n_examples: int | None = None
    mean_example_tokens: int | None = None
    n_invalid_example_lines: int = 0
    n_preference_pairs: int | None = None
    mean_preference_tokens: int | None = None
    n_documents: int | None = None
    corpus_tokens: int | None = None
    n_unmeasured_documents: int = Field(0, description="Files counted but not sized (PDF and other binaries)")
    notes: list[str] = Field(default_factory=list, description="How each number was measured")



class Recommendation(Model):
    """The advisor's answer: the primary path, what to stack with it, every option ranked, and why."""

    advisor_version: str
    rules_version: str
    task: str = ""
    primary: OptionName
    stack: list[OptionName] = Field(description="Paths to combine, primary first")
    options: list[Option] = Field(description="Every path, best first; infeasible ones last")
    warnings: list[Reason] = Field(default_factory=list)
    break_even: BreakEven | None = None
    cost_curve: CostCurve | None = None
    skipped_rules: list[str] = Field(default_factory=list)
    facts: dict[str, bool | int | float | str] = Field(default_factory=dict, description="Every fact the rules saw")
    measured: MeasuredData | None = None
    answers: Answers
    assumptions: list[str] = Field(default_factory=list)

    def option(self, name: str) -> Option:
        """The option called `name`."""
        return next(o for o in self.options if o.name == name)
