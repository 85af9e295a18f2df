"""Retrieval evaluation: recall@k, MRR and hit rate, on labelled questions or on held-out sentences.

Labelled: a JSON Lines file, one question per line, with the expected `source` file and/or an expected `text`
(`answer` is accepted as a synonym). A chunk is relevant when it comes from that file or contains that text.

Self-supervised, when there are no labels: pick chunks at random (fixed seed); from each, hold out one sentence
that occurs in no other chunk; re-embed the chunk without it; ask the sentence as the question. The only relevant
chunk is the one it was taken from, and it no longer contains the sentence, so the question is not a verbatim
lookup. Searched exactly over the stored vectors with those chunks swapped for their held-out versions, so it
measures chunking and embedding; the ANN index's own recall against exact search is in `benchmarks/`.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.core.errors import AdvisorError, InvalidInputError
from backends.common.embedding import Embedder, load_embedder
from backends.rag.results import EvalResult
from backends.rag.store import OpenIndex, open_index

if TYPE_CHECKING:
    import numpy as np

__all__ = ["evaluate_index", "retrieval_metrics"]

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


def evaluate_index(
    index_dir: str | Path,
    qa_path: str | Path | None = None,
    k: int = 5,
    n_questions: int = DEFAULT_N_QUESTIONS,
    seed: int = 0,
    embedder: Embedder | None = None,
) -> EvalResult:
    """Measure retrieval quality of an index.

    Args:
        index_dir: An index built by `build_index`.
        qa_path: Labelled questions (JSON Lines); None: self-supervised held-out sentences.
        k: Ranks considered.
        n_questions: Self-supervised: questions to draw (fewer when the corpus has fewer usable sentences).
        seed: Self-supervised: which chunks and sentences are drawn.
        embedder: An already loaded embedder; None: the model named in the manifest.

    Raises:
        AdvisorError: no index, a damaged index, a bad question file, or no usable questions.
    """
    if k < 1:
        raise InvalidInputError([f"k: must be ≥ 1 (got {k})"])
    opened = open_index(index_dir)
    questions = _read_questions(Path(qa_path)) if qa_path is not None else None
    embedder = embedder or load_embedder(opened.manifest.embedding_model)
    if questions is not None:
        return _evaluate_labelled(opened, questions, k, embedder)
    return _evaluate_held_out(opened, k, n_questions, seed, embedder)


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


def _evaluate_labelled(opened: OpenIndex, questions: list[dict], k: int, embedder: Embedder) -> EvalResult:
    from backends.rag.index import search

    relevant: list[set[int]] = [set() for _ in questions]
    texts = [_normalise(q["text"]) if q["text"] else None for q in questions]
    for chunk_id, chunk in opened.iter_chunks():
        body = _normalise(chunk.text)
        for q, rel, text in zip(questions, relevant, texts, strict=True):
            source = q["source"]
            if (source and (chunk.source == source or chunk.source.endswith("/" + source))) or (text and text in body):
                rel.add(chunk_id)
    queries = embedder.embed([q["question"] for q in questions], is_query=True)
    _, ids = search(opened.load_faiss(), queries, k)
    ranked = [[int(i) for i in row if i >= 0] for row in ids]
    recall, mrr, hit_rate = retrieval_metrics(ranked, relevant, k)
    unmatched = sum(1 for rel in relevant if not rel)
    return EvalResult(
        mode="labelled", search="index", k=k, n_questions=len(questions),
        recall_at_k=recall, mrr=mrr, hit_rate=hit_rate,
        assumptions=[
            "relevant: chunks of the expected source file, or chunks containing the expected text "
            "(case and spacing ignored)",
            f"{unmatched} question(s) matched no chunk and score 0" if unmatched else "every question matched a chunk",
        ],
    )  # fmt: skip


def _evaluate_held_out(opened: OpenIndex, k: int, n_questions: int, seed: int, embedder: Embedder) -> EvalResult:
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
    ranked = _exact_top_k(vectors, queries, k)
    recall, mrr, hit_rate = retrieval_metrics(ranked, [{i} for i in ids], k)
    return EvalResult(
        mode="self-supervised", search="exact", k=k, n_questions=len(picked),
        recall_at_k=recall, mrr=mrr, hit_rate=hit_rate,
        assumptions=[
            f"{len(picked)} sentences of {MIN_SENTENCE_WORDS}–{MAX_SENTENCE_WORDS} words, each found in one chunk "
            f"only, held out of that chunk (seed {seed})",
            "the held-out chunks are re-embedded without their sentence; the only relevant chunk is the source",
            "exact search over the stored vectors: the ANN index's own recall is measured in benchmarks/",
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
