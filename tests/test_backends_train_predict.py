"""The training backend's bridge to the estimator: a prediction, or a stated reason for none."""

from __future__ import annotations

from advisor.core.catalog import load_model_rows
from advisor.core.models import TrainStep
from backends.train.predict import predict_memory


def test_prediction_for_a_known_architecture_matches_the_run_settings():
    row = next(r for r in load_model_rows() if r["name"] == "llama-3.2-1b")
    step = TrainStep(method="lora", base_model="x", data_path="d", batch_size=2, seq_len=512)
    estimate, note = predict_memory(step, row["config"], "llama-3.2-1b", "bf16", device="cpu")
    assert estimate is not None and estimate.cuda_context_bytes == 0  # a CPU run has no CUDA context
    assert estimate.n_trainable_params > 0 and "estimate_memory" in note


def test_an_architecture_the_estimator_does_not_model_gives_no_prediction_and_says_why():
    step = TrainStep(method="lora", base_model="x", data_path="d")
    estimate, note = predict_memory(step, {"model_type": "gpt2", "n_embd": 64}, "gpt2", "fp32", device="cpu")
    assert estimate is None
    assert "no prediction" in note and "gpt2" in note
