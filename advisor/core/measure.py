"""Measure the data paths named in the answers: examples and preference pairs (JSON Lines), a corpus folder.

Tokens are estimated from characters, not with a tokenizer (no heavy imports on the CLI's path):

    tokens ≈ characters / CHARS_PER_TOKEN

CHARS_PER_TOKEN = 4 is OpenAI's rule of thumb for English text ("one token generally corresponds to ~4
characters of text", help.openai.com "What are tokens and how to count them"); code and non-English text
run fewer characters per token, so those corpora are under-counted. Only text files are read; PDFs and
other binary files are counted but not sized (extracting their text needs the rag extra).
"""

from __future__ import annotations

import json
from pathlib import Path

from advisor.core.errors import InvalidInputError
from advisor.core.models import Answers, MeasuredData

__all__ = ["CHARS_PER_TOKEN", "TEXT_SUFFIXES", "measure_answers", "measure_corpus", "measure_jsonl"]

CHARS_PER_TOKEN = 4
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".csv", ".tsv", ".json", ".jsonl", ".xml"}
PREFERENCE_KEYS = ("chosen", "rejected")


def _text_of(value: object) -> str:
    """All string content of a JSON value (chat messages, nested fields), joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_text_of(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    return ""


def measure_jsonl(path: str | Path, field: str, require: tuple[str, ...] = ()) -> tuple[int, int, int]:
    """Count the usable records of a JSON Lines file and their mean size.

    Args:
        path: The file.
        field: The answers field that named it (for messages).
        require: Keys every record must have to count (e.g. `chosen`, `rejected`).

    Returns:
        (records, mean tokens per record, lines that were not usable records).

    Raises:
        InvalidInputError: The file does not exist or cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError([f"{field}: `{path}` is a folder, not a JSON Lines file"],
                                hint="give the .jsonl file inside it")
    if not path.is_file():
        raise InvalidInputError([f"{field}: `{path}` does not exist"], hint="fix the path or remove the field")
    n, chars, bad = 0, 0, 0
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict) or any(k not in record for k in require):
                        bad += 1
                        continue
                    size = len(_text_of(record))
                except (ValueError, RecursionError):  # not JSON, a 5,000-digit number, nesting too deep to walk
                    bad += 1
                    continue
                n += 1
                chars += size
    except OSError as exc:
        raise InvalidInputError([f"{field}: cannot read `{path}` ({exc.strerror})"]) from None
    mean = round(chars / CHARS_PER_TOKEN / n) if n else 0
    return n, mean, bad


def measure_corpus(path: str | Path) -> tuple[int, int, int]:
    """Files in a corpus folder (recursive, hidden files skipped) and their size in tokens.

    Returns:
        (documents, tokens of the text files, documents not sized: PDFs and other binaries).

    Raises:
        InvalidInputError: The folder does not exist.
    """
    root = Path(path)
    if not root.exists():
        raise InvalidInputError([f"corpus_path: `{root}` does not exist"], hint="give the folder of documents")
    if not root.is_dir():
        raise InvalidInputError([f"corpus_path: `{root}` is a file, not a folder"], hint="give the folder of documents")
    n_docs, chars, unsized = 0, 0, 0
    for file in sorted(root.rglob("*")):
        if not file.is_file() or any(part.startswith(".") for part in file.relative_to(root).parts):
            continue
        n_docs += 1
        if file.suffix.lower() in TEXT_SUFFIXES:
            chars += _count_chars(file)
        else:
            unsized += 1
    return n_docs, chars // CHARS_PER_TOKEN, unsized


def _count_chars(file: Path) -> int:
    """Characters of a text file, read 1 MiB at a time (a multi-GB file is counted, not held in memory)."""
    chars = 0
    try:
        with file.open(encoding="utf-8", errors="replace") as fh:
            while chunk := fh.read(1 << 20):
                chars += len(chunk)
    except OSError as exc:
        raise InvalidInputError([f"corpus_path: cannot read `{file}` ({exc.strerror or exc})"],
                                hint="make the file readable, or move it out of the corpus folder") from None
    return chars


def measure_answers(answers: Answers) -> MeasuredData | None:
    """Measure every path the answers name; None when they name none."""
    if not (answers.examples_path or answers.preferences_path or answers.corpus_path):
        return None
    found: dict[str, int | None] = {}
    notes = []
    bad = unsized = 0
    if answers.examples_path:
        n, mean, bad = measure_jsonl(answers.examples_path, "examples_path")
        found.update(n_examples=n, mean_example_tokens=mean or None)
        notes.append(f"{answers.examples_path}: {n:,} records, mean {mean:,} tokens (characters / {CHARS_PER_TOKEN})"
                     + (f"; {bad} lines were not JSON objects and were skipped" if bad else ""))
    if answers.preferences_path:
        n, mean, skipped = measure_jsonl(answers.preferences_path, "preferences_path", PREFERENCE_KEYS)
        found.update(n_preference_pairs=n, mean_preference_tokens=mean or None)
        notes.append(f"{answers.preferences_path}: {n:,} pairs with `chosen` and `rejected`, mean {mean:,} tokens"
                     + (f"; {skipped} lines without both were skipped" if skipped else ""))
    if answers.corpus_path:
        n_docs, tokens, unsized = measure_corpus(answers.corpus_path)
        found.update(n_documents=n_docs, corpus_tokens=tokens)
        notes.append(f"{answers.corpus_path}: {n_docs:,} files, {tokens:,} tokens in the text files"
                     + (f"; {unsized} PDF/binary files counted but not sized" if unsized else ""))
    return MeasuredData(**found, n_invalid_example_lines=bad, n_unmeasured_documents=unsized, notes=notes)
