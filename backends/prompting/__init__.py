"""Prompting backend: few-shot examples chosen for coverage within a token budget, scored against zero-shot.

`check(step, run_dir, base_dir=...)` finds bad input cheaply; `run(step, run_dir, base_dir=...)` writes the prompt
template and `result.json`. Nothing heavy is imported here: numpy, torch, transformers and sentence-transformers
load inside the functions.
"""

from backends.prompting.results import BudgetFit, PromptEvaluation, PromptResult, PromptScores, Shot
from backends.prompting.run import check, run

__all__ = ["BudgetFit", "PromptEvaluation", "PromptResult", "PromptScores", "Shot", "check", "run"]
