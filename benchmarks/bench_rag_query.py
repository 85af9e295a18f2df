"""Warm query latency of `advisor rag serve` against a bare sentence-transformers encode + faiss search, same index.

Claim: with the model kept loaded, a query through the local endpoint (HTTP, JSON, chunk text fetched from SQLite;
dense, and hybrid with BM25 and fusion) costs little over the bare library calls; a cold `advisor rag query`
(a new process that loads torch and the model) costs far more. Both warm sides use the same loaded model in the same
process and alternate question by question, so a noisy neighbour hits both.

    python benchmarks/bench_rag_query.py DOCS_DIR [--qa QA.jsonl] [--threads 1] [--cold 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs_dir", type=Path)
    parser.add_argument("--qa", type=Path, help="JSON Lines with `question`; default: the first sentence of chunks")
    parser.add_argument("--rounds", type=int, default=3, help="Passes over the questions")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cold", type=int, default=2, help="Cold `advisor rag query` processes timed (0: none)")
    args = parser.parse_args()

    import faiss
    import torch

    torch.set_num_threads(args.threads)
    from backends.common.embedding import SentenceTransformerEmbedder
    from backends.rag import Retriever, build_index
    from backends.rag.serve import Endpoint, make_server, remote_query

    embedder = SentenceTransformerEmbedder()
    model = embedder._model
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "ix"
        built = build_index(args.docs_dir, index_dir, embedder=embedder, show_progress=False, on_warning=lambda m: None)
        questions = _questions(args.qa, Retriever(index_dir, embedder))
        bare_index = faiss.read_index(str(next(index_dir.glob("gen-*/index.faiss"))))
        server = make_server(Retriever(index_dir, embedder))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        endpoint = Endpoint(url=server.url, token=server.token, pid=os.getpid())
        for q in questions[:3]:  # warm-up: first calls allocate and tune kernels
            model.encode([q], normalize_embeddings=True)
            remote_query(endpoint, q, 5, "hybrid")
        times: dict[str, list[float]] = {"bare": [], "dense": [], "hybrid": []}
        for _ in range(args.rounds):
            for q in questions:
                started = time.perf_counter()
                vector = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
                bare_index.search(vector, 5)
                times["bare"].append(time.perf_counter() - started)
                for mode in ("dense", "hybrid"):
                    started = time.perf_counter()
                    hits = remote_query(endpoint, q, 5, mode)
                    times[mode].append(time.perf_counter() - started)
                    assert hits, "the server returned nothing"
        cold = []
        for q in questions[: args.cold]:
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "advisor"), "rag", "query", "--no-server", str(index_dir), q],
                           check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            cold.append(time.perf_counter() - started)
        server.shutdown()

    bare = statistics.median(times["bare"])
    print(f"# RAG query latency, {date.today()}, {platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"torch threads: {torch.get_num_threads()}, model: {built.embedding_model}, index: {built.n_chunks} chunks "
          f"({built.index_type}) from {args.docs_dir}")
    print(f"questions: {len(questions)} × {args.rounds} rounds (median of {len(times['bare'])} per side)")
    print(f"bare encode + faiss search       : {bare * 1000:8.1f} ms")
    for mode in ("dense", "hybrid"):
        median = statistics.median(times[mode])
        print(f"advisor rag serve, {mode:<7} (HTTP) : {median * 1000:8.1f} ms   ratio to bare {median / bare:5.2f}")
    if cold:
        median = statistics.median(cold)
        print(f"cold `advisor rag query` process : {median * 1000:8.1f} ms   ratio to bare {median / bare:5.0f} "
              f"(median of {len(cold)}; loads torch and the model)")


def _questions(qa: Path | None, retriever) -> list[str]:  # noqa: ANN001
    if qa is not None:
        return [json.loads(line)["question"] for line in qa.read_text().splitlines() if line.strip()]
    out = []
    for _, chunk in retriever.opened.iter_chunks():
        first = chunk.text.split(". ")[0].strip()
        if len(first.split()) >= 4:
            out.append(first[:200])
    return out[:40]


if __name__ == "__main__":
    main()
