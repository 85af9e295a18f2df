"""Evaluation: the metrics themselves, labelled question files, and held-out sentences without labels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError
from backends.rag import build_index, evaluate_index, retrieval_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
pytest.importorskip("numpy", reason="needs the rag extra")  # the fake embedder makes numpy vectors
from rag_fake_embedder import FakeEmbedder  # noqa: E402


@pytest.mark.parametrize(
    ("case", "ranked", "relevant", "k", "expected"),
    [
        ("first-rank", [[7, 1, 2]], [{7}], 3, (1.0, 1.0, 1.0)),
        ("second-rank", [[1, 7, 2]], [{7}], 3, (1.0, 0.5, 1.0)),
        ("beyond-k", [[1, 2, 7]], [{7}], 2, (0.0, 0.0, 0.0)),
        ("half-of-two", [[1, 7, 2]], [{7, 9}], 3, (0.5, 0.5, 1.0)),
        ("many-relevant-capped-at-k", [[1, 2]], [{1, 2, 3, 4}], 2, (1.0, 1.0, 1.0)),
        ("no-relevant", [[1, 2]], [set()], 2, (0.0, 0.0, 0.0)),
        ("mean-of-two", [[5, 1], [2, 6]], [{5}, {6}], 2, (1.0, 0.75, 1.0)),
    ],
)
def test_retrieval_metrics(case: str, ranked: list, relevant: list, k: int, expected: tuple) -> None:
    assert retrieval_metrics(ranked, relevant, k) == pytest.approx(expected)


@pytest.fixture
def index(tmp_path: Path) -> Path:
    pytest.importorskip("faiss")
    pytest.importorskip("pypdf")
    build_index(FIXTURES / "corpus", tmp_path / "ix", embedder=FakeEmbedder(), chunk_tokens=40, overlap_tokens=4,
                show_progress=False, on_warning=lambda m: None)  # fmt: skip
    return tmp_path / "ix"


def _qa(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_labelled_questions_by_source_and_by_text(index: Path, tmp_path: Path) -> None:
    qa = _qa(tmp_path, [
        {"question": "citric acid descaler sachet", "source": "handbook.md"},
        {"question": "refund payment card working days", "answer": "within five working days"},
        {"question": "harness ridge roof", "source": "guide.html"},
        {"question": "sourdough", "source": "does-not-exist.md"},
    ])  # fmt: skip
    result = evaluate_index(index, qa, k=3, embedder=FakeEmbedder())
    assert (result.mode, result.search, result.n_questions, result.k) == ("labelled", "index", 4, 3)
    assert result.hit_rate == pytest.approx(0.75)  # the last question matches no chunk
    assert "1 question(s) matched no chunk" in " ".join(result.assumptions)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{oops", "line 1: not valid JSON"), ('{"question": "q"}', "needs `question` and an expected"), ("", "no questions")],
)
def test_bad_question_files_are_errors(index: Path, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(content)
    with pytest.raises(AdvisorError, match=message):
        evaluate_index(index, path, embedder=FakeEmbedder())


def test_self_supervised_holds_sentences_out_and_beats_chance(index: Path) -> None:
    result = evaluate_index(index, k=3, embedder=FakeEmbedder())
    again = evaluate_index(index, k=3, embedder=FakeEmbedder())
    assert (result.mode, result.search) == ("self-supervised", "exact")
    assert result == again  # same seed, same questions, same numbers
    assert result.n_questions >= 5
    from backends.rag.store import open_index

    chance = 3 / open_index(index).manifest.n_chunks
    assert result.recall_at_k > 2 * chance  # word overlap with the rest of the chunk finds it far above chance
    assert result.mrr <= result.hit_rate == result.recall_at_k  # one relevant chunk: recall equals hit rate


def test_self_supervised_with_nothing_to_hold_out_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "list.md").write_text("\n".join(f"- item {i}" for i in range(30)))
    build_index(docs, tmp_path / "ix", embedder=FakeEmbedder(), show_progress=False, on_warning=lambda m: None)
    with pytest.raises(AdvisorError, match="no chunk with a sentence to hold out"):
        evaluate_index(tmp_path / "ix", embedder=FakeEmbedder())
