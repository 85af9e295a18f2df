"""Recommend a path: `recommend(answers)` estimates every option, runs the rules and ranks the result."""

from advisor.recommend.decide import load_ruleset, recommend
from advisor.recommend.inputs import load_answers

__all__ = ["load_answers", "load_ruleset", "recommend"]
