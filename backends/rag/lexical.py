"""Lexical search: SQLite FTS5 with BM25 over the chunk text, and reciprocal-rank fusion with the dense ranking.

The FTS5 table is an external-content index over `chunks(text, source)` in each generation's `chunks.sqlite`
(`unicode61` tokens, diacritics folded, English Porter stemming), so the text is stored once. A question becomes an OR of its words, plus
each compound written with `-`, `_`, `.`, `/` or `:` (a flag such as `--no-cache`, an error code `E-04`, a file
name) as a phrase of its parts, so exact terms rank first without every word being required.

Fusion is reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): score(d) = Σ 1 / (RRF_K + rank(d)) over
the rankings that hold d, each cut at `FUSION_DEPTH` (or k, when larger).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence

__all__ = [
    "FTS_TABLE",
    "FUSION_DEPTH",
    "RRF_K",
    "bm25_search",
    "create_fts",
    "fts_query",
    "fuse",
    "has_fts",
    "memory_fts",
]

FTS_TABLE = "chunks_fts"
RRF_K = 60  # the constant of Cormack et al. 2009; larger flattens the weight of the first ranks
FUSION_DEPTH = 50  # candidates taken from each ranking before fusing
MAX_QUERY_TERMS = 64  # a pasted paragraph is cut here: BM25 over more OR terms only slows the query
SOURCE_WEIGHT = 0.5  # BM25 weight of the file path against 1.0 for the chunk text
_WORD = re.compile(r"[^\W_]+")  # what FTS5's unicode61 tokenizer keeps: letters and digits
_COMPOUND = re.compile(r"[^\W_]+(?:[-_./:]+[^\W_]+)+")
_CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(text, source, content='chunks', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')"
)


def create_fts(con: sqlite3.Connection) -> None:
    """Create (or refill) the FTS5 table over the `chunks` table of `con`; the caller commits."""
    con.execute(_CREATE)
    con.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def has_fts(con: sqlite3.Connection) -> bool:
    """Whether `con` holds the FTS5 table (indexes built before lexical search have none)."""
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)).fetchone()
    return row is not None


def memory_fts(rows: Iterable[tuple[int, str, str]]) -> sqlite3.Connection:
    """An in-memory database with `chunks` (id, text, source) and its FTS5 table: for texts that are not stored."""
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, text TEXT NOT NULL, source TEXT NOT NULL)")
    con.executemany("INSERT INTO chunks VALUES (?, ?, ?)", rows)
    create_fts(con)
    con.commit()
    return con


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(question: str) -> str | None:
    """The FTS5 MATCH expression for a question; None when it has no word to search for."""
    terms: list[str] = []
    for compound in _COMPOUND.findall(question.lower()):
        terms.append(_quote(" ".join(_WORD.findall(compound))))
    terms.extend(_quote(w) for w in _WORD.findall(question.lower()))
    terms = list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]
    return " OR ".join(terms) if terms else None


def bm25_search(con: sqlite3.Connection, question: str, n: int) -> list[tuple[int, float]]:
    """Top-`n` (chunk id, BM25 score) for `question`, best first; scores are positive, higher is better."""
    query = fts_query(question)
    if query is None or n < 1:
        return []
    sql = (f"SELECT rowid, bm25({FTS_TABLE}, 1.0, {SOURCE_WEIGHT}) AS s FROM {FTS_TABLE} "
           f"WHERE {FTS_TABLE} MATCH ? ORDER BY s, rowid LIMIT ?")  # fmt: skip
    return [(int(i), -float(s)) for i, s in con.execute(sql, (query, n))]


def fuse(rankings: Sequence[Sequence[int]], k: int, depth: int = FUSION_DEPTH) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion of ranked id lists: top-`k` (id, fused score), best first; ties by id."""
    scores: dict[int, float] = {}
    cut = max(depth, k)
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking[:cut], start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
