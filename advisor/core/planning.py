"""The executable plan: Recommendation → Plan, and `plan.yaml` loaded (validated, paths absolute) and saved.

The recommendation already carries every step as the job it estimated (with its prediction); planning orders
them, links a DPO step to the adapter of the SFT step before it, ends a plan that trains with a serve step
(serving configurations and exports of what was trained), and names the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from advisor.core.errors import AdvisorError
from advisor.core.models.plan import STEP_MODELS, Plan, PlanStep, slug
from advisor.core.models.steps import SOFT_PROMPT_METHODS
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
    "predict_serving",
    "save_plan",
]

# Steps run in this order: supervised training, preference training on top, the index, then prompting.
STEP_ORDER = ("continued_pretraining", "full", "lora", "qlora", "ia3", "prompt_tuning", "dpo", "distillation", "rag", "prompting_few_shot", "prompting")
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
    `docs`) to edit before running. Provider-side tuning is no step: the provider runs it (the recommendation
    says what to upload); a stack of it alone has nothing to plan.
    """
    from advisor.core.models import PROVIDER_EXECUTED

    steps = []
    adapter = None
    handed_off = [name for name in rec.stack if name in PROVIDER_EXECUTED]
    for name in sorted((n for n in rec.stack if n not in PROVIDER_EXECUTED), key=STEP_ORDER.index):
        step = rec.option(name).step
        if step is None:
            raise AdvisorError(f"option `{name}` has nothing to run (no GPU fits it)", "see `advisor recommend`")
        if step.kind == "train" and step.method == "dpo" and adapter:
            step = step.model_copy(update={"init_adapter": adapter})
        if step.kind == "train" and step.method in ADAPTER_METHODS and not step.data_from:
            adapter = step.method
        steps += [*rec.option(name).steps_before, step]  # distillation: the teacher's answers, then the student
    if not steps and handed_off:
        # The provider trains and serves it: nothing here can run it, and no step pretends to.
        how = next((a for a in rec.option(handed_off[0]).assumptions if a.startswith("carried out by")), "")
        raise AdvisorError(f"`{handed_off[0]}` is carried out by the provider: the plan has no step to run",
                           how or "see `advisor recommend`")
    # Soft prompts have no form vLLM/SGLang load (and nothing to merge): no serve step for them alone.
    # A continued-pretraining step is not served: the SFT step after it (`base_model: continued`) is.
    trained = [(i, s) for i, s in enumerate(steps) if s.kind == "train" and s.method not in SOFT_PROMPT_METHODS
               and s.objective != "causal_lm"]
    if trained:
        steps = serve_trained(steps, trained, rec, answers)
    return Plan(name=slug(answers.task), rules_version=rec.rules_version, steps=steps)


def serve_trained(steps: list, trained: list, rec: Recommendation, answers: Answers) -> list:
    """The steps with LoRA steps merging (the export, loss-checked by the training backend) and a serve step last.

    The serve step's prediction is for the plan's model on the first training step's GPU at the answers' volume.
    With several tasks in the answers, one training step per task comes first: the serve step names each model
    after its task (one base + N adapters for LoRA/QLoRA).
    """
    from advisor.core.models import ServeStep

    steps = list(steps)
    for i, step in trained:
        policy = step.dpo_policy if step.method == "dpo" else step.method
        # IA3 too: vLLM and SGLang load its merged weights, not its vectors.
        if policy in (*ADAPTER_METHODS, "ia3") and not step.merge and step.eval_fraction > 0:
            steps[i] = step.model_copy(update={"merge": True})
    per_task = [s for _, s in trained if s.method != "dpo"]
    names = [t.name for t in answers.tasks] if answers.tasks and len(per_task) >= len(answers.tasks) else []
    serve = ServeStep(names=names)
    served = (*ADAPTER_METHODS, "full", "dpo", "ia3", "distillation", "continued_pretraining")  # what trains
    prompt_tokens = min((rec.option(name).prompt_tokens for name in rec.stack if name in served), default=0)
    from advisor.core.models import CONTINUED

    pretrained = next((s.base_model for s in steps if s.kind == "train" and s.objective == "causal_lm"), None)
    served = [s.model_copy(update={"base_model": pretrained}) if s.base_model == CONTINUED and pretrained else s
              for _, s in trained]  # sized as the base continued pretraining started from
    prediction = predict_serving(serve, served, requests_per_day=answers.requests_per_day,
                                 prompt_tokens=prompt_tokens, output_tokens=answers.output_tokens)
    return [*steps, serve.model_copy(update={"prediction": prediction})]


def predict_serving(serve, trained: list, *, requests_per_day: float = 0.0, prompt_tokens: float = 0.0,
                    output_tokens: float = 0.0):
    """The serve step's prediction for the training steps before it: their base model, on the first one's GPU
    (memory only when it names none); None when the catalog does not hold the architecture (offline)."""
    from advisor.core.catalog import resolve_gpu, resolve_model
    from advisor.core.estimate.params import lora_params
    from advisor.core.estimate.quantized import (
        format_from_config,
        format_from_engine,
        read_quantization_config,
    )
    from advisor.core.estimate.replica import estimate_serving

    if not trained:
        return None
    first = trained[0]
    try:
        model = resolve_model(first.base_model)
        gpu = resolve_gpu(first.prediction.gpu) if first.prediction else None
    except AdvisorError:
        return None
    adapters = [lora_params(model, s.lora_rank, s.lora_targets) for s in trained
                if (s.dpo_policy if s.method == "dpo" else s.method) in ADAPTER_METHODS]
    # The weights as the engine serves them: the serve step's `quantization`, else what a local base folder's
    # config.json stores (a GPTQ/AWQ/FP8 checkpoint), else 16-bit.
    stored = read_quantization_config(first.base_model)
    quant = format_from_engine(serve.quantization) or (format_from_config(stored) if stored else None)
    return estimate_serving(
        model, adapter_params=adapters, n_whole_models=len(trained) - len(adapters),
        max_model_len=serve.max_model_len or max(s.seq_len for s in trained), concurrency=serve.max_concurrency,
        gpu=gpu, requests_per_day=requests_per_day, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
        quant=quant, kv_cache_dtype=serve.kv_cache_dtype,
    )


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
    from advisor.core.models import RagStep, ServeStep, TrainStep

    steps, notes = [], []
    for i, step in enumerate(plan.steps, start=1):
        if step.prediction is None and isinstance(step, RagStep) and Path(step.docs_dir).is_dir():
            _, tokens, _ = measure_corpus(step.docs_dir)
            step = step.model_copy(update={"prediction": predict_index(step, tokens)})
        elif step.prediction is None and isinstance(step, ServeStep) and (
                serving := predict_serving(step, [s for s in steps if isinstance(s, TrainStep)])) is not None:
            step = step.model_copy(update={"prediction": serving})  # memory only: no GPU, no volume
        elif step.prediction is None and step.kind == "distill" and Path(step.prompts_path).is_file():
            from advisor.core.distilling import predict_distill

            step = step.model_copy(update={"prediction": predict_distill(step, plan.steps, i - 1)})
        elif step.prediction is None:
            notes.append(f"step {i}: no prediction before the run (a plan written by hand names no GPU)")
        steps.append(step)
    return plan.model_copy(update={"steps": steps}), notes
