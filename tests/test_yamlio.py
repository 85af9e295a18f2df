"""The strict YAML loader: what it keeps of safe_load, and what it refuses (one AdvisorError with the position)."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError
from advisor.core.yamlio import MAX_YAML_DEPTH, YamlSyntaxError, load_yaml_file, parse_yaml, read_text_file


def test_it_keeps_what_safe_load_accepts() -> None:
    assert parse_yaml("a: [1, {b: 2}]\nc: null\n", "f") == {"a": [1, {"b": 2}], "c": None}
    assert parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n", "f")["d"] == {"x": 3, "y": 2}  # merge overrides
    assert parse_yaml("a: &a [1, 2]\nb: *a\n", "f") == {"a": [1, 2], "b": [1, 2]}
    assert parse_yaml("\ufeffa: 1\n", "f") == {"a": 1}
    assert parse_yaml("", "f") is None
    assert parse_yaml("a: " + "[" * (MAX_YAML_DEPTH - 2) + "]" * (MAX_YAML_DEPTH - 2), "f") is not None


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "key `a` is given twice (first at line 1); keep one"),
        ("a: " + "[" * 100 + "]" * 100, 1, f"nested deeper than {MAX_YAML_DEPTH} levels"),
        ("a: &x [*x]\n", 1, "an alias refers to a node that contains it"),
        ('a: "x\\0y"\n', 1, "a string holds a NUL character (`\\0`)"),
        ("a: 1\nb: \x07\n", 2, "control character #x0007 is not allowed in YAML text"),
        ("a: [1\n", 2, "expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"),
    ],
)
def test_refusals_name_line_and_problem(text: str, line: int, problem: str) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml(text, "answers file `x.yaml`")
    assert info.value.line == line and info.value.problem == problem
    assert info.value.message.startswith(f"answers file `x.yaml` is not valid YAML at line {line}, column ")
    assert "\n" not in info.value.message


@pytest.mark.parametrize("text", ["a: 2024-13-45\n", "a: !!int 0xZZ\n", "a: " + "9" * 5000 + "\n"])
def test_constructor_errors_are_yaml_errors(text: str) -> None:
    with pytest.raises(YamlSyntaxError, match="a value cannot be read"):
        parse_yaml(text, "f")


def test_read_text_file_refuses_what_is_not_small_utf8_text(tmp_path: Path) -> None:
    cases = {"nul.yaml": b"a: 1\x00", "latin1.yaml": b"a: caf\xe9", "utf16.yaml": "a: 1".encode("utf-16")}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(AdvisorError, match="binary file"):
        read_text_file(tmp_path / "nul.yaml", "answers file")
    with pytest.raises(AdvisorError, match=r"not UTF-8 text \(byte 0xe9 at offset 6\)"):
        read_text_file(tmp_path / "latin1.yaml", "answers file")
    with pytest.raises(AdvisorError, match="UTF-16"):
        read_text_file(tmp_path / "utf16.yaml", "answers file")
    with pytest.raises(AdvisorError, match="larger than 4 bytes"):
        read_text_file(tmp_path / "latin1.yaml", "answers file", max_bytes=4)
    with pytest.raises(AdvisorError, match="is a folder, not a file"):
        load_yaml_file(tmp_path, "plan file")
    with pytest.raises(AdvisorError, match="plan file `.*none.yaml` does not exist"):
        load_yaml_file(tmp_path / "none.yaml", "plan file")
