"""Chunking: split a document into overlapping pieces measured in the embedding model's own tokens.

A chunk never holds more tokens than the model reads (its max sequence length less special tokens and prompt),
so nothing is silently truncated at embedding time. Within that budget a chunk ends, by preference, at a
paragraph break, then a sentence end, then a line break, then any space; the next chunk starts `overlap_tokens`
earlier, moved forward to the nearest sentence start inside the overlap (or to where the previous chunk ended,
when that is a sentence start), else to the nearest line or word start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from backends.rag.loaders import Document
from backends.rag.results import Chunk

__all__ = ["TokenSpans", "chunk_document"]

TokenSpans = Callable[[str], list[tuple[int, int]]]
"""Character (start, end) of each content token of a text, special tokens excluded."""

MIN_FILL = 0.5  # a chunk may end early at a boundary only once it holds half its budget
_SENTENCE_END = ".!?;:"
_BREAK_PARAGRAPH, _BREAK_SENTENCE, _BREAK_LINE, _BREAK_SPACE, _BREAK_NONE = 4, 3, 2, 1, 0


def chunk_document(
    doc: Document, token_spans: TokenSpans, chunk_tokens: int, overlap_tokens: int, max_tokens: int
) -> list[Chunk]:
    """Split `doc` into chunks of at most `min(chunk_tokens, max_tokens)` tokens.

    Args:
        doc: Extracted text of one file.
        token_spans: The embedding model's tokenizer, as character spans.
        chunk_tokens: Target chunk size in tokens.
        overlap_tokens: Tokens repeated from the end of the previous chunk.
        max_tokens: Tokens the model reads per input; a hard cap.

    Returns:
        The chunks in document order, with offsets, locator, token count and content hash.
    """
    text = doc.text
    spans = token_spans(text)
    budget = max(1, min(chunk_tokens, max_tokens))
    overlap = min(overlap_tokens, budget // 2)
    chunks: list[Chunk] = []
    start, n = 0, len(spans)
    while start < n:
        end = min(start + budget, n)
        if end < n:
            end = _best_end(text, spans, start, end, budget)
        piece, n_tokens = _fit(text, spans, start, end, token_spans, max_tokens)
        char_start, char_end = spans[start][0], spans[start + piece - 1][1]
        chunk_text = text[char_start:char_end]
        chunks.append(
            Chunk(
                source=doc.source,
                chunk_index=len(chunks),
                char_start=char_start,
                char_end=char_end,
                locator=doc.locate(char_start, char_end),
                n_tokens=n_tokens,
                text=chunk_text,
                content_sha256=hashlib.sha256(chunk_text.encode()).hexdigest(),
            )
        )
        end = start + piece
        if end >= n:
            break
        start = _snap_start(text, spans, max(end - overlap, start + 1), end)
    return chunks


def _break_strength(text: str, spans: list[tuple[int, int]], e: int) -> int:
    """How good a place is between token e-1 and token e to end a chunk."""
    gap = text[spans[e - 1][1] : spans[e][0]]
    if "\n\n" in gap:
        return _BREAK_PARAGRAPH
    if gap and text[spans[e - 1][1] - 1] in _SENTENCE_END:
        return _BREAK_SENTENCE
    if "\n" in gap:  # a line break inside hard-wrapped prose is weaker than a sentence end
        return _BREAK_LINE
    return _BREAK_SPACE if gap else _BREAK_NONE


def _best_end(text: str, spans: list[tuple[int, int]], start: int, hard_end: int, budget: int) -> int:
    best, best_strength = hard_end, _BREAK_NONE
    for e in range(hard_end, start + max(1, int(budget * MIN_FILL)), -1):
        strength = _break_strength(text, spans, e)
        if strength > best_strength:
            best, best_strength = e, strength
            if strength == _BREAK_PARAGRAPH:
                break
    return best


def _snap_start(text: str, spans: list[tuple[int, int]], start: int, end: int) -> int:
    """Move a start forward inside the overlap to a sentence start, else a line start, else a word start.

    The previous chunk's end counts as a sentence start: no overlap beats one that begins mid-sentence.
    """
    line_start = word_start = None
    for s in range(start, end + 1):
        strength = _break_strength(text, spans, s) if s > 0 else _BREAK_PARAGRAPH
        if strength >= _BREAK_SENTENCE:
            return s
        if strength == _BREAK_LINE and line_start is None:
            line_start = s
        if strength == _BREAK_SPACE and word_start is None and s < end:
            word_start = s
    for candidate in (line_start, word_start):
        if candidate is not None:
            return candidate
    return start


def _fit(
    text: str, spans: list[tuple[int, int]], start: int, end: int, token_spans: TokenSpans, max_tokens: int
) -> tuple[int, int]:
    """Tokens of [start, end) to keep so that the chunk text, tokenized alone, fits `max_tokens`.

    A substring cut inside a word can tokenize into more pieces than it had in context, so re-count and trim.
    """
    piece = end - start
    while True:
        n_tokens = len(token_spans(text[spans[start][0] : spans[start + piece - 1][1]]))
        if n_tokens <= max_tokens or piece == 1:
            return piece, n_tokens
        piece = max(1, piece - (n_tokens - max_tokens))
