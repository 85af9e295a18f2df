"""`advisor run` orchestration: state, resume, failure, bad input — with stand-in backends where noted."""

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
from advisor.core.errors import AdvisorError, InvalidInputError, RunFailedError
from advisor.core.models import Model

_register()
CALLS: list[str] = []
FAIL: set[str] = set()


class FakeResult(Model):
    """What a stand-in backend returns (the closing report reads results as JSON)."""

    kind: str
    note: str


def fake_rag(step, ctx):
    CALLS.append("rag")
    if "rag" in FAIL:
        raise AdvisorError("the embedding model is missing", "install it")
    Path(ctx.step_dir).mkdir(parents=True, exist_ok=True)
    return FakeResult(kind="rag", note=str(step.docs_dir))


def fake_prompt(step, ctx):
    CALLS.append("prompt")
    if "prompt-bug" in FAIL:
        raise ZeroDivisionError("division by zero")
    return FakeResult(kind="prompt", note=step.model)


def _fake_report(step, result):
    from backends.base import ReportRow, StepReport

    return StepReport(compare=[ReportRow(quantity="note", predicted="–", measured=result.note)],
                      benefit=[("kind", result.kind)], data={"note": result.note})


@pytest.fixture
def fake_backends(monkeypatch):
    """The real descriptors of rag and prompt with stand-in `run` and `report` (no models loaded)."""
    import dataclasses

    import backends

    real = backends.backend_for
    fakes = {"rag": fake_rag, "prompt": fake_prompt}

    def backend_for(kind):
        descriptor = real(kind)
        if kind not in fakes:
            return descriptor
        return dataclasses.replace(descriptor, run=fakes[kind], report=_fake_report, result_model=FakeResult,
                                   check=lambda step, ctx: [])

    monkeypatch.setattr(backends, "backend_for", backend_for)
    CALLS.clear()
    FAIL.clear()


@pytest.fixture
def plan_file(tmp_path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\nThe boiler holds 1.8 litres.\n")
    (tmp_path / "shots.jsonl").write_text(
        "".join(json.dumps({"prompt": f"question {i}?", "completion": f"answer {i}"}) + "\n" for i in range(8))
    )
    plan = {"name": "demo", "steps": [
        {"kind": "rag", "docs_dir": "docs"},
        {"kind": "prompt", "model": "some-api-model", "examples_path": "shots.jsonl", "n_shots": 1,
         "max_prompt_tokens": 500},
    ]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def test_plan_runs_every_step_and_writes_state_and_report(fake_backends, plan_file, tmp_path):
    run_dir = tmp_path / "run"
    state = runner.execute(runner.prepare(plan_file), run_dir, announce=lambda line: None)
    assert CALLS == ["rag", "prompt"]
    assert [s.status for s in state.steps] == ["done", "done"]
    saved = json.loads((run_dir / "state.json").read_text())
    assert [s["status"] for s in saved["steps"]] == ["done", "done"]
    assert {"plan.yaml", "report.md", "report.html", "result.json"} <= {p.name for p in run_dir.iterdir()}
    report = (run_dir / "report.md").read_text()
    assert report.index("## Verdict") < report.index("## Step 1")  # the report opens with each step's verdict
    assert "Step 1 (rag): no verdict" in report
    # The rag step read the plan's folder, made absolute: backends never depend on the working directory.
    result = json.loads((run_dir / state.steps[0].result_file).read_text())
    assert Path(result["note"]) == (plan_file.parent / "docs").resolve()


def test_rerun_skips_finished_steps(fake_backends, plan_file, tmp_path):
    run_dir = tmp_path / "run"
    runner.execute(runner.prepare(plan_file), run_dir, announce=lambda line: None)
    CALLS.clear()
    lines: list[str] = []
    runner.execute(runner.prepare(plan_file), run_dir, announce=lines.append)
    assert CALLS == []
    assert all("skipped" in line for line in lines)


def test_failed_step_keeps_finished_ones_and_resumes_only_what_failed(fake_backends, plan_file, tmp_path):
    run_dir = tmp_path / "run"
    FAIL.add("prompt-bug")
    with pytest.raises(RunFailedError) as info:
        runner.execute(runner.prepare(plan_file), run_dir, announce=lambda line: None)
    assert "step 2 (prompt few-shot) failed: ZeroDivisionError" in info.value.message
    assert "error.log" in info.value.message  # a bug keeps its traceback, in the step's log
    saved = json.loads((run_dir / "state.json").read_text())
    assert [s["status"] for s in saved["steps"]] == ["done", "failed"]
    FAIL.clear()
    CALLS.clear()
    runner.execute(runner.prepare(plan_file), run_dir, announce=lambda line: None)
    assert CALLS == ["prompt"]


def test_a_changed_plan_is_not_resumed_into_the_old_run(fake_backends, plan_file, tmp_path):
    run_dir = tmp_path / "run"
    runner.execute(runner.prepare(plan_file), run_dir, announce=lambda line: None)
    plan = yaml.safe_load(plan_file.read_text())
    plan["steps"][1]["n_shots"] = 0
    plan_file.write_text(yaml.safe_dump(plan))
    with pytest.raises(AdvisorError, match="different plan"):
        runner.execute(runner.prepare(plan_file), run_dir, announce=lambda line: None)


def test_missing_data_paths_are_listed_together(tmp_path):
    plan = {"steps": [{"kind": "rag", "docs_dir": "nowhere"},
                      {"kind": "train", "method": "lora", "base_model": "tiny-demo", "data_path": "gone.jsonl"}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    with pytest.raises(InvalidInputError) as info:
        runner.prepare(path)
    assert len(info.value.problems) == 2
    # Input paths are absolute once the plan is loaded: the message names the folder that was looked for.
    assert f"step 1 (rag): docs_dir `{tmp_path / 'nowhere'}`" in info.value.problems[0]


def test_an_edited_invalid_plan_names_every_field(tmp_path):
    plan = {"steps": [{"kind": "train", "method": "lora", "base_model": "x", "data_path": "d", "lora_rank": 0},
                      {"kind": "rag", "docs_dir": "d", "chunk_tokens": 8}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    with pytest.raises(ValidationError) as info:
        runner.prepare(path)
    text = str(info.value)
    assert "lora_rank" in text and "chunk_tokens" in text


def test_demo_substitutes_models_and_caps_steps(tmp_path):
    (tmp_path / "d.jsonl").write_text("{}\n")
    plan = {"steps": [{"kind": "train", "method": "lora", "base_model": "meta-llama/Llama-3.2-3B",
                       "data_path": "d.jsonl", "epochs": 3}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    inp = runner.prepare(path, demo=True)
    step = inp.plan.steps[0]
    from backends.train import DEMO_MAX_STEPS

    assert (step.base_model, step.max_steps) == ("tiny-demo", DEMO_MAX_STEPS)
    assert "meta-llama/Llama-3.2-3B" in inp.demo_substitutions[0]



@pytest.mark.extras("rag")  # the pre-check reads the prompt step's examples with numpy
def test_cli_without_terminal_needs_yes(plan_file):
    assert_user_error(CliRunner().invoke(app, ["run", str(plan_file)]), "confirmation", "--yes",
                      preamble=True)


def test_cli_missing_input_file(tmp_path):
    assert_user_error(CliRunner().invoke(app, ["run", str(tmp_path / "nope.yaml"), "--yes"]), "does not exist")


def test_cli_step_failure_names_the_step_and_exits_1(fake_backends, plan_file, tmp_path):
    FAIL.add("rag")
    result = CliRunner().invoke(app, ["run", str(plan_file), "--yes", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "error: step 1 (rag) failed: the embedding model is missing" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_dpo_step_starts_from_the_adapter_the_lora_step_trained(tmp_path):
    fixtures = Path(__file__).parent / "fixtures" / "train"
    plan = {"name": "sft-then-dpo", "steps": [
        {"kind": "train", "method": "lora", "base_model": "tiny-demo", "data_path": str(fixtures / "sft_chat.jsonl"),
         "max_steps": 6, "batch_size": 4, "seq_len": 128},
        {"kind": "train", "method": "dpo", "base_model": "tiny-demo", "data_path": str(fixtures / "dpo_pairs.jsonl"),
         "init_adapter": "lora", "max_steps": 6, "batch_size": 2, "seq_len": 128},
    ]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    state = runner.execute(runner.prepare(path), tmp_path / "run", announce=lambda line: None)
    assert [s.status for s in state.steps] == ["done", "done"]
    dpo = json.loads((tmp_path / "run" / state.steps[1].result_file).read_text())
    sft = json.loads((tmp_path / "run" / state.steps[0].result_file).read_text())
    # The DPO policy is the SFT model: same base weights (the demo model the LoRA step built).
    assert dpo["base_model_path"] == sft["base_model_path"]


@pytest.mark.extras("train")
def test_a_model_that_is_not_here_fails_in_one_line_with_the_demo_hint(tmp_path):
    fixtures = Path(__file__).parent / "fixtures" / "train"
    plan = {"steps": [{"kind": "train", "method": "lora", "base_model": "example-org/not-cached-model",
                       "data_path": str(fixtures / "sft_chat.jsonl")}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    result = CliRunner().invoke(app, ["run", str(path), "--yes", "--out", str(tmp_path / "r")])
    # The pre-check finds it before anything runs: bad input (exit 2), and nothing is written.
    assert result.exit_code == 2
    assert not (tmp_path / "r").exists()
    assert result.stderr.count("error:") == 1
    assert "cannot load base model `example-org/not-cached-model`" in result.stderr
    assert "--demo" in result.stderr and "Traceback" not in result.output
