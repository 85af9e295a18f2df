"""Reading user YAML (answers, plans, rules): one strict loader, and every failure as one line.

`yaml.safe_load` accepts things that later crash or silently mislead: a key given twice keeps only the
last value; a NUL byte or a file that is not UTF-8 gives a decode traceback; nesting a few thousand levels
deep (or an alias "billion laughs") overflows the stack or memory further on; a bad date (`2024-13-01`) or
an over-long integer raises a bare `ValueError`. `load_yaml_file` refuses all of these with an
`AdvisorError` that names the file, the line and what to change.

The catalog (`advisor.core.catalog`) keeps its own fast path (the C loader and a JSON cache): it reads only
files that ship with advisor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from advisor.core.errors import AdvisorError

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "YamlSyntaxError", "load_yaml_file",
           "parse_yaml", "read_text_file"]

# Answers, plans and rule files are a few kilobytes (the largest shipped rule file is under 10 KB); 8 MiB is
# far above any of them and still parses in seconds.
MAX_YAML_BYTES = 8 * 1024 * 1024
# Levels of nested mappings/lists; the deepest file advisor writes (a plan) has 5. Well under the ~300 levels
# at which the composer's recursion (3 frames a level) would hit Python's default recursion limit.
MAX_YAML_DEPTH = 64
# Nodes after expanding aliases: a few hundred in any real file; the cap stops "billion laughs" documents,
# which are small on disk but expand to billions of nodes once a reader walks them.
MAX_YAML_NODES = 1_000_000


class YamlSyntaxError(AdvisorError):
    """Text that is not YAML advisor accepts; `line` and `column` are 1-based (None when unknown)."""

    def __init__(self, where: str, problem: str, line: int | None = None, column: int | None = None,
                 hint: str | None = None) -> None:
        at = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{where} is not valid YAML{at}: {problem}", hint)
        self.problem = problem
        self.line = line
        self.column = column


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _short(text: object, limit: int = 120) -> str:
    line = _one_line(str(text))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def read_text_file(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The text of a small UTF-8 file, or one `AdvisorError` that says what is wrong with it.

    Args:
        path: The file.
        what: What the file is, for the message (`answers file`, `plan file`, `rules file`).
        max_bytes: Larger files are refused before they are read.

    Raises:
        AdvisorError: Missing, a folder, not a regular file, unreadable, too large, binary or not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise AdvisorError(f"{what} `{path}` does not exist")
    if path.is_dir():
        raise AdvisorError(f"{what} `{path}` is a folder, not a file", "give the path of the file inside it")
    if not path.is_file():
        raise AdvisorError(f"{what} `{path}` is not a regular file (a device, pipe or socket)", "give a text file")
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise AdvisorError(f"cannot read {what} `{path}`: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        limit = f"{max_bytes // 1024**2} MiB" if max_bytes >= 1024**2 else f"{max_bytes:,} bytes"
        raise AdvisorError(f"{what} `{path}` is larger than {limit}",
                           "this is a small text file; check the path")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16/32 byte-order marks (Windows editors)
        raise AdvisorError(f"{what} `{path}` is not UTF-8 text (it is UTF-16 or UTF-32)", "save the file as UTF-8")
    if b"\0" in data:
        raise AdvisorError(f"{what} `{path}` is a binary file (it holds NUL bytes), not text",
                           "check the path")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AdvisorError(f"{what} `{path}` is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                           "save the file as UTF-8") from None


def _loader_class() -> type:
    import yaml
    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode, ScalarNode

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that refuses duplicate keys and documents nested or expanded past the limits."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_YAML_DEPTH:
                    mark = self.peek_event().start_mark
                    raise yaml.composer.ComposerError(
                        None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def compose_scalar_node(self, anchor: Any) -> Any:
            node = super().compose_scalar_node(anchor)
            if "\0" in node.value:  # only a `"\0"` escape makes one; it breaks every path and OS call later
                raise yaml.composer.ComposerError(None, None, "a string holds a NUL character (`\\0`)",
                                                  node.start_mark)
            return node

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_expansion(node)
            return node

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                        continue
                    key = self.construct_object(key_node, deep=True)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        raise ConstructorError(
                            None, None, f"key `{_one_line(key)}` is given twice (first at line {seen[key]}); "
                            "keep one", key_node.start_mark)
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    def _children(node: Any) -> list[Any]:
        if isinstance(node, ScalarNode):
            return []
        if isinstance(node, MappingNode):
            return [n for pair in node.value for n in pair]
        return list(node.value)

    def _check_expansion(root: Any) -> None:
        """Nodes and depth with every alias expanded, walked without recursion; cycles are refused."""
        measured: dict[int, tuple[int, int]] = {}
        on_path: set[int] = set()
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, finished = stack.pop()
            key = id(node)
            if finished:
                on_path.discard(key)
                kids = [measured[id(k)] for k in _children(node)]
                size = 1 + sum(k[0] for k in kids)
                depth = 1 + max((k[1] for k in kids), default=0)
                if size > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
                    raise yaml.composer.ComposerError(
                        None, None, f"aliases expand it past {MAX_YAML_NODES:,} nodes or {MAX_YAML_DEPTH} levels",
                        node.start_mark)
                measured[key] = (size, depth)
                continue
            if key in measured:
                continue
            on_path.add(key)
            stack.append((node, True))
            for kid in _children(node):
                if id(kid) in on_path:
                    raise yaml.composer.ComposerError(
                        None, None, "an alias refers to a node that contains it", kid.start_mark)
                if id(kid) not in measured:
                    stack.append((kid, False))

    return StrictLoader


_LOADER: list[type] = []


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text strictly: no duplicate keys, nesting at most `MAX_YAML_DEPTH`, aliases bounded.

    Args:
        text: The document.
        where: How to name it in messages (e.g. "answers file `a.yaml`").

    Returns:
        The parsed value (None for an empty document).

    Raises:
        YamlSyntaxError: Anything the parser, the composer or the constructor refuses, as one line with
            the position where it is known.
    """
    import yaml

    if not _LOADER:
        _LOADER.append(_loader_class())
    try:
        return yaml.load(text, Loader=_LOADER[0])  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = _one_line(exc.problem or exc.context or "cannot parse")
        if exc.context and exc.problem and exc.context not in problem:
            problem = f"{problem} ({_one_line(exc.context)})"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise YamlSyntaxError(where, problem, line, column) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlSyntaxError(where, f"control character #x{exc.character:04x} is not allowed in YAML text",
                              line, column) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(where, _short(exc)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # The constructor's own conversions: a date like 2024-13-01, `!!int 0xZZ`, an integer of 5,000 digits.
        raise YamlSyntaxError(where, f"a value cannot be read ({_short(exc)})") from None


def load_yaml_file(path: str | os.PathLike[str], what: str) -> Any:
    """Read and parse one user YAML file strictly (see `parse_yaml` and `read_text_file`).

    Args:
        path: The file.
        what: What it is, for messages: `answers file`, `plan file`, `rules file`.

    Returns:
        The parsed value (None for an empty file).

    Raises:
        AdvisorError: The file cannot be read or is not text; `YamlSyntaxError` when it is not valid YAML.
    """
    return parse_yaml(read_text_file(path, what), f"{what} `{path}`")
