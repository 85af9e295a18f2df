"""Optional reranking: a sentence-transformers cross-encoder re-scores (question, chunk) pairs of the top chunks.

No cross-encoder ships with advisor, so none works offline unless the user has one on disk (a folder saved by
`CrossEncoder.save_pretrained`) or in the Hugging Face cache; a model that cannot be loaded is one clear error.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from advisor.core.errors import AdvisorError, MissingExtraError

__all__ = ["Reranker", "load_reranker"]

RERANK_BATCH_SIZE = 32


class Reranker:
    """A loaded cross-encoder: higher score = more relevant."""

    def __init__(self, model_id: str, model: object) -> None:
        self.model_id = model_id
        self._model = model

    def scores(self, question: str, texts: list[str]) -> list[float]:
        """One relevance score per text, for `question`."""
        if not texts:
            return []
        out = self._model.predict([(question, t) for t in texts], batch_size=RERANK_BATCH_SIZE, show_progress_bar=False)
        return [float(x) for x in out]


def load_reranker(model_id: str) -> Reranker:
    """Load the cross-encoder `model_id` (a folder or a Hub id already in the local cache).

    Raises:
        MissingExtraError: sentence-transformers is not installed.
        AdvisorError: it cannot be found or loaded (the one-line reason, and what to pass instead).
    """
    if importlib.util.find_spec("sentence_transformers") is None:
        raise MissingExtraError("rag", "sentence_transformers")
    hint = ("no cross-encoder ships with advisor (none works offline): pass a local folder of a sentence-transformers "
            "CrossEncoder, or leave out --rerank")  # fmt: skip
    local = Path(model_id).expanduser()
    if model_id.startswith((".", "/", "~")) and not local.is_dir():
        raise AdvisorError(f"cannot load reranker `{model_id}`: folder does not exist", hint)
    from sentence_transformers import CrossEncoder

    try:
        model = CrossEncoder(str(local) if local.is_dir() else model_id, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - hub, config and weight errors all mean "cannot load"
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        raise AdvisorError(f"cannot load reranker `{model_id}`: {first_line}", hint) from None
    return Reranker(model_id, model)
