"""Result and record models of the RAG backend: chunks, manifest, build, query and evaluation results."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, computed_field

from advisor.core.models import Model
from backends.common.verdict import BootstrapInterval, McNemarTest, Outcome

__all__ = [
    "BuildResult",
    "Chunk",
    "EvalResult",
    "FileEntry",
    "IndexType",
    "Manifest",
    "ModeScores",
    "QueryHit",
    "RagRunResult",
    "RagVerdict",
    "RetrievalMode",
]

IndexType = Literal["flat", "hnsw", "ivf"]
RetrievalMode = Literal["dense", "lexical", "hybrid"]
MANIFEST_FORMAT_VERSION = 1
# How CSV/JSONL rows become text. 1: the one guessed column's value; 2: every column (or the named ones) as
# `column: value` lines. Row files of an index written in an older format are re-read on update.
ROWS_FORMAT = 2


class Chunk(Model):
    """One piece of a document, as indexed: its text and where it came from."""

    source: str = Field(description="Path of the file, relative to the documents folder, with `/` separators")
    chunk_index: int = Field(ge=0, description="Position of the chunk within its file, from 0")
    char_start: int = Field(ge=0, description="Offset of the first character in the file's extracted text")
    char_end: int = Field(ge=0, description="Offset one past the last character in the file's extracted text")
    locator: str = Field(description="Human position: `lines 12–30`, `page 3`, `pages 2–3`, `row 7` or `rows 7–9`")
    n_tokens: int = Field(ge=0, description="Embedding-model tokens in the chunk (special tokens excluded)")
    text: str = Field(description="The chunk text")
    content_sha256: str = Field(description="SHA-256 of the chunk text (hex)")


class FileEntry(Model):
    """What the index knows about one source file."""

    content_sha256: str = Field(description="SHA-256 of the file's bytes (hex); decides whether it is re-embedded")
    n_bytes: int = Field(ge=0, description="Size of the file")
    n_chunks: int = Field(ge=0, description="Chunks the file produced")


class Manifest(Model):
    """Everything needed to query, update or audit an index; stored as `manifest.json` in each generation."""

    format_version: int = Field(MANIFEST_FORMAT_VERSION, description="Layout version of the index directory")
    embedding_model: str = Field(description="sentence-transformers id or path the vectors come from")
    embedding_dim: int = Field(gt=0, description="Width of each vector")
    metric: Literal["inner_product"] = Field("inner_product", description="faiss metric of the index")
    is_normalized: bool = Field(True, description="Vectors have unit L2 norm, so inner product = cosine")
    query_prompt: str = Field("", description="Text prepended to queries before embedding")
    document_prompt: str = Field("", description="Text prepended to chunks before embedding")
    max_input_tokens: int = Field(gt=0, description="Content tokens the model reads per input (prompt excluded)")
    chunk_tokens: int = Field(gt=0, description="Chunk size asked for, in tokens")
    overlap_tokens: int = Field(ge=0, description="Tokens shared by neighbouring chunks")
    text_column: str | list[str] | None = Field(description="CSV/JSONL columns kept; None: every column (format 1: "
                                                "the guessed one)")
    rows_format: int = Field(1, description="How CSV/JSONL rows became text (`ROWS_FORMAT`); 1 before v2")
    index_type: IndexType = Field(description="faiss index kind")
    index_type_reason: str = Field(description="Why this kind was chosen")
    index_params: dict[str, int] = Field(description="HNSW M/efSearch, IVF nlist/nprobe; empty for flat")
    n_chunks: int = Field(ge=0, description="Vectors in the index")
    files: dict[str, FileEntry] = Field(description="Indexed files by relative path")
    versions: dict[str, str] = Field(description="advisor, sentence-transformers, faiss and python versions")
    created_at: str = Field(description="UTC time the generation was written (ISO 8601)")


class BuildResult(Model):
    """What a build or update did."""

    index_dir: str = Field(description="The index directory")
    generation: str = Field(description="Name of the generation now live inside it")
    embedding_model: str
    embedding_dim: int
    index_type: IndexType
    index_type_reason: str
    n_files: int = Field(description="Files in the index after the build")
    n_files_added: int
    n_files_changed: int
    n_files_unchanged: int = Field(description="Files whose vectors were reused without embedding")
    n_files_removed: int = Field(description="Files gone from the folder whose chunks were dropped")
    n_files_skipped: int = Field(description="Files that could not be read (see warnings)")
    n_files_binary: int = Field(0, description="Files without a known suffix skipped because their content is not "
                                "text (see `binary_files`)")
    binary_files: dict[str, str] = Field(default_factory=dict, description="Each binary file skipped, and why")
    n_chunks: int = Field(description="Chunks in the index after the build")
    n_chunks_embedded: int = Field(description="Chunks embedded by this build (new or changed files)")
    n_batches_embedded: int = Field(description="Embedding batches computed by this build")
    n_batches_reused: int = Field(description="Embedding batches taken from an interrupted build's checkpoints")
    build_seconds: float = Field(description="Wall time of the whole build")
    warnings: list[str] = Field(description="Every file skipped, and why")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def chunks_per_second(self) -> float:
        """Chunks embedded per second of build time (0 when nothing needed embedding)."""
        return self.n_chunks_embedded / self.build_seconds if self.build_seconds > 0 else 0.0


class QueryHit(Model):
    """One ranked chunk returned by a query."""

    rank: int = Field(ge=1, description="1 for the best match")
    score: float = Field(description="dense: cosine similarity; lexical: BM25; hybrid: reciprocal-rank fusion score; "
                         "reranked: the cross-encoder's score")
    dense_rank: int | None = Field(None, description="Rank in the dense (faiss) ranking; None: not in it")
    lexical_rank: int | None = Field(None, description="Rank in the lexical (BM25) ranking; None: not in it")
    source: str
    locator: str
    char_start: int
    char_end: int
    chunk_index: int
    text: str


class ModeScores(Model):
    """Retrieval quality of one search mode, with the per-question outcomes the verdict pairs."""

    recall_at_k: float
    mrr: float
    hit_rate: float
    hits: list[bool] = Field(description="Per question: a relevant chunk in the top k")
    reciprocal_ranks: list[float] = Field(description="Per question: 1 / rank of the first relevant chunk (0 beyond k)")


class EvalResult(Model):
    """Retrieval quality of an index on a question set, for every search mode on the same questions."""

    mode: Literal["labelled", "self-supervised"] = Field(
        description="labelled: questions from a file; self-supervised: held-out sentences of the chunks"
    )
    search: Literal["index", "exact"] = Field(
        description="index: the stored faiss index; exact: brute force over vectors with held-out chunks re-embedded"
    )
    k: int = Field(description="Ranks considered")
    n_questions: int
    recall_at_k: float = Field(description="Mean of relevant-in-top-k / min(k, relevant), over questions")
    mrr: float = Field(description="Mean reciprocal rank of the first relevant chunk (0 beyond k)")
    hit_rate: float = Field(description="Share of questions with a relevant chunk in the top k")
    assumptions: list[str] = Field(description="How questions and relevance were decided")
    retrieval: str = Field("dense", description="The mode recall_at_k, mrr and hit_rate are for (`hybrid+rerank` "
                           "when reranked)")
    by_mode: dict[str, ModeScores] = Field(default_factory=dict, description="dense, lexical, hybrid (and the "
                                           "reranked mode) on the same questions")


class RagVerdict(Model):
    """Did the step's search mode retrieve better than the lexical baseline, on the same questions (paired)."""

    outcome: Outcome
    comparison: str = Field(description="`baseline vs mode`, e.g. `lexical vs hybrid`")
    baseline: str
    mode: str
    k: int
    n_questions: int
    hit: McNemarTest | None = Field(description="Exact McNemar on per-question hit@k; None: too few questions")
    reciprocal_rank: BootstrapInterval | None = Field(description="Paired bootstrap of the MRR difference")
    reasons: list[str]
    rule: str

    def headline(self) -> str:
        """`IMPROVED (n=38, lexical vs hybrid): hit@5 0.84 → 0.97 (b=0, c=5, McNemar p=0.0625); MRR +0.09 [...]`."""
        parts = []
        if self.hit is not None:
            h = self.hit
            parts.append(f"hit@{self.k} {h.rate_a:.2f} → {h.rate_b:.2f} (b={h.n_a_only}, c={h.n_b_only}, "
                         f"McNemar p={h.p_value:.3g})")
        if self.reciprocal_rank is not None:
            r = self.reciprocal_rank
            parts.append(f"MRR {r.mean_difference:+.3f} [{r.low:+.3f}, {r.high:+.3f}]")
        body = "; ".join(parts) if parts else "; ".join(self.reasons)
        return f"{self.outcome} (n={self.n_questions}, {self.comparison}): {body}"


class RagRunResult(Model):
    """What `backends.rag.run` produced for one plan step."""

    kind: Literal["rag"] = "rag"
    index_dir: str
    build: BuildResult
    evaluation: EvalResult | None = Field(description="Self-supervised evaluation; None when it had no questions")
    verdict: RagVerdict | None = Field(None, description="The step's mode against the lexical baseline; None: no "
                                       "evaluation")
    index_bytes: int = Field(0, ge=0, description="Bytes of the index folder on disk after the build")
