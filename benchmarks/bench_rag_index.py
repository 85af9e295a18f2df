"""Query latency and recall of the faiss indexes `advisor rag build` makes: flat (exact) vs HNSW vs IVF.

Claims: exact search stays fast up to the `auto` flat limit; HNSW and IVF with our parameters reach recall@10 ≥ 0.95
against exact search, faster than it at 100k vectors.

Vectors are synthetic but shaped like sentence embeddings: a 32-dimensional Gaussian latent mapped linearly to
384 dimensions plus isotropic noise, unit-normalised (real embeddings have low intrinsic dimension; uniform random
vectors would make every ANN index look worse than it is). Queries come from the same distribution. Latency is
one query at a time (interactive use), single process, one faiss thread by default: on a shared 2-core machine
OpenMP threads fighting over cores made a single exact query several times slower than one thread.

    python benchmarks/bench_rag_index.py [--sizes 10000 100000] [--queries 500]
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

DIM = 384  # all-MiniLM-L6-v2
LATENT_DIM = 32
NOISE = 0.3
K = 10


def synthetic(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).standard_normal((LATENT_DIM, DIM)).astype("float32")  # same map for all sets
    x = rng.standard_normal((n, LATENT_DIM)).astype("float32") @ mixing
    x += NOISE * np.sqrt(LATENT_DIM) * rng.standard_normal((n, DIM)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="faiss OpenMP threads (1: per-query latency)")
    args = parser.parse_args()

    import faiss
    import numpy as np

    faiss.omp_set_num_threads(args.threads)

    from advisor.core.estimate.index import index_params
    from backends.rag.index import build_faiss_index

    print(f"# RAG index latency and recall, {date.today()}, {platform.machine()}, faiss {faiss.__version__}, "
          f"{faiss.omp_get_max_threads()} threads, d={DIM}, k={K}, synthetic vectors")  # fmt: skip
    print("| vectors | index | params | build s | p50 ms | p95 ms | recall@10 vs exact | speed-up (p50) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        base, queries = synthetic(n, seed=1), synthetic(args.queries, seed=2)
        truth = None
        exact_p50 = None
        for kind in ("flat", "hnsw", "ivf"):
            params = index_params(kind, n)
            started = time.perf_counter()
            index = build_faiss_index(base, kind, params)
            build_s = time.perf_counter() - started
            found, times = np.empty((len(queries), K), dtype=np.int64), []
            for i, q in enumerate(queries):
                t = time.perf_counter()
                _, ids = index.search(q[None, :], K)
                times.append(time.perf_counter() - t)
                found[i] = ids[0]
            p50, p95 = (1000 * float(np.percentile(times, p)) for p in (50, 95))
            if kind == "flat":
                truth, exact_p50 = found, p50
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)])
            print(f"| {n} | {kind} | {params or '-'} | {build_s:.1f} | {p50:.3f} | {p95:.3f} | {recall:.3f} | "
                  f"{exact_p50 / p50:.1f}× |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
