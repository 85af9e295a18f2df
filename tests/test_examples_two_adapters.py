"""examples/two-adapters from its answers: two tasks → two LoRA adapters trained on one base → one server for both,
killed with SIGKILL while the second adapter trains and resumed without redoing the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import kill_when_ready

from advisor.core.planning import absolute_plan, build_plan, save_plan
from advisor.core.recommend import load_answers, recommend

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "two-adapters"
SHORT = {"max_steps": 4, "eval_fraction": 0.02}  # the files and the resume, not the learning


@pytest.mark.slow
@pytest.mark.extras("train")
def test_two_tasks_train_two_adapters_on_one_base_and_resume_after_kill(tmp_path: Path) -> None:
    answers = load_answers(EXAMPLE / "answers.yaml")
    plan = absolute_plan(build_plan(recommend(answers), answers), EXAMPLE)
    steps = [s.model_copy(update=SHORT) if s.kind == "train" else s for s in plan.steps]
    assert [s.kind for s in steps] == ["train", "train", "serve"]
    save_plan(plan.model_copy(update={"steps": steps}), tmp_path / "plan.yaml")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "advisor", "run", str(tmp_path / "plan.yaml"), "--yes", "--demo", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    state = {}

    def second_adapter_training() -> bool:
        try:
            state.update(json.loads((out / "state.json").read_text()))
        except (OSError, ValueError):
            return False  # not written yet, or caught between the write and the rename
        return state["steps"][1]["status"] == "running"

    kill_when_ready(cmd, second_adapter_training, env=env, poll=0.1)
    assert state["steps"][0]["status"] == "done"
    first = (out / "1-train-lora-billing" / "result.json").read_text()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "[1/3] train lora-billing: done earlier, skipped" in rerun.stderr
    assert (out / "1-train-lora-billing" / "result.json").read_text() == first  # the first adapter was not retrained
    final = json.loads((out / "state.json").read_text())
    assert [s["status"] for s in final["steps"]] == ["done", "done", "done"]

    # Two adapters, each trained on its own task's file, on one base; the serve files name both.
    trained = [json.loads((out / d / "result.json").read_text()) for d in ("1-train-lora-billing", "2-train-lora-shipping")]
    assert len({t["base_model_path"] for t in trained}) == 1
    assert (out / "1-train-lora-billing" / "lora-billing" / "adapter_config.json").is_file()
    assert (out / "2-train-lora-shipping" / "lora-shipping" / "adapter_config.json").is_file()
    served = json.loads((out / "3-serve" / "result.json").read_text())
    assert [(m["name"], m["kind"]) for m in served["models"]] == [("billing", "adapter"), ("shipping", "adapter")]
    assert len({m["base_path"] for m in served["models"]}) == 1
    config = yaml.safe_load((out / "3-serve" / "serve" / "vllm.yaml").read_text())
    assert config["enable-lora"] and config["max-loras"] == 2
    assert [m.split("=")[0] for m in config["lora-modules"]] == ["billing", "shipping"]
    assert "billing" in (out / "3-serve" / "serve" / "client.py").read_text()
    report = (out / "report.md").read_text()
    assert "one base + 2 adapter(s) vs 2 separate models" in report
    assert "monthly serving cost: shared base vs separate models" in report
    rows = json.loads((out / "result.json").read_text())["steps"]
    predicted = rows[-1]["predicted"]
    assert predicted["n_adapters"] == 2 and predicted["replica_bytes"] < predicted["separate_bytes"]
    assert predicted["monthly_usd"] < predicted["separate_monthly_usd"]
