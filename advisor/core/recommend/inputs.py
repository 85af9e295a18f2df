"""The answers resolved for estimation: file loading, measured data, the model, the GPUs and the API."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from advisor.core import catalog
from advisor.core.errors import AdvisorError
from advisor.core.measure import measure_answers
from advisor.core.models import Answers, ApiPriceSpec, GpuSpec, MeasuredData, ModelSpec

__all__ = ["Situation", "TaskData", "catalog_architecture", "covers_languages", "load_answers", "resolve_situation"]

# The model weight-based paths are estimated on when the answers fix none: a common open-weight 8B model
# that QLoRA fits on a 24 GB card (decision-rules.md R-03: "recommend a smaller model (e.g. 7-14B on 24 GB)").
DEFAULT_BASE_MODEL = "llama-3.1-8b"
# Assumed sizes where the answers give none (stated in every report that uses them):
DEFAULT_EXAMPLE_TOKENS = 512  # instruction + answer; seed 002 trains at 2048-4096 tokens, most examples are shorter
DEFAULT_DOCUMENT_TOKENS = 1000  # decision-rules.md §4 sizes RAG ingestion at "100k docs × 1k tokens"
DEFAULT_PROMPT_TOKENS = 400  # instructions + the user's question, before any examples or context
# Languages each family's model card names as supported (a family not listed: English only is assumed).
# Llama 3.1/3.2/3.3: Meta's model cards (huggingface.co/meta-llama/Llama-3.1-8B-Instruct, "Supported languages").
# Qwen2.5: "multilingual support for over 29 languages", the named ones (qwenlm.github.io/blog/qwen2.5/, 2024).
LLAMA3_LANGUAGES = frozenset({"en", "de", "fr", "it", "pt", "hi", "es", "th"})
QWEN25_LANGUAGES = frozenset({"zh", "en", "fr", "es", "pt", "de", "it", "ru", "ja", "ko", "vi", "th", "ar"})
MODEL_LANGUAGES = {"llama-3.1": LLAMA3_LANGUAGES, "llama-3.2": LLAMA3_LANGUAGES, "llama-3.3": LLAMA3_LANGUAGES,
                   "qwen2.5": QWEN25_LANGUAGES}
MULTILINGUAL_BASE_MODEL = "qwen2.5-7b"  # the same 7-8B size class as the default, 29+ languages
# Edge targets: the 4-bit weights may take this share of the memory budget (the rest: KV cache, runtime, the app).
EDGE_WEIGHT_SHARE = 0.6
EDGE_DEFAULT_MEMORY_GB = 8.0  # assumption when no budget is given: a laptop or a phone-class accelerator
EDGE_BYTES_PER_PARAM = 0.5  # 4-bit weights (GGUF Q4 / AWQ / NF4), quantization constants aside
EDGE_CANDIDATES = ("llama-3.1-8b", "qwen2.5-7b", "llama-3.2-3b", "qwen2.5-3b", "gemma-2-2b", "qwen2.5-1.5b",
                   "llama-3.2-1b", "qwen2.5-0.5b")  # largest first: the largest that fits is picked
# Hub-id suffixes of post-trained variants that keep the base's shapes (same config.json dimensions).
VARIANT_SUFFIX = re.compile(r"(?i)[-_.](instruct|chat|it|hf|base)(?=$|[-_.])")


@dataclass(frozen=True)
class TaskData:
    """One of several tasks, its examples measured where a file was given."""

    name: str
    examples_path: str | None
    n_examples: int
    mean_example_tokens: int


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
    n_examples_stated: int = 0  # before the usable fraction was applied
    compare_api: ApiPriceSpec | None = None  # open weights: the API model the answers compare with
    today: dt.date = field(default_factory=dt.date.today)
    edge_memory_gb: float = 0.0  # 0: a server deployment
    tasks: tuple[TaskData, ...] = ()  # several tasks, one adapter each on one base; (): one task


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
    if isinstance(data.get("tasks"), list):
        data["tasks"] = [{**t, "examples_path": str((path.parent / t["examples_path"]).resolve())}
                         if isinstance(t, dict) and isinstance(t.get("examples_path"), str) and t["examples_path"]
                         and not Path(t["examples_path"]).expanduser().is_absolute() else t for t in data["tasks"]]
    return Answers.model_validate(data)


def _measure_tasks(answers: Answers, measured: MeasuredData | None,
                   notes: list[str]) -> tuple[tuple[TaskData, ...], MeasuredData | None]:
    """Each task's examples measured (its file) or stated; the measured data with their totals.

    The totals are what one-task estimates read: the examples of every task, at their mean length.
    """
    from advisor.core.measure import CHARS_PER_TOKEN, measure_jsonl

    if not answers.tasks:
        return (), measured
    tasks, found, bad_lines = [], [], 0
    for t in answers.tasks:
        n, mean = t.n_examples, answers.mean_example_tokens
        if t.examples_path:
            n_file, mean_file, bad = measure_jsonl(t.examples_path, f"tasks.{t.name}.examples_path")
            if t.n_examples and t.n_examples != n_file:
                notes.append(f"task {t.name}: the answers say {t.n_examples:,} examples; the file holds {n_file:,}: "
                             "using the measured count")
            n, mean, bad_lines = n_file, answers.mean_example_tokens or mean_file or None, bad_lines + bad
            found.append(f"{t.examples_path}: {n_file:,} records, mean {mean_file:,} tokens (characters / "
                         f"{CHARS_PER_TOKEN})" + (f"; {bad} lines were not JSON objects and were skipped" if bad else ""))
        tasks.append(TaskData(name=t.name, examples_path=t.examples_path, n_examples=n,
                              mean_example_tokens=mean or DEFAULT_EXAMPLE_TOKENS))
    if any(t.examples_path is None for t in answers.tasks) and answers.mean_example_tokens is None:
        notes.append(f"examples of tasks without a file assumed {DEFAULT_EXAMPLE_TOKENS} tokens each")
    if not found:
        return tuple(tasks), measured
    total = sum(t.n_examples for t in tasks)
    mean = round(sum(t.n_examples * t.mean_example_tokens for t in tasks) / total) if total else None
    base = measured or MeasuredData()
    return tuple(tasks), base.model_copy(update={
        "n_examples": total, "mean_example_tokens": mean, "n_invalid_example_lines": bad_lines,
        "notes": [*found, *base.notes]})


def _measured_or_stated(stated: int, measured: int | None, what: str, notes: list[str]) -> int:
    if measured is None:
        return stated
    if stated and stated != measured:
        notes.append(f"the answers say {stated:,} {what}; the file holds {measured:,}: using the measured count")
    return measured


def catalog_architecture(name: str) -> str | None:
    """The catalog row whose shapes `name` has: a catalog name, alias or hf_id, or a post-trained variant of one
    (`Qwen/Qwen2.5-7B-Instruct` → `qwen2.5-7b`); None when it is none of those."""
    rows = catalog.load_model_rows()
    index = {}
    for row in rows:
        for key in (row["name"], row["hf_id"], *row.get("aliases", [])):
            index[str(key).lower()] = row["name"]
    key = name.strip().lower()
    if key in index:
        return index[key]
    stripped = key
    while (cut := VARIANT_SUFFIX.sub("", stripped, count=1)) != stripped:
        stripped = cut
        if stripped in index:
            return index[stripped]
    tail = stripped.rsplit("/", 1)[-1]
    return index.get(tail)


def covers_languages(model_name: str, languages: list[str]) -> bool:
    """The model card of `model_name`'s family names every language in `languages`."""
    family = next((f for f in MODEL_LANGUAGES if model_name.startswith(f)), None)
    supported = MODEL_LANGUAGES[family] if family else frozenset({"en"})
    return set(languages) <= supported


def _edge_model(budget_gb: float, languages: list[str]) -> tuple[str, str]:
    """The largest candidate whose 4-bit weights fit the edge budget (and that covers the languages when one does)."""
    from advisor.core.estimate.params import count_params

    fitting = []
    for name in EDGE_CANDIDATES:
        weights_gb = count_params(catalog.resolve_model(name)).n_params * EDGE_BYTES_PER_PARAM / 1e9
        if weights_gb <= budget_gb * EDGE_WEIGHT_SHARE:
            fitting.append((name, weights_gb))
    if not fitting:
        name = EDGE_CANDIDATES[-1]
        return name, f"{name}: the smallest catalog model; even its 4-bit weights exceed {EDGE_WEIGHT_SHARE:.0%} of " \
            f"{budget_gb:g} GB"
    pick = next(((n, w) for n, w in fitting if covers_languages(n, languages)), fitting[0])
    return pick[0], f"{pick[0]}: the largest catalog model whose 4-bit weights ({pick[1]:.1f} GB) take at most " \
        f"{EDGE_WEIGHT_SHARE:.0%} of the {budget_gb:g} GB edge budget"


def _model(answers: Answers, notes: list[str]) -> tuple[ModelSpec, str, bool]:
    name = answers.base_model or DEFAULT_BASE_MODEL
    if answers.model_access != "open_weights" and name in catalog.load_api_prices():
        answers = answers.model_copy(update={"base_model": None})  # an API model: weights paths use the default
        name = DEFAULT_BASE_MODEL
    if answers.base_model is None:
        why = "weight-based paths are estimated on it as an open-weight alternative" \
            if answers.model_access != "open_weights" else "no base model was given"
        if answers.deployment == "edge":
            budget = answers.edge_memory_gb or EDGE_DEFAULT_MEMORY_GB
            name, how = _edge_model(budget, answers.languages)
            if answers.edge_memory_gb is None:
                how += " (assumed; give edge_memory_gb)"
            notes.append(f"model: {how}; served 4-bit on the device ({why})")
        elif not covers_languages(DEFAULT_BASE_MODEL, answers.languages):
            name = MULTILINGUAL_BASE_MODEL
            notes.append(f"model: {name} (the languages {', '.join(answers.languages)} are outside Llama 3.1's eight "
                         "supported ones; Qwen2.5 names 29+, qwenlm.github.io/blog/qwen2.5; " + why + ")")
        else:
            notes.append(f"model: {DEFAULT_BASE_MODEL} ({why}; 8B fits QLoRA on a 24 GB card, decision-rules.md R-03)")
    arch = catalog_architecture(name)
    spec = catalog.resolve_model(arch or name)
    rows = {row["name"]: row for row in catalog.load_model_rows()}
    if arch is not None and answers.base_model is not None and arch.lower() != name.lower() \
            and name.lower() not in {str(a).lower() for a in (rows[arch]["hf_id"], *rows[arch].get("aliases", []))}:
        hf_id = name  # a post-trained variant: trained as given, estimated on its base's shapes
        notes.append(f"model: {name} has the shapes of the catalog's {arch} (a post-trained variant of it)")
    else:
        hf_id = rows[spec.name]["hf_id"] if spec.name in rows else spec.name
    return spec, hf_id, answers.base_model is None


def resolve_situation(answers: Answers, today: dt.date | None = None) -> Situation:
    """Measure the answers' paths and look up the model, GPU and API they name (`today`: None is the real date).

    Raises:
        AdvisorError: A path does not exist, or a model/GPU/API name is unknown (with near matches).
    """
    notes: list[str] = []
    measured = measure_answers(answers)
    tasks, measured = _measure_tasks(answers, measured, notes)
    m = measured or MeasuredData()
    n_stated = _measured_or_stated(answers.n_examples or sum(t.n_examples for t in tasks), m.n_examples,
                                   "examples", notes)
    n_examples = n_stated
    if answers.usable_fraction is not None and n_stated:
        n_examples = math.floor(n_stated * answers.usable_fraction)
        notes.append(f"filter, then train: {n_examples:,} of {n_stated:,} examples survive filtering "
                     f"(usable fraction {answers.usable_fraction:g}); estimates use the filtered size")
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
    api = compare = None
    if answers.model_access != "open_weights":
        api_name = answers.api_model
        if api_name is None and answers.base_model in catalog.load_api_prices():
            api_name = answers.base_model
        api = catalog.resolve_api_model(api_name)
    elif answers.api_model is not None:
        compare = catalog.resolve_api_model(answers.api_model)
    prompt_tokens = answers.prompt_tokens or DEFAULT_PROMPT_TOKENS
    if answers.prompt_tokens is None:
        notes.append(f"today's prompt assumed {DEFAULT_PROMPT_TOKENS} tokens (instructions + question)")
    return Situation(
        answers=answers, measured=measured, n_examples=n_examples, mean_example_tokens=mean_tokens,
        n_preference_pairs=n_pairs, mean_preference_tokens=m.mean_preference_tokens or mean_tokens,
        n_documents=n_documents, corpus_tokens=corpus_tokens, corpus_size_known=size_known,
        model=model, model_hf_id=hf_id, model_chosen_by_advisor=chosen, owned_gpu=owned,
        n_owned_gpus=answers.gpu.count if answers.gpu else 0, api=api, prompt_tokens=prompt_tokens,
        notes=notes, n_examples_stated=n_stated, compare_api=compare, today=today or dt.date.today(),
        edge_memory_gb=(answers.edge_memory_gb or EDGE_DEFAULT_MEMORY_GB) if answers.deployment == "edge" else 0.0,
        tasks=tasks,
    )
