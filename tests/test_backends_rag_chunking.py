"""Chunking: never over the model's limit, overlapping, cut at paragraph and sentence ends, offsets exact."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

from backends.common.loaders import Document
from backends.rag.chunking import chunk_document

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rag"))
pytest.importorskip("numpy", reason="needs the rag extra")  # the fake embedder makes numpy vectors
from rag_fake_embedder import FakeEmbedder  # noqa: E402

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in plain words." for i in range(60)]
TEXT = "\n\n".join(" ".join(SENTENCES[i : i + 4]) for i in range(0, 60, 4))  # 15 paragraphs of 4 sentences


@pytest.mark.parametrize(("chunk_tokens", "overlap", "max_tokens"), [(16, 0, 64), (40, 8, 64), (200, 32, 64), (50, 10, 30)])
def test_chunks_never_exceed_the_budget_and_map_back_to_the_text(chunk_tokens: int, overlap: int, max_tokens: int) -> None:
    tokens = FakeEmbedder().token_spans
    chunks = chunk_document(Document("a.txt", TEXT), tokens, chunk_tokens, overlap, max_tokens)
    assert len(chunks) > 1
    for i, chunk in enumerate(chunks):
        assert chunk.chunk_index == i
        assert chunk.text == TEXT[chunk.char_start : chunk.char_end]
        assert chunk.n_tokens == len(tokens(chunk.text)) <= min(chunk_tokens, max_tokens)
        assert chunk.content_sha256 == hashlib.sha256(chunk.text.encode()).hexdigest()
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(TEXT.rstrip())
    for before, after in zip(chunks, chunks[1:], strict=False):  # nothing but whitespace falls between chunks
        assert TEXT[before.char_end : after.char_start].strip() == ""


def test_neighbours_overlap_and_start_at_a_sentence() -> None:
    chunks = chunk_document(Document("a.txt", TEXT), FakeEmbedder().token_spans, 40, 12, 64)
    overlapping = [a for a, b in zip(chunks, chunks[1:], strict=False) if b.char_start < a.char_end]
    assert len(overlapping) >= len(chunks) // 2
    for chunk in chunks:
        assert chunk.text.startswith("Sentence")  # snapped to a sentence start, never mid-sentence


def test_chunks_end_at_paragraph_breaks_when_one_is_in_reach() -> None:
    # each paragraph is 4 sentences × 11 tokens = 44 tokens; a 60-token budget fits one paragraph, not two
    chunks = chunk_document(Document("a.txt", TEXT), FakeEmbedder().token_spans, 60, 0, 64)
    paragraphs = TEXT.split("\n\n")
    assert [c.text for c in chunks] == paragraphs


def test_text_without_spaces_is_still_cut_within_the_limit() -> None:
    text = "x" * 10 + "." * 300  # one long run of punctuation tokens, no whitespace anywhere
    chunks = chunk_document(Document("a.txt", text), FakeEmbedder().token_spans, 64, 8, 64)
    assert all(c.n_tokens <= 64 for c in chunks)
    assert "".join(c.text for c in chunks).count(".") >= 300


def test_line_positions_are_reported() -> None:
    text = "\n".join(f"Line {i} has several words in it for the chunker." for i in range(1, 41))
    chunks = chunk_document(Document("a.md", text), FakeEmbedder().token_spans, 30, 0, 64)
    assert chunks[0].locator == "lines 1–2"  # 11 tokens per line: two fit in 30, three do not
    first_line = int(re.match(r"lines? (\d+)", chunks[1].locator).group(1))
    assert chunks[1].text.startswith(f"Line {first_line} ")


@pytest.mark.slow
def test_real_tokenizer_chunks_stay_under_the_model_max() -> None:
    pytest.importorskip("sentence_transformers")
    from backends.common.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    text = (TEXT + " supercalifragilistic" * 200 + "\n\n") * 3
    chunks = chunk_document(Document("a.txt", text), embedder.token_spans, 10_000, 32, embedder.max_tokens)
    tokenizer = embedder._model.tokenizer
    for chunk in chunks:
        assert len(tokenizer(chunk.text)["input_ids"]) <= embedder._model.max_seq_length  # special tokens included


def _awkward_text() -> str:
    import random

    rng = random.Random(0)
    pieces = ["Alpha", "beta.", "gamma,", "delta!", "\n", "\n\n", "eps", "x" * 30, "...", "a;b", "  ", "\t"]
    return "".join(rng.choice(pieces) + rng.choice([" ", "", "  ", "\n"]) for _ in range(6000))


@pytest.mark.parametrize(("window", "drop"), [(257, 50), (1000, 1), (4096, 300)])
def test_windowed_tokenizing_chunks_exactly_as_whole_text_tokenizing(monkeypatch: pytest.MonkeyPatch, window: int,
                                                                     drop: int) -> None:
    """Bounded memory changes nothing: small windows and early dropping give the same chunks and locators.

    (Words longer than a window may tokenize differently at its cut; 64 Ki characters in practice.)"""
    import backends.rag.chunking as chunking

    text, tokens = _awkward_text(), FakeEmbedder().token_spans
    monkeypatch.setattr(chunking, "WINDOW_CHARS", 1 << 30)
    monkeypatch.setattr(chunking, "DROP_TOKENS", 1 << 30)
    whole = chunk_document(Document("a.txt", text), tokens, 40, 8, 64)
    monkeypatch.setattr(chunking, "WINDOW_CHARS", window)
    monkeypatch.setattr(chunking, "DROP_TOKENS", drop)
    assert chunk_document(Document("a.txt", text), tokens, 40, 8, 64) == whole
    lines = text.count("\n", 0, whole[-1].char_start) + 1
    assert whole[-1].locator.startswith(f"line {lines}") or whole[-1].locator.startswith(f"lines {lines}–")


def test_a_streamed_file_chunks_as_its_text_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.common.loaders import open_document

    monkeypatch.setattr("backends.rag.chunking.WINDOW_CHARS", 300)
    monkeypatch.setattr("backends.common.loaders.READ_BLOCK_BYTES", 97)
    text = _awkward_text()
    (tmp_path / "a.txt").write_text(text)
    tokens = FakeEmbedder().token_spans
    streamed = chunk_document(open_document(tmp_path / "a.txt", "a.txt"), tokens, 40, 8, 64)
    assert streamed == chunk_document(Document("a.txt", text), tokens, 40, 8, 64)
