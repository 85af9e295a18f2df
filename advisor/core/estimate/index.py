"""Index sizing: which faiss index to build for a corpus, its parameters, bytes on disk and build time.

Pure functions, no heavy imports: the planner calls them before anything is installed.

Formulas (N vectors of width d, float32):

- flat (exact inner product): ``4·d`` bytes per vector.
- HNSW with M links per node: ``4·d + 2·M·4`` bytes per vector (faiss wiki, "Guidelines to choose an index").
- IVF-Flat with ``nlist`` lists: ``4·d + 8`` bytes per vector (vector plus its int64 id) and ``4·d·nlist`` for
  the centroids; ``nlist = 4·√N`` is the low end of the wiki's 4·√N … 16·√N range.
- The index directory also keeps the raw vectors (``vectors.npy``, 4·d bytes each) so an update can rebuild any
  index kind without re-embedding (HNSW cannot remove vectors), and the chunk text in SQLite.
- Build time = embedding time (chunks / measured chunks per second) + index construction (measured seconds per
  vector, scaled linearly in d).

Ignored: SQLite page slack, faiss headers, the cost of reading and chunking files (small next to embedding on the
measured runs), and any GPU (the throughput constant is a CPU figure unless the caller passes its own).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, computed_field

from advisor.core.models import Model

__all__ = ["IndexEstimate", "choose_index_type", "estimate_index", "index_params"]

IndexKind = Literal["flat", "hnsw", "ivf"]

FLOAT32_BYTES = 4  # faiss stores float32 vectors
IVF_ID_BYTES = 8  # int64 id per vector in an inverted list (faiss wiki, "Guidelines to choose an index")
HNSW_M = 32  # links per node; the wiki's range is 4..64, 32 is its common choice for recall > 0.95
HNSW_EF_CONSTRUCTION = 80  # candidate list while building; measured: benchmarks/results/rag_index.md
HNSW_EF_SEARCH = 128  # candidate list per query; measured to reach recall@10 ≥ 0.95 at 100k (rag_index.md)
IVF_LISTS_PER_SQRT_N = 4  # nlist = 4·√N, low end of the wiki's 4·√N … 16·√N
IVF_PROBE_FRACTION = 1 / 4  # share of lists searched: 1/8 gave recall@10 0.94 at 100k, 1/4 gave 0.99 (rag_index.md)
IVF_MIN_TRAIN_PER_LIST = 39  # faiss warns below 39 training points per centroid (faiss/Clustering.cpp)

AUTO_FLAT_MAX_VECTORS = 50_000  # exact search stays ≲ 10 ms per query up to here; measured: rag_index.md
AUTO_HNSW_MAX_VECTORS = 2_000_000  # above, HNSW's links and vectors outgrow RAM budgets; the wiki moves to IVF

CHARS_PER_TOKEN = 4.0  # English prose: about 4 characters per token (OpenAI, "What are tokens"); awscli rst: 3.5
CHUNK_ROW_OVERHEAD_BYTES = 290  # per SQLite row beyond its text: measured 288 on the awscli index (rag_eval.md)

# Measured on the development machine (2 shared x86 cores, CPU only), all-MiniLM-L6-v2, 256-token chunks:
# benchmarks/results/rag_build.md. Pass your own figure for a GPU or another model.
EMBED_CHUNKS_PER_SECOND_CPU = 12.0
REFERENCE_DIM = 384  # width the index-build constants below were measured at
HNSW_ADD_SECONDS_PER_VECTOR = 9.1e-4  # one thread, d=384, M=32, efConstruction=80: 90.6 s for 100k (rag_index.md)
IVF_ADD_SECONDS_PER_VECTOR = 2.1e-4  # one thread, training + add, d=384, nlist=4·√N: 21.0 s for 100k (rag_index.md)


class IndexEstimate(Model):
    """Bytes and seconds one index build needs, by component."""

    index_type: IndexKind = Field(description="Kind estimated (auto resolved)")
    index_type_reason: str = Field(description="Why this kind")
    n_chunks: int
    dim: int
    index_bytes: int = Field(description="The faiss index file (≈ its size in RAM when loaded)")
    vectors_bytes: int = Field(description="Raw float32 vectors kept for incremental updates")
    chunk_store_bytes: int = Field(description="Chunk text and metadata in SQLite")
    embed_seconds: float = Field(description="Embedding all chunks at the given throughput")
    index_build_seconds: float = Field(description="Constructing the faiss index from the vectors")
    assumptions: list[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_bytes(self) -> int:
        """Disk used by the index directory."""
        return self.index_bytes + self.vectors_bytes + self.chunk_store_bytes

    @computed_field  # type: ignore[prop-decorator]
    @property
    def build_seconds(self) -> float:
        """Wall time of a full build."""
        return self.embed_seconds + self.index_build_seconds


def choose_index_type(n_vectors: int, requested: str = "auto") -> tuple[IndexKind, str]:
    """Resolve `auto` to a faiss index kind by corpus size.

    Args:
        n_vectors: Chunks that will be indexed.
        requested: `auto`, `flat`, `hnsw` or `ivf`.

    Returns:
        The kind and the reason for it.
    """
    if requested in ("flat", "hnsw", "ivf"):
        if requested == "ivf" and n_vectors < IVF_MIN_TRAIN_PER_LIST:
            return "flat", f"ivf needs ≥ {IVF_MIN_TRAIN_PER_LIST} vectors to train; {n_vectors} indexed exactly"
        return requested, "asked for"  # type: ignore[return-value]
    if n_vectors <= AUTO_FLAT_MAX_VECTORS:
        return "flat", f"auto: {n_vectors} vectors ≤ {AUTO_FLAT_MAX_VECTORS}, exact search is fast enough"
    if n_vectors <= AUTO_HNSW_MAX_VECTORS:
        return "hnsw", f"auto: {n_vectors} vectors > {AUTO_FLAT_MAX_VECTORS}, HNSW for fast approximate search"
    return "ivf", f"auto: {n_vectors} vectors > {AUTO_HNSW_MAX_VECTORS}, IVF keeps memory near the raw vectors"


def index_params(index_type: IndexKind, n_vectors: int) -> dict[str, int]:
    """faiss parameters we use for `index_type` on `n_vectors` vectors (empty for flat)."""
    if index_type == "hnsw":
        return {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}
    if index_type == "ivf":
        by_size = round(IVF_LISTS_PER_SQRT_N * math.sqrt(max(n_vectors, 1)))
        nlist = max(1, min(by_size, n_vectors // IVF_MIN_TRAIN_PER_LIST))
        return {"nlist": nlist, "nprobe": max(1, math.ceil(nlist * IVF_PROBE_FRACTION))}
    return {}


def estimate_index(
    n_chunks: int,
    dim: int,
    index_type: str = "auto",
    chunk_tokens: int = 256,
    embed_chunks_per_second: float = EMBED_CHUNKS_PER_SECOND_CPU,
) -> IndexEstimate:
    """Estimate the disk and build time of an index before building it.

    Args:
        n_chunks: Chunks to index (≈ corpus tokens / (chunk_tokens - overlap_tokens)).
        dim: Embedding width (384 for all-MiniLM-L6-v2).
        index_type: `auto`, `flat`, `hnsw` or `ivf`.
        chunk_tokens: Tokens per chunk, for the size of the stored text.
        embed_chunks_per_second: Embedding throughput; the default is a measured CPU figure.

    Returns:
        A breakdown in bytes and seconds, with the assumptions behind each number.

    Example:
        >>> estimate_index(100_000, 384).index_type
        'hnsw'
    """
    kind, reason = choose_index_type(n_chunks, index_type)
    params = index_params(kind, n_chunks)
    vector_bytes = FLOAT32_BYTES * dim
    if kind == "hnsw":
        index_bytes = n_chunks * (vector_bytes + 2 * params["m"] * 4)
        add_seconds = HNSW_ADD_SECONDS_PER_VECTOR
    elif kind == "ivf":
        index_bytes = n_chunks * (vector_bytes + IVF_ID_BYTES) + params["nlist"] * vector_bytes
        add_seconds = IVF_ADD_SECONDS_PER_VECTOR
    else:
        index_bytes = n_chunks * vector_bytes
        add_seconds = 0.0
    text_bytes = n_chunks * (chunk_tokens * CHARS_PER_TOKEN + CHUNK_ROW_OVERHEAD_BYTES)
    return IndexEstimate(
        index_type=kind,
        index_type_reason=reason,
        n_chunks=n_chunks,
        dim=dim,
        index_bytes=int(index_bytes),
        vectors_bytes=n_chunks * vector_bytes,
        chunk_store_bytes=int(text_bytes),
        embed_seconds=n_chunks / embed_chunks_per_second,
        index_build_seconds=n_chunks * add_seconds * dim / REFERENCE_DIM,
        assumptions=[
            f"{kind} index with {params or 'no parameters'}; bytes per vector from the faiss wiki",
            f"embedding at {embed_chunks_per_second:g} chunks/s",
            f"{CHARS_PER_TOKEN:g} characters per token and {CHUNK_ROW_OVERHEAD_BYTES} bytes per chunk row",
            "raw vectors are stored beside the index so updates never re-embed unchanged files",
        ],
    )
