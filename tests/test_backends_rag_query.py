"""Query: ranked chunks with source, position and score; missing and damaged indexes are clear errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError
from backends.rag import build_index, query_index

pytest.importorskip("faiss")
FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
from rag_fake_embedder import FakeEmbedder  # noqa: E402


@pytest.fixture
def index(tmp_path: Path) -> Path:
    pytest.importorskip("pypdf")
    build_index(FIXTURES / "corpus", tmp_path / "ix", embedder=FakeEmbedder(), chunk_tokens=32, overlap_tokens=4,
                show_progress=False, on_warning=lambda m: None)  # fmt: skip
    return tmp_path / "ix"


@pytest.mark.parametrize(
    ("question", "source", "locator"),
    [
        ("wet lubricant chain link rag", "manual.pdf", "page 2"),
        ("prepaid return label post office", "notes/faq.txt", None),
        ("photovoltaic rafters aluminium rails", "guide.html", None),
        ("charged twice stainless kettle refunded", "tickets.csv", "row 4"),
        ("rye flour starter dough", "recipes.jsonl", "row 1"),
        ("steam wand nozzle frothing", "handbook.md", None),
    ],
)
def test_the_best_chunk_comes_from_the_right_file_and_place(index: Path, question: str, source: str, locator: str | None) -> None:
    hits = query_index(index, question, 3, FakeEmbedder())
    assert hits[0].source == source
    if locator:
        assert locator in hits[0].locator
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert 0 < hits[0].score <= 1.0001  # cosine of unit vectors


def test_k_larger_than_the_index_returns_every_chunk_once(index: Path) -> None:
    hits = query_index(index, "anything at all", 10_000, FakeEmbedder())
    assert len(hits) == len({(h.source, h.chunk_index) for h in hits}) > 6


def test_a_missing_index_is_an_error_with_a_build_hint(tmp_path: Path) -> None:
    with pytest.raises(AdvisorError, match="no index at") as info:
        query_index(tmp_path / "nowhere", "question", embedder=FakeEmbedder())
    assert "advisor rag build" in info.value.hint


def test_a_folder_that_is_not_an_index_is_named(tmp_path: Path) -> None:
    with pytest.raises(AdvisorError, match="not an advisor index"):
        query_index(tmp_path, "question", embedder=FakeEmbedder())


@pytest.mark.parametrize(
    ("file", "content", "what"),
    [
        ("index.faiss", b"garbage", "index.faiss"),
        ("manifest.json", b'{"embedding_model": 3}', "manifest.json"),
        ("chunks.sqlite", b"not a database at all, just some bytes" * 100, "chunks.sqlite"),
        ("vectors.npy", None, "vectors.npy"),  # deleted
    ],
)
def test_a_damaged_index_is_an_error_naming_the_file(index: Path, file: str, content: bytes | None, what: str) -> None:
    target = next(index.glob(f"gen-*/{file}"))
    if content is None:
        target.unlink()
    else:
        target.write_bytes(content)
    with pytest.raises(AdvisorError, match=f"damaged.*{what}"):
        query_index(index, "warranty", embedder=FakeEmbedder())


def test_current_pointing_nowhere_is_damage(index: Path) -> None:
    shutil.rmtree(next(index.glob("gen-*")))
    with pytest.raises(AdvisorError, match="damaged: `CURRENT` names a missing generation"):
        query_index(index, "warranty", embedder=FakeEmbedder())


def test_an_embedder_of_another_width_is_refused(index: Path) -> None:
    with pytest.raises(AdvisorError, match="128 dims"):
        query_index(index, "warranty", embedder=FakeEmbedder(dim=128))
