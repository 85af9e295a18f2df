"""Sizing: auto choice by corpus size, and bytes checked against real faiss indexes."""

from __future__ import annotations

import pytest

from advisor.core.estimate.index import (
    AUTO_FLAT_MAX_VECTORS,
    AUTO_HNSW_MAX_VECTORS,
    choose_index_type,
    estimate_index,
    index_params,
)


@pytest.mark.parametrize(
    ("case", "n", "requested", "expected"),
    [
        ("small-auto", 1_000, "auto", "flat"),
        ("flat-limit", AUTO_FLAT_MAX_VECTORS, "auto", "flat"),
        ("just-over", AUTO_FLAT_MAX_VECTORS + 1, "auto", "hnsw"),
        ("huge", AUTO_HNSW_MAX_VECTORS + 1, "auto", "ivf"),
        ("asked-hnsw", 10, "hnsw", "hnsw"),
        ("ivf-too-small-to-train", 10, "ivf", "flat"),
    ],
)
def test_choose_index_type(case: str, n: int, requested: str, expected: str) -> None:
    kind, reason = choose_index_type(n, requested)
    assert kind == expected and reason


def test_ivf_lists_follow_the_square_root_and_never_starve_training() -> None:
    assert index_params("ivf", 1_000_000)["nlist"] == 4000
    small = index_params("ivf", 100)
    assert small["nlist"] == 2 and 1 <= small["nprobe"] <= small["nlist"]  # 100 // 39 points per list


@pytest.mark.parametrize(
    ("case", "n", "dim", "kind", "index_bytes"),
    [
        ("flat", 1000, 384, "flat", 1000 * 384 * 4),
        ("hnsw", 100_000, 384, "hnsw", 100_000 * (384 * 4 + 2 * 32 * 4)),
        ("ivf", 3_000_000, 768, "ivf", 3_000_000 * (768 * 4 + 8) + 6928 * 768 * 4),
    ],
)
def test_bytes_follow_the_faiss_formulas(case: str, n: int, dim: int, kind: str, index_bytes: int) -> None:
    estimate = estimate_index(n, dim)
    assert estimate.index_type == kind
    assert estimate.index_bytes == index_bytes
    assert estimate.vectors_bytes == n * dim * 4
    assert estimate.total_bytes == estimate.index_bytes + estimate.vectors_bytes + estimate.chunk_store_bytes
    assert estimate.build_seconds == estimate.embed_seconds + estimate.index_build_seconds > 0


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_index_bytes_match_a_real_faiss_file(tmp_path, kind: str) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("faiss")
    from backends.rag.index import build_faiss_index, write_faiss_index

    n, dim = 4000, 64
    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    write_faiss_index(build_faiss_index(vectors, kind, index_params(kind, n)), tmp_path / "x.faiss")
    actual = (tmp_path / "x.faiss").stat().st_size
    predicted = estimate_index(n, dim, kind).index_bytes
    # HNSW stores levels and per-level offsets besides the links (≈ 12 bytes/vector more); 15 % covers it
    assert actual == pytest.approx(predicted, rel=0.15)
