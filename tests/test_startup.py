"""The CLI's start-up path stays light, and a built wheel works from outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Never imported by the CLI's own paths (help, estimate, catalogs, recommend, plan, rules) nor by importing
# the backends' packages: they load inside the functions that need them.
HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "faiss", "sentence_transformers", "datasets",
         "numpy", "scipy", "datasketch", "huggingface_hub")
REPO = Path(__file__).resolve().parents[1]
ANSWERS = REPO / "examples" / "support-assistant" / "answers.yaml"

PROBE = """
import json, sys
from typer.testing import CliRunner
from advisor.app.cli import _register, app
_register()
runner = CliRunner()
for args in {commands!r}:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
for module in {modules!r}:
    __import__(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


@pytest.mark.parametrize(
    ("commands", "modules"),
    [
        ([["--help"]], []),
        ([["estimate", "--model", "llama-3.1-8b", "--method", "qlora", "--gpu", "rtx-4090", "--json"]], []),
        ([["estimate", "--model", "mixtral-8x7b", "--method", "lora", "--fit", "--examples", "100", "--gpu", "h100"]],
         []),
        ([["models"], ["gpus"]], ["advisor.core.catalog"]),
        ([["recommend", str(ANSWERS), "--json"], ["rules", "check"]], []),
        ([["train", "--help"], ["train", "run", "--help"], ["prompt", "--help"], ["rag", "build", "--help"],
          ["data", "audit", "--help"]], []),
        ([], ["backends", "backends.train", "backends.rag", "backends.prompting", "backends.common",
              "advisor.core.estimate.index", "advisor.app.runner"]),
    ],
    ids=["help", "estimate", "estimate-fit", "catalogs", "recommend-rules", "backend-helps", "backend-packages"],
)
def test_cli_never_imports_heavy_libraries(commands, modules, tmp_path):
    """The one heavy-import check: each command set (and module import) in a fresh interpreter."""
    code = PROBE.format(commands=commands, modules=modules, heavy=set(HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.slow
def test_wheel_ships_rules_and_runs_outside_the_checkout(tmp_path):
    """Build the wheel, install it into a folder, run `advisor estimate` from elsewhere: rules/ must travel."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("advisor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "advisor/_rules/catalog/models.yaml" in names and "advisor/_rules/catalog/gpus.yaml" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c",
         "import advisor, sys; from advisor.app.cli import main; print(advisor.__file__, file=sys.stderr); "
         "sys.argv = ['advisor', 'estimate', '--model', 'llama-3.1-8b', '--gpu', 'a10g', '--json']; main()"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stderr  # the installed copy ran, not the checkout
    assert json.loads(run.stdout)["memory"]["peak_bytes"] > 0
