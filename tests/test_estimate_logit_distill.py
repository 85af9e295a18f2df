"""The logit-distillation estimate: the teacher's weights exactly as the real model holds them (built on the meta
device), every term the loss adds counted by hand for Llama 3.2 1B distilled from Llama 3.1 8B, the teacher's
forward FLOPs in the time, and the refusal of two vocabularies. The measured side (CPU tensor peak of a real
step beside this estimate) is in tests/test_backends_train_logit_distill.py."""

from __future__ import annotations

import pytest

from advisor.core.catalog import resolve_gpu, resolve_model
from advisor.core.estimate import params as P
from advisor.core.estimate.compute import estimate_training_compute
from advisor.core.estimate.logit_distill import (
    CHUNK_ELEMENTS,
    chunk_rows,
    estimate_distill_compute,
    estimate_distill_memory,
    teacher_weight_bytes,
)
from advisor.core.estimate.memory import _logit_bytes, estimate_memory, saved_activation_bytes
from advisor.core.models import EstimateSpec

STUDENT, TEACHER = resolve_model("llama-3.2-1b"), resolve_model("llama-3.1-8b")


def _spec(method="lora", precision="bf16", **kw) -> EstimateSpec:
    return EstimateSpec(model=STUDENT, method=method, precision=precision, batch_size=4, seq_len=1024, **kw)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_teacher_weights_equal_the_real_model_on_the_meta_device(precision):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=1031, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    from advisor.core.catalog import model_spec_from_hf_config

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    real = sum(p.numel() * p.element_size() for p in model.parameters())
    assert teacher_weight_bytes(model_spec_from_hf_config(config.to_dict(), "t", "t"), precision) == real
    assert teacher_weight_bytes(TEACHER, precision) == 8_030_261_248 * (4 if precision == "fp32" else 2)


@pytest.mark.parametrize(("method", "grad_ckpt"), [("lora", True), ("full", False), ("qlora", True), ("ia3", True)])
def test_every_term_the_teacher_and_the_loss_add_counted_by_hand(method, grad_ckpt):
    spec = _spec(method, "bf16" if method != "full" else "bf16-mixed", grad_ckpt=grad_ckpt)
    est = estimate_distill_memory(spec, TEACHER)
    full = spec.model_copy(update={"loss_kernel": "full"})
    plain, acts = estimate_memory(full), saved_activation_bytes(full)
    tokens, vocab = 4 * 1024, 128_256
    rows = CHUNK_ELEMENTS // vocab  # 523 rows of a 128k vocabulary per chunk
    assert rows == chunk_rows(vocab) == 523
    teacher = 8_030_261_248 * 2  # bf16: the compute dtype
    before_loss = plain.phases_bytes["forward"] - _logit_bytes(full, tokens)[0] - acts.loss
    logits = 3 * tokens * vocab * 2  # teacher logits, student logits, the loss's gradient buffer (all bf16)
    assert est.teacher_bytes == teacher
    assert est.phases_bytes["forward"] == before_loss + teacher + logits + 3 * rows * vocab * 4 + tokens * 9
    assert est.phases_bytes["optimizer"] == plain.phases_bytes["optimizer"] + teacher
    head_gradient = vocab * STUDENT.hidden_size * 4 if method == "full" else 0
    recompute = acts.per_block if grad_ckpt else 0
    assert est.phases_bytes["backward"] == before_loss + teacher + tokens * vocab * 2 + tokens * 2048 * 2 + \
        head_gradient + recompute
    assert est.peak_phase == "forward"
    # Against plain SFT with TRL's fused head (no b·s·V tensor): more than the teacher and two sets of logits.
    sft = estimate_memory(spec)
    assert est.peak_allocated_bytes - sft.peak_allocated_bytes > teacher + 2 * tokens * vocab * 2
    assert any("frozen teacher" in note for note in est.assumptions)


def test_two_vocabularies_are_refused():
    with pytest.raises(ValueError, match="one vocabulary: the teacher has 152064 tokens, the student 128256"):
        estimate_distill_memory(_spec(), resolve_model("qwen2.5-7b"))
    with pytest.raises(ValueError, match="trains full, lora, qlora or ia3"):
        estimate_distill_memory(_spec("dpo"), TEACHER)


def test_time_adds_the_teachers_forward_on_every_training_token():
    spec, gpu = _spec(), resolve_gpu("h100")
    student = estimate_training_compute(spec, gpu, 10_000, 300.0, 2.0)
    both = estimate_distill_compute(spec, TEACHER, gpu, 10_000, 300.0, 2.0)
    inv = P.count_params(TEACHER)
    # 2 FLOPs per matmul parameter (the untied input embedding is a lookup) + QKᵀ and AV over s keys, per layer.
    forward = 2 * (inv.n_params - inv.embedding_params) + 4 * 32 * 1024 * 32 * 128
    assert both.n_tokens == student.n_tokens == 6_000_000
    assert both.flops == pytest.approx(student.flops + forward * 6_000_000, rel=1e-12)
    assert both.hours / student.hours == pytest.approx(both.flops / student.flops, rel=1e-12)
    assert both.usd == pytest.approx(both.gpu_hours * gpu.price_per_hour_usd, rel=1e-12)
    assert 2.9 < both.flops / student.flops < 3.0  # an 8B teacher's forward: twice a 1B LoRA student's training
