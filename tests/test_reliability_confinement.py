"""A plan cannot touch anything outside its run folder; a finished step is recognised after a kill (issue Reliability).

Each confinement case keeps a sentinel file where the plan points and checks it survives, untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import assert_user_error
from pydantic import ValidationError
from typer.testing import CliRunner

from advisor.app import runner
from advisor.app.cli import _register, app
from advisor.core.models import RagStep, TrainStep
from advisor.core.planning import load_plan

_register()
FIXTURES = Path(__file__).parent / "fixtures" / "train"


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    (victim / "staging").mkdir(parents=True)
    (victim / "gen-1").mkdir()
    (victim / "precious.txt").write_text("keep me")
    return victim


def _survives(victim: Path) -> None:
    assert (victim / "precious.txt").read_text() == "keep me"
    assert (victim / "staging").is_dir() and (victim / "gen-1").is_dir()


@pytest.mark.parametrize(("kind", "field", "extra"), [
    ("train", "output_dir", {"method": "lora", "base_model": "tiny-demo", "data_path": str(FIXTURES / "sft_chat.jsonl")}),
    ("rag", "index_dir", {"docs_dir": str(FIXTURES)}),
])
@pytest.mark.parametrize("escape", ["absolute", "dotdot"])
def test_an_output_path_outside_the_step_folder_is_refused(tmp_path, sentinel, kind, field, extra, escape) -> None:
    value = str(sentinel) if escape == "absolute" else "../../victim"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "p", "steps": [{"kind": kind, field: value, **extra}]}))
    result = CliRunner().invoke(app, ["run", str(plan), "--yes", "--out", str(tmp_path / "run")])
    assert_user_error(result, field)
    assert not (tmp_path / "run").exists()
    _survives(sentinel)


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", "UPPER", ""])
def test_a_plan_name_is_a_slug(tmp_path, name) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": name, "steps": [{"kind": "rag", "docs_dir": str(FIXTURES)}]}))
    with pytest.raises(ValidationError, match="name"):
        load_plan(plan)


def test_step_models_refuse_escaping_outputs_directly() -> None:
    with pytest.raises(ValidationError, match="output_dir"):
        TrainStep(method="lora", base_model="x", data_path="d", output_dir="/etc")
    with pytest.raises(ValidationError, match="index_dir"):
        RagStep(docs_dir="d", index_dir="a/../../b")
    assert TrainStep(method="lora", base_model="x", data_path="d", output_dir="nested/model").output_dir


def test_duplicate_keys_in_a_plan_are_an_error(tmp_path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"steps:\n- kind: rag\n  docs_dir: {FIXTURES}\n  docs_dir: /etc\n")
    result = CliRunner().invoke(app, ["run", str(plan), "--yes", "--out", str(tmp_path / "run")])
    assert_user_error(result, "docs_dir")


def test_run_out_that_is_a_file_is_one_line(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\ntext\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"steps": [{"kind": "rag", "docs_dir": "docs"}]}))
    (tmp_path / "taken").write_text("a file")
    assert_user_error(CliRunner().invoke(app, ["run", str(plan), "--yes", "--out", str(tmp_path / "taken")]), "--out")
    assert (tmp_path / "taken").read_text() == "a file"


def test_paths_are_absolute_once_loaded_and_relative_inside_the_plan_folder_when_saved(tmp_path) -> None:
    from advisor.core.planning import save_plan

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.jsonl").write_text("{}\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jsonl"
    outside.write_text("{}\n")
    plan_file = tmp_path / "plans" / "plan.yaml"
    plan_file.parent.mkdir()
    plan_file.write_text(yaml.safe_dump({"steps": [
        {"kind": "train", "method": "lora", "base_model": "org/model", "data_path": "../data/t.jsonl"},
        {"kind": "train", "method": "lora", "base_model": "tiny-demo", "data_path": str(outside)}]}))
    plan = load_plan(plan_file)
    assert plan.steps[0].data_path == str(tmp_path / "data" / "t.jsonl")  # absolute for the backend
    assert plan.steps[0].base_model == "org/model"  # a Hub id stays an id
    save_plan(plan, tmp_path / "data" / "saved.yaml")
    saved = yaml.safe_load((tmp_path / "data" / "saved.yaml").read_text())
    assert saved["steps"][0]["data_path"] == "t.jsonl"  # inside the file's folder: relative
    assert saved["steps"][1]["data_path"] == str(outside)  # outside it: absolute, never ../../
    outside.unlink()


@pytest.mark.slow
def test_a_step_killed_after_training_but_before_it_was_recorded_is_not_trained_again(tmp_path) -> None:
    pytest.importorskip("trl")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "kill-late", "steps": [
        {"kind": "train", "method": "lora", "base_model": "tiny-demo", "data_path": str(FIXTURES / "sft_chat.jsonl"),
         "max_steps": 4, "batch_size": 4, "seq_len": 64}]}))
    run_dir = tmp_path / "run"
    state = runner.execute(runner.prepare(plan), run_dir, announce=lambda line: None)
    first = json.loads((run_dir / state.steps[0].result_file).read_text())
    # As if killed after the backend wrote its result but before the runner recorded the step as done.
    saved = json.loads((run_dir / "state.json").read_text())
    saved["steps"][0].update(status="running", result_file=None)
    (run_dir / "state.json").write_text(json.dumps(saved))
    lines: list[str] = []
    state = runner.execute(runner.prepare(plan), run_dir, announce=lines.append)
    again = json.loads((run_dir / state.steps[0].result_file).read_text())
    assert again["fit"]["global_step"] == first["fit"]["global_step"] == 4  # not 5 of 4
    assert again["fit"]["measured"]["wall_seconds"] == first["fit"]["measured"]["wall_seconds"]
