"""Retrieval evaluation: recall@k, MRR and hit rate, on labelled questions or on held-out sentences.

Labelled: a JSON Lines file, one question per line, with the expected `source` file and/or an expected `text`
(`answer` is accepted as a synonym). A chunk is relevant when it comes from that file or contains that text.

Self-supervised, when there are no labels: pick chunks at random (fixed seed); from each, hold out one sentence
that occurs in no other chunk; re-embed the chunk without it; ask the sentence as the question. The only relevant
chunk is the one it was taken from, and it no longer contains the sentence, so the question is not a verbatim
lookup. Searched exactly over the stored vectors with those chunks swapped for their held-out versions, so it
measures chunking and embedding; the ANN index's own recall against exact search is in `benchmarks/`. Lexical
search runs over an in-memory FTS5 table of the chunk texts with the same sentences held out.

Every mode (dense, lexical, hybrid; and the chosen mode reranked, when a cross-encoder is named) is scored on the
same questions, with the per-question outcomes kept so that `backends.rag.verdict` can pair them.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.core.errors import AdvisorError, InvalidInputError
from backends.common.embedding import Embedder, load_embedder
from backends.rag.lexical import FUSION_DEPTH, bm25_search, memory_fts
from backends.rag.query import DEFAULT_MODE, MODES, RERANK_CANDIDATES, rank
from backends.rag.results import EvalResult, ModeScores
from backends.rag.store import OpenIndex, open_index

if TYPE_CHECKING:
    import numpy as np

    from backends.rag.rerank import Reranker

__all__ = ["evaluate_index", "mode_scores", "retrieval_metrics"]

DEFAULT_N_QUESTIONS = 200  # enough for ±0.07 on a recall near 0.5 at 95% confidence (binomial), fast on CPU
MIN_SENTENCE_WORDS = 6  # shorter "sentences" (headings, list items) are not questions
MAX_SENTENCE_WORDS = 60
MIN_REST_WORDS = 8  # what is left of the chunk must still say something
EXACT_SEARCH_QUERY_BLOCK = 64  # queries per matrix product, bounds memory to 64 × n_chunks floats
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def retrieval_metrics(ranked: list[list[int]], relevant: list[set[int]], k: int) -> tuple[float, float, float]:
    """(recall@k, MRR@k, hit rate@k) of ranked id lists against relevant id sets, averaged over questions.

    recall@k for one question is |relevant ∩ top k| / min(k, |relevant|), so a file of 40 chunks is not
    unreachable at k=5. A question with no relevant chunk scores 0 on all three.
    """
    if not ranked:
        return 0.0, 0.0, 0.0
    recall = mrr = hits = 0.0
    for ids, rel in zip(ranked, relevant, strict=True):
        top = ids[:k]
        found = [rank for rank, i in enumerate(top, start=1) if i in rel]
        if rel:
            recall += len(found) / min(k, len(rel))
        if found:
            mrr += 1 / found[0]
            hits += 1
    n = len(ranked)
    return recall / n, mrr / n, hits / n


def mode_scores(ranked: list[list[int]], relevant: list[set[int]], k: int) -> ModeScores:
    """`retrieval_metrics` with the per-question hit@k and reciprocal rank kept."""
    recall, mrr, hit_rate = retrieval_metrics(ranked, relevant, k)
    reciprocal = []
    for ids, rel in zip(ranked, relevant, strict=True):
        first = next((r for r, i in enumerate(ids[:k], start=1) if i in rel), None)
        reciprocal.append(1 / first if first else 0.0)
    return ModeScores(recall_at_k=recall, mrr=mrr, hit_rate=hit_rate, hits=[r > 0 for r in reciprocal],
                      reciprocal_ranks=reciprocal)


def evaluate_index(
    index_dir: str | Path,
    qa_path: str | Path | None = None,
    k: int = 5,
    n_questions: int = DEFAULT_N_QUESTIONS,
    seed: int = 0,
    embedder: Embedder | None = None,
    mode: str = DEFAULT_MODE,
    rerank_model: str | Reranker | None = None,
) -> EvalResult:
    """Measure retrieval quality of an index, in every search mode on the same questions.

    Args:
        index_dir: An index built by `build_index`.
        qa_path: Labelled questions (JSON Lines); None: self-supervised held-out sentences.
        k: Ranks considered.
        n_questions: Self-supervised: questions to draw (fewer when the corpus has fewer usable sentences).
        seed: Self-supervised: which chunks and sentences are drawn.
        embedder: An already loaded embedder; None: the model named in the manifest.
        mode: The mode the headline figures (`recall_at_k`, `mrr`, `hit_rate`) are for.
        rerank_model: A cross-encoder (id, folder or loaded `Reranker`) re-ordering `mode`'s top chunks; scored as
            `<mode>+rerank`, then the headline mode.

    Raises:
        AdvisorError: no index, a damaged index, a bad question file, no usable questions, a reranker that cannot
            be loaded, or an index without its full-text table that cannot get one.
    """
    if k < 1:
        raise InvalidInputError([f"k: must be ≥ 1 (got {k})"])
    if mode not in MODES:
        raise InvalidInputError([f"mode: must be one of {', '.join(MODES)} (got `{mode}`)"])
    opened = open_index(index_dir)
    questions = _read_questions(Path(qa_path)) if qa_path is not None else None
    reranker = rerank_model or None
    if isinstance(rerank_model, str):
        from backends.rag.rerank import load_reranker

        reranker = load_reranker(rerank_model)
    embedder = embedder or load_embedder(opened.manifest.embedding_model)
    if questions is not None:
        return _evaluate_labelled(opened, questions, k, embedder, mode, reranker)
    return _evaluate_held_out(opened, k, n_questions, seed, embedder, mode, reranker)


def _score_modes(
    questions: list[str],
    dense: list[list[int]],
    lexical: list[list[int]],
    relevant: list[set[int]],
    k: int,
    mode: str,
    reranker: object | None,
    texts_of: object,
) -> tuple[dict[str, ModeScores], str]:
    """Scores of every mode (and `mode` reranked), and the name of the headline mode."""
    by_mode = {}
    for name in MODES:
        ranked = [[i for i, _ in rank(name, d, lx, k)] for d, lx in zip(dense, lexical, strict=True)]
        by_mode[name] = mode_scores(ranked, relevant, k)
    if reranker is None:
        return by_mode, mode
    reranked = []
    n = max(k, RERANK_CANDIDATES)
    for question, d, lx in zip(questions, dense, lexical, strict=True):
        ids = [i for i, _ in rank(mode, d, lx, n)]
        scores = reranker.scores(question, texts_of(ids))  # type: ignore[attr-defined]
        reranked.append([i for i, _ in sorted(zip(ids, scores, strict=True), key=lambda x: -x[1])])
    by_mode[f"{mode}+rerank"] = mode_scores(reranked, relevant, k)
    return by_mode, f"{mode}+rerank"


def _read_questions(path: Path) -> list[dict]:
    if not path.is_file():
        raise AdvisorError(f"question file `{path}` does not exist", "one JSON object per line: question, source/text")
    questions = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AdvisorError(f"`{path}` line {number}: not valid JSON ({exc.msg})") from None
        expected_text = row.get("text", row.get("answer")) if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not (
            isinstance(row.get("source"), str) or isinstance(expected_text, str)
        ):
            raise AdvisorError(
                f"`{path}` line {number}: needs `question` and an expected `source` or `text`",
                '{"question": "How do I reset it?", "source": "manual.md"}',
            )
        questions.append({"question": row["question"], "source": row.get("source"), "text": expected_text})
    if not questions:
        raise AdvisorError(f"question file `{path}` holds no questions")
    return questions


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _evaluate_labelled(opened: OpenIndex, questions: list[dict], k: int, embedder: Embedder, mode: str,
                       reranker: object | None) -> EvalResult:
    from backends.rag.index import search

    relevant: list[set[int]] = [set() for _ in questions]
    texts = [_normalise(q["text"]) if q["text"] else None for q in questions]
    for chunk_id, chunk in opened.iter_chunks():
        body = _normalise(chunk.text)
        for q, rel, text in zip(questions, relevant, texts, strict=True):
            source = q["source"]
            if (source and (chunk.source == source or chunk.source.endswith("/" + source))) or (text and text in body):
                rel.add(chunk_id)
    depth = max(k, FUSION_DEPTH, RERANK_CANDIDATES if reranker else 0)
    queries = embedder.embed([q["question"] for q in questions], is_query=True)
    _, ids = search(opened.load_faiss(), queries, min(depth, max(opened.manifest.n_chunks, 1)))
    dense = [[int(i) for i in row if i >= 0] for row in ids]
    lexical = [[i for i, _ in opened.lexical_search(q["question"], depth)] for q in questions]

    def texts_of(chunk_ids: list[int]) -> list[str]:
        found = opened.fetch_chunks(chunk_ids)
        return [found[i].text for i in chunk_ids]

    by_mode, headline = _score_modes([q["question"] for q in questions], dense, lexical, relevant, k, mode,
                                     reranker, texts_of)
    top = by_mode[headline]
    unmatched = sum(1 for rel in relevant if not rel)
    return EvalResult(
        mode="labelled", search="index", k=k, n_questions=len(questions),
        recall_at_k=top.recall_at_k, mrr=top.mrr, hit_rate=top.hit_rate, retrieval=headline, by_mode=by_mode,
        assumptions=[
            "relevant: chunks of the expected source file, or chunks containing the expected text "
            "(case and spacing ignored)",
            f"{unmatched} question(s) matched no chunk and score 0" if unmatched else "every question matched a chunk",
        ],
    )  # fmt: skip


def _evaluate_held_out(opened: OpenIndex, k: int, n_questions: int, seed: int, embedder: Embedder, mode: str,
                       reranker: object | None) -> EvalResult:
    import numpy as np

    candidates: dict[int, list[str]] = {}
    bodies: dict[int, str] = {}
    seen: dict[str, int] = {}
    for chunk_id, chunk in opened.iter_chunks():
        sentences = [s.strip() for s in _SENTENCE_SPLIT.split(chunk.text) if s.strip()]
        for s in set(sentences):
            seen[s] = seen.get(s, 0) + 1
        usable = [s for s in sentences if MIN_SENTENCE_WORDS <= len(s.split()) <= MAX_SENTENCE_WORDS]
        if len(sentences) >= 2 and usable:
            candidates[chunk_id], bodies[chunk_id] = usable, chunk.text
    rng = random.Random(seed)
    picked: list[tuple[int, str, str]] = []
    for chunk_id in rng.sample(sorted(candidates), len(candidates)):
        unique = [s for s in candidates[chunk_id] if seen[s] == 1]
        rng.shuffle(unique)
        for sentence in unique:
            rest = " ".join(bodies[chunk_id].replace(sentence, " ", 1).split())
            if len(rest.split()) >= MIN_REST_WORDS:
                picked.append((chunk_id, sentence, rest))
                break
        if len(picked) == n_questions:
            break
    if not picked:
        raise AdvisorError(
            f"index `{opened.index_dir}` has no chunk with a sentence to hold out",
            "evaluate it with a labelled file: `advisor rag eval INDEX QA.jsonl`",
        )
    vectors = np.array(opened.load_vectors(), dtype=np.float32)
    ids = [p[0] for p in picked]
    vectors[ids] = embedder.embed([p[2] for p in picked], is_query=False)
    queries = embedder.embed([p[1] for p in picked], is_query=True)
    depth = max(k, FUSION_DEPTH, RERANK_CANDIDATES if reranker else 0)
    dense = _exact_top_k(vectors, queries, depth)
    held_out = {p[0]: p[2] for p in picked}
    fts = memory_fts((i, held_out.get(i, c.text), c.source) for i, c in opened.iter_chunks())
    try:
        lexical = [[i for i, _ in bm25_search(fts, p[1], depth)] for p in picked]
    finally:
        fts.close()

    def texts_of(chunk_ids: list[int]) -> list[str]:
        found = opened.fetch_chunks(chunk_ids)
        return [held_out.get(i, found[i].text) for i in chunk_ids]

    by_mode, headline = _score_modes([p[1] for p in picked], dense, lexical, [{i} for i in ids], k, mode,
                                     reranker, texts_of)
    top = by_mode[headline]
    return EvalResult(
        mode="self-supervised", search="exact", k=k, n_questions=len(picked),
        recall_at_k=top.recall_at_k, mrr=top.mrr, hit_rate=top.hit_rate, retrieval=headline, by_mode=by_mode,
        assumptions=[
            f"{len(picked)} sentences of {MIN_SENTENCE_WORDS}–{MAX_SENTENCE_WORDS} words, each found in one chunk "
            f"only, held out of that chunk (seed {seed})",
            "the held-out chunks are re-embedded without their sentence; the only relevant chunk is the source",
            "exact search over the stored vectors: the ANN index's own recall is measured in benchmarks/",
            "lexical search over the chunk texts with the same sentences held out (in-memory FTS5)",
        ],
    )  # fmt: skip


def _exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    import numpy as np

    k = min(k, len(vectors))
    ranked = []
    for i in range(0, len(queries), EXACT_SEARCH_QUERY_BLOCK):
        scores = queries[i : i + EXACT_SEARCH_QUERY_BLOCK] @ vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        ranked.extend(np.take_along_axis(top, order, axis=1).tolist())
    return ranked
