"""RAG v2, the verdict: the step's mode against lexical search on the same questions, paired (exact McNemar on
hit@k, bootstrap on MRR), into the result and the closing report's headline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from advisor.core.models import RagStep
from backends.rag.results import EvalResult, ModeScores
from backends.rag.verdict import rag_verdict

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))


def _scores(hits: list[bool]) -> ModeScores:
    rr = [1.0 if h else 0.0 for h in hits]
    return ModeScores(recall_at_k=sum(rr) / len(rr), mrr=sum(rr) / len(rr), hit_rate=sum(rr) / len(rr), hits=hits,
                      reciprocal_ranks=rr)


def _evaluation(lexical: list[bool], hybrid: list[bool], retrieval: str = "hybrid") -> EvalResult:
    top = _scores(hybrid)
    return EvalResult(mode="labelled", search="index", k=5, n_questions=len(hybrid), recall_at_k=top.recall_at_k,
                      mrr=top.mrr, hit_rate=top.hit_rate, assumptions=[], retrieval=retrieval,
                      by_mode={"lexical": _scores(lexical), "hybrid": top, "dense": _scores(lexical)})


def test_seven_questions_won_and_none_lost_is_improved_by_an_exact_mcnemar_test() -> None:
    # b = 0 (lexical right, hybrid wrong), c = 7: p = 2 · C(7, 0) / 2^7 = 0.015625
    verdict = rag_verdict(_evaluation([True] * 3 + [False] * 7, [True] * 10))
    assert verdict is not None and verdict.outcome == "IMPROVED"
    assert (verdict.hit.n_a_only, verdict.hit.n_b_only) == (0, 7)
    assert verdict.hit.p_value == pytest.approx(0.015625)
    assert verdict.comparison == "lexical vs hybrid" and verdict.n_questions == 10
    assert verdict.headline().startswith("IMPROVED (n=10, lexical vs hybrid): hit@5 0.30 → 1.00 (b=0, c=7, "
                                         "McNemar p=0.0156); MRR +0.700 [")


def test_the_reverse_is_regressed_and_a_split_is_no_clear_change() -> None:
    assert rag_verdict(_evaluation([True] * 10, [True] * 3 + [False] * 7)).outcome == "REGRESSED"
    # b = 2, c = 3: p = 2 · (C(5,0) + C(5,1) + C(5,2)) / 32 = 1.0
    split = rag_verdict(_evaluation([True, True, False, False, False, True, True, True],
                                    [False, False, True, True, True, True, True, True]))
    assert split.outcome == "NO CLEAR CHANGE" and split.hit.p_value == pytest.approx(1.0)


def test_too_few_questions_draw_no_conclusion_and_lexical_is_judged_against_dense() -> None:
    few = rag_verdict(_evaluation([False] * 5, [True] * 5))
    assert few.outcome == "NO CLEAR CHANGE" and few.hit is None and "too few" in few.headline()
    lexical = rag_verdict(_evaluation([True] * 8, [True] * 8, retrieval="lexical"))
    assert lexical.comparison == "dense vs lexical"
    assert rag_verdict(None) is None


def test_a_run_puts_the_verdict_in_the_result_and_the_report_headline(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faiss")
    from rag_fake_embedder import FakeEmbedder

    from backends import rag

    monkeypatch.setattr("backends.rag.load_embedder", lambda model_id=None: FakeEmbedder(model_id=model_id))
    step = RagStep(docs_dir=str(FIXTURES / "exact"), eval_questions_path=str(FIXTURES / "exact-qa.jsonl"), eval_k=1)
    assert step.mode == "hybrid"
    result = rag.run(step, tmp_path / "run")
    assert result.verdict is not None and result.verdict.comparison == "lexical vs hybrid"
    assert result.verdict.n_questions == 16
    report = rag.BACKEND.report(step, result)
    assert report.headline == result.verdict.headline()
    assert report.compare[0].quantity.startswith("verdict (lexical vs hybrid")
    assert report.data["verdict"]["outcome"] == result.verdict.outcome
    assert set(report.data["benefit"]["by_mode"]) == {"dense", "lexical", "hybrid"}
