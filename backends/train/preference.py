"""The verdict on a DPO step: does the policy prefer the chosen answers more than it did, and did it forget.

On each held-out pair, a model's preference margin is the mean log-probability per token of the chosen answer
minus that of the rejected one, both after the same prompt (the chat template the trainer used). Per token,
so that a shorter answer is not preferred for its length alone (the length bias of summed log-probabilities
that SimPO, Meng et al. 2024, arXiv:2405.14734, corrects for). The model "prefers the chosen answer" when its
margin is above 0.

Before = the model DPO started from (the SFT adapter, or the base), after = the trained policy. Paired tests
as for supervised steps (`backends.common.verdict.decide`): exact McNemar on "prefers the chosen answer",
paired bootstrap on the margin, and the regression suite on both models. torch loads inside.
"""

from __future__ import annotations

import time
from pathlib import Path

from backends.common.verdict import Verdict

__all__ = ["MATCH_NAME", "SCORE_NAME", "assess_preferences", "preference_margins"]

MATCH_NAME = "preference accuracy"
SCORE_NAME = "log-prob margin"
MAX_PAIRS = 40  # two forward passes per pair; bounded like the supervised verdict's held-out answers


def _mean_logprob(model, prompt_ids: list[int], answer_ids: list[int]) -> float:
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids + answer_ids], device=device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(prompt_ids) :].unsqueeze(1))
    return float(logprobs.mean())


def preference_margins(model_dir: str | Path, pairs: list[dict]) -> list[float]:
    """Per pair: mean log-prob per token of `chosen` minus that of `rejected`, given `prompt` (nats)."""
    from backends.common.chat import render_text
    from backends.common.evaluation import _load

    model, tokenizer, _ = _load(str(model_dir))
    eos = tokenizer.eos_token or ""
    margins = []
    for pair in pairs:
        prompt = render_text([{"role": "user", "content": pair["prompt"]}], tokenizer, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        chosen, rejected = (tokenizer(pair[k] + eos, add_special_tokens=False)["input_ids"]
                            for k in ("chosen", "rejected"))
        margins.append(_mean_logprob(model, prompt_ids, chosen) - _mean_logprob(model, prompt_ids, rejected))
    return margins


def assess_preferences(before_dir: str | Path, after_dir: str | Path, held_out: list[dict], seed: int = 0, *,
                       method: str | None = None, is_demo: bool = False) -> Verdict | None:
    """The DPO verdict on up to `MAX_PAIRS` held-out pairs; None when there are none.

    Args:
        before_dir: The model DPO started from (an SFT adapter folder, or the base model's folder).
        after_dir: The trained policy (adapter or full weights).
        held_out: Held-out `{prompt, chosen, rejected}` records.
        seed: Bootstrap seed.
        method: The policy's training method, to tailor the remedies.
        is_demo: The base is the demonstration model: the suite is capped and does not decide.
    """
    from backends.common.verdict import decide
    from backends.train.accuracy import suite_before_after

    pairs = held_out[:MAX_PAIRS]
    if not pairs:
        return None
    start = time.perf_counter()
    before = preference_margins(before_dir, pairs)
    after = preference_margins(after_dir, pairs)
    suite = suite_before_after(before_dir, after_dir, is_demo=is_demo, labels=("before DPO", "after DPO"))
    verdict = decide("before vs after DPO", [m > 0 for m in before], [m > 0 for m in after], before, after,
                     suite=suite, method=method, seed=seed, match_name=MATCH_NAME, score_name=SCORE_NAME)
    return verdict.model_copy(update={"wall_seconds": time.perf_counter() - start})
