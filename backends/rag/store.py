"""The index directory on disk: generations published atomically, chunk text in SQLite, a manifest.

Layout::

    INDEX_DIR/
      ADVISOR_INDEX.txt    marker written when advisor made (or adopted) the folder: only then does it delete here
      CURRENT              name of the live generation, replaced atomically (os.replace) when a build ends
      gen-000007/          one complete index: manifest.json, index.faiss, vectors.npy, chunks.sqlite (the chunk
                           text and its FTS5 table for lexical search; an index built before lexical search gets
                           that table added in place on first lexical use, see `OpenIndex.ensure_lexical`)
      staging/             checkpointed embedding batches of a build that has not finished
      .lock                held (flock) by the build writing this directory

A build writes a new generation beside the live one and only then points CURRENT at it, so a build killed at any
moment leaves the previous index intact; a failed write removes its half generation, and the next build removes
what a killed one left (`clean_leftovers`). Nothing is pickled: JSON, SQLite, `.npy` (allow_pickle=False) and
faiss's own format.

Confinement: a build goes only into a folder that is new, empty, or marked as an index (`claim_index_dir`), so
pointing `-o` at a folder of one's own refuses instead of deleting its `staging/` or `gen-*` subfolders; and only
names of the layout above are ever deleted. New index folders are owner-only (0700; files 0600: the build runs
under `private_files`), because an index holds the text of the documents; `chmod` it to share.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from advisor.core.errors import AdvisorError
from advisor.core.fileio import write_text_atomic
from backends.rag.lexical import bm25_search, create_fts, has_fts
from backends.rag.results import Chunk, Manifest

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "OpenIndex",
    "build_lock",
    "claim_index_dir",
    "clean_leftovers",
    "index_dir_problem",
    "open_index",
    "save_npy",
    "staging_dir",
    "write_generation",
]

MARKER_FILE = "ADVISOR_INDEX.txt"
LOCK_FILE = ".lock"
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
FAISS_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
CHUNKS_FILE = "chunks.sqlite"
GENERATION_PREFIX = "gen-"
_GENERATION_NAME = re.compile(r"gen-\d{6}")  # what `write_generation` names; nothing else is deleted as one
_CHUNK_COLUMNS = ("source", "chunk_index", "char_start", "char_end", "locator", "n_tokens", "text", "content_sha256")
_SQLITE_MAX_VARIABLES = 900  # below SQLite's default limit of 999 bound parameters per statement


def _build_hint(index_dir: Path) -> str:
    return f"build it with `advisor rag build DOCS_DIR -o {index_dir}`"


def damaged(index_dir: Path, what: str) -> AdvisorError:
    """The error for an index whose files cannot be used."""
    return AdvisorError(
        f"index `{index_dir}` is damaged: {what}", f"rebuild it with `advisor rag build DOCS_DIR -o {index_dir}`"
    )


@dataclass(frozen=True)
class OpenIndex:
    """A live generation of an index directory, with its manifest read and checked."""

    index_dir: Path
    path: Path
    manifest: Manifest

    def load_faiss(self) -> Any:
        """The faiss index, with search parameters from the manifest."""
        from backends.rag.index import read_faiss_index

        try:
            index = read_faiss_index(self.path / FAISS_FILE)
        except (RuntimeError, OSError) as exc:
            raise damaged(self.index_dir, f"`{FAISS_FILE}` cannot be read ({str(exc).splitlines()[0]})") from None
        if index.ntotal != self.manifest.n_chunks or index.d != self.manifest.embedding_dim:
            raise damaged(self.index_dir, f"`{FAISS_FILE}` does not match the manifest")
        params = self.manifest.index_params
        if "ef_search" in params:
            index.hnsw.efSearch = params["ef_search"]
        if "nprobe" in params:
            index.nprobe = params["nprobe"]
        return index

    def load_vectors(self) -> np.ndarray:
        """The raw vectors, memory-mapped, row i = chunk id i."""
        import numpy as np

        try:
            vectors = np.load(self.path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise damaged(self.index_dir, f"`{VECTORS_FILE}` cannot be read ({exc})") from None
        if vectors.shape != (self.manifest.n_chunks, self.manifest.embedding_dim):
            raise damaged(self.index_dir, f"`{VECTORS_FILE}` does not match the manifest")
        return vectors

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        uri = (self.path / CHUNKS_FILE).resolve().as_uri() + "?mode=ro"
        try:
            con = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise damaged(self.index_dir, f"`{CHUNKS_FILE}` cannot be opened ({exc})") from None
        try:
            yield con
        except sqlite3.DatabaseError as exc:
            raise damaged(self.index_dir, f"`{CHUNKS_FILE}` cannot be read ({exc})") from None
        finally:
            con.close()

    def fetch_chunks(self, ids: list[int]) -> dict[int, Chunk]:
        """Chunks by id."""
        found: dict[int, Chunk] = {}
        with self._db() as con:
            for i in range(0, len(ids), _SQLITE_MAX_VARIABLES):
                part = [int(x) for x in ids[i : i + _SQLITE_MAX_VARIABLES]]
                marks = ",".join("?" * len(part))
                sql = f"SELECT id, {', '.join(_CHUNK_COLUMNS)} FROM chunks WHERE id IN ({marks})"
                for row in con.execute(sql, part):
                    found[row[0]] = Chunk(**dict(zip(_CHUNK_COLUMNS, row[1:], strict=True)))
        return found

    def ids_by_source(self) -> dict[str, list[int]]:
        """Chunk ids of each source file, in chunk order."""
        out: dict[str, list[int]] = {}
        with self._db() as con:
            for source, chunk_id in con.execute("SELECT source, id FROM chunks ORDER BY source, chunk_index"):
                out.setdefault(source, []).append(chunk_id)
        return out

    def ensure_lexical(self) -> None:
        """Make sure `chunks.sqlite` holds the FTS5 table; an index built before lexical search gets it added now.

        Raises:
            AdvisorError: it has none and it cannot be added (a read-only index); the hint says how to rebuild.
        """
        with self._db() as con:
            if has_fts(con):
                return
        try:
            with contextlib.closing(sqlite3.connect(self.path / CHUNKS_FILE, timeout=30)) as con, con:
                create_fts(con)
        except (sqlite3.Error, OSError) as exc:
            raise AdvisorError(
                f"index `{self.index_dir}` was built before lexical search, and its full-text table cannot be "
                f"added in place ({exc})",
                f"rebuild it with `advisor rag build DOCS_DIR -o {self.index_dir}` (unchanged files are not "
                "re-embedded), or search with `--mode dense`",
            ) from None

    def lexical_search(self, question: str, n: int, *, ensure: bool = True) -> list[tuple[int, float]]:
        """Top-`n` (chunk id, BM25 score) for `question`, best first (`lexical.bm25_search`); `ensure=False` when
        `ensure_lexical` has already run on this generation."""
        if ensure:
            self.ensure_lexical()
        with self._db() as con:
            return bm25_search(con, question, n)

    def iter_chunks(self) -> Iterator[tuple[int, Chunk]]:
        """Every chunk with its id, in id order."""
        with self._db() as con:
            for row in con.execute(f"SELECT id, {', '.join(_CHUNK_COLUMNS)} FROM chunks ORDER BY id"):
                yield row[0], Chunk(**dict(zip(_CHUNK_COLUMNS, row[1:], strict=True)))


def open_index(index_dir: str | Path) -> OpenIndex:
    """Open the live generation of `index_dir` and validate its manifest.

    Raises:
        AdvisorError: there is no index there, or it is damaged.
    """
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise AdvisorError(f"no index at `{index_dir}`", _build_hint(index_dir))
    current = index_dir / CURRENT_FILE
    if not current.is_file():
        raise AdvisorError(f"`{index_dir}` is not an advisor index (no `{CURRENT_FILE}` file)", _build_hint(index_dir))
    name = current.read_text(errors="replace").strip()
    path = index_dir / name
    if not name.startswith(GENERATION_PREFIX) or "/" in name or not path.is_dir():
        raise damaged(index_dir, f"`{CURRENT_FILE}` names a missing generation `{name[:40]}`")
    try:
        manifest = Manifest.model_validate_json((path / MANIFEST_FILE).read_bytes())
    except (OSError, ValidationError) as exc:
        what = "missing" if isinstance(exc, OSError) else "invalid"
        raise damaged(index_dir, f"`{MANIFEST_FILE}` is {what}") from None
    for file in (FAISS_FILE, VECTORS_FILE, CHUNKS_FILE):
        if not (path / file).is_file():
            raise damaged(index_dir, f"`{file}` is missing")
    return OpenIndex(index_dir, path, manifest)


def staging_dir(index_dir: Path) -> Path:
    """Where an unfinished build keeps its checkpoints."""
    return index_dir / "staging"


def _live_generation(index_dir: Path) -> str | None:
    """The generation CURRENT names, when it names one that exists; else None."""
    try:
        name = (index_dir / CURRENT_FILE).read_text(errors="replace").strip()
    except OSError:
        return None
    return name if _GENERATION_NAME.fullmatch(name) and (index_dir / name / MANIFEST_FILE).is_file() else None


def index_dir_problem(index_dir: Path) -> str | None:
    """Why a build may not go into `index_dir` (a file, or a non-empty folder that is no index); None: it may.

    Cheap and without side effects, for `check`; `claim_index_dir` raises it.
    """
    if index_dir.is_dir():
        if (index_dir / MARKER_FILE).is_file():
            return None
        if {p.name for p in index_dir.iterdir()} - {LOCK_FILE} and _live_generation(index_dir) is None:
            return f"`{index_dir}` is not empty and is not an advisor index"
        return None
    return f"`{index_dir}` is a file, not a folder" if index_dir.exists() else None


def claim_index_dir(index_dir: Path) -> None:
    """Make sure advisor may write (and delete its own files) in `index_dir`, creating it (0700) when missing.

    Accepted: a new or empty folder, one with only a build lock in it, one marked as an index, or an index
    built before markers existed (its CURRENT names a generation); the marker is written then.

    Raises:
        AdvisorError: `index_dir` is a file, or a non-empty folder that is not an advisor index.
    """
    problem = index_dir_problem(index_dir)
    if problem is not None:
        raise AdvisorError(problem, "build into a new or empty folder (advisor deletes only what it created)")
    if (index_dir / MARKER_FILE).is_file():
        return
    if not index_dir.exists():
        index_dir.mkdir(parents=True, mode=0o700)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_text_atomic(index_dir / MARKER_FILE, f"advisor RAG index, claimed {created}. advisor writes and deletes "
                      f"only {MARKER_FILE}, {CURRENT_FILE}, gen-NNNNNN/, staging/ and {LOCK_FILE} here.\n")


def clean_leftovers(index_dir: Path) -> None:
    """Remove what a killed or failed build left: generations CURRENT does not name, half-written temporary files.

    Complete embedding batches in `staging/` stay: the next build reuses them (they go when a build finishes).
    Generations are only removed while CURRENT names a live one, so a damaged index is not emptied further.
    """
    live = _live_generation(index_dir)
    if live is not None:
        for path in index_dir.iterdir():
            if _GENERATION_NAME.fullmatch(path.name) and path.name != live and path.is_dir():
                shutil.rmtree(path)
    (index_dir / (CURRENT_FILE + ".tmp")).unlink(missing_ok=True)
    batches = staging_dir(index_dir) / "batches"
    if batches.is_dir():
        for tmp in batches.glob("*.tmp"):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the directory's build lock; a second build fails at once. The OS frees it if the process dies."""
    import fcntl

    index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (index_dir / LOCK_FILE).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AdvisorError(
                f"another build is writing `{index_dir}`", "wait for it to finish, or build into another directory"
            ) from None
        yield


def write_generation(index_dir: Path, manifest: Manifest, chunks: list[Chunk], vectors: np.ndarray, index: Any) -> str:
    """Write a complete generation, publish it through CURRENT, then delete older generations.

    Returns:
        The name of the generation now live.

    Raises:
        OSError, sqlite3.Error: a write failed (a full disk); the half-written generation is removed, CURRENT and
            the live generation are as they were.
    """
    numbers = [int(p.name[len(GENERATION_PREFIX) :]) for p in index_dir.iterdir() if _GENERATION_NAME.fullmatch(p.name)]
    name = f"{GENERATION_PREFIX}{max(numbers, default=0) + 1:06d}"
    path = index_dir / name
    path.mkdir()
    try:
        _write_files(path, manifest, chunks, vectors, index)
        tmp = index_dir / (CURRENT_FILE + ".tmp")
        tmp.write_text(name + "\n")
        _fsync(tmp)
        os.replace(tmp, index_dir / CURRENT_FILE)
    except BaseException:  # a full disk, a kill signal turned exception: the live generation stays the old one
        shutil.rmtree(path, ignore_errors=True)
        (index_dir / (CURRENT_FILE + ".tmp")).unlink(missing_ok=True)
        raise
    _fsync(index_dir)
    for old in index_dir.iterdir():
        if _GENERATION_NAME.fullmatch(old.name) and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return name


def _write_files(path: Path, manifest: Manifest, chunks: list[Chunk], vectors: np.ndarray, index: Any) -> None:
    import numpy as np

    from backends.rag.index import write_faiss_index

    with contextlib.closing(sqlite3.connect(path / CHUNKS_FILE)) as con, con:
        con.execute(
            "CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT NOT NULL, chunk_index INTEGER NOT NULL, "
            "char_start INTEGER, char_end INTEGER, locator TEXT, n_tokens INTEGER, text TEXT NOT NULL, "
            "content_sha256 TEXT NOT NULL)"
        )
        con.executemany(
            f"INSERT INTO chunks VALUES (?, {', '.join('?' * len(_CHUNK_COLUMNS))})",
            ((i, *(getattr(c, col) for col in _CHUNK_COLUMNS)) for i, c in enumerate(chunks)),
        )
        con.execute("CREATE INDEX chunks_source ON chunks (source, chunk_index)")
        create_fts(con)
    save_npy(path / VECTORS_FILE, np.asarray(vectors, dtype=np.float32))
    write_faiss_index(index, path / FAISS_FILE)
    (path / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    for file in path.iterdir():
        _fsync(file)
    _fsync(path)


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write `array` as `np.save` does (byte for byte), through Python's file API: a failed write raises OSError
    with its errno (ENOSPC, EFBIG), where numpy's `tofile` says only `N requested and M written`."""
    import numpy as np

    array = np.ascontiguousarray(array)
    try:
        with path.open("wb") as f:
            np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
            f.write(array.reshape(-1).view(np.uint8).data)
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None  # say which file


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
