"""Training FLOPs, wall time and cost on a catalog GPU.

    tokens         = examples × mean tokens per example × epochs  (× 2 for DPO: chosen and rejected)
    forward/token  = 2·N_matmul + 4·L·s·d_q        (N_matmul: parameters used in matrix products per token;
                                                   the attention term is QKᵀ and AV, PaLM appendix B)
    full           = 3 × forward                   (backward ≈ 2 × forward: Kaplan et al. 2020, 6N)
    LoRA / QLoRA   = 2 × forward + 6·N_lora        (a frozen base skips weight gradients: ≈ 4N,
                                                   Thinking Machines "LoRA Without Regret", 2025)
    checkpointing  + 1 × forward                   (each block runs forward again in backward)
    DPO            + 1 × forward                   (the reference model scores both sequences, no backward)
    hours          = max(compute, communication), where
      compute      = FLOPs / (peak FLOP/s × GPUs × utilisation) / 3600
      communication = micro-batches per GPU × bytes moved per micro-batch / (link GB/s × COMM_EFFICIENCY):
                     data parallel all-reduces the trainable gradients (2·G·(N−1)/N, ring); ZeRO-1/2
                     reduce-scatter them and all-gather the updated parameters ((G + G)·(N−1)/N); ZeRO-3/FSDP
                     all-gathers every stored weight twice (forward, backward) and reduce-scatters the gradients
                     ((2·W + G)·(N−1)/N); parameter offload copies each GPU's shard host→GPU twice (2·W/N over
                     PCIe), optimizer offload moves gradients down and updated parameters up (2·G/N over PCIe).
                     FSDP prefetch and DDP's gradient buckets overlap communication with compute, hence the max
                     (Zhao et al. 2023, arXiv:2304.11277 §3.4; Li et al. 2020, arXiv:2006.15704 §3.2.3).
                     (fp32: the TF32 peak only where the run sets float32 matmul precision "high", as
                     advisor's backend does; else the CUDA-core fp32 peak)
    cost           = hours × GPUs × price per GPU-hour

Utilisation (model FLOPs utilisation) defaults are calibrated on published throughput
(benchmarks/bench_time_calibration.py): 0.30 for 16-bit fine-tuning with an eager, padded stack, × 0.72 for
QLoRA, 0.20 on a T4 (prices.yaml). They are priors, not measurements of this stack: override with `utilization=`.
Ignored: data loading, evaluation passes, checkpoint writes, padding waste beyond the mean length.
"""

from __future__ import annotations

import math

from advisor.core.estimate import params as P
from advisor.core.models import ComputeEstimate, EstimateSpec, GpuSpec

__all__ = ["default_utilization", "estimate_training_compute", "flops_per_token", "peak_tflops", "tf32_matmuls",
           "backend_matmul_precision", "communication_bytes", "link_bandwidth"]

# Per-direction link rates in GB/s (NVIDIA datasheets): NVLink between the GPUs of one board where the
# catalog part has it (H100/H200 SXM 900 GB/s, A100 SXM 600, V100 SXM2 300, both directions), else PCIe x16
# (Gen5 64, Gen4 32, Gen3 16 GB/s per direction), which also carries host↔GPU copies for every part.
NVLINK_GB_S = {"h200": 450.0, "h100-80gb": 450.0, "a100-80gb": 300.0, "a100-40gb": 300.0, "v100-16gb": 150.0,
               "v100-32gb": 150.0}
PCIE_GB_S = {"h200": 64.0, "h100-80gb": 64.0, "h100-pcie": 64.0, "t4": 16.0, "v100-16gb": 16.0, "v100-32gb": 16.0}
PCIE_DEFAULT_GB_S = 32.0  # PCIe Gen4 x16: A100, L40S, RTX A6000, A10G, L4, RTX 3090/4090
# Share of the link rate collectives and copies reach: an assumption (nccl-tests bus bandwidth on a DGX A100
# is ~230 of 300 GB/s; pinned host copies reach ~25 of 32 GB/s on Gen4), not measured by advisor.
COMM_EFFICIENCY = 0.75

# Calibrated on published throughput (benchmarks/results/time_calibration.md, 55 rows): eager, padded
# stacks like ours (transformers + PEFT + TRL; litgpt in the data) reach a median MFU of ~0.24 on LoRA and
# ~0.25 on full fine-tuning; compiled, packed torchtune recipes reach ~0.65. 0.30 sits between the eager
# median and the 0.35 of prices.yaml's engine defaults. QLoRA reaches 0.72x the MFU of the same LoRA run
# (median of 9 paired rows: dequantisation per matmul). No evidence penalises consumer GPUs (2 RTX 4090 rows).
UTILIZATION_DATACENTER = 0.30
UTILIZATION_CONSUMER = 0.30
QLORA_MFU_FACTOR = 0.72
UTILIZATION_T4 = 0.20  # prices.yaml mfu.engine_defaults.t4_fp16 (no T4 row in the published data)
FORWARD_FLOPS_PER_PARAM = 2  # one multiply-add per parameter per token
ATTENTION_FLOPS = 4  # QKᵀ and AV: 2 matmuls × 2 FLOPs per multiply-add, per layer, key and query width
# Forward + backward in forward-pass units; a frozen base (LoRA, IA3, soft prompts) skips its weight gradients.
TRAIN_PASSES = {"full": 3, "lora": 2, "qlora": 2, "ia3": 2, "prompt_tuning": 2, "prefix_tuning": 2, "p_tuning": 2}
LORA_TRAIN_FLOPS_PER_PARAM = 6  # adapter weights do get gradients: 6 per trainable parameter


def backend_matmul_precision(precision: str, device_kind: str) -> str | None:
    """The `torch.set_float32_matmul_precision` advisor's training backend sets: "high" (TF32) for fp32 on
    CUDA, where the TF32 tensor cores are 7x (H100) the CUDA-core rate; None (PyTorch's default) otherwise."""
    return "high" if device_kind == "cuda" and precision == "fp32" else None


def tf32_matmuls(spec: EstimateSpec) -> tuple[bool, str]:
    """Whether this job's fp32 matmuls run in TF32, and why.

    advisor's training backend (`spec.stack` None: the job as `advisor run` trains it) sets
    `torch.set_float32_matmul_precision("high")` for fp32 runs on CUDA. The stacks of `--stack` leave PyTorch's
    default "highest" (transformers' `TrainingArguments.tf32` defaults to None, which changes nothing), so their
    fp32 matmuls run on CUDA cores.
    """
    if spec.stack is None and backend_matmul_precision(spec.precision, spec.device) == "high":
        return True, "fp32 matmuls in TF32: advisor's training backend sets torch.set_float32_matmul_precision('high')"
    return False, (f"fp32 matmuls without TF32: `{spec.stack}` leaves PyTorch's default float32 matmul precision "
                   "'highest' (set tf32 in its config to change that)")


def peak_tflops(gpu: GpuSpec, precision: str, *, tf32: bool = True) -> tuple[float, str]:
    """Dense peak TFLOP/s of `gpu` at `precision`, and why that figure.

    Args:
        gpu: The catalog GPU.
        precision: The job's precision.
        tf32: fp32 matmuls run in TF32 (`float32_matmul_precision` "high"); False: the CUDA-core fp32 rate.

    Returns:
        The figure and a one-line reason (bf16 falls back to the fp32 rate on GPUs without bf16).
    """
    if precision.startswith("bf16"):
        if gpu.supports_bf16 and gpu.bf16_tflops:
            return gpu.bf16_tflops, f"{gpu.name}: dense bf16 {gpu.bf16_tflops:g} TFLOP/s"
        return gpu.fp32_tflops, f"{gpu.name} has no bf16 units: bf16 runs at the fp32 rate ({gpu.fp32_tflops:g})"
    if precision.startswith("fp16"):
        return gpu.fp16_tflops, f"{gpu.name}: dense fp16 {gpu.fp16_tflops:g} TFLOP/s"
    if gpu.fp32_cuda_core_tflops is None:
        return gpu.fp32_tflops, f"{gpu.name}: dense fp32 {gpu.fp32_tflops:g} TFLOP/s (no TF32 units)"
    if tf32:
        return gpu.fp32_tflops, f"{gpu.name}: dense TF32 {gpu.fp32_tflops:g} TFLOP/s for fp32 matmuls"
    return gpu.fp32_cuda_core_tflops, (f"{gpu.name}: dense fp32 on CUDA cores {gpu.fp32_cuda_core_tflops:g} "
                                       f"TFLOP/s (TF32 {gpu.fp32_tflops:g} only with matmul precision 'high')")


def default_utilization(spec: EstimateSpec, gpu: GpuSpec) -> tuple[float, str]:
    """The utilisation prior for this method on this GPU, with its source."""
    if gpu.name == "t4":
        base, why = UTILIZATION_T4, "MFU 0.20 on a T4 (prices.yaml mfu.engine_defaults.t4_fp16, an assumption)"
    elif gpu.name.startswith("rtx-"):
        base, why = UTILIZATION_CONSUMER, "MFU 0.30 on a consumer GPU (benchmarks/results/time_calibration.md)"
    else:
        base, why = UTILIZATION_DATACENTER, (
            "MFU 0.30 for eager, padded 16-bit fine-tuning (median of published eager runs ~0.25, "
            "compiled/packed ~0.65: benchmarks/results/time_calibration.md)"
        )
    if spec.train_method == "qlora":
        return base * QLORA_MFU_FACTOR, f"{why}; × {QLORA_MFU_FACTOR} for QLoRA's per-matmul dequantisation"
    return base, why


def flops_per_token(spec: EstimateSpec) -> float:
    """Training FLOPs per token of data (forward, backward, recomputation, DPO reference)."""
    m = spec.model
    inv = P.count_params(m)
    n_matmul = inv.n_active_params - (0 if m.tie_embeddings else inv.embedding_params)
    # Keys each query attends to: a prefix adds its virtual positions; a prompt lengthens the sequence itself.
    keys = spec.seq_len + spec.extra_tokens + (spec.num_virtual_tokens if spec.train_method == "prefix_tuning" else 0)
    attention = ATTENTION_FLOPS * m.n_layers * keys * m.n_heads * m.head_dim
    forward = FORWARD_FLOPS_PER_PARAM * n_matmul + attention
    if spec.extra_tokens:  # the virtual tokens run through the model with every sequence, but are not data
        forward *= (spec.seq_len + spec.extra_tokens) / spec.seq_len
    method = spec.train_method or "full"
    flops = TRAIN_PASSES[method] * forward
    if spec.uses_lora:
        flops += LORA_TRAIN_FLOPS_PER_PARAM * P.lora_params(m, spec.lora_rank, spec.lora_targets)
    if spec.grad_ckpt:
        flops += forward
    if spec.method == "dpo":
        flops += forward
    return float(flops)


def link_bandwidth(gpu: GpuSpec) -> tuple[float, float, str]:
    """GPU↔GPU and host↔GPU rates of `gpu` in GB/s per direction, and which links they are."""
    pcie = PCIE_GB_S.get(gpu.name, PCIE_DEFAULT_GB_S)
    if gpu.name in NVLINK_GB_S:
        return NVLINK_GB_S[gpu.name], pcie, f"NVLink {NVLINK_GB_S[gpu.name]:g} GB/s, PCIe {pcie:g} GB/s to the host"
    return pcie, pcie, f"PCIe {pcie:g} GB/s between GPUs and to the host (no NVLink)"


def communication_bytes(spec: EstimateSpec) -> tuple[int, int]:
    """Bytes one GPU sends per micro-batch: (to other GPUs, over the host link); see the module docstring."""
    from advisor.core.estimate.memory import stored_weight_bytes, trainable_gradient_bytes

    n = spec.n_gpus
    grads = trainable_gradient_bytes(spec)
    ring = (n - 1) / n
    if n == 1:
        peer = 0.0
    elif spec.zero_stage == 3:
        peer = (2 * stored_weight_bytes(spec) + grads) * ring
    else:
        peer = 2 * grads * ring
    host = 0.0
    if spec.offload_params:
        host += 2 * stored_weight_bytes(spec) / n
    if spec.offload_optimizer:
        host += 2 * grads / n
    return int(peer), int(host)


def estimate_training_compute(
    spec: EstimateSpec,
    gpu: GpuSpec,
    n_examples: int,
    mean_tokens: float,
    epochs: float = 1.0,
    utilization: float | None = None,
) -> ComputeEstimate:
    """Estimate FLOPs, hours and cost of a training run.

    Args:
        spec: The job (method, precision, checkpointing, GPUs).
        gpu: The GPU it runs on (peak FLOP/s and price).
        n_examples: Training examples (DPO: preference pairs).
        mean_tokens: Mean tokens per example (DPO: per response with its prompt).
        epochs: Passes over the data.
        utilization: Model FLOPs utilisation in (0, 1]; None takes the prior for the method and GPU.

    Returns:
        Tokens, FLOPs, hours, GPU-hours and cost, with the assumptions behind them.
    """
    sequences = 2 if spec.method == "dpo" else 1
    n_tokens = int(n_examples * mean_tokens * epochs * sequences)
    per_token = flops_per_token(spec)
    flops = per_token * n_tokens
    tf32, tf32_note = tf32_matmuls(spec)
    peak, peak_note = peak_tflops(gpu, spec.precision, tf32=tf32)
    if spec.precision == "fp32" and gpu.fp32_cuda_core_tflops is not None:
        peak_note += f" ({tf32_note})"
    if utilization is None:
        utilization, util_note = default_utilization(spec, gpu)
    else:
        util_note = f"MFU {utilization:g} given by the user"
    compute_hours = flops / (peak * 1e12 * spec.n_gpus * utilization) / 3600
    peer, host = communication_bytes(spec)
    comm_hours = 0.0
    comm_note = None
    if peer or host:
        peer_bw, host_bw, links = link_bandwidth(gpu)
        micro_batches = math.ceil(n_examples * epochs * sequences / (spec.n_gpus * spec.batch_size))
        per_step = peer / (peer_bw * 1e9 * COMM_EFFICIENCY) + host / (host_bw * 1e9 * COMM_EFFICIENCY)
        comm_hours = micro_batches * per_step / 3600
        comm_note = (
            f"communication: {peer / 1e9:.3g} GB to other GPUs + {host / 1e9:.3g} GB over the host link per "
            f"micro-batch per GPU × {micro_batches:,} micro-batches = {comm_hours:.3g} h at {COMM_EFFICIENCY:g} × "
            f"the link rate ({links}); overlapped with {compute_hours:.3g} h of compute, the longer sets the time"
        )
    hours = max(compute_hours, comm_hours)
    gpu_hours = hours * spec.n_gpus
    price = gpu.price_per_hour_usd
    notes = [
        f"{n_examples} examples × {mean_tokens:g} tokens × {epochs:g} epochs"
        + (" × 2 sequences (chosen, rejected)" if sequences == 2 else ""),
        f"{per_token:.3g} FLOPs per token: "
        + ("6N (full)" if spec.train_method == "full"
           else "4N (frozen base, LoRA)" if spec.uses_lora else f"4N (frozen base, {spec.train_method})")
        + (f" × (s + {spec.extra_tokens} virtual tokens) / s" if spec.extra_tokens else "")
        + (" + 2N recomputation (checkpointing)" if spec.grad_ckpt else "")
        + (" + 2N reference forward (DPO)" if spec.method == "dpo" else "")
        + " + attention 12·L·s·d per token (PaLM)",
        peak_note,
        util_note,
        f"price {price:g} USD per GPU-hour ({gpu.price_source})" if price is not None else "no price in the catalog",
    ]
    if comm_note:
        notes.append(comm_note)
    return ComputeEstimate(
        n_tokens=n_tokens,
        flops=flops,
        flops_per_token=per_token,
        peak_tflops=peak,
        utilization=utilization,
        hours=hours,
        communication_hours=comm_hours,
        gpu_hours=gpu_hours,
        price_per_hour_usd=price,
        usd=gpu_hours * price if price is not None else None,
        assumptions=notes,
    )
