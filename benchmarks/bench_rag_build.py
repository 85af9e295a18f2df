"""Build throughput of `advisor rag build` against a bare sentence-transformers encode + faiss add, same chunks.

Claim: the pipeline (listing, hashing, text extraction, chunking, checkpointed embedding, faiss, SQLite and an
atomic publish) runs at ≥ 0.9× the chunks/s of the bare library calls on the chunks it produced.

Both sides use the same loaded model (loading is excluded from both), run in the same process and alternate
(baseline, pipeline, baseline, pipeline, …) so a noisy neighbour hits both. The baseline embeds the chunk texts
produced by the pipeline's own loader and chunker, prepared before timing starts. The pipeline builds into a fresh
directory each time, so every chunk is embedded. With `--threads 1,2` the whole comparison runs once per torch
thread count, and a ratio is printed for each.

    python benchmarks/bench_rag_build.py DOCS_DIR [--repeats 2] [--chunk-tokens 256] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=1, help="Alternating rounds of each side")
    parser.add_argument("--keep", type=Path, help="Copy the last index built here (for `advisor rag eval`)")
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--threads", default="",
                        help="torch CPU thread counts, comma-separated (e.g. 1,2); default: torch's own")
    args = parser.parse_args()

    import torch

    from backends.common.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    texts = _chunk_texts(args.docs_dir, embedder, args.chunk_tokens, args.overlap)
    summary = []
    for threads in [int(t) for t in args.threads.split(",") if t.strip()] or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        summary.append((threads, _compare(args, embedder, texts)))
    print("\n# summary: ratio pipeline / bare by torch threads (target ≥ 0.90)")
    for threads, ratio in summary:
        print(f"threads {threads}: {ratio:.2f}")


def _compare(args: argparse.Namespace, embedder, texts: list[str]) -> float:  # noqa: ANN001
    """Alternating rounds at the current torch thread count; prints them, returns the median ratio."""
    import faiss
    import torch

    from backends.common.embedding import ENCODE_BATCH_SIZE
    from backends.rag import build_index

    model = embedder._model
    model.encode(texts[:64], batch_size=ENCODE_BATCH_SIZE)  # warm-up: first calls allocate and tune kernels
    with tempfile.TemporaryDirectory() as tmp:
        ours, bare, ratios = [], [], []
        for round_ in range(args.repeats):
            started = time.perf_counter()
            vectors = model.encode(texts, batch_size=ENCODE_BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
            index = faiss.IndexFlatIP(vectors.shape[1])
            index.add(vectors)
            bare.append(len(texts) / (time.perf_counter() - started))
            result = build_index(args.docs_dir, Path(tmp) / f"run{round_}", embedder=embedder,
                                 chunk_tokens=args.chunk_tokens, overlap_tokens=args.overlap,
                                 show_progress=False, on_warning=lambda m: None)  # fmt: skip
            assert result.n_chunks_embedded == len(texts)
            ours.append(result.n_chunks / result.build_seconds)
            ratios.append(ours[-1] / bare[-1])
            print(f"round {round_ + 1}: bare {bare[-1]:.1f} chunks/s, pipeline {ours[-1]:.1f} chunks/s, "
                  f"ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip
        if args.keep:
            shutil.copytree(Path(tmp) / f"run{args.repeats - 1}", args.keep, dirs_exist_ok=True)

    print(f"\n# RAG build throughput, {date.today()}, {platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"torch threads: {torch.get_num_threads()}, device: {model.device}, model: {result.embedding_model}")
    print(f"corpus: {args.docs_dir} ({result.n_files} files, {len(texts)} chunks of ≤ {args.chunk_tokens} tokens)")
    print(f"bare encode + faiss add : {statistics.median(bare):8.1f} chunks/s (median of {args.repeats})")
    print(f"advisor rag build       : {statistics.median(ours):8.1f} chunks/s (median of {args.repeats})")
    print(f"ratio pipeline / bare   : {statistics.median(ratios):8.2f} (median of per-round ratios; target ≥ 0.90)")
    return statistics.median(ratios)


def _chunk_texts(docs_dir: Path, embedder, chunk_tokens: int, overlap: int) -> list[str]:  # noqa: ANN001
    """The chunk texts the pipeline will produce (same loader and chunker), for the baseline to embed."""
    from backends.common.loaders import UnreadableFileError, extract_text, list_files
    from backends.rag.chunking import chunk_document

    texts = []
    for path in list_files(docs_dir)[0]:  # the same files the build reads (suffix-less text too)
        try:
            doc = extract_text(path, path.relative_to(docs_dir).as_posix())
        except UnreadableFileError:
            continue
        chunks = chunk_document(doc, embedder.token_spans, chunk_tokens, overlap, embedder.max_tokens)
        texts.extend(c.text for c in chunks)
    return texts


if __name__ == "__main__":
    main()
