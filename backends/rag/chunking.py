"""Chunking: split a document into overlapping pieces measured in the embedding model's own tokens.

A chunk never holds more tokens than the model reads (its max sequence length less special tokens and prompt),
so nothing is silently truncated at embedding time. Within that budget a chunk ends, by preference, at a
paragraph break, then a sentence end, then a line break, then any space; the next chunk starts `overlap_tokens`
earlier, moved forward to the nearest sentence start inside the overlap (or to where the previous chunk ended,
when that is a sentence start), else to the nearest line or word start.

Memory does not grow with the document: the text arrives in pieces (`Document.iter_text`, or a `TextFile` read
from disk), is tokenized `WINDOW_CHARS` at a time, and text and tokens behind the current chunk are dropped.
A window is cut at a word boundary and the next one starts at the token after the cut, so the tokens are those
of the whole text wherever the tokenizer splits at whitespace; every chunk is re-counted on its own anyway
(`_fit`), so the limit holds whatever the tokenizer. Line numbers are counted once, moving forward.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from backends.common.loaders import Document, TextFile
from backends.rag.results import Chunk

__all__ = ["TokenSpans", "chunk_document", "iter_chunks"]

TokenSpans = Callable[[str], list[tuple[int, int]]]
"""Character (start, end) of each content token of a text, special tokens excluded."""

MIN_FILL = 0.5  # a chunk may end early at a boundary only once it holds half its budget
# Characters tokenized in one call: far more than one chunk (a 512-token chunk is ~2-3K characters), small
# enough that the tokenizer's output for it (offsets, ids) stays a few MB.
WINDOW_CHARS = 1 << 16
# Consumed tokens are forgotten in batches of at least this many (deleting a list prefix costs its length).
DROP_TOKENS = 1 << 14
_SENTENCE_END = ".!?;:"
_BREAK_PARAGRAPH, _BREAK_SENTENCE, _BREAK_LINE, _BREAK_SPACE, _BREAK_NONE = 4, 3, 2, 1, 0


class _Stream:
    """A document's text and tokens, produced window by window and forgotten once chunking has passed them.

    Indexing (`stream[a:b]`, `stream[i]`) takes offsets in the whole text; `spans` holds the tokens not yet
    dropped, with offsets in the whole text.
    """

    def __init__(self, pieces: Iterator[str], token_spans: TokenSpans) -> None:
        self._pieces, self._token_spans = pieces, token_spans
        self._buffer, self._base = "", 0  # the buffer holds the text from offset `_base`
        self._is_read = False  # every piece is in the buffer
        self.spans: list[tuple[int, int]] = []
        self._tokenized_to = 0  # tokens before this offset are final
        self.is_done = False  # every token is in `spans`
        self._line_offset, self._line = 0, 1

    def __getitem__(self, key: slice | int) -> str:
        if isinstance(key, slice):
            return self._buffer[key.start - self._base : key.stop - self._base]
        return self._buffer[key - self._base]

    def has_token(self, k: int) -> bool:
        """Tokenize on until token `k` of `spans` exists; False when the text ends first."""
        while len(self.spans) <= k and not self.is_done:
            self._tokenize_window()
        return len(self.spans) > k

    def _read_to(self, offset: int) -> None:
        parts, end = [self._buffer], self._base + len(self._buffer)
        while end < offset and not self._is_read:
            piece = next(self._pieces, None)
            if piece is None:
                self._is_read = True
            else:
                parts.append(piece)
                end += len(piece)
        if len(parts) > 1:
            self._buffer = "".join(parts)

    def _tokenize_window(self) -> None:
        start = self._tokenized_to
        self._read_to(start + WINDOW_CHARS)
        window = self[start : start + WINDOW_CHARS]
        found = [(a + start, b + start) for a, b in self._token_spans(window)]
        if self._is_read and start + len(window) >= self._base + len(self._buffer):  # the last window
            self.spans.extend(found)
            self.is_done = True
            return
        cut = self._cut(found)
        self.spans.extend(found[:cut])
        self._tokenized_to = found[cut][0] if cut < len(found) else start + len(window)

    def _cut(self, found: list[tuple[int, int]]) -> int:
        """Index of the token the next window starts at: the last one after whitespace (its predecessors are
        whole words), else the last one (it may be cut by the window's end); all of them when there is one."""
        for i in range(len(found) - 1, 0, -1):
            gap = self[found[i - 1][1] : found[i][0]]
            if any(c.isspace() for c in gap) or self[found[i][0]].isspace():
                return i
        return len(found) - 1 if len(found) > 1 else len(found)

    def drop_before(self, k: int) -> int:
        """Forget tokens before `spans[k]` (in batches), and text no kept token or line count needs; returns how
        many tokens were dropped, by which the caller's indexes into `spans` shift."""
        if k < DROP_TOKENS:
            return 0
        del self.spans[:k]
        keep_from = min(self.spans[0][0] if self.spans else self._tokenized_to, self._line_offset)
        if keep_from - self._base > len(self._buffer) // 2:  # copy the rest only when it is the smaller part
            self._buffer, self._base = self._buffer[keep_from - self._base :], keep_from
        return k

    def line_at(self, offset: int) -> int:
        """1-based line of `offset`; offsets must not decrease from one call to the next."""
        self._line += self[self._line_offset : offset].count("\n")
        self._line_offset = offset
        return self._line


def _locate(doc: Document | TextFile, stream: _Stream, start: int, end: int) -> str:
    if doc.segment_starts:
        return doc.locate(start, end)
    first_line = stream.line_at(start)
    last_line = first_line + stream[start : max(start, end - 1)].count("\n")
    return f"line {first_line}" if first_line == last_line else f"lines {first_line}–{last_line}"


def iter_chunks(
    doc: Document | TextFile, token_spans: TokenSpans, chunk_tokens: int, overlap_tokens: int, max_tokens: int
) -> Iterator[Chunk]:
    """Split `doc` into chunks of at most `min(chunk_tokens, max_tokens)` tokens, one at a time.

    Args:
        doc: Extracted text of one file, or a plain-text file read as it goes.
        token_spans: The embedding model's tokenizer, as character spans.
        chunk_tokens: Target chunk size in tokens.
        overlap_tokens: Tokens repeated from the end of the previous chunk.
        max_tokens: Tokens the model reads per input; a hard cap.

    Yields:
        The chunks in document order, with offsets, locator, token count and content hash.

    Raises:
        UnreadableFileError: reading a `TextFile` failed part-way (a bad byte, a vanished file).
    """
    stream = _Stream(doc.iter_text(), token_spans)
    budget = max(1, min(chunk_tokens, max_tokens))
    overlap = min(overlap_tokens, budget // 2)
    start, index = 0, 0
    while stream.has_token(start):
        spans = stream.spans
        has_more = stream.has_token(start + budget)  # more text after a full chunk: choose where to end
        end = _best_end(stream, spans, start, start + budget, budget) if has_more else len(spans)
        piece, n_tokens = _fit(stream, spans, start, end, token_spans, max_tokens)
        char_start, char_end = spans[start][0], spans[start + piece - 1][1]
        chunk_text = stream[char_start:char_end]
        yield Chunk(
            source=doc.source,
            chunk_index=index,
            char_start=char_start,
            char_end=char_end,
            locator=_locate(doc, stream, char_start, char_end),
            n_tokens=n_tokens,
            text=chunk_text,
            content_sha256=hashlib.sha256(chunk_text.encode()).hexdigest(),
        )
        index += 1
        end = start + piece
        if not stream.has_token(end):
            break
        start = _snap_start(stream, spans, max(end - overlap, start + 1), end)
        start -= stream.drop_before(start - 1)  # keep the token before `start`: break strength looks at it


def chunk_document(
    doc: Document | TextFile, token_spans: TokenSpans, chunk_tokens: int, overlap_tokens: int, max_tokens: int
) -> list[Chunk]:
    """Every chunk of `doc` (see `iter_chunks`), as a list."""
    return list(iter_chunks(doc, token_spans, chunk_tokens, overlap_tokens, max_tokens))


def _break_strength(text: _Stream, spans: list[tuple[int, int]], e: int) -> int:
    """How good a place is between token e-1 and token e to end a chunk."""
    gap = text[spans[e - 1][1] : spans[e][0]]
    if "\n\n" in gap:
        return _BREAK_PARAGRAPH
    if gap and text[spans[e - 1][1] - 1] in _SENTENCE_END:
        return _BREAK_SENTENCE
    if "\n" in gap:  # a line break inside hard-wrapped prose is weaker than a sentence end
        return _BREAK_LINE
    return _BREAK_SPACE if gap else _BREAK_NONE


def _best_end(text: _Stream, spans: list[tuple[int, int]], start: int, hard_end: int, budget: int) -> int:
    best, best_strength = hard_end, _BREAK_NONE
    for e in range(hard_end, start + max(1, int(budget * MIN_FILL)), -1):
        strength = _break_strength(text, spans, e)
        if strength > best_strength:
            best, best_strength = e, strength
            if strength == _BREAK_PARAGRAPH:
                break
    return best


def _snap_start(text: _Stream, spans: list[tuple[int, int]], start: int, end: int) -> int:
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
    text: _Stream, spans: list[tuple[int, int]], start: int, end: int, token_spans: TokenSpans, max_tokens: int
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
