"""Serving backend: vLLM and SGLang configurations, Ollama Modelfiles and an OpenAI client for what a run trained,
with 16-bit and GGUF exports and the serving estimate (one base + N adapters against N separate models).

`BACKEND` describes it to the runner. Its link reads the earlier training steps' `result.json` (the adapter,
the merged model, the base it was trained on); nothing heavy is imported here.
"""

from __future__ import annotations

import json
from pathlib import Path

from advisor.core.models import CONTINUED, ServedModel, ServeStep, TrainStep
from backends.base import Backend, Problem, RunContext
from backends.serve.export import CONVERTER
from backends.serve.report import report_step
from backends.serve.results import ServeResult

__all__ = ["BACKEND"]

ADAPTER_POLICIES = ("lora", "qlora")  # adapters vLLM and SGLang serve beside the base
GENERIC_NAMES = ("train", "data", "examples", "dataset", "sft", "pairs")


def _label(step: ServeStep) -> str:
    return "serve"


def _describe(step: ServeStep) -> str:
    gguf = f", GGUF ({step.gguf_type}) via {step.llama_cpp_dir}" if step.llama_cpp_dir else ""
    return (f"vLLM, SGLang, Ollama and client files for the trained model(s), {step.dtype}, "
            f"{step.max_concurrency} concurrent sequences{gguf}")


def _check(step: ServeStep, ctx: RunContext) -> list[Problem]:
    import importlib.util

    problems = []
    if step.llama_cpp_dir and not (Path(step.llama_cpp_dir) / CONVERTER).is_file():
        problems.append(Problem(field="llama_cpp_dir", message=f"`{step.llama_cpp_dir}` is not a llama.cpp "
                                f"checkout (no `{CONVERTER}` in it)", hint="point `--llama-cpp` at the folder "
                                "of `git clone https://github.com/ggml-org/llama.cpp`"))
    missing = [m for m in ("torch", "safetensors", "transformers") if importlib.util.find_spec(m) is None]
    problems += [Problem(field="extras", message=f"`{m}` is not installed", hint='pip install "advisor[train]"')
                 for m in missing]
    for m in step.models:
        if m.lora_rank and m.lora_rank > 512:
            problems.append(Problem(field="models", message=f"`{m.name}` has LoRA rank {m.lora_rank}, above the "
                                    "largest vLLM serves (512)", hint="train with `lora_rank` ≤ 512"))
    return problems


def _name(step: TrainStep, index: int, taken: set[str]) -> str:
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(step.data_path).stem).strip("-.") or "model"
    name = stem if stem.lower() not in GENERIC_NAMES else f"{step.method}"
    return name if name not in taken else f"{name}-{index}"


def _link(step: ServeStep, earlier: list, *, for_check: bool = False) -> ServeStep:
    """Serve what the training steps before this one wrote: their adapters (or models), merged copies, ranks.

    Each training step's `result.json` names its adapter folder, merged folder and the base it loaded. With
    `for_check` (before anything ran) the steps that have not written theirs are left out.
    """
    if step.models:
        return step
    models: list[ServedModel] = []
    taken: set[str] = set()
    trained = [(i, s, folder) for i, (s, folder) in enumerate(earlier, start=1) if isinstance(s, TrainStep)]
    if any(s.base_model == CONTINUED for _, s, _ in trained):  # the SFT step on top is served, not the stage under it
        trained = [(i, s, folder) for i, s, folder in trained if s.objective != "causal_lm"]
    for n, (i, other, folder) in enumerate(trained):
        result_file = Path(folder) / "result.json"
        if not result_file.is_file():
            continue  # not trained yet (the check), or a failed step (the runner stops before this one)
        result = json.loads(result_file.read_text(encoding="utf-8"))
        artifacts = result.get("artifacts", {})
        policy = result.get("train_method", other.method)
        name = step.names[n] if n < len(step.names) else _name(other, i, taken)
        taken.add(name)
        merged = Path(folder) / artifacts["merged"] if artifacts.get("merged") else None
        path = Path(folder) / artifacts.get("model", other.output_dir)
        is_adapter = policy in ADAPTER_POLICIES
        if not is_adapter and policy != "full":
            if merged is None:
                continue  # soft prompts and unmerged IA3: no vLLM/SGLang form
            path, is_adapter = merged, False
        models.append(ServedModel(
            name=name, kind="adapter" if is_adapter else "model", path=str(path),
            base_path=result.get("base_model_path", other.base_model),
            merged_path=str(merged) if merged and is_adapter else None,
            lora_rank=other.lora_rank if is_adapter else None,
            seq_len=other.seq_len, step=i,
        ))
    return step.model_copy(update={"models": models})


def _run(step: ServeStep, ctx: RunContext) -> ServeResult:
    from backends.serve.run import run

    return run(step, ctx.step_dir)


BACKEND = Backend(kind="serve", step_model=ServeStep, result_model=ServeResult, label=_label, describe=_describe,
                  check=_check, run=_run, report=report_step, link=_link)
