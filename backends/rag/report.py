"""The closing report's rows for an index step: the prediction stored in the step beside what the build measured."""

from __future__ import annotations

from advisor.core.models import RagStep
from advisor.core.units import fmt
from backends.base import ReportRow, StepReport
from backends.rag.results import RagRunResult

__all__ = ["report_step"]


def report_step(step: RagStep, result: RagRunResult) -> StepReport:
    """Rows and data for one index step (a pure comparison: nothing is estimated here)."""
    p, build, evaluation = step.prediction, result.build, result.evaluation
    compare = [
        ReportRow(quantity="chunks", predicted=fmt(p.n_chunks if p else None), measured=fmt(build.n_chunks)),
        ReportRow(quantity="index on disk", predicted=fmt(p.index_bytes if p else None, "bytes"),
                  measured=fmt(result.index_bytes, "bytes")),
        ReportRow(quantity="build time", predicted=fmt(p.build_seconds if p else None, "s"),
                  measured=fmt(build.build_seconds, "s")),
    ]
    k = evaluation.k if evaluation else step.eval_k
    benefit = [
        ("evaluation", f"{evaluation.mode}, {evaluation.n_questions} questions" if evaluation else "none"),
        (f"recall@{k}", fmt(evaluation.recall_at_k if evaluation else None)),
        ("MRR", fmt(evaluation.mrr if evaluation else None)),
        (f"hit rate@{k}", fmt(evaluation.hit_rate if evaluation else None)),
    ]
    data = {
        "embedding_model": build.embedding_model, "index_type": build.index_type,
        "predicted": {"n_chunks": p.n_chunks if p else None, "index_bytes": p.index_bytes if p else None,
                      "build_seconds": p.build_seconds if p else None, "corpus_tokens": p.corpus_tokens if p else None},
        "measured": {"n_chunks": build.n_chunks, "index_bytes": result.index_bytes,
                     "build_seconds": build.build_seconds, "n_files": build.n_files},
        "benefit": {"mode": evaluation.mode if evaluation else None, "k": k,
                    "n_questions": evaluation.n_questions if evaluation else None,
                    "recall_at_k": evaluation.recall_at_k if evaluation else None,
                    "mrr": evaluation.mrr if evaluation else None,
                    "hit_rate": evaluation.hit_rate if evaluation else None},
    }
    # No verdict yet: dense against a lexical baseline on the same questions waits for hybrid search (RAG v2).
    return StepReport(compare=compare, benefit=benefit, data=data, headline=None)
