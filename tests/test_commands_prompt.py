"""`advisor prompt check|run` from the command line: bad input exits 2 with one `error:` line and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app

pytestmark = pytest.mark.extras("rag")

FIXTURES = Path(__file__).parent / "fixtures" / "prompting"
_register()


def _plan(tmp_path: Path, **step) -> Path:
    defaults = {"kind": "prompt", "model": "gpt-4o-mini", "examples_path": str(FIXTURES / "grouped.jsonl"),
                "n_shots": 3, "max_prompt_tokens": 300, "selection": "lexical"}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "steps": [{**defaults, **step}]}))
    return path



@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ({"examples_path": "missing.jsonl"}, "missing.jsonl` does not exist"),
        ({"examples_path": str(FIXTURES / "bad_lines.jsonl")}, "bad_lines.jsonl:3: not valid JSON"),
        ({"max_prompt_tokens": 20}, "too small for even one shot"),
        ({"n_shots": 2, "examples_path": None}, "examples_path is empty"),
        ({"n_shot": 2}, "n_shot"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path: Path, step: dict, fragment: str) -> None:
    result = CliRunner().invoke(app, ["prompt", "run", str(_plan(tmp_path, **step)), "--out", str(tmp_path / "r")])
    assert_user_error(result, fragment)
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_malformed_lines_are_all_listed_with_numbers(tmp_path: Path) -> None:
    plan = _plan(tmp_path, examples_path=str(FIXTURES / "bad_lines.jsonl"))
    result = CliRunner().invoke(app, ["prompt", "run", str(plan), "--out", str(tmp_path / "r")])
    assert_user_error(result, "bad_lines.jsonl:2: missing field `output`")
    assert "bad_lines.jsonl:3:" in result.stderr and "hint:" in result.stderr


def test_budget_hint_names_the_smallest_budget_that_works(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prompt", "run", str(_plan(tmp_path, max_prompt_tokens=20))])
    assert_user_error(result, "max_prompt_tokens 20")
    needed = int(result.stderr.split("at least ")[1].split(",")[0])
    ok = CliRunner().invoke(app, ["prompt", "run", str(_plan(tmp_path, max_prompt_tokens=needed)),
                                  "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert CliRunner().invoke(app, ["prompt", "run", str(_plan(tmp_path, max_prompt_tokens=needed - 1))]).exit_code == 2


def test_missing_plan_and_plan_without_prompt_step(tmp_path: Path) -> None:
    assert_user_error(CliRunner().invoke(app, ["prompt", "run", str(tmp_path / "nope.yaml")]), "does not exist")
    plan = tmp_path / "rag.yaml"
    plan.write_text(yaml.safe_dump({"steps": [{"kind": "rag", "docs_dir": "docs"}]}))
    assert_user_error(CliRunner().invoke(app, ["prompt", "run", str(plan)]), "has no `prompt` step")


def test_run_prints_a_summary_and_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prompt", "run", str(_plan(tmp_path)), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "3 of 3 shots (lexical selection)" in result.stdout
    assert "skipped: `gpt-4o-mini` is not a local model" in result.stdout
    step_dir = tmp_path / "r" / "1-prompt-few-shot"  # the folder `advisor run` gives the plan's first step
    saved = json.loads((step_dir / "result.json").read_text())
    as_json = CliRunner().invoke(app, ["prompt", "run", str(_plan(tmp_path)), "--out", str(tmp_path / "r"), "--json"])
    assert json.loads(as_json.stdout)["shots"] == saved["shots"]
    assert yaml.safe_load((step_dir / "plan.yaml").read_text())["steps"][0]["kind"] == "prompt"


def test_check_reports_problems_with_exit_1(tmp_path: Path) -> None:
    good = CliRunner().invoke(app, ["prompt", "check", str(_plan(tmp_path))])
    assert good.exit_code == 0 and "ready to run" in good.stdout
    bad = CliRunner().invoke(app, ["prompt", "check", str(_plan(tmp_path, max_prompt_tokens=20, model="./nope"))])
    assert bad.exit_code == 1 and "model: folder" in bad.stdout and "verdict   this run would fail" in bad.stdout
