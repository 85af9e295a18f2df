"""What a team tells the advisor: the questionnaire's answers (`answers.yaml`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from advisor.core.models.base import Model

__all__ = [
    "Answers", "Deployment", "ExampleSource", "Freshness", "Goal", "GpuAnswer", "ModelAccess", "TaskAnswer", "TaskType",
    "Tried", "TriedAttempt",
]


Goal = Literal["knowledge", "style_format", "reasoning", "safety_alignment"]


Freshness = Literal["static", "quarterly", "monthly", "weekly", "daily", "realtime"]


ModelAccess = Literal["open_weights", "closed_api_with_tuning", "closed_api_no_tuning"]


Deployment = Literal["server", "edge"]


Tried = Literal["zero_shot", "few_shot", "rag", "fine_tuning"]


TaskType = Literal["generation", "extraction", "classification", "tool_calling"]


ExampleSource = Literal["human", "synthetic", "distilled"]


Outcome = Literal["failed", "partly"]

# Upper bounds on the answers: each far above any real fine-tuning or serving job, so that a typo (`1e300`,
# an extra six zeros) is an error naming the field rather than an estimate of 10^290 dollars or an hours-long
# computation. NaN and infinity are refused on every number (`allow_inf_nan=False`).
MAX_COUNT = 10**9  # examples or preference pairs: a billion is a pretraining corpus, not a fine-tuning set
MAX_DOCUMENTS = 10**10  # documents: above a full web crawl (Common Crawl: ~3 billion pages per crawl)
MAX_CORPUS_TOKENS = 10**14  # tokens: ~3x the largest published pretraining corpora (~36 trillion)
# Tokens in one example, prompt or answer: 2^21, the longest window served through an API (Gemini 1.5 Pro,
# 2M); it also keeps a five-shot prompt plus its answer under the estimator's 2^24-token sequence bound.
MAX_TOKENS_PER_ITEM = 2_097_152
MAX_USD = 10**10  # ten billion USD: above any training budget
MAX_REQUESTS_PER_DAY = 10**11  # 10x the busiest web search engine's daily queries
MAX_LATENCY_MS = 86_400_000  # one day
MAX_GPUS = 100_000  # the largest training clusters
MAX_TEXT_CHARS = 2_000  # `task` is one line for the report
MAX_PATH_CHARS = 4_096  # PATH_MAX on Linux
MAX_EDGE_MEMORY_GB = 1_024  # an edge box with a terabyte is a server
MAX_HOST_MEMORY_GB = 65_536  # 64 TB: above the largest single-node servers



class GpuAnswer(Model):
    """GPUs the team owns (or has reserved) for this work."""

    model_config = ConfigDict(allow_inf_nan=False)

    type: str = Field(max_length=200, description="GPU name from `advisor gpus`, e.g. `a100-80gb`")
    count: int = Field(1, le=MAX_GPUS, description="How many of them one job may use")
    host_memory_gb: float | None = Field(
        None, gt=0, le=MAX_HOST_MEMORY_GB, description="RAM of the machine the GPUs sit in, where CPU offload keeps "
        "the sharded parameters and optimizer state; None: 64 GB assumed (a common 2-4 GPU workstation)",
    )

    @model_validator(mode="after")
    def _check(self) -> GpuAnswer:
        if self.count < 1:
            raise ValueError(
                f"count must be at least 1 when a GPU type is given (got {self.count}); "
                "with no GPU of your own, leave `gpu` out (null) and renting is considered"
            )
        return self



class TriedAttempt(Model):
    """One approach already tried, with how far it got (the plain name alone means it failed)."""

    model_config = ConfigDict(allow_inf_nan=False)

    method: Tried
    reached: float | None = Field(
        None, ge=0, le=1, description="Share of the target quality it reached (0.8: 80% of the target accuracy)"
    )
    outcome: Outcome | None = Field(
        None, description="failed or partly (got close); None: read from `reached`, else failed"
    )
    recall: float | None = Field(
        None, ge=0, le=1, description="rag: share of questions whose source was retrieved (`advisor rag eval`)"
    )

    @model_validator(mode="after")
    def _check(self) -> TriedAttempt:
        if self.recall is not None and self.method != "rag":
            raise ValueError("recall applies to method: rag only")
        return self



# A task's name is the name its adapter is served under (`--lora-modules billing=...`): a slug.
TASK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class TaskAnswer(Model):
    """One of several tasks (or tenants) served from one base, each trained on its own examples."""

    model_config = ConfigDict(allow_inf_nan=False)

    name: str = Field(max_length=63, description="Served model name of its adapter: lower-case letters, digits, "
                      "`-`, `_` (e.g. `billing`)")
    examples_path: str | None = Field(
        None, max_length=MAX_PATH_CHARS, description="JSON Lines file of this task's examples; when given, measured"
    )
    n_examples: int = Field(0, ge=0, le=MAX_COUNT, description="This task's examples (measured from examples_path)")
    task: str = Field("", max_length=MAX_TEXT_CHARS, description="One line on this task, for the report")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not TASK_NAME.fullmatch(value):
            raise ValueError(f"task name {value!r} must be lower-case letters, digits, `-` or `_`, starting with a "
                             "letter or digit (it is the adapter's served model name), e.g. `billing`")
        return value


class Answers(Model):
    """The questionnaire's answers; `answers.yaml` holds exactly these fields."""

    model_config = ConfigDict(allow_inf_nan=False)

    goal: list[Goal] = Field(
        min_length=1,
        description="What must improve: knowledge (facts the model lacks), style_format (tone, structure, "
        "output format), reasoning (a task it does badly), safety_alignment (refusals, preferences)",
    )
    task: str = Field("", max_length=MAX_TEXT_CHARS, description="One line on the task, for the report")
    n_examples: int = Field(0, ge=0, le=MAX_COUNT, description="Supervised input→output examples available")
    examples_path: str | None = Field(
        None, max_length=MAX_PATH_CHARS, description="JSON Lines file of examples; when given, it is measured"
    )
    data_quality: Literal["clean", "noisy"] = Field(
        "clean", description="Are the examples checked and consistent?"
    )
    mean_example_tokens: int | None = Field(
        None, ge=1, le=MAX_TOKENS_PER_ITEM,
        description="Mean tokens per example; None: measured from examples_path, else assumed",
    )
    n_preference_pairs: int = Field(
        0, ge=0, le=MAX_COUNT, description="Chosen/rejected answer pairs available (for DPO)"
    )
    preferences_path: str | None = Field(
        None, max_length=MAX_PATH_CHARS,
        description="JSON Lines of prompt/chosen/rejected; measured when given",
    )
    n_documents: int = Field(
        0, ge=0, le=MAX_DOCUMENTS, description="Documents in the knowledge source (0: none)"
    )
    corpus_tokens: int | None = Field(
        None, ge=0, le=MAX_CORPUS_TOKENS, description="Size of the knowledge source in tokens; None: unknown"
    )
    corpus_path: str | None = Field(
        None, max_length=MAX_PATH_CHARS, description="Folder of documents; when given, it is measured"
    )
    freshness: Freshness = Field("static", description="How often the knowledge changes")
    needs_citations: bool = Field(False, description="Answers must point at their sources")
    model_access: ModelAccess = Field(
        "open_weights", description="Open weights you can run, or a closed API (with or without tuning)"
    )
    base_model: str | None = Field(
        None, max_length=MAX_PATH_CHARS, description="Catalog name, HF id or path; None: the advisor picks"
    )
    gpu: GpuAnswer | None = Field(None, description="GPUs you own; None: none (renting is considered)")
    allow_renting: bool = Field(True, description="Renting cloud GPUs within the budget is acceptable")
    budget_usd: float = Field(0, ge=0, le=MAX_USD, description="One-time budget for training and set-up, USD")
    requests_per_day: float = Field(0, ge=0, le=MAX_REQUESTS_PER_DAY, description="Expected requests per day")
    latency_p95_ms: int | None = Field(
        None, ge=1, le=MAX_LATENCY_MS, description="95th-percentile latency target; None: no target"
    )
    prompt_tokens: int | None = Field(
        None, ge=1, le=MAX_TOKENS_PER_ITEM, description="Tokens in today's prompt; None: assumed"
    )
    output_tokens: int = Field(300, ge=1, le=MAX_TOKENS_PER_ITEM, description="Tokens in a typical answer")
    api_model: str | None = Field(
        None, max_length=200, description="API model used today or to compare with (`advisor gpus --api`)"
    )
    eval_questions_path: str | None = Field(
        None, max_length=MAX_PATH_CHARS,
        description="JSON Lines of questions with the source file or text that answers each; evaluates retrieval",
    )
    # Decision v2 inputs: each has a default that keeps the answer it gave before it existed.
    languages: list[str] = Field(
        ["en"], min_length=1, max_length=50,
        description="ISO 639-1 codes of the languages the answers and documents are in, e.g. [en, de]",
    )
    deployment: Deployment = Field(
        "server", description="Where the model runs: a server, or an edge/on-device target without a network"
    )
    edge_memory_gb: float | None = Field(
        None, gt=0, le=MAX_EDGE_MEMORY_GB, description="Edge target: memory the model may take, in GB"
    )
    no_external_api: bool = Field(
        False, description="Data residency: no request or document may leave for an external API"
    )
    open_weights_acceptable: bool = Field(
        False, description="A closed model is used today, but moving to open weights is acceptable"
    )
    tried: list[Tried | TriedAttempt] = Field(
        [], description="Approaches already tried that did not reach the target: a name (it failed: skipped), or "
        "{method, reached: share of the target, outcome: failed|partly, recall (rag)} (one that got close makes its "
        "next step more attractive)",
    )
    task_type: TaskType = Field(
        "generation", description="generation, extraction, classification or tool_calling (structured output)"
    )
    example_source: ExampleSource = Field(
        "human", description="Where the examples come from: human-written, synthetic, or distilled from a teacher"
    )
    usable_fraction: float | None = Field(
        None, gt=0, le=1, description="Share of the examples that survive filtering; None: 1 when clean"
    )
    keep_alignment: bool = Field(
        False, description="The base is an aligned chat model whose refusals must survive tuning"
    )
    n_tasks: int = Field(
        1, ge=1, le=MAX_COUNT, description="Separate tasks (or tenants) one served base model handles, each with "
        "its own tuned weights (prompt tuning and IA3 store a few hundred KB to a few MB per task)",
    )
    tasks: list[TaskAnswer] = Field(
        [], max_length=10_000, description="Several tasks (or tenants), each with its name and own examples: the "
        "plan trains one adapter per task on one base and serves them all; n_tasks is then their number",
    )
    teacher_model: str | None = Field(
        None, max_length=MAX_PATH_CHARS, description="A model that already does the task well, to distil into a "
        "smaller student: catalog name, HF id or API model; None: `api_model` when teacher_does_task",
    )
    teacher_does_task: bool = Field(
        False, description="The teacher (teacher_model, else api_model) already does the task at the target quality"
    )
    base_lacks_domain: bool = Field(
        False, description="The documents' domain or language is one the base model barely saw in pretraining "
        "(continued pretraining on them is then a candidate, given 10^8+ corpus tokens and the budget)",
    )

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        bad = [code for code in value if not re.fullmatch(r"[a-z]{2,3}", code)]
        if bad:
            raise ValueError(f"use ISO 639-1 codes like `en` or `de` (got {', '.join(map(repr, bad))})")
        return value

    @model_validator(mode="after")
    def _check_v2(self) -> Answers:
        if self.edge_memory_gb is not None and self.deployment != "edge":
            raise ValueError("edge_memory_gb applies to deployment: edge only")
        methods = [t if isinstance(t, str) else t.method for t in self.tried]
        if len(set(methods)) != len(methods):
            raise ValueError(f"tried names a method twice ({', '.join(methods)}): give each once")
        if self.teacher_does_task and self.teacher_model is None and self.api_model is None:
            raise ValueError("teacher_does_task needs a teacher: give teacher_model (or api_model)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _n_tasks_from_tasks(cls, data: object) -> object:
        """`n_tasks` left out with `tasks` given: their number."""
        if isinstance(data, dict) and isinstance(data.get("tasks"), list) and len(data["tasks"]) > 1 \
                and "n_tasks" not in data:
            return {**data, "n_tasks": len(data["tasks"])}
        return data

    @model_validator(mode="after")
    def _check_tasks(self) -> Answers:
        if not self.tasks:
            return self
        names = [t.name for t in self.tasks]
        if len(names) < 2:
            raise ValueError("tasks needs at least two entries (one task: give examples_path and n_examples instead)")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tasks names {', '.join(twice)} more than once: each task needs a name of its own")
        if self.n_tasks != len(names):
            raise ValueError(f"n_tasks is {self.n_tasks} but tasks lists {len(names)}: leave n_tasks out (it is "
                             "the number of tasks) or make them agree")
        if self.examples_path is not None:
            raise ValueError("examples_path and tasks both given: give each task's file as its own examples_path "
                             "under tasks, and leave the top-level examples_path out")
        stated = sum(t.n_examples for t in self.tasks)
        if self.n_examples and self.n_examples != stated:
            raise ValueError(f"n_examples is {self.n_examples:,} but the tasks' n_examples add up to {stated:,}: give "
                             "each task's count under tasks and leave the top-level n_examples out")
        if any(t.examples_path is None and not t.n_examples for t in self.tasks):
            missing = [t.name for t in self.tasks if t.examples_path is None and not t.n_examples]
            raise ValueError(f"tasks {', '.join(missing)} have no examples: give each an examples_path (or "
                             "n_examples), since each trains its own adapter")
        return self

    def attempts(self) -> dict[str, TriedAttempt]:
        """Each tried method with how far it got; a plain name is an attempt that failed."""
        return {a.method: a for a in (TriedAttempt(method=t) if isinstance(t, str) else t for t in self.tried)}
