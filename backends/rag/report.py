"""The closing report's rows for an index step: the verdict (the step's search mode against lexical search, paired on
the same questions), then the prediction stored in the step beside what the build measured."""

from __future__ import annotations

from advisor.core.models import RagStep
from advisor.core.units import fmt
from backends.base import ReportRow, StepReport
from backends.rag.results import RagRunResult

__all__ = ["report_step"]


def report_step(step: RagStep, result: RagRunResult) -> StepReport:
    """Rows and data for one index step (a pure comparison: nothing is estimated here)."""
    p, build, evaluation = step.prediction, result.build, result.evaluation
    verdict = result.verdict
    compare = [
        *([ReportRow(quantity=f"verdict ({verdict.comparison}, retrieval)",
                     predicted="– (the plan predicts cost, not quality)", measured=verdict.headline())]
          if verdict is not None else []),
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
    if evaluation is not None:
        benefit.insert(1, ("search mode", evaluation.retrieval))
        benefit += [(f"{name}: recall@{k} / MRR / hit rate", f"{fmt(m.recall_at_k)} / {fmt(m.mrr)} / {fmt(m.hit_rate)}")
                    for name, m in evaluation.by_mode.items()]
    if build.n_files_binary:
        benefit.append(("files skipped as binary", fmt(build.n_files_binary)))
    if verdict is not None:
        benefit = [("verdict", f"{verdict.outcome}: " + "; ".join(verdict.reasons)), *benefit,
                   ("verdict rule", verdict.rule)]
    data = {
        "verdict": verdict.model_dump(mode="json") if verdict is not None else None,
        "embedding_model": build.embedding_model, "index_type": build.index_type,
        "predicted": {"n_chunks": p.n_chunks if p else None, "index_bytes": p.index_bytes if p else None,
                      "build_seconds": p.build_seconds if p else None, "corpus_tokens": p.corpus_tokens if p else None},
        "measured": {"n_chunks": build.n_chunks, "index_bytes": result.index_bytes,
                     "build_seconds": build.build_seconds, "n_files": build.n_files,
                     "n_files_binary": build.n_files_binary},
        "benefit": {"mode": evaluation.mode if evaluation else None, "k": k,
                    "n_questions": evaluation.n_questions if evaluation else None,
                    "recall_at_k": evaluation.recall_at_k if evaluation else None,
                    "mrr": evaluation.mrr if evaluation else None,
                    "hit_rate": evaluation.hit_rate if evaluation else None,
                    "retrieval": evaluation.retrieval if evaluation else None,
                    "by_mode": {name: {"recall_at_k": m.recall_at_k, "mrr": m.mrr, "hit_rate": m.hit_rate}
                                for name, m in evaluation.by_mode.items()} if evaluation else {}},
    }
    return StepReport(compare=compare, benefit=benefit, data=data,
                      headline=verdict.headline() if verdict is not None else None)
