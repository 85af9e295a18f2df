"""Expected benefit of each path for the stated goals: priors from published evidence, scaled by the data.

    score(path) = mean over goals of PRIOR[goal][path] × data factor(path)

PRIOR is a 0-100 score per goal and path, read off the evidence table of shared/research/decision-rules.md §2
(E-ids below) and the seed articles; the point ranges quoted are what those papers measured in their
settings, not a promise for this task. The data factor scales paths that learn from examples:

    supervised fine-tuning (lora, qlora, full)   < 10 examples: 0 (OpenAI SFT guide: minimum 10)
                                                 10-99: 0.3 (seed 001: "fewer than 100 clean examples,
                                                 fine-tuning is unlikely to help")
                                                 100-999: 0.7 (LIMA E11: ~1k curated examples suffice)
                                                 ≥ 1000: 1.0 (Microsoft: "thousands of high-quality samples")
    DPO                                          0 pairs: 0; < 500: 0.4; ≥ 500: 1.0 (OpenPipe: at least 500 rows)
    few-shot prompting                           0 examples: 0 (nothing to show); 1-2: 0.6; ≥ 3: 1.0
                                                 (seed 000: "include 3-5 examples")
    noisy data                                   × 0.5 on fine-tuning and DPO (Google Vertex: "quality of the
                                                 dataset is far more important than the quantity")

Label: low below 35, medium below 65, high from 65. The factors and the label cut-offs are judgement, stated
here so that they can be argued with; they are not measured.
"""

from __future__ import annotations

from collections.abc import Sequence

from advisor.core.models import BenefitEstimate, BenefitLabel, Goal, OptionName

__all__ = ["EVIDENCE", "PRIORS", "benefit_label", "data_factor", "estimate_benefit"]

EVIDENCE = {
    "E1": "Ovadia et al. 2024, Fine-Tuning or Retrieval?, arXiv:2312.05934, Table 1",
    "E2": "Ovadia et al. 2024, arXiv:2312.05934, Table 2 (new facts)",
    "E3": "Soudani et al. 2024, Fine Tuning vs. RAG for Less Popular Knowledge, arXiv:2403.01432",
    "E4": "Gekhman et al. 2024, Does Fine-Tuning on New Knowledge Encourage Hallucinations?, arXiv:2405.05904",
    "E6": "Hu et al. 2022, LoRA, arXiv:2106.09685, Table 4",
    "E7": "Hu et al. 2022, arXiv:2106.09685, Table 16 (low-data regime)",
    "E8": "Biderman et al. 2024, LoRA Learns Less and Forgets Less, arXiv:2405.09673",
    "E9": "Dettmers et al. 2023, QLoRA, arXiv:2305.14314, Tables 3-4",
    "E11": "Zhou et al. 2023, LIMA, arXiv:2305.11206",
    "E12": "Rafailov et al. 2023, DPO, arXiv:2305.18290",
    "E14": "Le Scao & Rush 2021, How Many Data Points is a Prompt Worth?, NAACL",
    "E16": "Anyscale 2023, Fine-tuning Llama-2: a comprehensive case study",
    "A1": "Anthropic, Introducing Contextual Retrieval (knowledge bases under 200k tokens fit the prompt)",
    "S0": "seed 000_9b14d88f84fd27db.txt (Customizing LLMs: Fine-Tuning, Adapters, and Prompts Explained)",
    "S1": "seed 001_01edf7ba5286cd2c.txt (LLM Fine-Tuning: When, Why, and How)",
}

# IA3 and prompt tuning learn from the same examples; the rules (rules/method.yaml) score what they give up
# against LoRA (Lester et al. 2021; Liu et al. 2022; seed 000: "more parameter-efficient than LoRA but generally
# less capable").
SFT_PATHS = ("lora", "qlora", "full", "ia3", "prompt_tuning")

# PRIOR[goal][path] = (score 0-100, what the evidence says, evidence ids)
_SFT_KNOWLEDGE = (20, "fine-tuning on facts: -13…+11 pts on knowledge QA, and more hallucination on unknown facts",
                  ("E1", "E2", "E4"))
_SFT_STYLE = (85, "+40…+47 pts on structured output (Llama-2-13B), LoRA on par with full fine-tuning",
              ("E16", "E6", "E7", "E9"))
_SFT_REASONING = (65, "+19 pts on GSM8k after fine-tuning, smaller than on structure; expert demonstrations needed",
                  ("E16", "E8", "S0"))
_SFT_SAFETY = (50, "supervised refusals move boundaries but need the refusal share right", ("S0",))
PRIORS: dict[Goal, dict[OptionName, tuple[int, str, tuple[str, ...]]]] = {
    "knowledge": {
        "prompting": (15, "a prompt brings no facts the model lacks", ("S1",)),
        "prompting_few_shot": (15, "examples show form, not missing facts", ("S1",)),
        "rag": (85, "+2…+12 pts where the model partly knows the domain, +23…+42 pts on new facts", ("E1", "E2", "E3")),
        "lora": _SFT_KNOWLEDGE, "qlora": _SFT_KNOWLEDGE, "full": _SFT_KNOWLEDGE,
        "ia3": _SFT_KNOWLEDGE, "prompt_tuning": _SFT_KNOWLEDGE,
        "dpo": (5, "preference pairs teach no facts", ("E12",)),
    },
    "style_format": {
        "prompting": (35, "instructions alone often drift on format", ("S0",)),
        "prompting_few_shot": (55, "a prompt with examples is worth ~90-3,500 labelled examples", ("E14", "S0")),
        "rag": (5, "retrieval adds facts, not form", ("S1",)),
        "lora": _SFT_STYLE, "qlora": _SFT_STYLE, "full": _SFT_STYLE, "ia3": _SFT_STYLE, "prompt_tuning": _SFT_STYLE,
        "dpo": (40, "preference pairs can steer tone, usually after SFT", ("E12",)),
    },
    "reasoning": {
        "prompting": (35, "chain-of-thought prompting reduces logic errors", ("S0",)),
        "prompting_few_shot": (50, "worked examples in the prompt", ("E14", "S0")),
        "rag": (5, "retrieval does not teach a procedure", ("S1",)),
        "lora": _SFT_REASONING, "qlora": _SFT_REASONING, "full": _SFT_REASONING,
        "ia3": _SFT_REASONING, "prompt_tuning": _SFT_REASONING,
        "dpo": (20, "preference optimisation of answers, not of reasoning steps", ("E12",)),
    },
    "safety_alignment": {
        "prompting": (30, "a system-prompt policy is the first, reversible step", ("S0",)),
        "prompting_few_shot": (35, "examples of refusals in the prompt", ("S0",)),
        "rag": (5, "retrieval does not change refusal behaviour", ("S0",)),
        "lora": _SFT_SAFETY, "qlora": _SFT_SAFETY, "full": _SFT_SAFETY,
        "ia3": _SFT_SAFETY, "prompt_tuning": _SFT_SAFETY,
        "dpo": (80, "DPO matches or beats PPO-RLHF (61.7% vs 57.0% win rate on TL;DR)", ("E12", "S0")),
    },
}
# The prompting prior for knowledge when the whole corpus fits in the prompt (Anthropic, under 200k tokens).
IN_CONTEXT_KNOWLEDGE = (75, "the whole knowledge source fits in the prompt", ("A1",))

SFT_STEPS = ((10, 0.3), (100, 0.7), (1000, 1.0))  # (at least n examples, factor)
DPO_STEPS = ((1, 0.4), (500, 1.0))
FEW_SHOT_STEPS = ((1, 0.6), (3, 1.0))
NOISY_FACTOR = 0.5
LABEL_CUTS = ((65, "high"), (35, "medium"))


def _step(n: int, steps: Sequence[tuple[int, float]]) -> float:
    factor = 0.0
    for at_least, value in steps:
        if n >= at_least:
            factor = value
    return factor


def data_factor(option: OptionName, n_examples: int, n_preference_pairs: int, is_clean: bool) -> tuple[float, str]:
    """How much of the prior the data supports, and why (1.0 for paths that need no data)."""
    quality = 1.0 if is_clean else NOISY_FACTOR
    noisy = "" if is_clean else f" × {NOISY_FACTOR} for noisy data"
    if option in SFT_PATHS:
        factor = _step(n_examples, SFT_STEPS) * quality
        return factor, f"{n_examples:,} examples: data factor {factor:.2f}{noisy}"
    if option == "dpo":
        factor = _step(n_preference_pairs, DPO_STEPS) * quality
        return factor, f"{n_preference_pairs:,} preference pairs: data factor {factor:.2f}{noisy}"
    if option == "prompting_few_shot":
        factor = _step(n_examples, FEW_SHOT_STEPS)
        return factor, f"{n_examples:,} examples to choose shots from: data factor {factor:.2f}"
    return 1.0, "needs no training data"


def benefit_label(score: float) -> BenefitLabel:
    """low / medium / high from a 0-100 score."""
    for cut, label in LABEL_CUTS:
        if score >= cut:
            return label  # type: ignore[return-value]
    return "low"


def estimate_benefit(
    option: OptionName,
    goals: Sequence[Goal],
    n_examples: int,
    n_preference_pairs: int,
    is_clean: bool,
    corpus_in_context: bool = False,
) -> BenefitEstimate:
    """The expected benefit of `option` for `goals`, as a prior with its evidence.

    Args:
        option: The path.
        goals: What must improve (each counts equally).
        n_examples: Supervised examples available.
        n_preference_pairs: Chosen/rejected pairs available.
        is_clean: The examples are checked and consistent.
        corpus_in_context: The whole knowledge source fits in the prompt (prompting then carries the facts).

    Returns:
        Score 0-100, its label, a per-goal summary, the evidence rows and how the data scaled the prior.
    """
    factor, factor_note = data_factor(option, n_examples, n_preference_pairs, is_clean)
    scores, parts, evidence_ids = [], [], []
    for goal in goals:
        prior, says, ids = PRIORS[goal][option]
        if goal == "knowledge" and corpus_in_context and option in ("prompting", "prompting_few_shot"):
            prior, says, ids = IN_CONTEXT_KNOWLEDGE
        scores.append(prior * factor)
        parts.append(f"{goal}: {says} (prior {prior})")
        evidence_ids += [i for i in ids if i not in evidence_ids]
    score = round(sum(scores) / len(scores), 1)
    return BenefitEstimate(
        score=score,
        label=benefit_label(score),
        summary="; ".join(parts),
        evidence=[f"{i}: {EVIDENCE[i]}" for i in evidence_ids],
        assumptions=[factor_note, "goals weigh equally; priors are judgement read off the cited evidence"],
    )
