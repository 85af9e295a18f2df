"""Recommend a path: `recommend(answers)` estimates every option, runs the rules and ranks the result."""

from advisor.core.recommend.decide import load_ruleset, recommend
from advisor.core.recommend.inputs import load_answers

__all__ = ["load_answers", "load_ruleset", "recommend"]
