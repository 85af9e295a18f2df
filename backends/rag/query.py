"""Querying an index: dense (faiss), lexical (BM25) or hybrid (both, fused by reciprocal rank), optionally reranked.

`Retriever` holds an open index and its model, so repeated queries pay for neither again (the warm path behind
`advisor rag serve`); it reopens the index when a build publishes a new generation. The embedding model is loaded
only when a mode needs it: a lexical query loads none.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.core.errors import AdvisorError, InvalidInputError
from backends.common.embedding import Embedder, load_embedder
from backends.rag.lexical import FUSION_DEPTH, fuse
from backends.rag.results import QueryHit, RetrievalMode
from backends.rag.store import CURRENT_FILE, OpenIndex, damaged, open_index

if TYPE_CHECKING:
    from backends.rag.rerank import Reranker

__all__ = ["DEFAULT_MODE", "MODES", "RERANK_CANDIDATES", "Retriever", "query_index", "rank"]

MODES: tuple[RetrievalMode, ...] = ("dense", "lexical", "hybrid")
DEFAULT_MODE: RetrievalMode = "hybrid"  # not worse than dense on manual-qa (benchmarks/results/rag_eval.md)
RERANK_CANDIDATES = 20  # chunks the cross-encoder re-scores (or k, when larger)


def rank(mode: str, dense: list[int], lexical: list[int], k: int) -> list[tuple[int, float | None]]:
    """Top-`k` (chunk id, fused score or None) of `mode` from the dense and lexical rankings (ids, best first)."""
    if mode == "dense":
        return [(i, None) for i in dense[:k]]
    if mode == "lexical":
        return [(i, None) for i in lexical[:k]]
    if mode == "hybrid":
        return fuse([dense, lexical], k)
    raise InvalidInputError([f"mode: must be one of {', '.join(MODES)} (got `{mode}`)"])


def _check_query(question: str, k: int, mode: str) -> None:
    problems = []
    if not question.strip():
        problems.append("question: must not be empty")
    if k < 1:
        problems.append(f"k: must be ≥ 1 (got {k})")
    if mode not in MODES:
        problems.append(f"mode: must be one of {', '.join(MODES)} (got `{mode}`)")
    if problems:
        raise InvalidInputError(problems)


class Retriever:
    """An open index, its faiss index and (once needed) its embedding model and rerankers, kept for many queries."""

    def __init__(self, index_dir: str | Path, embedder: Embedder | None = None) -> None:
        """Open `index_dir`.

        Raises:
            AdvisorError: no index there, or a damaged one.
        """
        self.index_dir = Path(index_dir)
        self._embedder = embedder
        self._rerankers: dict[str, Reranker] = {}
        self._open()

    def _open(self) -> None:
        self.opened: OpenIndex = open_index(self.index_dir)
        self._faiss: Any = None
        self._has_lexical = False
        self.generation = self.opened.path.name

    @property
    def embedder(self) -> Embedder:
        """The index's embedding model, loaded on first use and checked against the index."""
        manifest = self.opened.manifest
        if self._embedder is None:
            self._embedder = load_embedder(manifest.embedding_model)
        if self._embedder.dim != manifest.embedding_dim:
            raise AdvisorError(
                f"the embedding model gives {self._embedder.dim} dims but index `{self.index_dir}` holds "
                f"{manifest.embedding_dim}",
                f"query it with `{manifest.embedding_model}`",
            )
        return self._embedder

    def refresh(self) -> bool:
        """Reopen the index when a build has published a new generation since; True when it did."""
        try:
            name = (self.index_dir / CURRENT_FILE).read_text(errors="replace").strip()
        except OSError:
            name = None
        if name == self.generation:
            return False
        self._open()
        return True

    def dense_ids(self, question: str, n: int) -> tuple[list[int], dict[int, float]]:
        """Top-`n` chunk ids by cosine similarity, and their scores."""
        from backends.rag.index import search

        if self._faiss is None:
            self._faiss = self.opened.load_faiss()
        n = min(n, max(self.opened.manifest.n_chunks, 1))
        scores, ids = search(self._faiss, self.embedder.embed([question], is_query=True), n)
        found = [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        return [i for i, _ in found], dict(found)

    def reranker(self, model_id: str) -> Reranker:
        """The cross-encoder `model_id`, loaded once."""
        from backends.rag.rerank import load_reranker

        if model_id not in self._rerankers:
            self._rerankers[model_id] = load_reranker(model_id)
        return self._rerankers[model_id]

    def search(self, question: str, k: int = 5, mode: str = DEFAULT_MODE, rerank_model: str | None = None) -> list[QueryHit]:
        """The `k` best chunks for `question` in `mode`, best first; with `rerank_model`, the mode's top
        `RERANK_CANDIDATES` re-ordered by that cross-encoder.

        Raises:
            InvalidInputError: an empty question, k < 1, an unknown mode.
            AdvisorError: a damaged index, a model that does not match it, a reranker that cannot be loaded.
        """
        _check_query(question, k, mode)
        reranker = self.reranker(rerank_model) if rerank_model else None
        n = max(k, RERANK_CANDIDATES) if reranker else k
        depth = max(n, FUSION_DEPTH) if mode == "hybrid" else n
        dense, dense_scores = self.dense_ids(question, depth) if mode != "lexical" else ([], {})
        if mode != "dense" and not self._has_lexical:
            self.opened.ensure_lexical()
            self._has_lexical = True
        lexical_found = self.opened.lexical_search(question, depth, ensure=False) if mode != "dense" else []
        lexical, lexical_scores = [i for i, _ in lexical_found], dict(lexical_found)
        ranked = rank(mode, dense, lexical, n)
        chunks = self.opened.fetch_chunks([i for i, _ in ranked])
        for chunk_id, _ in ranked:
            if chunk_id not in chunks:
                raise damaged(self.index_dir, f"chunk {chunk_id} is in the search index but not in `chunks.sqlite`")
        scored = [(i, fused if fused is not None else (dense_scores[i] if mode == "dense" else lexical_scores[i]))
                  for i, fused in ranked]
        if reranker is not None and scored:
            new = reranker.scores(question, [chunks[i].text for i, _ in scored])
            scored = sorted(zip([i for i, _ in scored], new, strict=True), key=lambda x: -x[1])
        dense_rank = {i: r for r, i in enumerate(dense, start=1)}
        lexical_rank = {i: r for r, i in enumerate(lexical, start=1)}
        hits = []
        for position, (chunk_id, score) in enumerate(scored[:k], start=1):
            chunk = chunks[chunk_id]
            hits.append(QueryHit(
                rank=position, score=float(score), dense_rank=dense_rank.get(chunk_id),
                lexical_rank=lexical_rank.get(chunk_id), source=chunk.source, locator=chunk.locator,
                char_start=chunk.char_start, char_end=chunk.char_end, chunk_index=chunk.chunk_index, text=chunk.text,
            ))  # fmt: skip
        return hits


def query_index(
    index_dir: str | Path,
    question: str,
    k: int = 5,
    embedder: Embedder | None = None,
    *,
    mode: str = DEFAULT_MODE,
    rerank_model: str | None = None,
) -> list[QueryHit]:
    """The `k` chunks best matching `question`, best first (one query: `Retriever` keeps the model for many).

    Args:
        index_dir: An index built by `build_index`.
        question: Free text.
        k: Chunks to return (fewer when the index holds fewer).
        embedder: An already loaded embedder; None: load the model named in the manifest (not for `lexical`).
        mode: `dense`, `lexical` or `hybrid`.
        rerank_model: A sentence-transformers cross-encoder (id or folder) to re-order the top chunks; None: none.

    Raises:
        AdvisorError: no index, a damaged index, an embedder that does not match it, a reranker that cannot load.
    """
    _check_query(question, k, mode)
    return Retriever(index_dir, embedder).search(question, k, mode, rerank_model)
