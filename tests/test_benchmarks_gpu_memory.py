"""benchmarks/gpu_memory.py without a GPU: it imports, plans its cases with estimates, and exits cleanly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_memory.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_memory"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_memory"]


def test_heavy_imports_stay_inside_functions(bench):
    source = SCRIPT.read_text()
    for module in ("torch", "transformers", "peft", "trl", "bitsandbytes"):
        assert f"\nimport {module}" not in source and f"\nfrom {module}" not in source


def test_plan_covers_every_method_at_two_batches_and_lengths(bench):
    cases = bench.plan()
    assert {c.method for c in cases} >= {"full", "lora", "qlora", "dpo-lora", "dpo-full"}
    assert {c.batch for c in cases} >= {1, 4} and {c.seq for c in cases} >= {512, 2048}
    assert {c.model for c in cases} == {"qwen2.5-0.5b", "qwen2.5-1.5b", "llama-3.1-8b"}


def test_dry_run_prints_each_case_with_its_estimate(bench, capsys):
    assert bench.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(bench.plan()) + 2
    assert "| llama-3.1-8b | qlora | 4 × 2048 |" in out


def test_estimates_grow_with_tokens(bench):
    small, large = bench.Case("qwen2.5-1.5b", "lora", 1, 512), bench.Case("qwen2.5-1.5b", "lora", 4, 2048)
    assert bench.estimate(small).peak_allocated_bytes < bench.estimate(large).peak_allocated_bytes


def test_exits_cleanly_without_cuda(bench, capsys, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the real benchmark would run")
    assert bench.main(["--out", str(tmp_path / "gpu.md")]) == 0
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "gpu.md").exists()


def test_report_renders_measured_rows(bench):
    rows = [(bench.Case("qwen2.5-0.5b", "lora", 1, 512), bench.Measured(2 * 2**30, 3 * 2**30, 1000.0)),
            (bench.Case("llama-3.1-8b", "full", 1, 512), bench.Measured(status="OOM"))]
    text = bench.report(rows, 12.0, "NVIDIA H200", 140 * 2**30, "python benchmarks/gpu_memory.py")
    assert "NVIDIA H200" in text and "| qwen2.5-0.5b | lora | 1 × 512 |" in text and "| OOM |" in text
    assert "| lora | 1 |" in text


@pytest.mark.slow
def test_smoke_runs_every_method_on_cpu(bench, capsys):
    for module in ("torch", "transformers", "peft", "trl", "bitsandbytes"):
        pytest.importorskip(module)
    assert bench.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert all(f"{m}: ok" in out for m in ("full", "lora", "qlora", "dpo-lora", "dpo-full"))
