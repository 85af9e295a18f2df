"""fp32 time: the TF32 peak only where the run sets float32 matmul precision "high" (advisor's backend does)."""

from __future__ import annotations

import pytest

from advisor.core.catalog import load_gpus, load_models
from advisor.core.estimate.compute import (
    backend_matmul_precision,
    estimate_training_compute,
    peak_tflops,
    tf32_matmuls,
)
from advisor.core.models import EstimateSpec

GPUS = load_gpus()


def _spec(**kw) -> EstimateSpec:
    return EstimateSpec(model=load_models()["llama-3.1-8b"], method="lora", **kw)


def test_every_gpu_with_tf32_has_a_cuda_core_fp32_figure() -> None:
    # TF32 arrived with Ampere, as bf16 did: every bf16 GPU has TF32, and so two fp32 rates.
    for gpu in GPUS.values():
        assert (gpu.fp32_cuda_core_tflops is not None) == gpu.supports_bf16, gpu.name
        if gpu.fp32_cuda_core_tflops is not None:
            assert gpu.fp32_cuda_core_tflops <= gpu.fp32_tflops, gpu.name


def test_h100_fp32_without_tf32_is_the_datasheet_67() -> None:
    h100 = GPUS["h100-80gb"]
    assert peak_tflops(h100, "fp32", tf32=True)[0] == 494.5
    assert peak_tflops(h100, "fp32", tf32=False)[0] == 67
    assert peak_tflops(h100, "bf16-mixed", tf32=False)[0] == 989  # 16-bit is untouched


def test_policy_follows_who_runs_the_job() -> None:
    assert tf32_matmuls(_spec(precision="fp32"))[0] is True  # advisor's backend sets "high" for fp32 on CUDA
    on, why = tf32_matmuls(_spec(precision="fp32", stack="hf-trainer"))
    assert on is False and "highest" in why


@pytest.mark.parametrize("gpu_name", sorted(GPUS))
def test_fp32_hours_scale_with_the_rate_in_use(gpu_name: str) -> None:
    gpu = GPUS[gpu_name]
    ours = estimate_training_compute(_spec(precision="fp32"), gpu, 1000, 512)
    theirs = estimate_training_compute(_spec(precision="fp32", stack="hf-trainer"), gpu, 1000, 512)
    assert ours.peak_tflops == gpu.fp32_tflops
    assert theirs.peak_tflops == (gpu.fp32_cuda_core_tflops or gpu.fp32_tflops)
    assert theirs.hours == pytest.approx(ours.hours * ours.peak_tflops / theirs.peak_tflops)
    if gpu.fp32_cuda_core_tflops is not None:
        assert any("TF32" in note for note in ours.assumptions)
        assert any("without TF32" in note for note in theirs.assumptions)
    bf16 = estimate_training_compute(_spec(precision="bf16-mixed", stack="hf-trainer"), gpu, 1000, 512)
    assert bf16.hours == estimate_training_compute(_spec(precision="bf16-mixed"), gpu, 1000, 512).hours


def test_the_backend_policy_is_the_one_the_estimate_reads() -> None:
    # backends/train/run.py sets torch.set_float32_matmul_precision(backend_matmul_precision(...)).
    assert backend_matmul_precision("fp32", "cuda") == "high"
    assert backend_matmul_precision("bf16", "cuda") is None and backend_matmul_precision("fp32", "cpu") is None
    for precision in ("fp32", "bf16-mixed", "fp16-mixed"):
        on, _ = tf32_matmuls(_spec(precision=precision))
        assert on == (backend_matmul_precision(precision, "cuda") == "high")
