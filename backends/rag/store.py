"""The index directory on disk: generations published atomically, chunk text in SQLite, a manifest.

Layout::

    INDEX_DIR/
      CURRENT              name of the live generation, replaced atomically (os.replace) when a build ends
      gen-000007/          one complete index: manifest.json, index.faiss, vectors.npy, chunks.sqlite
      staging/             checkpointed embedding batches of a build that has not finished
      .lock                held (flock) by the build writing this directory

A build writes a new generation beside the live one and only then points CURRENT at it, so a build killed at any
moment leaves the previous index intact. Nothing is pickled: JSON, SQLite, `.npy` (allow_pickle=False) and
faiss's own format.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from advisor.core.errors import AdvisorError
from backends.rag.results import Chunk, Manifest

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "OpenIndex",
    "build_lock",
    "open_index",
    "staging_dir",
    "write_generation",
]

CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
FAISS_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
CHUNKS_FILE = "chunks.sqlite"
GENERATION_PREFIX = "gen-"
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


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the directory's build lock; a second build fails at once. The OS frees it if the process dies."""
    import fcntl

    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as handle:
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
    """
    import numpy as np

    from backends.rag.index import write_faiss_index

    suffixes = [p.name[len(GENERATION_PREFIX) :] for p in index_dir.glob(GENERATION_PREFIX + "*")]
    numbers = [int(s) for s in suffixes if s.isdigit()]
    name = f"{GENERATION_PREFIX}{max(numbers, default=0) + 1:06d}"
    path = index_dir / name
    path.mkdir()
    with sqlite3.connect(path / CHUNKS_FILE) as con:
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
    con.close()
    with (path / VECTORS_FILE).open("wb") as f:
        np.save(f, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    write_faiss_index(index, path / FAISS_FILE)
    (path / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    for file in path.iterdir():
        _fsync(file)
    _fsync(path)
    tmp = index_dir / (CURRENT_FILE + ".tmp")
    tmp.write_text(name + "\n")
    _fsync(tmp)
    os.replace(tmp, index_dir / CURRENT_FILE)
    _fsync(index_dir)
    for old in index_dir.glob(GENERATION_PREFIX + "*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return name


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
