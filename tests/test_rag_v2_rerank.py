"""RAG v2, optional reranking: a cross-encoder the user names re-orders the top chunks; none ships offline, so a
model that cannot be loaded is one error line."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from backends.rag import Retriever, build_index
from backends.rag.query import RERANK_CANDIDATES

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
pytest.importorskip("faiss")
from rag_fake_embedder import FakeEmbedder  # noqa: E402

_register()
runner = CliRunner()


@pytest.fixture
def index(tmp_path: Path) -> Path:
    build_index(FIXTURES / "exact", tmp_path / "ix", embedder=FakeEmbedder(), show_progress=False,
                on_warning=lambda m: None)
    return tmp_path / "ix"


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="needs the rag extra")
@pytest.mark.parametrize("model", ["./no-such-reranker",
                                   pytest.param("no-such-org/no-such-cross-encoder", marks=pytest.mark.slow)])
def test_a_reranker_that_cannot_load_is_one_error_line(index: Path, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.common.embedding.SentenceTransformerEmbedder",
                        lambda model_id: FakeEmbedder(model_id=model_id))
    result = runner.invoke(app, ["rag", "query", str(index), "E4417", "--rerank", model, "--no-server"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert result.stderr.startswith(f"error: cannot load reranker `{model}`: ")
    assert len(result.stderr.split("\n\n")[0].splitlines()) == 1 and "none works offline" in result.stderr


@pytest.mark.slow
def test_a_tiny_cross_encoder_reorders_the_candidates_by_its_scores(index: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = sorted({w.lower() for p in (FIXTURES / "exact").iterdir() for w in p.read_text().split()})
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    folder = tmp_path / "tiny-cross-encoder"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)

    retriever = Retriever(index, FakeEmbedder())
    question = "what does error e4417 mean"
    plain = retriever.search(question, RERANK_CANDIDATES, "hybrid")
    reranked = retriever.search(question, 5, "hybrid", rerank_model=str(folder))
    expected = CrossEncoder(str(folder)).predict([(question, h.text) for h in plain])
    order = sorted(range(len(plain)), key=lambda i: -expected[i])
    assert [h.source for h in reranked] == [plain[i].source for i in order[:5]]
    assert [h.score for h in reranked] == pytest.approx([float(expected[i]) for i in order[:5]], abs=1e-5)
    assert [h.rank for h in reranked] == [1, 2, 3, 4, 5]


def test_a_step_naming_a_missing_reranker_folder_stops_before_anything_is_built(tmp_path: Path) -> None:
    from advisor.core.errors import InvalidInputError
    from advisor.core.models import RagStep
    from backends import rag

    step = RagStep(docs_dir=str(FIXTURES / "exact"), rerank_model=str(tmp_path / "no-such-cross-encoder"))
    with pytest.raises(InvalidInputError, match="rerank_model: folder .* does not exist"):
        rag.run(step, tmp_path / "run")
    assert not (tmp_path / "run" / "index").exists()
