"""`advisor train check|run` from the command line: bad input exits 2 with one `error:` line and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app

pytestmark = pytest.mark.extras("train")

FIXTURES = Path(__file__).parent / "fixtures" / "train"
_register()


def _plan(tmp_path: Path, **step) -> Path:
    defaults = {"kind": "train", "method": "lora", "base_model": "tiny-demo",
                "data_path": str(FIXTURES / "sft_instruction.jsonl"), "seq_len": 64, "max_steps": 2}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "steps": [{**defaults, **step}]}))
    return path



@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ({"data_path": str(FIXTURES / "bad_lines.jsonl")}, "bad_lines.jsonl:7: `output` must be a string"),
        ({"data_path": "missing.jsonl"}, "does not exist"),
        ({"base_model": "./no-such-model"}, "base model path"),
        ({"method": "dpo"}, "holds instruction data"),
        ({"lora_rank": 0}, "lora_rank"),
        ({"methd": "lora"}, "methd"),
    ],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_bad_input_is_one_error_line(tmp_path: Path, step: dict, fragment: str, command: str) -> None:
    result = CliRunner().invoke(app, ["train", command, str(_plan(tmp_path, **step)), "--out", str(tmp_path / "r")])
    assert_user_error(result, fragment)
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_missing_plan_and_plan_without_train_step(tmp_path: Path) -> None:
    assert_user_error(CliRunner().invoke(app, ["train", "check", str(tmp_path / "nope.yaml")]), "does not exist")
    plan = tmp_path / "rag.yaml"
    plan.write_text(yaml.safe_dump({"steps": [{"kind": "rag", "docs_dir": "docs"}]}))
    assert_user_error(CliRunner().invoke(app, ["train", "run", str(plan)]), "has no `train` step")


def test_run_refuses_a_used_folder_and_an_empty_resume(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    out = tmp_path / "used"
    step_dir = out / "1-train-lora"  # the folder `advisor run` gives the plan's first step
    step_dir.mkdir(parents=True)
    (step_dir / "notes.txt").write_text("mine")
    assert_user_error(CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(out)]), "is not empty")
    assert_user_error(CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(out), "--resume"]),
                       "nothing to resume")
    assert (step_dir / "notes.txt").read_text() == "mine"
    # --force replaces only an earlier advisor run's outputs: a folder holding anything else is refused.
    assert_user_error(CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(out), "--force"]),
                      "holds no advisor training run")
    assert (step_dir / "notes.txt").read_text() == "mine"


def test_check_reports_a_ready_plan(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    result = CliRunner().invoke(app, ["train", "check", str(_plan(tmp_path)), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "instruction: 43 train, 5 validation" in result.stdout
    assert "<|assistant|>" in result.stdout and "</s>" in result.stdout
    assert result.stdout.rstrip().endswith("verdict   ready to run")
    as_json = CliRunner().invoke(app, ["train", "check", str(_plan(tmp_path)), "--json"])
    report = json.loads(as_json.stdout)
    assert report["lengths"]["n_truncated"] == 0
    assert report["n_trainable_params"] < report["n_params"]


def test_a_file_with_a_duplicate_line_is_ready_to_run(tmp_path: Path) -> None:
    # issue 10: one duplicate line used to refuse the whole file; now it is dropped and reported.
    pytest.importorskip("transformers")
    lines = (FIXTURES / "sft_instruction.jsonl").read_text().splitlines()
    data = tmp_path / "dup.jsonl"
    data.write_text("\n".join([*lines, lines[0]]) + "\n")
    result = CliRunner().invoke(app, ["train", "check", str(_plan(tmp_path, data_path=str(data))), "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "instruction: 43 train, 5 validation" in result.stdout
    assert "warn      data: exact duplicate lines dropped, first copies kept: 1 (lines 49)" in result.stdout
    assert result.stdout.rstrip().endswith("verdict   ready to run")
    report = json.loads(CliRunner().invoke(app, ["train", "check", str(_plan(tmp_path, data_path=str(data))),
                                                 "--json"]).stdout)
    assert report["audit"]["n_exact_duplicates"] == 1
    assert report["audit"]["lengths"]["counting"] == "tokenizer"


def test_check_fails_on_a_known_incompatibility(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    plan = _plan(tmp_path, method="qlora", n_gpus=2, distributed="zero3", seq_len=8)
    result = CliRunner().invoke(app, ["train", "check", str(plan)])
    assert result.exit_code == 1
    assert "QLoRA with DeepSpeed ZeRO-3" in result.stdout
    assert "cuts 48 examples" in result.stdout  # every example is longer than 8 tokens
    assert result.stdout.rstrip().endswith("verdict   this run would fail")
