"""What a prompting run leaves behind in `result.json`: the shots, the token budget, and zero- vs few-shot scores."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from advisor.core.models import Model
from backends.common.evaluation import PromptEvaluation, PromptScores
from backends.common.verdict import Verdict

__all__ = ["RESULT_FILE", "BudgetFit", "PromptEvaluation", "PromptResult", "PromptScores", "Shot"]

RESULT_FILE = "result.json"


class Shot(Model):
    """One example placed in the prompt."""

    line_number: int = Field(description="Line of the examples file it came from, 1-based")
    n_tokens: int = Field(description="Tokens it adds to the prompt (question and answer turns)")
    cluster_size: int = Field(description="Pool examples it stands for: those nearer to it than to any other shot")
    is_replacement: bool = Field(description="Its cluster's most central example did not fit the budget; this did")


class BudgetFit(Model):
    """How the prompt fits `max_prompt_tokens`."""

    max_prompt_tokens: int = Field(description="The plan's budget for the whole prompt")
    token_counter: str = Field(description="How tokens were counted: the model's tokenizer, or a stated heuristic")
    instructions_tokens: int = Field(description="System instructions (and context documents), rendered alone")
    shots_tokens: int = Field(description="What the shots add")
    reserved_tokens: int = Field(description="Room kept for a question and its answer: the longest example's turns")
    total_tokens: int = Field(description="Instructions, shots and the longest example together, rendered")
    n_shots_requested: int = Field(description="The plan's `n_shots`")
    n_clusters: int = Field(description="Clusters the pool was split into: `n_shots`, or fewer for a small pool")
    n_clusters_dropped: int = Field(description="Clusters with no example that fits the remaining budget")


class PromptResult(Model):
    """One prompting run, as written to `result.json`."""

    model: str = Field(description="As named in the plan")
    model_path: str | None = Field(description="Local folder the model was loaded from; None: not local")
    is_local_model: bool = Field(description="Weights are here, so the prompt could be evaluated")
    is_demo_model: bool = Field(description="The offline demonstration model: numbers show the pipeline, not quality")
    demo_note: str | None = Field(description="What the demonstration model is; None for a real model")
    data_format: str | None = Field(description="Format of the examples file; None: zero-shot without examples")
    n_examples: int = Field(description="Valid examples in the file")
    n_pool_examples: int = Field(description="Examples shots may be drawn from (the file less the held-out ones)")
    n_eval_examples: int = Field(description="Held out for evaluation; never used as shots")
    selection_method: Literal["embedding", "lexical", "none"] = Field(description="How the shots were chosen")
    selection_note: str = Field(description="The selection algorithm and features, in one sentence")
    shots: list[Shot] = Field(description="The shots, in prompt order")
    budget: BudgetFit
    evaluation: PromptEvaluation | None = Field(description="None: skipped; see `evaluation_note`")
    evaluation_note: str = Field(description="What was evaluated, or why nothing was")
    verdict: Verdict | None = Field(
        None, description="Zero-shot vs few-shot, paired tests on the held-out answers; None: no evaluation"
    )
    artifacts: dict[str, str] = Field(description="Files written, relative to the run folder")
    versions: dict[str, str] = Field(description="Versions of the packages the run used")
