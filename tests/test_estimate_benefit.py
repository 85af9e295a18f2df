"""Benefit priors: the evidence table scaled by data volume and quality, with labels and citations."""

from __future__ import annotations

import pytest

from advisor.core.estimate.benefit import EVIDENCE, PRIORS, data_factor, estimate_benefit


@pytest.mark.parametrize(
    ("case", "option", "goals", "n_examples", "n_pairs", "clean", "score", "label"),
    [
        ("rag for facts", "rag", ["knowledge"], 0, 0, True, 85, "high"),
        ("lora for facts", "lora", ["knowledge"], 5000, 0, True, 20, "low"),
        ("lora for form, thousands", "lora", ["style_format"], 3000, 0, True, 85, "high"),
        ("lora for form, hundreds", "lora", ["style_format"], 300, 0, True, 59.5, "medium"),
        ("lora for form, 40 examples", "lora", ["style_format"], 40, 0, True, 25.5, "low"),
        ("lora for form, noisy", "lora", ["style_format"], 3000, 0, False, 42.5, "medium"),
        ("lora, under 10 examples", "lora", ["style_format"], 9, 0, True, 0, "low"),
        ("few-shot for form", "prompting_few_shot", ["style_format"], 40, 0, True, 55, "medium"),
        ("few-shot with nothing to show", "prompting_few_shot", ["style_format"], 0, 0, True, 0, "low"),
        ("dpo, 4000 pairs", "dpo", ["safety_alignment"], 0, 4000, True, 80, "high"),
        ("dpo, 200 pairs", "dpo", ["safety_alignment"], 0, 200, True, 32, "low"),
        ("two goals average", "lora", ["knowledge", "style_format"], 5000, 0, True, 52.5, "medium"),
    ],
)
def test_benefit_table(case, option, goals, n_examples, n_pairs, clean, score, label) -> None:  # noqa: ANN001
    benefit = estimate_benefit(option, goals, n_examples, n_pairs, clean)
    assert benefit.score == pytest.approx(score), case
    assert benefit.label == label, case
    assert benefit.evidence and all(":" in e for e in benefit.evidence)


def test_small_corpus_in_context_makes_prompting_carry_facts() -> None:
    without = estimate_benefit("prompting", ["knowledge"], 0, 0, True, corpus_in_context=False)
    within = estimate_benefit("prompting", ["knowledge"], 0, 0, True, corpus_in_context=True)
    assert without.label == "low" and within.label == "high"
    assert any("Contextual Retrieval" in e for e in within.evidence)


def test_every_prior_cites_known_evidence_and_covers_every_option() -> None:
    for goal, row in PRIORS.items():
        assert set(row) == {"prompting", "prompting_few_shot", "rag", "lora", "qlora", "full", "dpo", "ia3",
                            "prompt_tuning"}, goal
        for score, says, ids in row.values():
            assert 0 <= score <= 100 and says and ids and set(ids) <= set(EVIDENCE)


def test_data_factor_grows_with_data() -> None:
    factors = [data_factor("lora", n, 0, True)[0] for n in (0, 10, 100, 1000, 100000)]
    assert factors == sorted(factors) and factors[0] == 0 and factors[-1] == 1
