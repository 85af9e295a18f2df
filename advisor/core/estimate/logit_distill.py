"""Logit-level distillation: the student's training memory and time with a frozen teacher beside it.

The student trains as `advisor train` runs it (`backends/train/logit_distill.py`), on its full logits instead
of TRL's fused LM head, against a teacher of the same vocabulary held in the compute dtype:

    teacher weights   = N_teacher × (4 B under fp32, else 2 B)               resident in every phase
    teacher forward   = resident + teacher weights + one no_grad block's working set + teacher logits
    at the loss       = the student's states and saved activations
                        + teacher logits b·s·V and student logits b·s·V (each in its compute dtype)
                        + the loss's gradient buffer b·s·V (student dtype; the one tensor saved for backward)
                        + 3 fp32 tensors of `rows × V` (rows = min(b·s, CHUNK_ELEMENTS // V): the loss works
                          row chunk by row chunk) + shifted targets and their mask (9 B per token)
    backward          = resident + teacher weights + saved activations + the gradient buffer (the loss hands it
                        on: no fp32 log-softmax gradient) + the LM head's input gradient b·s·H and, when the head
                        trains (full), its fp32 weight gradient + one recomputed block with checkpointing (as
                        `memory` counts it: beside the logits' gradient, an upper bound, since the block runs after
                        the LM head's backward has freed the buffer)
    optimizer         = the student's optimizer step + teacher weights
    eval              = the student's no_grad forward and logits + teacher weights and logits + the loss's chunks
    time              = the student's training FLOPs + the teacher's forward, 2·N_matmul + 4·L·s·d per token
                        (the same forward count as `compute.flops_per_token`), at the student's utilisation

Ignored: the loss's own FLOPs (≈ 10·V per token, under 1% of a forward for any catalog model), the input batch,
and buffers inside single kernels. Pure: no I/O.
"""

from __future__ import annotations

from advisor.core.estimate import params as P
from advisor.core.estimate.compute import ATTENTION_FLOPS, FORWARD_FLOPS_PER_PARAM, estimate_training_compute
from advisor.core.estimate.memory import (
    ALLOCATOR_FRAGMENTATION,
    LOSS_FP32_BYTES,
    TOKEN_ID_BYTES,
    _compute_bytes,
    _dequant_bytes,
    _logit_bytes,
    estimate_memory,
    saved_activation_bytes,
)
from advisor.core.models import ComputeEstimate, EstimateSpec, GpuSpec, MemoryEstimate, ModelSpec

__all__ = ["CHUNK_ELEMENTS", "LOSS_CHUNK_TENSORS", "chunk_rows", "estimate_distill_compute",
           "estimate_distill_memory", "teacher_forward_flops_per_token", "teacher_weight_bytes"]

# The distillation loss folds the vocabulary one chunk of rows (tokens) at a time: at most this many fp32 values
# per chunk tensor (2^26 = 256 MiB), so a 128k vocabulary runs 512 rows at a time and a small one all at once.
CHUNK_ELEMENTS = 1 << 26
# fp32 chunk tensors alive at once inside the loss (backends/train/logit_distill.py `_fold_chunk`: the student's
# log-probabilities at T, the teacher's log-probabilities and probabilities).
LOSS_CHUNK_TENSORS = 3
MASK_BYTES = 1  # the boolean mask of positions with a target


def chunk_rows(vocab_size: int) -> int:
    """Rows (tokens) the loss folds together: as many as fit `CHUNK_ELEMENTS` values of the vocabulary."""
    return max(1, CHUNK_ELEMENTS // vocab_size)


def teacher_weight_bytes(teacher: ModelSpec, precision: str) -> int:
    """The frozen teacher's weights: loaded in the compute dtype (fp32 under fp32, else 16-bit)."""
    return P.count_params(teacher).n_params * (4 if precision == "fp32" else 2)


def _check_vocab(spec: EstimateSpec, teacher: ModelSpec) -> None:
    if teacher.vocab_size != spec.model.vocab_size:
        raise ValueError(f"logit-level distillation needs one vocabulary: the teacher has {teacher.vocab_size} "
                         f"tokens, the student {spec.model.vocab_size}")
    if spec.method not in ("full", "lora", "qlora", "ia3"):
        raise ValueError(f"logit-level distillation trains full, lora, qlora or ia3 (got {spec.method})")


def estimate_distill_memory(spec: EstimateSpec, teacher: ModelSpec) -> MemoryEstimate:
    """Peak memory per device of one training step of a student distilled from `teacher` on its logits.

    Args:
        spec: The student's job (as `translate.train_spec` describes the step).
        teacher: The teacher's architecture; same vocabulary as the student.

    Returns:
        The student's estimate with the teacher's weights (`teacher_bytes`), its logits and the loss's tensors
        added to every phase (see the module docstring).

    Raises:
        ValueError: the vocabularies differ, or the method is not one logit distillation trains.
    """
    _check_vocab(spec, teacher)
    full = spec.model_copy(update={"loss_kernel": "full"})
    base = estimate_memory(full)
    acts = saved_activation_bytes(full)
    tokens, vocab = full.batch_size * full.seq_len, full.model.vocab_size
    dt = _compute_bytes(full)  # the student's logits
    teacher_dt = 4 if full.precision == "fp32" else 2
    full_fwd, _ = _logit_bytes(full, tokens)
    # Everything but the loss in the forward phase: resident states, saved activations, workspace.
    before_loss = base.phases_bytes["forward"] - full_fwd - acts.loss
    resident = before_loss - acts.blocks - acts.head
    weights = teacher_weight_bytes(teacher, full.precision)
    teacher_logits = tokens * vocab * teacher_dt
    student_logits = tokens * vocab * dt
    gradient = tokens * vocab * dt
    chunk = LOSS_CHUNK_TENSORS * min(tokens, chunk_rows(vocab)) * vocab * LOSS_FP32_BYTES
    targets = tokens * (TOKEN_ID_BYTES + MASK_BYTES)
    inter = teacher.intermediate_size * (teacher.n_experts_active if teacher.is_moe else 1)
    teacher_block = tokens * (3 * teacher.hidden_size + (3 if teacher.mlp_gated else 2) * inter) * teacher_dt
    recompute = acts.per_block if full.grad_ckpt else 0
    head_gradient = vocab * full.model.hidden_size * 4 if full.train_method == "full" else 0  # fp32 trainable head
    at_loss = before_loss + weights + teacher_logits + student_logits + gradient + chunk + targets
    phases = {
        "forward": max(at_loss, resident + weights + teacher_block + teacher_logits),
        "backward": max(before_loss + weights + gradient + tokens * full.model.hidden_size * dt + head_gradient
                        + recompute,
                        base.phases_bytes["optimizer"] + _dequant_bytes(full) + weights),
        "optimizer": base.phases_bytes["optimizer"] + weights,
        # The student's no_grad forward with its logits (not transformers' fp32 upcast and log-softmax), the
        # teacher's logits and the loss's chunks (no gradient buffer under no_grad).
        "eval": (base.phases_bytes["eval"] - full_fwd - tokens * vocab * LOSS_FP32_BYTES + student_logits + weights
                 + teacher_logits + chunk + targets),
    }
    peak_phase = max(phases, key=phases.__getitem__)
    notes = [n for n in base.assumptions if not n.startswith("loss:")] + [
        f"logit-level distillation: frozen teacher `{teacher.name}` ({P.count_params(teacher).n_params} parameters "
        f"in {teacher_dt}-byte dtype) runs forward under no_grad before the student",
        f"loss over the student's full logits (not TRL's fused head): teacher and student logits b·s·V, a gradient "
        f"buffer b·s·V saved for backward, {LOSS_CHUNK_TENSORS} fp32 chunk tensors of "
        f"{min(tokens, chunk_rows(vocab))} rows × {vocab} (backends/train/logit_distill.py)",
    ]
    allocated = phases[peak_phase]
    return base.model_copy(update={
        "teacher_bytes": weights,
        "logits_bytes": teacher_logits + student_logits + gradient + chunk + targets,
        "phases_bytes": phases,
        "peak_phase": peak_phase,
        "allocator_overhead_bytes": int(allocated * ALLOCATOR_FRAGMENTATION),
        "assumptions": notes,
    })


def teacher_forward_flops_per_token(teacher: ModelSpec, seq_len: int) -> float:
    """FLOPs of one teacher forward per token: 2 per matmul parameter plus attention (as `compute` counts it)."""
    inv = P.count_params(teacher)
    n_matmul = inv.n_active_params - (0 if teacher.tie_embeddings else inv.embedding_params)
    return float(FORWARD_FLOPS_PER_PARAM * n_matmul
                 + ATTENTION_FLOPS * teacher.n_layers * seq_len * teacher.n_heads * teacher.head_dim)


def estimate_distill_compute(spec: EstimateSpec, teacher: ModelSpec, gpu: GpuSpec, n_examples: int,
                             mean_tokens: float, epochs: float = 1.0,
                             utilization: float | None = None) -> ComputeEstimate:
    """Training FLOPs, hours and cost of the student with the teacher's forward on every training token.

    Args:
        spec: The student's job.
        teacher: The teacher's architecture.
        gpu: The GPU it runs on.
        n_examples: Training examples.
        mean_tokens: Mean tokens per example.
        epochs: Passes over the data.
        utilization: MFU; None: the prior for the student's method on `gpu`.

    Returns:
        The student's compute estimate with the teacher's forward FLOPs added (same utilisation and price).
    """
    _check_vocab(spec, teacher)
    student = estimate_training_compute(spec, gpu, n_examples, mean_tokens, epochs, utilization)
    per_token = teacher_forward_flops_per_token(teacher, spec.seq_len)
    flops = student.flops + per_token * student.n_tokens
    scale = flops / student.flops if student.flops else 1.0
    gpu_hours = student.gpu_hours * scale
    return student.model_copy(update={
        "flops": flops,
        "flops_per_token": student.flops_per_token + per_token,
        "hours": student.hours * scale,
        "gpu_hours": gpu_hours,
        "usd": gpu_hours * student.price_per_hour_usd if student.price_per_hour_usd is not None else None,
        "assumptions": [*student.assumptions, f"+ {per_token:.3g} FLOPs per token: the teacher `{teacher.name}`'s "
                        "forward (2N + attention, no backward) on every training token"],
    })
