"""faiss indexes over unit vectors: build one of the chosen kind, search it, read and write it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.core.estimate.index import IndexKind

if TYPE_CHECKING:
    import numpy as np

__all__ = ["build_faiss_index", "read_faiss_index", "search", "write_faiss_index"]

IVF_TRAIN_SEED = 1234  # fixed so that rebuilding the same vectors gives the same lists
IVF_MAX_TRAIN_POINTS_PER_LIST = 256  # faiss clustering subsamples above 256 points per centroid anyway


def build_faiss_index(vectors: np.ndarray, index_type: IndexKind, params: dict[str, int]) -> Any:
    """A faiss inner-product index of `index_type` holding `vectors` in row order (row i has id i).

    Args:
        vectors: float32, shape (n, d), unit rows.
        index_type: flat (exact), hnsw or ivf.
        params: From `sizing.index_params`: m/ef_construction/ef_search or nlist/nprobe.
    """
    import faiss
    import numpy as np

    dim = vectors.shape[1]
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["ef_construction"]
        index.hnsw.efSearch = params["ef_search"]
    elif index_type == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        n_train = min(len(vectors), params["nlist"] * IVF_MAX_TRAIN_POINTS_PER_LIST)
        rows = np.random.default_rng(IVF_TRAIN_SEED).choice(len(vectors), n_train, replace=False)
        index.train(vectors[np.sort(rows)])
        index.nprobe = params["nprobe"]
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` (scores, row ids) per query; ids are -1 where fewer than k vectors exist."""
    import numpy as np

    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def write_faiss_index(index: Any, path: Path) -> None:
    """Write `index` to `path`.

    Raises:
        OSError: the write failed; faiss reports it as a RuntimeError, which says nothing about the kind.
    """
    import errno
    import os

    import faiss

    try:
        faiss.write_index(index, str(path))
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        reason = lines[-1] if lines else "no reason given"
        kind = next((e for e in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) if os.strerror(e) in reason), errno.EIO)
        raise OSError(kind, f"faiss could not write the index ({reason})", str(path)) from None


def read_faiss_index(path: Path) -> Any:
    """Read an index; faiss raises RuntimeError on a damaged file."""
    import faiss

    return faiss.read_index(str(path))
