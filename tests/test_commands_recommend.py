"""`advisor recommend`, `advisor plan`, `advisor rules check` on the command line: output, files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from advisor.core.planning import load_plan

_register()
FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = {s["id"]: s for s in yaml.safe_load((FIXTURES / "seed-scenarios.yaml").read_text())}
HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "faiss", "sentence_transformers")


def _answers_file(tmp_path: Path, scenario: str = "seed-09", **changes) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump({**SCENARIOS[scenario]["inputs"], **changes}))
    return path



def test_recommend_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["recommend", str(_answers_file(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recommendation"]["primary"] == "lora" and data["recommendation"]["stack"] == ["lora", "rag"]
    assert len(data["options"]) == 12  # every OptionName, distillation and continued pretraining included
    for option in data["options"]:
        assert {"feasible", "score", "benefit", "memory", "one_time_usd", "monthly_usd", "reasons"} <= set(option)
        assert all({"rule_id", "rationale", "source"} <= set(r) for r in option["reasons"])
    assert data["rules_version"].startswith("sha256:")


def test_recommend_reports_and_skip_rule(tmp_path: Path) -> None:
    answers = _answers_file(tmp_path)
    for name in ("r.md", "r.html"):
        result = CliRunner().invoke(app, ["recommend", str(answers), "--report", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert "Recommendation: LoRA + RAG" in result.stdout
        assert "report written" in result.stderr
    assert (tmp_path / "r.md").read_text().startswith("# Recommendation: LoRA + RAG")
    assert "<svg" in (tmp_path / "r.html").read_text()
    skipped = CliRunner().invoke(app, ["recommend", str(answers), "--json", "--skip-rule", "style-and-facts-combine"])
    assert json.loads(skipped.stdout)["recommendation"]["primary"] == "rag"


def test_plan_writes_a_loadable_plan(tmp_path: Path) -> None:
    out = tmp_path / "plan.yaml"
    result = CliRunner().invoke(app, ["plan", str(_answers_file(tmp_path)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    plan = load_plan(out)
    assert [s.kind for s in plan.steps] == ["train", "rag", "serve"] and plan.steps[0].method == "lora"
    assert plan.rules_version and plan.advisor_version


def test_rules_check_ok_and_all_problems(tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["rules", "check"])
    assert ok.exit_code == 0 and "rules in 6 files are valid" in ok.stdout
    (tmp_path / "a.yaml").write_text("rules:\n  - id: x\n    when: data.n_exampel > 1\n    warn: w\n    severity: info\n"
                                     "    rationale: r\n    source: s\n  - id: y\n    when: gpu.owned\n")
    (tmp_path / "b.yaml").write_text("rules:\n  - id: z\n    when: [oops\n")
    result = CliRunner().invoke(app, ["rules", "check", str(tmp_path)])
    assert_user_error(result, "a.yaml: rule x: unknown fact `data.n_exampel`; did you mean `data.n_examples`?",
                       "a.yaml: rule y: missing `rationale`", "b.yaml:4:1: rule z: invalid YAML")


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"goal": [], "n_examples": -3, "freshnes": "daily"},
         ["goal: List should have at least 1 item", "n_examples: Input should be greater than or equal to 0",
          "freshnes: unknown field"]),
        ({"gpu": {"type": "a100-80gb", "count": 0}}, ["gpu: count must be at least 1"]),
        ({"gpu": {"type": "a100-80"}}, ["unknown GPU `a100-80`", "a100-80gb"]),
        ({"base_model": "lama-3.1-8b"}, ["unknown model `lama-3.1-8b`", "llama-3.1-8b"]),
        ({"examples_path": "/no/such.jsonl"}, ["examples_path: `/no/such.jsonl` does not exist"]),
    ],
)
def test_bad_answers_are_one_error_with_every_problem(tmp_path: Path, changes: dict, fragments: list[str]) -> None:
    result = CliRunner().invoke(app, ["recommend", str(_answers_file(tmp_path, **changes))])
    assert_user_error(result, *fragments)


def test_incomplete_file_missing_file_bad_yaml_unknown_rule_bad_suffix(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("task: nothing else\n")
    assert_user_error(CliRunner().invoke(app, ["recommend", str(empty)]), "goal: Field required")
    assert_user_error(CliRunner().invoke(app, ["recommend", str(tmp_path / "none.yaml")]), "does not exist")
    broken = tmp_path / "broken.yaml"
    broken.write_text("goal: [style_format\n")
    assert_user_error(CliRunner().invoke(app, ["recommend", str(broken)]), "not valid YAML at line")
    answers = _answers_file(tmp_path)
    assert_user_error(CliRunner().invoke(app, ["recommend", str(answers), "--skip-rule", "nope"]), "unknown rule `nope`")
    assert_user_error(CliRunner().invoke(app, ["recommend", str(answers), "--report", str(tmp_path / "r.pdf")]),
                       "must end in `.md` or `.html`")
