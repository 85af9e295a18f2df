"""The answers resolved for estimation: file loading, measured data, the model, the GPUs and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from advisor.core import catalog
from advisor.core.errors import AdvisorError
from advisor.core.measure import measure_answers
from advisor.core.models import Answers, ApiPriceSpec, GpuSpec, MeasuredData, ModelSpec

__all__ = ["Situation", "load_answers", "resolve_situation"]

# The model weight-based paths are estimated on when the answers fix none: a common open-weight 8B model
# that QLoRA fits on a 24 GB card (decision-rules.md R-03: "recommend a smaller model (e.g. 7-14B on 24 GB)").
DEFAULT_BASE_MODEL = "llama-3.1-8b"
# Assumed sizes where the answers give none (stated in every report that uses them):
DEFAULT_EXAMPLE_TOKENS = 512  # instruction + answer; seed 002 trains at 2048-4096 tokens, most examples are shorter
DEFAULT_DOCUMENT_TOKENS = 1000  # decision-rules.md §4 sizes RAG ingestion at "100k docs × 1k tokens"
DEFAULT_PROMPT_TOKENS = 400  # instructions + the user's question, before any examples or context


@dataclass(frozen=True)
class Situation:
    """Everything the estimates need, with measured numbers in place of stated ones where a path was given."""

    answers: Answers
    measured: MeasuredData | None
    n_examples: int
    mean_example_tokens: int
    n_preference_pairs: int
    mean_preference_tokens: int
    n_documents: int
    corpus_tokens: int
    corpus_size_known: bool
    model: ModelSpec
    model_hf_id: str
    model_chosen_by_advisor: bool
    owned_gpu: GpuSpec | None
    n_owned_gpus: int
    api: ApiPriceSpec | None
    prompt_tokens: int
    notes: list[str] = field(default_factory=list)


ANSWER_PATH_FIELDS = ("examples_path", "preferences_path", "corpus_path", "eval_questions_path")


def load_answers(path: str | Path) -> Answers:
    """Read and validate an answers file (YAML).

    Raises:
        AdvisorError: The file is missing, a folder, binary, not UTF-8, not YAML (or has a key twice), or does
            not hold a mapping.
        pydantic.ValidationError: Fields are missing or invalid (the CLI lists every one with its path).
    """
    from advisor.core.yamlio import load_yaml_file

    path = Path(path)
    if not path.exists():
        raise AdvisorError(f"answers file `{path}` does not exist", "write one by hand, or with `advisor ask`")
    data = load_yaml_file(path, "answers file")  # strict: duplicate keys, binary, deep nesting are errors
    if not isinstance(data, dict):
        raise AdvisorError(f"`{path}` must hold a mapping of answers (goal, n_examples, ...)")
    # Paths in an answers file are relative to the file, wherever the command runs from.
    for key in ANSWER_PATH_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            data[key] = str((path.parent / value).resolve())
    return Answers.model_validate(data)


def _measured_or_stated(stated: int, measured: int | None, what: str, notes: list[str]) -> int:
    if measured is None:
        return stated
    if stated and stated != measured:
        notes.append(f"the answers say {stated:,} {what}; the file holds {measured:,}: using the measured count")
    return measured


def _model(answers: Answers, notes: list[str]) -> tuple[ModelSpec, str, bool]:
    name = answers.base_model or DEFAULT_BASE_MODEL
    if answers.model_access != "open_weights" and name in catalog.load_api_prices():
        answers = answers.model_copy(update={"base_model": None})  # an API model: weights paths use the default
        name = DEFAULT_BASE_MODEL
    spec = catalog.resolve_model(name)
    rows = {row["name"]: row for row in catalog.load_model_rows()}
    hf_id = rows[spec.name]["hf_id"] if spec.name in rows else spec.name
    if answers.base_model is None:
        why = "weight-based paths are estimated on it as an open-weight alternative" \
            if answers.model_access != "open_weights" else "no base model was given"
        notes.append(f"model: {DEFAULT_BASE_MODEL} ({why}; 8B fits QLoRA on a 24 GB card, decision-rules.md R-03)")
    return spec, hf_id, answers.base_model is None


def resolve_situation(answers: Answers) -> Situation:
    """Measure the answers' paths and look up the model, GPU and API they name.

    Raises:
        AdvisorError: A path does not exist, or a model/GPU/API name is unknown (with near matches).
    """
    notes: list[str] = []
    measured = measure_answers(answers)
    m = measured or MeasuredData()
    n_examples = _measured_or_stated(answers.n_examples, m.n_examples, "examples", notes)
    n_pairs = _measured_or_stated(answers.n_preference_pairs, m.n_preference_pairs, "preference pairs", notes)
    n_documents = _measured_or_stated(answers.n_documents, m.n_documents, "documents", notes)
    mean_tokens = answers.mean_example_tokens or m.mean_example_tokens
    if mean_tokens is None:
        mean_tokens = DEFAULT_EXAMPLE_TOKENS
        if n_examples:
            notes.append(f"examples assumed {DEFAULT_EXAMPLE_TOKENS} tokens each (give examples_path to measure)")
    corpus_tokens = m.corpus_tokens if m.corpus_tokens is not None else answers.corpus_tokens
    size_known = corpus_tokens is not None
    if corpus_tokens is None:
        corpus_tokens = n_documents * DEFAULT_DOCUMENT_TOKENS
        if n_documents:
            notes.append(f"corpus assumed {DEFAULT_DOCUMENT_TOKENS:,} tokens per document (decision-rules.md §4)")
    model, hf_id, chosen = _model(answers, notes)
    owned = catalog.resolve_gpu(answers.gpu.type) if answers.gpu else None
    api = None
    if answers.model_access != "open_weights":
        api_name = answers.api_model
        if api_name is None and answers.base_model in catalog.load_api_prices():
            api_name = answers.base_model
        api = catalog.resolve_api_model(api_name)
    prompt_tokens = answers.prompt_tokens or DEFAULT_PROMPT_TOKENS
    if answers.prompt_tokens is None:
        notes.append(f"today's prompt assumed {DEFAULT_PROMPT_TOKENS} tokens (instructions + question)")
    return Situation(
        answers=answers, measured=measured, n_examples=n_examples, mean_example_tokens=mean_tokens,
        n_preference_pairs=n_pairs, mean_preference_tokens=m.mean_preference_tokens or mean_tokens,
        n_documents=n_documents, corpus_tokens=corpus_tokens, corpus_size_known=size_known,
        model=model, model_hf_id=hf_id, model_chosen_by_advisor=chosen, owned_gpu=owned,
        n_owned_gpus=answers.gpu.count if answers.gpu else 0, api=api, prompt_tokens=prompt_tokens,
        notes=notes,
    )
