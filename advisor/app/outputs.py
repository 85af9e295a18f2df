"""Output paths a command is asked to write: refused before any work starts when they cannot be written.

A command checks its `-o`/`--report` path first, so a typo in the folder, a folder given where a file goes,
or a read-only location is one `error:` line naming the path and the option, before anything is computed
or printed (and nothing is left half-written: files are written with `write_text_atomic`).
"""

from __future__ import annotations

import os
from pathlib import Path

from advisor.core.errors import AdvisorError

__all__ = ["check_output_dir", "check_output_file", "write_output_file"]


def _writable_dir(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Refuse a file path that cannot be written: its folder is missing or read-only, or it is a folder itself.

    Args:
        path: The file the command will write (it may exist; it will be replaced).
        option: The option that named it, for the message (`-o`, `--report`).

    Returns:
        The path.

    Raises:
        AdvisorError: What is wrong with the path, and what to give instead.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise AdvisorError(f"`{path}` is a folder; `{option}` needs a file path",
                           f"give a file inside it: `{option} {path / 'NAME'}`")
    if path.exists() and not path.is_file():
        raise AdvisorError(f"`{path}` is not a regular file (a device, pipe or socket)", f"give `{option}` a file path")
    if not folder.exists():
        raise AdvisorError(f"folder `{folder}` does not exist", f"create it (`mkdir -p {folder}`), or give `{option}` "
                           "a path in an existing folder")
    if not folder.is_dir():
        raise AdvisorError(f"`{folder}` is a file, not a folder, so `{path}` cannot be written",
                           f"give `{option}` a path in a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise AdvisorError(f"`{path}` is read-only", f"give `{option}` another path, or make it writable")
    if not _writable_dir(folder):
        raise AdvisorError(f"folder `{folder}` is not writable", f"give `{option}` a path in a folder you can write")
    return path


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Refuse a folder path that cannot be created or written (missing parents are fine: they are created).

    Raises:
        AdvisorError: It is a file, a parent is a file, or the nearest existing folder is read-only.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AdvisorError(f"`{path}` is a file; `{option}` needs a folder", f"give `{option}` a folder path")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise AdvisorError(f"`{existing}` is a file, not a folder, so `{path}` cannot be created",
                           f"give `{option}` a folder path")
    if not _writable_dir(existing):
        where = "folder" if existing == path else "parent folder"
        raise AdvisorError(f"{where} `{existing}` is not writable", f"give `{option}` a folder you can write")
    return path


def write_output_file(path: str | os.PathLike[str], text: str) -> None:
    """Write a file atomically; an OS failure (disk full, permissions changed meanwhile) is one `error:` line.

    Raises:
        AdvisorError: The file could not be written; any earlier file at `path` is left as it was.
    """
    from advisor.core.fileio import write_text_atomic

    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise AdvisorError(f"cannot write `{path}`: {exc.strerror or exc}") from None
