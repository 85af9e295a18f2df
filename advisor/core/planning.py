"""The executable plan: Recommendation → Plan, and `plan.yaml` loaded (validated, paths absolute) and saved.

The recommendation already carries every step as the job it estimated (with its prediction); planning orders
them, links a DPO step to the adapter of the SFT step before it, and names the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from advisor.core.errors import AdvisorError
from advisor.core.models.plan import STEP_MODELS, Plan, PlanStep, slug
from advisor.core.paths import absolute_fields, absolute_step, relative_fields
from advisor.core.yamlio import load_yaml_file

if TYPE_CHECKING:
    from advisor.core.models import Answers, Recommendation

__all__ = [
    "DEFAULT_EMBEDDING_DIM",
    "Plan",
    "PlanStep",
    "STEP_ORDER",
    "absolute_plan",
    "build_plan",
    "load_plan",
    "predict_index",
    "predict_missing",
    "save_plan",
]

# Steps run in this order: supervised training, preference training on top, the index, then prompting.
STEP_ORDER = ("full", "lora", "qlora", "dpo", "rag", "prompting_few_shot", "prompting")
ADAPTER_METHODS = ("lora", "qlora")  # SFT steps whose adapter a later DPO step starts from
# Vector width of the default embedding model (all-MiniLM-L6-v2: 384), for the index-size prediction.
DEFAULT_EMBEDDING_DIM = 384


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; relative input paths are made absolute against the file's folder.

    Raises:
        AdvisorError: the file is missing or is not YAML.
        pydantic.ValidationError: a field is missing or invalid (the CLI lists them all).
    """
    path = Path(path)
    if not path.exists():
        raise AdvisorError(f"plan file `{path}` does not exist", "write one with `advisor plan answers.yaml -o plan.yaml`")
    data = load_yaml_file(path, "plan file")
    if not isinstance(data, dict):
        raise AdvisorError(f"`{path}` must hold a mapping with a `steps` list")
    steps = data.get("steps")
    if isinstance(steps, list):
        data = {**data, "steps": [absolute_fields(STEP_MODELS[s["kind"]], s, path.parent)
                                  if isinstance(s, dict) and s.get("kind") in STEP_MODELS else s for s in steps]}
    return Plan.model_validate(data)


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write `plan` as YAML, atomically (a crash leaves the old file or none, never half of one).

    Paths inside the plan file's folder are written relative to it, so the plan moves with its data; paths
    outside it stay absolute.
    """
    import yaml

    from advisor.core.fileio import write_text_atomic

    path = Path(path)
    data = plan.model_dump(mode="json")
    data["steps"] = [relative_fields(type(step), d, path.parent) for step, d in zip(plan.steps, data["steps"],
                                                                                     strict=True)]
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def absolute_plan(plan: Plan, base_dir: str | Path) -> Plan:
    """The plan with every relative input path made absolute against `base_dir` (an in-memory plan's folder)."""
    return plan.model_copy(update={"steps": [absolute_step(step, base_dir) for step in plan.steps]})


def build_plan(rec: Recommendation, answers: Answers) -> Plan:
    """Turn a recommendation's stack into the steps its options carry, in run order.

    A DPO step after a LoRA/QLoRA step starts from that step's adapter (`init_adapter: lora`, which the runner
    points at the adapter folder). Paths the answers did not give are placeholders (`data/train.jsonl`,
    `docs`) to edit before running.
    """
    steps = []
    adapter = None
    for name in sorted(rec.stack, key=STEP_ORDER.index):
        step = rec.option(name).step
        if step is None:
            raise AdvisorError(f"option `{name}` has nothing to run (no GPU fits it)", "see `advisor recommend`")
        if step.kind == "train" and step.method == "dpo" and adapter:
            step = step.model_copy(update={"init_adapter": adapter})
        if step.kind == "train" and step.method in ADAPTER_METHODS:
            adapter = step.method
        steps.append(step)
    return Plan(name=slug(answers.task), rules_version=rec.rules_version, steps=steps)


def predict_index(step, corpus_tokens: int):
    """The index step's prediction from the corpus size: chunks at its chunk size and overlap, then the sizing."""
    from advisor.core.estimate.index import estimate_index
    from advisor.core.models import RagPrediction

    stride = max(step.chunk_tokens - step.overlap_tokens, 1)
    n_chunks = -(-corpus_tokens // stride) if corpus_tokens > 0 else 0
    sized = estimate_index(max(n_chunks, 1), DEFAULT_EMBEDDING_DIM, step.index_type, step.chunk_tokens)
    return RagPrediction(corpus_tokens=corpus_tokens, n_chunks=n_chunks, embedding_dim=DEFAULT_EMBEDDING_DIM,
                         index_type=sized.index_type, index_bytes=sized.total_bytes if n_chunks else 0,
                         build_seconds=sized.build_seconds if n_chunks else 0.0)


def predict_missing(plan: Plan) -> tuple[Plan, list[str]]:
    """A hand-written plan's steps with the predictions that can be made without a recommendation, made now.

    An index is predicted from its documents folder, measured here. A training step's memory, time and cost
    need the GPU it was planned for, which a hand-written plan does not name: its backend predicts it for the
    device it runs on, and the report says so. Returns the plan and one note per step left unpredicted.
    """
    from advisor.core.measure import measure_corpus
    from advisor.core.models import RagStep

    steps, notes = [], []
    for i, step in enumerate(plan.steps, start=1):
        if step.prediction is None and isinstance(step, RagStep) and Path(step.docs_dir).is_dir():
            _, tokens, _ = measure_corpus(step.docs_dir)
            step = step.model_copy(update={"prediction": predict_index(step, tokens)})
        elif step.prediction is None:
            notes.append(f"step {i}: no prediction before the run (a plan written by hand names no GPU)")
        steps.append(step)
    return plan.model_copy(update={"steps": steps}), notes
