"""Querying an index: embed the question with the index's own model and prompt, search, return ranked chunks."""

from __future__ import annotations

from pathlib import Path

from advisor.core.errors import AdvisorError, InvalidInputError
from backends.common.embedding import Embedder, load_embedder
from backends.rag.results import QueryHit
from backends.rag.store import damaged, open_index

__all__ = ["query_index"]


def query_index(index_dir: str | Path, question: str, k: int = 5, embedder: Embedder | None = None) -> list[QueryHit]:
    """The `k` chunks closest to `question`, best first.

    Args:
        index_dir: An index built by `build_index`.
        question: Free text.
        k: Chunks to return (fewer when the index holds fewer).
        embedder: An already loaded embedder; None: load the model named in the manifest.

    Raises:
        AdvisorError: no index, a damaged index, or an embedder that does not match it.
    """
    if not question.strip():
        raise InvalidInputError(["question: must not be empty"])
    if k < 1:
        raise InvalidInputError([f"k: must be ≥ 1 (got {k})"])
    opened = open_index(index_dir)
    manifest = opened.manifest
    index = opened.load_faiss()
    embedder = embedder or load_embedder(manifest.embedding_model)
    if embedder.dim != manifest.embedding_dim:
        raise AdvisorError(
            f"the embedding model gives {embedder.dim} dims but index `{index_dir}` holds {manifest.embedding_dim}",
            f"query it with `{manifest.embedding_model}`",
        )
    from backends.rag.index import search

    scores, ids = search(index, embedder.embed([question], is_query=True), min(k, max(manifest.n_chunks, 1)))
    found = [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
    chunks = opened.fetch_chunks([i for _, i in found])
    hits = []
    for rank, (score, chunk_id) in enumerate(found, start=1):
        if chunk_id not in chunks:
            raise damaged(opened.index_dir, f"chunk {chunk_id} is in the faiss index but not in `chunks.sqlite`")
        chunk = chunks[chunk_id]
        hits.append(
            QueryHit(
                rank=rank,
                score=score,
                source=chunk.source,
                locator=chunk.locator,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                chunk_index=chunk.chunk_index,
                text=chunk.text,
            )
        )
    return hits
