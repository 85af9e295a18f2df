"""Writing a file so that a crash leaves the old file or the new one, never half of either; private outputs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "private_files", "write_text_atomic"]

# Files 0600, folders 0700: what a run writes (indexes of private documents, adapters trained on private data)
# is readable by its owner only; share it with `chmod` when that is wanted.
PRIVATE_UMASK = 0o077


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (atomic on POSIX).

    A failure part-way removes the temporary file and leaves `path` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Inside the block, files and folders this process creates are owner-only (umask 077 on top of the user's).

    The umask is per process, so this also covers what libraries write (faiss, SQLite, safetensors, numpy).
    It is restored when the block ends; do not create files for others from another thread meanwhile.
    """
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)
