"""Build or update an index from a folder: list → hash → load changed files → chunk → embed → index → publish.

Updates are incremental: a file whose bytes and chunking settings are unchanged keeps its stored vectors; new and
changed files are embedded; chunks of deleted files are dropped. Embedding batches are checkpointed in the
index's `staging/` folder under a key made of the model and the batch's chunk hashes, so a build that was killed
resumes where it stopped. The previous generation stays live until the new one is complete (see `store`).

Faults end in one line, never a traceback, and never cost the live index: a file that vanishes or cannot be read
mid-build, or whose name is not UTF-8, is skipped with a warning naming it; a write that fails (a full disk,
no permission) raises `AdvisorError`, and the next build clears what was left. Memory is bounded per file:
plain text is chunked as it is read (`loaders.TextFile`), and files over `loaders.MAX_FILE_BYTES` are skipped.
Files with no suffix or an unknown one are read when their content is text; binary ones are skipped, counted and
listed with the reason (`BuildResult.binary_files`) and one warning sums them up.
"""

from __future__ import annotations

import errno
import hashlib
import os
import platform
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from advisor import __version__
from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.estimate.index import choose_index_type, index_params
from advisor.core.fileio import private_files
from backends.common.embedding import DEFAULT_MODEL, Embedder, load_embedder
from backends.common.loaders import (
    SUPPORTED_SUFFIXES,
    UnreadableFileError,
    hash_file,
    list_files,
    open_document,
    parse_columns,
    printable_name,
)
from backends.rag.chunking import iter_chunks
from backends.rag.results import ROWS_FORMAT, BuildResult, Chunk, FileEntry, Manifest
from backends.rag.store import (
    OpenIndex,
    build_lock,
    claim_index_dir,
    clean_leftovers,
    open_index,
    save_npy,
    staging_dir,
    write_generation,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CHECKPOINT_BATCH_CHUNKS", "build_index"]

BINARY_NAMES_SHOWN = 3  # file names the binary-files warning gives per reason; the result lists all
ROW_SUFFIXES = (".csv", ".jsonl")
CHECKPOINT_BATCH_CHUNKS = 256  # chunks per checkpointed batch: a few seconds of CPU embedding, so a kill loses little
DEFAULT_CHUNK_TOKENS = 256  # all-MiniLM-L6-v2 reads 256 tokens; longer chunks would be truncated by the model
DEFAULT_OVERLAP_TOKENS = 32  # 1/8 of a chunk: a sentence of context carried across each cut
Warn = Callable[[str], None]


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def build_index(
    docs_dir: str | Path,
    index_dir: str | Path,
    *,
    model_id: str | None = None,
    chunk_tokens: int | None = None,
    overlap_tokens: int | None = None,
    index_type: str = "auto",
    text_column: str | list[str] | None = None,
    embedder: Embedder | None = None,
    on_warning: Warn = _stderr_warning,
    show_progress: bool = True,
) -> BuildResult:
    """Build `index_dir` from the documents under `docs_dir`, or update it in place.

    Args:
        docs_dir: Folder read recursively.
        index_dir: Index directory; created, or updated when it already holds an index.
        model_id: sentence-transformers id or path; None: the index's model, else the packaged default.
        chunk_tokens: Chunk size in model tokens (capped at what the model reads); None: the index's, else 256.
        overlap_tokens: Tokens shared by neighbouring chunks; None: the index's, else 32.
        index_type: `auto`, `flat`, `hnsw` or `ivf`.
        text_column: CSV/JSONL columns kept (a list or comma-separated names); None: the index's, else every one.
        embedder: An already loaded embedder (tests, benchmarks); overrides `model_id`.
        on_warning: Called with each warning (a skipped file, the binary files, a full re-embed).
        show_progress: Show a progress bar on stderr while embedding.

    Raises:
        AdvisorError: no documents, nothing readable, a model that differs from the index's, an `index_dir` that
            is a non-empty folder but no index, or a write that failed (a full disk); the live index is intact.
    """
    started = time.perf_counter()
    docs_dir, index_dir = Path(docs_dir), Path(index_dir)
    if chunk_tokens is not None and overlap_tokens is not None:
        _check_overlap(chunk_tokens, overlap_tokens)
    if not docs_dir.is_dir():
        raise AdvisorError(f"documents folder `{docs_dir}` does not exist", "pass a folder of documents to index")
    files, skipped = list_files(docs_dir, exclude=index_dir)
    binary = {printable_name(p.relative_to(docs_dir).as_posix()): reason for p, reason in skipped}
    if binary:
        on_warning(_binary_warning(binary))
    if not files:
        raise AdvisorError(f"no documents to index in `{docs_dir}`" + (f" ({len(binary)} binary file(s) skipped)"
                           if binary else ""), f"supported types: {' '.join(SUPPORTED_SUFFIXES)}, and any file whose content is text")
    index_existed = index_dir.exists()
    try:
        with private_files():
            claim_index_dir(index_dir)
            with build_lock(index_dir):
                clean_leftovers(index_dir)
                result = _build_locked(
                    docs_dir, index_dir, files, model_id, chunk_tokens, overlap_tokens, index_type, text_column,
                    embedder, on_warning, show_progress, started,
                )  # fmt: skip
                return result.model_copy(update={"n_files_binary": len(binary), "binary_files": binary})
    except (AdvisorError, OSError, sqlite3.Error) as exc:
        if not index_existed:  # a failed first build leaves nothing behind; an interrupted one keeps checkpoints
            shutil.rmtree(index_dir, ignore_errors=True)
        if isinstance(exc, AdvisorError):
            raise
        raise _write_failed(index_dir, exc, is_kept=index_existed) from None


def _binary_warning(binary: dict[str, str]) -> str:
    """One line for every binary file skipped: the count, then each reason with a few of its files."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in binary.items():
        by_reason.setdefault(reason.split(" (bad byte")[0].split(" at offset")[0], []).append(name)
    parts = []
    for reason, names in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(f"`{n}`" for n in names[:BINARY_NAMES_SHOWN])
        more = f" and {len(names) - BINARY_NAMES_SHOWN} more" if len(names) > BINARY_NAMES_SHOWN else ""
        parts.append(f"{len(names)} × {reason} ({shown}{more})")
    return f"skipped {len(binary)} file(s) whose content is not text: " + "; ".join(parts)


def _write_failed(index_dir: Path, exc: OSError | sqlite3.Error, *, is_kept: bool) -> AdvisorError:
    """One line for a failed write; the live generation (if any) is untouched."""
    kept = "embedded batches are kept in `staging/` and reused; " if is_kept else ""
    if isinstance(exc, sqlite3.Error):
        reason = f"SQLite: {exc}"
        is_full = "full" in str(exc)
    else:
        where = f" (`{printable_name(str(exc.filename))}`)" if exc.filename else ""
        reason = f"{exc.strerror or exc}{where}"
        is_full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    first = "free space on that disk (or build elsewhere)" if is_full else \
        "check that the folder is writable and its disk has space"
    hint = f"{first}, then build again; {kept}the live index is unchanged"
    return AdvisorError(f"cannot write index `{index_dir}`: {reason}", hint)


def _build_locked(
    docs_dir: Path,
    index_dir: Path,
    files: list[Path],
    model_id: str | None,
    chunk_tokens: int | None,
    overlap_tokens: int | None,
    index_type: str,
    text_column: str | list[str] | None,
    embedder: Embedder | None,
    on_warning: Warn,
    show_progress: bool,
    started: float,
) -> BuildResult:
    previous = _open_previous(index_dir, on_warning)
    old = previous.manifest if previous else None
    chunk_tokens = chunk_tokens or (old.chunk_tokens if old else DEFAULT_CHUNK_TOKENS)
    overlap_tokens = overlap_tokens if overlap_tokens is not None else (old.overlap_tokens if old else DEFAULT_OVERLAP_TOKENS)
    columns = parse_columns(text_column) or (parse_columns(old.text_column) if old else None)
    text_column = list(columns) if columns else None
    _check_overlap(chunk_tokens, overlap_tokens)
    wanted_model = embedder.model_id if embedder else model_id
    wanted_model = wanted_model or (previous.manifest.embedding_model if previous else DEFAULT_MODEL)
    if previous:
        _check_same_model(previous, wanted_model, None)
    hashes, sizes, warnings = _hash_files(docs_dir, files, on_warning)
    embedder = embedder or load_embedder(wanted_model)
    if previous:
        _check_same_model(previous, wanted_model, embedder.dim)
    old_files = previous.manifest.files if previous else {}
    same_settings = previous is not None and _settings(previous.manifest) == (
        chunk_tokens, overlap_tokens, text_column, embedder.max_tokens, embedder.document_prompt,
    )  # fmt: skip
    if previous and not same_settings and old_files:
        on_warning("chunking settings or prompts differ from the index's; every file is re-embedded")
    old_rows = previous is not None and previous.manifest.rows_format != ROWS_FORMAT  # row files read anew
    reused = {s for s, h in hashes.items() if same_settings and s in old_files and old_files[s].content_sha256 == h
              and not (old_rows and Path(s).suffix.lower() in ROW_SUFFIXES)}
    new_chunks = _load_and_chunk(
        docs_dir, sorted(set(hashes) - reused), embedder, chunk_tokens, overlap_tokens, text_column, warnings, on_warning
    )
    if not reused and not any(new_chunks.values()):
        raise AdvisorError(f"no readable text in `{docs_dir}`", "see the warnings above for each file skipped")
    to_embed = [c for source in sorted(new_chunks) for c in new_chunks[source]]
    new_vectors, n_embedded, n_resumed = _embed_checkpointed(index_dir, embedder, to_embed, show_progress)

    chunks, vectors, entries = _assemble(previous, reused, new_chunks, new_vectors, hashes, sizes, embedder.dim)
    kind, reason = choose_index_type(len(vectors), index_type)
    params = index_params(kind, len(vectors))

    from backends.rag.index import build_faiss_index

    manifest = Manifest(
        embedding_model=wanted_model,
        embedding_dim=embedder.dim,
        query_prompt=embedder.query_prompt,
        document_prompt=embedder.document_prompt,
        max_input_tokens=embedder.max_tokens,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        text_column=text_column,
        rows_format=ROWS_FORMAT,
        index_type=kind,
        index_type_reason=reason,
        index_params=params,
        n_chunks=len(chunks),
        files=entries,
        versions=_versions(embedder),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    generation = write_generation(index_dir, manifest, chunks, vectors, build_faiss_index(vectors, kind, params))
    shutil.rmtree(staging_dir(index_dir), ignore_errors=True)
    return BuildResult(
        index_dir=str(index_dir),
        generation=generation,
        embedding_model=wanted_model,
        embedding_dim=embedder.dim,
        index_type=kind,
        index_type_reason=reason,
        n_files=len(entries),
        n_files_added=sum(1 for s in new_chunks if s not in old_files),
        n_files_changed=sum(1 for s in new_chunks if s in old_files),
        n_files_unchanged=len(reused),
        n_files_removed=sum(1 for s in old_files if s not in entries),
        n_files_skipped=len(warnings),
        n_chunks=len(chunks),
        n_chunks_embedded=len(to_embed),
        n_batches_embedded=n_embedded,
        n_batches_reused=n_resumed,
        build_seconds=time.perf_counter() - started,
        warnings=warnings,
    )


def _load_and_chunk(
    docs_dir: Path,
    sources: list[str],
    embedder: Embedder,
    chunk_tokens: int,
    overlap_tokens: int,
    text_column: list[str] | None,
    warnings: list[str],
    on_warning: Warn,
) -> dict[str, list[Chunk]]:
    """Chunks of each readable file; unreadable ones (also those that fail part-way) go to `warnings`, reported."""
    out: dict[str, list[Chunk]] = {}
    for source in sources:
        try:
            doc = open_document(docs_dir / source, source, text_column)
            chunks = list(iter_chunks(doc, embedder.token_spans, chunk_tokens, overlap_tokens, embedder.max_tokens))
            if not chunks:
                raise UnreadableFileError("no text in it")
        except UnreadableFileError as exc:
            warnings.append(f"skipped `{source}`: {exc}")
            on_warning(warnings[-1])
            continue
        out[source] = chunks
    return out


def _assemble(
    previous: OpenIndex | None,
    reused: set[str],
    new_chunks: dict[str, list[Chunk]],
    new_vectors: np.ndarray,
    hashes: dict[str, str],
    sizes: dict[str, int],
    dim: int,
) -> tuple[list[Chunk], np.ndarray, dict[str, FileEntry]]:
    """Chunks, vectors (row i = chunk i) and file entries of the new generation, sorted by source path."""
    import numpy as np

    chunks: list[Chunk] = []
    parts, row, entries = [], 0, {}
    old_ids = previous.ids_by_source() if previous and reused else {}
    old_vectors = previous.load_vectors() if previous and reused else None
    wanted = [i for s in sorted(reused) for i in old_ids.get(s, [])]
    old_chunks = previous.fetch_chunks(wanted) if previous and reused else {}
    for source in sorted(reused | set(new_chunks)):
        if source in reused:
            ids = old_ids.get(source, [])
            chunks.extend(old_chunks[i] for i in ids)
            parts.append(np.asarray(old_vectors[ids], dtype=np.float32).reshape(len(ids), dim))
        else:
            n = len(new_chunks[source])
            chunks.extend(new_chunks[source])
            parts.append(new_vectors[row : row + n])
            row += n
        entries[source] = FileEntry(content_sha256=hashes[source], n_bytes=sizes[source], n_chunks=len(parts[-1]))
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return chunks, vectors, entries


def _check_overlap(chunk_tokens: int, overlap_tokens: int) -> None:
    if overlap_tokens >= chunk_tokens:
        raise InvalidInputError([f"overlap_tokens must be < chunk_tokens (got {overlap_tokens} ≥ {chunk_tokens})"])


def _open_previous(index_dir: Path, on_warning: Warn) -> OpenIndex | None:
    if not (index_dir / "CURRENT").exists():
        return None
    try:
        return open_index(index_dir)
    except AdvisorError as exc:
        on_warning(f"{exc.message}; building a new index from scratch")
        return None


def _check_same_model(previous: OpenIndex, model_id: str, dim: int | None) -> None:
    old = previous.manifest
    if old.embedding_model != model_id or (dim is not None and dim != old.embedding_dim):
        got = f"`{model_id}`" + (f" ({dim} dims)" if dim is not None else "")
        raise AdvisorError(
            f"index `{previous.index_dir}` holds vectors from `{old.embedding_model}` ({old.embedding_dim} dims); "
            f"refusing to mix in vectors from {got}",
            f"update it with `--model {old.embedding_model}`, or build into a new directory",
        )


def _settings(manifest: Manifest) -> tuple:
    columns = parse_columns(manifest.text_column)
    return (
        manifest.chunk_tokens, manifest.overlap_tokens, list(columns) if columns else None,
        manifest.max_input_tokens, manifest.document_prompt,
    )  # fmt: skip


def _hash_files(
    docs_dir: Path, files: list[Path], on_warning: Warn
) -> tuple[dict[str, str], dict[str, int], list[str]]:
    """SHA-256 and size of each file, read once now (a file may vanish later); skipped ones go to the warnings."""
    hashes, sizes, warnings = {}, {}, []
    for path in files:
        source = path.relative_to(docs_dir).as_posix()
        try:
            source.encode("utf-8")
        except UnicodeEncodeError:  # the OS keeps undecodable bytes as surrogates, which no index can store
            warnings.append(f"skipped `{printable_name(source)}`: its name is not UTF-8; rename it to index it")
            on_warning(warnings[-1])
            continue
        try:
            hashes[source], sizes[source] = hash_file(path)
        except OSError as exc:
            warnings.append(f"skipped `{source}`: cannot open it ({exc.strerror or exc})")
            on_warning(warnings[-1])
    return hashes, sizes, warnings


def _embed_checkpointed(
    index_dir: Path, embedder: Embedder, chunks: list[Chunk], show_progress: bool
) -> tuple[np.ndarray, int, int]:
    """Embed `chunks` batch by batch, reusing batches a killed build already saved. Returns (vectors, new, reused)."""
    import numpy as np

    stage = staging_dir(index_dir) / "batches"
    stage.mkdir(parents=True, exist_ok=True)
    prefix = f"{embedder.model_id}\n{embedder.dim}\n{embedder.document_prompt}\n"
    out, n_new, n_reused = [], 0, 0
    bar = _progress(len(chunks), show_progress)
    try:
        for i in range(0, len(chunks), CHECKPOINT_BATCH_CHUNKS):
            batch = chunks[i : i + CHECKPOINT_BATCH_CHUNKS]
            key = hashlib.sha256((prefix + "\n".join(c.content_sha256 for c in batch)).encode()).hexdigest()
            path = stage / f"{key}.npy"
            vectors = _load_checkpoint(path, (len(batch), embedder.dim))
            if vectors is None:
                vectors = embedder.embed([c.text for c in batch], is_query=False)
                _save_checkpoint(path, vectors)
                n_new += 1
            else:
                n_reused += 1
            out.append(vectors)
            if bar is not None:
                bar.update(len(batch))
    finally:  # an error below is printed on a clean line
        if bar is not None:
            bar.close()
    return (np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)), n_new, n_reused


def _save_checkpoint(path: Path, vectors: np.ndarray) -> None:
    """Write a batch atomically; a failed write (a full disk) leaves no half file behind."""
    tmp = path.with_suffix(".tmp")
    try:
        save_npy(tmp, vectors)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_checkpoint(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    import numpy as np

    if not path.is_file():
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return vectors if vectors.shape == shape and vectors.dtype == np.float32 else None


def _progress(total: int, show: bool):  # noqa: ANN202 - tqdm is optional, so no annotation
    if not show or total == 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr, leave=False)


def _versions(embedder: Embedder) -> dict[str, str]:
    import faiss

    return {
        "advisor": __version__,
        "faiss": faiss.__version__,
        "python": platform.python_version(),
        **embedder.versions(),
    }
