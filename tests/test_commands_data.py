"""`advisor data audit` from the command line: a summary, one JSON object with `--json`, one `error:` line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app

pytest.importorskip("datasketch")
_register()

FIXTURES = Path(__file__).parent / "fixtures"
PLANTED = FIXTURES / "audit" / "planted.jsonl"
GOLDEN = Path(__file__).parent / "golden" / "data_audit_planted.txt"


def test_summary_lists_findings_with_line_numbers() -> None:
    result = CliRunner().invoke(app, ["data", "audit", str(PLANTED), "--seq-len", "200", "--eval-fraction", "0.25",
                                      "--sample", "2"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "30 examples kept" in out
    assert "1 exact duplicate dropped" in out and "line 2 repeats line 1" in out
    assert "2 near-duplicate pairs (Jaccard ≥ 0.7" in out and "lines 1 and 3" in out
    assert "1 prompt with different answers" in out
    assert "1 email, 1 phone, 1 card, 1 iban" in out
    assert "0 of 4 groups of related examples straddle the grouped split (4 would straddle a plain shuffled split)" in out
    assert "approximate" in out
    assert out.count("sample      line") == 2
    assert "jane.doe" not in out and "4111 1111 1111 1111" not in out
    assert result.stderr == ""


def test_rendered_summary_matches_golden(update_golden, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PLANTED.parent)  # a relative path in the output, the same on every machine
    result = CliRunner().invoke(app, ["data", "audit", PLANTED.name, "--seq-len", "64", "--eval-fraction", "0.25",
                                      "--sample", "2"])
    assert result.exit_code == 0, result.output
    if update_golden:
        GOLDEN.write_text(result.stdout)
    assert result.stdout == GOLDEN.read_text()


def test_json_is_one_object() -> None:
    result = CliRunner().invoke(app, ["data", "audit", str(PLANTED), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["n_exact_duplicates"], report["n_near_duplicate_pairs"], report["n_conflicts"]) == (1, 2, 1)
    assert report["lengths"] is None  # no --seq-len
    assert report["leakage"]["n_straddling_grouped"] == 0


def test_strict_refuses_the_duplicate() -> None:
    assert_user_error(CliRunner().invoke(app, ["data", "audit", str(PLANTED), "--strict"]),
                      "planted.jsonl:2: duplicate of line 1")


def test_bad_files_are_one_error_line(tmp_path: Path) -> None:
    assert_user_error(CliRunner().invoke(app, ["data", "audit", str(tmp_path / "nope.jsonl")]), "does not exist")
    other = tmp_path / "other.jsonl"
    other.write_text('{"text": "a"}\n')
    assert_user_error(CliRunner().invoke(app, ["data", "audit", str(other)]), "no line has the fields")
    result = CliRunner().invoke(app, ["data", "audit", str(FIXTURES / "train" / "bad_lines.jsonl")])
    assert_user_error(result, "bad_lines.jsonl:2: missing field `output`", "bad_lines.jsonl:7:")
