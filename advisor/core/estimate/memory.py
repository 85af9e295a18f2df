"""Peak memory per GPU of inference, full fine-tuning, LoRA, QLoRA and DPO, component by component.

Training peak = max over phases of what is allocated at that moment (HF blog "Visualize and understand
GPU memory in PyTorch": the peak moves between the forward pass and the optimizer step):

    forward   = states + saved activations + the loss's transient tensors (logits tile or full logits)
    backward  = states + saved activations + vocabulary gradients + one recomputed block (checkpointing)
    optimizer = states + gradients (transformers' default `adamw_torch_fused` updates in place)
    eval      = states + one block's working set and the logits of an eval batch (no_grad)

where states = weights (+ fp32 master copy under AMP) + optimizer state, sharded by ZeRO/FSDP.

Saved activations are counted tensor by tensor as transformers' Llama-family decoder block saves them
for backward with PyTorch autograd (read off `torch.autograd.graph.saved_tensors_hooks` on transformers
5.x; `tests/test_estimate_memory.py` checks the sum against the real hooks):

    RMSNorm    x in fp32 (pow/mul), rsqrt (fp32, one per token), the normed value before the weight
               (only when the norm weight trains), and the output (saved by the next trainable linear)
    attention  SDPA/flash: q, k, v, output, and a fp32 log-sum-exp per head and token (no s×s term);
               eager: q and the GQA-repeated k and v, softmax in fp32 (b·a·s²·4) and its cast, the
               re-laid-out output (Korthikanti et al. 2022, arXiv:2205.05198, §4 for the s² term)
    MLP        gated: gate output (act input), act output and up output (mul), the product (down input)
    LoRA       per adapted linear whose input needs a gradient: dropout mask and dropout output (cast to
               the adapter dtype: fp32 for LoRA, bf16 for QLoRA under TRL), and the r-wide lora_A output
    loss       chunked (TRL's fused LM head, trl/kernels/chunked_logprob.py): a copy of the final hidden
               states, fp32 log-normaliser and entropy per token, the labels; the logits exist only as one
               [4096 tokens × 32768 vocabulary] tile at a time, in forward and again in backward.
               full (transformers' ForCausalLMLoss): the fp32 log-softmax over b·s·V, next to the 16-bit
               logits and their fp32 upcast

With gradient checkpointing (non-reentrant or reentrant, as transformers wraps each decoder block) only
each block's input is kept; one block is recomputed at a time in backward.

QLoRA: bitsandbytes (>= 0.43.2) MatMul4Bit keeps only the packed weight for backward, not its input, so a
4-bit base saves what a 16-bit frozen base saves (checked on CPU in the tests). Older releases kept the input
`A` in ctx.tensors (from the first 4-bit matmul, 2023-02, to bitsandbytes#1270, 2024-07-16): with
`EstimateSpec.bitsandbytes` below 0.43.2 every 4-bit linear's input that needs a gradient is saved too, once
per distinct tensor (litgpt pinned bitsandbytes 0.41-0.42 until 2024-12, pyproject.toml).

k-bit prep (QLoRA under PEFT's `prepare_model_for_kbit_training`, peft/utils/other.py): every parameter that
is not 4-bit (embeddings, LM head, norms, biases) is upcast to fp32. Under 16-bit autocast the embedding
output, and so the residual stream and each checkpointed block input, is then fp32; bitsandbytes'
`Linear4bit.forward` returns its input's dtype, so the gate/up outputs and the MLP product saved for
backward are fp32; attention is unchanged (SDPA saves its autocast copies); and the matmul of the fp32 LM
head saves the 16-bit copy autocast made of its weight (V·H·2). `kbit_prep_bytes` is all of that beyond the
unprepared model (checked against real hooks on CPU in tests/test_estimate_memory.py).

Ignored: activation memory of the embedding gather, cuBLAS workspaces (inside the CUDA context term),
DDP gradient buckets, NCCL buffers, and kernels whose saved layout differs from PyTorch's SDPA
(Liger/Unsloth fused losses, FlashAttention-2 varlen padding-free batches store less).
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.core.estimate import params as P
from advisor.core.models import EstimateSpec, MemoryEstimate, ModelSpec

__all__ = ["ActivationBytes", "estimate_memory", "saved_activation_bytes", "optimizer_state_bytes",
           "stored_weight_bytes", "trainable_gradient_bytes"]

GiB = 1024**3
MiB = 1024**2

# CUDA context + cuBLAS/cuDNN handles, outside PyTorch's allocator: gpu_poor adds a fixed 650 MB
# "cuda + other overhead" (RahulSChand/gpu_poor src/App.js); vram.asmirnov.xyz gives 300 MiB–2 GiB.
CUDA_CONTEXT_BYTES = 650 * 1000**2
# Reserved minus allocated (caching-allocator rounding and fragmentation). Published runs show
# 1–2 GiB between allocated and reserved peaks at 15–40 GiB (shared/research/memory-estimators.md §2.6).
ALLOCATOR_FRAGMENTATION = 0.05
# Bytes of one element per storage dtype.
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# Architectures whose linear layers subclass nn.Linear (FalconLinear): transformers 5's bitsandbytes
# integration converts only `type(module) is nn.Linear`, so a 4-bit load of them quantizes nothing
# (transformers/integrations/bitsandbytes.py, replace_with_bnb_linear; checked in tests/test_estimate_translate.py).
BNB_UNQUANTIZED_ARCHS = frozenset({"falcon"})
# First bitsandbytes release whose MatMul4Bit no longer keeps its input for backward (bitsandbytes#1270).
BNB_INPUT_FREED = (0, 43, 2)


def _base_left_16bit(spec: EstimateSpec) -> bool:
    """QLoRA through transformers 5 of an architecture whose linears subclass nn.Linear: nothing is 4-bit."""
    return spec.model.arch in BNB_UNQUANTIZED_ARCHS and spec.bnb_via_transformers and spec.transformers == 5


def _experts_4bit(spec: EstimateSpec) -> bool:
    """QLoRA through transformers 4 of an MoE: each expert is its own nn.Linear, which bitsandbytes quantizes
    (transformers 5 fuses them into 3-D parameters that replace_with_bnb_linear leaves 16-bit)."""
    return spec.train_method == "qlora" and spec.model.is_moe and spec.bnb_via_transformers and spec.transformers == 4
# LoRA adapters: PEFT (>=0.12) keeps them in fp32 over a 16-bit base (get_peft_model(autocast_adapter_dtype=True));
# TRL's SFTTrainer/DPOTrainer cast QLoRA adapters to bf16 (QLoRA paper §3; trl/trainer/sft_trainer.py).
ADAPTER_BYTES = 4
QLORA_ADAPTER_BYTES = 2
# torch.optim AdamW keeps exp_avg and exp_avg_sq in the parameter's dtype, plus a 0-d fp32 `step` tensor.
ADAMW_MOMENTS = 2
STEP_TENSOR_BYTES = 4
# bitsandbytes 8-bit optimizers: uint8 states with one fp32 absmax per block of 256 values
# (bitsandbytes/optim/optimizer.py, blockwise=True); tensors under 4096 values keep 32-bit state (min_8bit_size).
BNB8_BLOCK = 256
BNB8_MIN_SIZE = 4096
# transformers.optimization.Adafactor: factored fp32 second moments (rows + columns) and a 0-d fp32 RMS.
ADAFACTOR_RMS_BYTES = 4
# Loss over the vocabulary: transformers' ForCausalLMLoss upcasts logits to fp32 and log_softmax saves its
# fp32 output; in backward the fp32 gradient and its 16-bit cast coexist with the saved log-probs.
LOSS_FP32_BYTES = 4
TOKEN_ID_BYTES = 8  # int64 labels / input ids
# TRL's fused LM head (trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE; trl/trainer/utils.py
# _CHUNKED_LOGPROB_CHUNK_SIZE): logits tiles of 4096 tokens × 32768 vocabulary entries in the compute dtype.
FUSED_TOKEN_TILE = 4096
FUSED_VOCAB_TILE = 32768
# Per token the fused head keeps fp32 running statistics in forward (max, sum, x·sum, sq-sum, z-sum,
# max-before-target, target logit) and saves log-normaliser and entropy for backward.
FUSED_FP32_PER_TOKEN = 7
FUSED_SAVED_FP32_PER_TOKEN = 2
# Without Triton (on CPU) TRL folds each tile with torch ops (trl/kernels/chunked_logprob.py `_forward_tile`,
# `_backward_tile`), whose fp32 temporaries span the tile's used part, min(tokens, 4096) × min(V, 32768):
# forward: the scaled logits z, exp(z − max) and their product for the entropy sum; backward: y, z, log p, p,
# the gradient, the target mask as fp32, its difference with p and the product with the incoming gradient,
# plus the boolean target mask (1 byte). Counted from that code and measured live on CPU
# (tests/test_estimate_v2_tensor_peak.py).
TORCH_TILE_FP32_FORWARD = 3
TORCH_TILE_FP32_BACKWARD = 7


@dataclass(frozen=True)
class ActivationBytes:
    """What autograd keeps between forward and backward, split where the estimate needs it."""

    per_block: int  # one decoder block, everything saved in it (no checkpointing)
    blocks: int  # all blocks as kept (checkpointing: their inputs only)
    head: int  # final norm, LM-head input, embedding ids, rotary tables
    loss: int  # fp32 log-probs and labels over the vocabulary

    @property
    def total(self) -> int:
        return self.blocks + self.head + self.loss


def _adapter_bytes(spec: EstimateSpec) -> int:
    """Bytes of one LoRA adapter element: as set, else as TRL + PEFT create it (bf16 for QLoRA, else fp32)."""
    if spec.adapter_dtype is not None:
        return DTYPE_BYTES[spec.adapter_dtype]
    return QLORA_ADAPTER_BYTES if spec.train_method == "qlora" else ADAPTER_BYTES


def _kbit_prep(spec: EstimateSpec) -> bool:
    """QLoRA with prepare_model_for_kbit_training over a 16-bit compute dtype (under fp32 it changes nothing)."""
    return spec.kbit_prep and spec.train_method == "qlora" and spec.precision != "fp32"


def _compute_bytes(spec: EstimateSpec) -> int:
    """Bytes of an activation element: 16-bit under bf16/fp16 (pure or autocast), else 4."""
    return 4 if spec.precision == "fp32" else 2


def _residual_bytes(spec: EstimateSpec) -> int:
    """The residual stream stays fp32 under autocast (fp32 embeddings + 16-bit outputs promote to fp32)."""
    return 4 if spec.precision in ("fp32", "bf16-mixed", "fp16-mixed") or _kbit_prep(spec) else 2


def _mlp_bytes(spec: EstimateSpec) -> int:
    """MLP activations: fp32 after k-bit prep (Linear4bit returns its fp32 input's dtype), else the compute dtype."""
    return 4 if _kbit_prep(spec) else _compute_bytes(spec)


def _norm_saved(spec: EstimateSpec, tokens: int, x_needs_grad: bool, weight_trains: bool) -> int:
    h = spec.model.hidden_size
    if not x_needs_grad and not weight_trains:
        return 0
    if spec.model.norm == "layernorm":
        # native_layer_norm saves its input, mean and rstd (fp32 per token).
        return tokens * h * _residual_bytes(spec) + 2 * tokens * 4
    saved = tokens * h * 4 + tokens * 4 if x_needs_grad else 0  # x upcast to fp32, rsqrt
    if weight_trains:
        saved += tokens * h * _residual_bytes(spec)  # normed value before the weight multiply
    return saved


def _attention_saved(spec: EstimateSpec, batch: int, seq: int) -> int:
    m, dt = spec.model, _compute_bytes(spec)
    tokens = batch * seq
    q_dim, kv_dim = m.n_heads * m.head_dim, m.n_kv_heads * m.head_dim
    if spec.attention == "eager":
        prefix = spec.num_virtual_tokens if spec.train_method == "prefix_tuning" else 0
        probs = batch * m.n_heads * seq * (seq + prefix)
        cast = probs * dt if dt != 4 else 0
        # q, GQA-repeated k and v; fp32 softmax output and its cast to the compute dtype; the output,
        # re-laid out for o_proj, is saved only when o_proj's weight trains.
        relaid = tokens * q_dim * dt if spec.train_method == "full" else 0
        return 3 * tokens * q_dim * dt + relaid + probs * 4 + cast
    lse = batch * m.n_heads * seq * 4
    if spec.train_method == "prefix_tuning":
        # The layer's key and value prefixes go in front of its own (the cache PEFT passes in), so queries and
        # keys differ in length and transformers hands SDPA an explicit mask (b·s·(s+p), compute dtype); with a
        # mask it repeats grouped key/value heads to every query head (transformers/integrations/
        # sdpa_attention.py use_gqa_in_sdpa). SDPA saves q, the output, the repeated k and v, the mask and lse.
        keys = seq + spec.num_virtual_tokens
        return 2 * q_dim * tokens * dt + 2 * q_dim * batch * keys * dt + batch * seq * keys * dt + lse
    if spec.sdpa_kv == "broadcast" and m.n_kv_heads < m.n_heads:
        # Math backend (aten _scaled_dot_product_attention_math): matmul(q·scale, kᵀ) and matmul(probs, v)
        # broadcast the single KV head by expanding it into contiguous bmm operands, which they save (k and v at
        # every query head), beside the scaled q and softmax's output in the compute dtype; no lse, no output.
        return 3 * q_dim * tokens * dt + batch * m.n_heads * seq * seq * dt
    if spec.sdpa_kv == "repeated":
        kv_dim = q_dim  # k and v copied out to every query head before the kernel, which saves those copies
    return (2 * q_dim + 2 * kv_dim) * tokens * dt + lse


def _lora_saved(spec: EstimateSpec, tokens: int, module: P.LinearModule, input_needs_grad: bool) -> int:
    dt = _compute_bytes(spec)
    copies = module.n_per_layer
    width = module.in_features
    ab = _adapter_bytes(spec)  # PEFT casts each adapter's input to the adapter dtype first
    saved = tokens * spec.lora_rank * ab  # lora_A output, saved by lora_B
    if spec.lora_dropout > 0:
        saved += tokens * width * ab  # dropout output, saved by lora_A
        if input_needs_grad:
            mask_bytes = 1 if spec.device == "cuda" else ab  # bool mask on CUDA
            saved += tokens * width * mask_bytes
    elif dt != ab:
        saved += tokens * width * ab  # each adapter casts its input by itself
    return saved * copies


def _shared_lora_inputs(spec: EstimateSpec, tokens: int, adapted: set[str]) -> int:
    """Dropout 0 and fp32 compute: lora_A saves the module input itself, shared by modules that read it."""
    if spec.lora_dropout > 0 or _compute_bytes(spec) != _adapter_bytes(spec):
        return 0
    m = spec.model
    groups = {
        "attn_in": ({"q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value"}, m.hidden_size),
        "mlp_in": ({"gate_proj", "up_proj", "gate_up_proj", "dense_h_to_4h", "fc1"}, m.hidden_size),
        "mlp_mid": ({"down_proj", "dense_4h_to_h", "fc2"}, m.intermediate_size),
    }
    if spec.attention == "eager":  # o_proj reads a re-laid-out copy of the attention output
        groups["attn_out"] = ({"o_proj", "dense"}, m.n_heads * m.head_dim)
    # With SDPA, o_proj's input is the attention output, which attention saves already.
    return sum(tokens * width * _adapter_bytes(spec) for names, width in groups.values() if names & adapted)


def bnb_keeps_4bit_inputs(spec: EstimateSpec) -> bool:
    """QLoRA under bitsandbytes < 0.43.2: MatMul4Bit kept its input `A` in ctx.tensors for backward.

    `ctx.tensors = (A, B)` from the first 4-bit matmul (2023-02) until bitsandbytes#1270 ("fix QLoRA mem bug:
    delete useless buffered activation", 2024-07-16, first released in 0.43.2) made it `(None, B)`: the input
    gradient needs only the dequantized weight. Nothing is 4-bit when transformers leaves the base 16-bit.
    """
    if spec.train_method != "qlora" or spec.bitsandbytes is None:
        return False
    if _base_left_16bit(spec):
        return False
    parts = tuple(int(p) for p in spec.bitsandbytes.split("."))
    return (parts + (0, 0))[:3] < BNB_INPUT_FREED


def _bnb_saved_inputs(spec: EstimateSpec, tokens: int, x_grad: bool, adapted: set[str]) -> int:
    """What old bitsandbytes MatMul4Bit keeps of one block: the input of every 4-bit nn.Linear that needs a
    gradient, once per distinct tensor (q/k/v share the normed input, gate/up the MLP input), in the compute
    dtype (Linear4bit casts its input to `compute_dtype` first). Under SDPA o_proj reads a view of the attention
    output, which SDPA saves already; with dropout 0 and adapters in the compute dtype lora_A saves the same
    module input (counted in `_shared_lora_inputs`)."""
    if not bnb_keeps_4bit_inputs(spec):
        return 0
    m, dt = spec.model, _compute_bytes(spec)
    linears = {mod.name for mod in P.layer_linears(m) if mod.is_nn_linear}
    attn_in = {"q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value"}
    mlp_in = {"gate_proj", "up_proj", "gate_up_proj", "dense_h_to_4h", "fc1"}
    mlp_mid = {"down_proj", "dense_4h_to_h", "fc2"}
    shared_lora = spec.lora_dropout == 0 and dt == _adapter_bytes(spec)
    # A 4-bit input needs a gradient once anything before it trains: the block input, or an adapter upstream.
    attn_grad = x_grad
    out_grad = attn_grad or bool(adapted & attn_in)
    # Falcon's parallel block feeds attention and MLP the same input: the MLP does not see attention's adapters.
    mlp_grad = x_grad if m.arch == "falcon" else out_grad or bool(adapted & {"o_proj", "dense"})
    groups = [  # (module names, width, input needs a gradient)
        (attn_in, m.hidden_size, attn_grad),
        ({"o_proj", "dense"} if spec.attention == "eager" else set(), m.n_heads * m.head_dim, out_grad),
        (mlp_in if m.norms_per_layer > 1 else set(), m.hidden_size, mlp_grad),  # one shared norm: same tensor
        (mlp_mid, m.intermediate_size, mlp_grad or bool(adapted & mlp_in)),
    ]
    saved = 0
    for names, width, needs_grad in groups:
        if not needs_grad or not names & linears or (shared_lora and names & adapted):
            continue
        saved += tokens * width * dt
    return saved


def _input_readers(model: ModelSpec) -> tuple[int, int]:
    """How many separate linears read the attention input and the MLP input (q/k/v vs fused qkv)."""
    names = [mod.name for mod in P.layer_linears(model)]
    attn = sum(n in {"q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value"} for n in names)
    mlp = sum(n in {"gate_proj", "up_proj", "gate_up_proj", "dense_h_to_4h", "fc1"} for n in names)
    return max(attn, 1), max(mlp, 1)


def _ia3_saved(spec: EstimateSpec, tokens: int) -> int:
    """IA3's multiplies per block (peft/tuners/ia3/layer.py): a feed-forward module casts its input to the
    vector's fp32 and the multiply saves that copy; any other saves the frozen module's output it scales."""
    saved = 0
    for module, is_feedforward in P.resolve_ia3_targets(spec.model, spec.ia3_targets):
        if is_feedforward:
            saved += tokens * module.in_features * _adapter_bytes(spec)
        else:
            saved += tokens * module.out_features * _compute_bytes(spec)
    return saved


def _block_saved(spec: EstimateSpec, batch: int, seq: int, first: bool) -> int:
    """Bytes one decoder block saves for backward without checkpointing."""
    m, dt = spec.model, _compute_bytes(spec)
    tokens = batch * seq
    full = spec.train_method == "full"
    # A frozen embedding gives the first block an input that needs no gradient, unless
    # enable_input_require_grads() was called (transformers does it for checkpointed PEFT models).
    x_grad = full or not first or spec.grad_ckpt or spec.extra_tokens > 0  # a soft prompt trains from the input
    norm_count = m.norms_per_layer
    saved = _norm_saved(spec, tokens, x_grad, full)
    saved += (norm_count - 1) * _norm_saved(spec, tokens, True, full)
    saved += _attention_saved(spec, batch, seq)
    inter = m.intermediate_size * (m.n_experts_active if m.is_moe else 1)
    saved += tokens * inter * _mlp_bytes(spec) * (3 if m.mlp_gated else 1)  # act input; act and up outputs (mul)
    if full:
        # Normed inputs of the attention and MLP projections (one shared norm with parallel attention).
        # Under autocast every projection casts its fp32 input to 16-bit by itself and saves its own copy.
        readers = _input_readers(m) if spec.precision.endswith("-mixed") else (1, 1)
        shared_norms = 1 if norm_count == 1 else 2
        saved += tokens * m.hidden_size * dt * (sum(readers) if shared_norms == 2 else max(readers))
        saved += tokens * inter * dt  # down-projection input
        return saved
    if spec.train_method == "ia3":
        return saved + _ia3_saved(spec, tokens)
    if not spec.uses_lora:  # soft prompts: the frozen blocks save only what the input's gradient needs
        return saved
    adapted = P.resolve_lora_targets(m, spec.lora_targets)
    names = {mod.name for mod in adapted}
    for mod in adapted:
        reads_residual = mod.name in {"q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value"}
        tokens_mod = tokens * (m.n_experts_active if mod.is_expert else 1)
        mod_once = P.LinearModule(mod.name, mod.in_features, mod.out_features, mod.has_bias, 1, mod.is_expert)
        saved += _lora_saved(spec, tokens_mod, mod_once, x_grad or not reads_residual)
    return saved + _shared_lora_inputs(spec, tokens, names) + _bnb_saved_inputs(spec, tokens, x_grad, names)


def saved_activation_bytes(spec: EstimateSpec) -> ActivationBytes:
    """Bytes autograd keeps from the forward pass to the backward pass of one micro-batch.

    Args:
        spec: The training job (method, precision, LoRA settings, batch, sequence length, checkpointing).

    Returns:
        The saved bytes per block, over all blocks as kept, for the head and for the loss.
    """
    m = spec.model
    b, s = spec.batch_size, spec.seq_len
    tokens = b * s
    full = spec.train_method == "full"
    rb, dt = _residual_bytes(spec), _compute_bytes(spec)
    per_block = _block_saved(spec, b, s, first=False)
    if spec.grad_ckpt:
        blocks = m.n_layers * tokens * m.hidden_size * rb  # each block's input
        head = 0
    else:
        blocks = _block_saved(spec, b, s, first=True) + (m.n_layers - 1) * per_block
        head = 2 * s * m.head_dim * (4 if _kbit_prep(spec) else dt)  # rotary cos/sin (embedding dtype)
    head += _norm_saved(spec, tokens, True, full)  # final norm
    if _kbit_prep(spec):
        head += m.vocab_size * m.hidden_size * dt  # autocast's 16-bit copy of the fp32 LM head, saved by its matmul
    if _quantized_head_params(spec) and bnb_keeps_4bit_inputs(spec):
        head += tokens * m.hidden_size * dt  # old MatMul4Bit keeps the 4-bit head's input (the final norm output)
    if full:
        head += tokens * TOKEN_ID_BYTES  # embedding ids
    if spec.train_method in P.SOFT_PROMPT_METHODS:
        head += b * spec.num_virtual_tokens * TOKEN_ID_BYTES  # the virtual token ids, saved by the prompt embedding
    if spec.loss_kernel == "chunked":
        # The fused head saves its own copy of the hidden states, labels, a mask, and two fp32 per token.
        loss = tokens * (m.hidden_size * dt + TOKEN_ID_BYTES + 1 + FUSED_SAVED_FP32_PER_TOKEN * 4)
        return ActivationBytes(per_block=per_block, blocks=blocks, head=head, loss=loss)
    if full:
        head += tokens * m.hidden_size * dt  # LM-head input, saved by the trainable head
    loss = tokens * m.vocab_size * LOSS_FP32_BYTES + tokens * TOKEN_ID_BYTES
    if m.arch == "gemma2":
        loss += tokens * m.vocab_size * dt  # final logit soft-capping keeps tanh's output
    return ActivationBytes(per_block=per_block, blocks=blocks, head=head, loss=loss)


# --- model states -----------------------------------------------------------------------------------


def _weight_bytes(spec: EstimateSpec) -> int:
    """Bytes per stored weight: 4 for fp32 and for autocast (the model stays fp32), else 2."""
    return 2 if spec.precision in ("bf16", "fp16") else 4


def _trainable_shapes(spec: EstimateSpec) -> list[tuple[int, ...]]:
    """Shape of every trainable tensor, one entry per tensor (the optimizer keeps state per tensor)."""
    m = spec.model
    layers = m.n_layers
    if spec.train_method == "ia3":
        return P.ia3_shapes(m, spec.ia3_targets)
    if spec.train_method in P.SOFT_PROMPT_METHODS:
        return P.soft_prompt_shapes(m, spec.train_method, spec.num_virtual_tokens)
    if spec.uses_lora:
        shapes: list[tuple[int, ...]] = []
        for mod in P.resolve_lora_targets(m, spec.lora_targets):
            rank = spec.lora_rank * mod.lora_rank_factor
            if mod.is_expert:
                # PEFT adapts a fused 3-D expert parameter (transformers 5) with one lora_A/lora_B pair of rank
                # r × n_experts, not one pair per expert: same elements, fewer tensors (and optimizer steps).
                rank *= mod.n_per_layer
                shapes += [(rank, mod.in_features), (mod.out_features, rank)] * layers
                continue
            one = [(rank, mod.in_features), (mod.out_features, rank)]
            shapes += one * (mod.n_per_layer * layers)
        return shapes
    h = m.hidden_size
    norm = [(h,), (h,)] if m.norm == "layernorm" else [(h,)]
    block: list[tuple[int, ...]] = []
    for mod in P.layer_linears(m):
        if mod.is_expert:  # transformers 5 stores the experts of a block as one 3-D parameter
            block.append((mod.n_per_layer, mod.out_features, mod.in_features))
            continue
        block += [(mod.out_features, mod.in_features)] * mod.n_per_layer
        if mod.has_bias:
            block += [(mod.out_features,)] * mod.n_per_layer
    block += norm * m.norms_per_layer
    if m.qk_norm:
        # Qwen3: one q_norm and one k_norm of head_dim; StableLM: one weight-only LayerNorm tensor per head
        # (StableLmLayerNormPerHead), which the optimizer keeps state for tensor by tensor.
        n_norms = (m.n_heads + m.n_kv_heads) if m.arch == "stablelm" else 2
        block += [(m.head_dim,)] * n_norms
    shapes = [(m.vocab_size, h)] + block * layers + norm
    if not m.tie_embeddings:
        shapes.append((m.vocab_size, h))
    return shapes


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _trainable_param_bytes(spec: EstimateSpec) -> int:
    """Bytes of one trainable element: adapters are fp32 (PEFT), full weights follow the precision."""
    return _adapter_bytes(spec) if spec.uses_adapter else _weight_bytes(spec)


def optimizer_state_bytes(spec: EstimateSpec) -> int:
    """Exact optimizer state of all trainable tensors after the first step, before sharding.

    Args:
        spec: Method, precision, LoRA settings and optimizer.

    Returns:
        Bytes: AdamW two moments in the parameter dtype plus a 0-d fp32 step per tensor; 8-bit AdamW
        one byte per moment plus an fp32 absmax per 256 values (32-bit state under 4096 values);
        Adafactor factored fp32 second moments (rows + columns) and an RMS scalar; SGD nothing (no momentum).
    """
    pb = _trainable_param_bytes(spec)
    shapes = _trainable_shapes(spec)
    total = 0
    for shape in shapes:
        n = _numel(shape)
        if spec.optimizer in ("adamw", "paged-adamw"):
            total += ADAMW_MOMENTS * n * pb + STEP_TENSOR_BYTES
        elif spec.optimizer in ("adamw-8bit", "paged-adamw-8bit"):
            if n < BNB8_MIN_SIZE:
                total += ADAMW_MOMENTS * n * 4
            else:
                blocks = -(-n // BNB8_BLOCK)
                total += ADAMW_MOMENTS * (n + blocks * 4)
        elif spec.optimizer == "adafactor":
            # transformers' Adafactor upcasts 16-bit gradients and keeps its state in fp32, plus a 0-d RMS.
            factored = _numel(shape[:-1]) + _numel(shape[:-2] + shape[-1:]) if len(shape) >= 2 else n
            total += factored * 4 + ADAFACTOR_RMS_BYTES
    return total


# --- the estimate -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _States:
    weights: int
    master: int
    gradients: int
    optimizer: int
    reference: int
    cpu: int
    gather: int  # ZeRO-3/FSDP: all-gathered full layers in flight (current + prefetched)
    accumulated: int = 0  # FSDP no_sync: unsharded gradients held from one micro-batch to the next


def _dequant_bytes(spec: EstimateSpec) -> int:
    """QLoRA: the largest 4-bit weight dequantized while it runs (one at a time); else 0.

    MatMul4Bit computes `dequantize_4bit(B, state).to(A.dtype)`: the weight comes back in the dtype it was
    quantized from, and only a different compute dtype makes a second copy.
    """
    if spec.train_method != "qlora" or _base_left_16bit(spec):
        return 0
    big = _largest_linear(spec.model)
    numel = max(big.in_features * big.out_features, _quantized_head_params(spec))
    if _experts_4bit(spec):
        numel = max([numel] + [n for n, _ in _v4_expert_weights(spec.model)])
    dt = _compute_bytes(spec)
    quant = DTYPE_BYTES[spec.bnb_quant_dtype] if spec.bnb_quant_dtype else dt
    return numel * (quant + (dt if spec.bnb_quant_dtype not in (None, _dtype_name(spec)) else 0))


def _v4_expert_weights(model: ModelSpec) -> list[tuple[int, int]]:
    """(elements, copies per block) of each expert weight as transformers 4 stores it: one nn.Linear per expert
    and projection, the fused gate_up of transformers 5 being two (w1 and w3 of Mixtral)."""
    weights = []
    for mod in P.layer_linears(model):
        if not mod.is_expert:
            continue
        n, copies = mod.in_features * mod.out_features, mod.n_per_layer
        if mod.name == "gate_up_proj":
            n, copies = n // 2, 2 * copies
        weights.append((n, copies))
    return weights


def _dtype_name(spec: EstimateSpec) -> str:
    """Name of the compute dtype: fp32, else bf16 or fp16 as the precision says."""
    return "fp32" if spec.precision == "fp32" else "fp16" if spec.precision.startswith("fp16") else "bf16"


def _quantized_head_params(spec: EstimateSpec) -> int:
    """Elements of the LM head when the stack quantizes it to 4 bit (`bnb_lm_head`, untied head); else 0."""
    if not spec.bnb_lm_head or spec.train_method != "qlora" or spec.model.tie_embeddings:
        return 0
    return spec.model.vocab_size * spec.model.hidden_size


def _largest_linear(model: ModelSpec) -> P.LinearModule:
    """The largest nn.Linear of a block (what bitsandbytes quantizes and dequantizes one at a time)."""
    linears = [mod for mod in P.layer_linears(model) if mod.is_nn_linear] or P.layer_linears(model)
    return max(linears, key=lambda mod: mod.in_features * mod.out_features)


def _stored_bytes(spec: EstimateSpec, inv: P.ParamInventory) -> tuple[int, int]:
    """Bytes of one decoder block and of everything outside the blocks (embeddings, final norm, LM head) as
    stored: packed NF4 (in `bnb_4bit_quant_storage`, same bytes) plus 16-bit rest for QLoRA, else the weight dtype."""
    m = spec.model
    outside = inv.n_params - m.n_layers * inv.layer_params
    if spec.train_method != "qlora" or _base_left_16bit(spec):  # as `_model_states` stores them
        wb = _weight_bytes(spec) if spec.train_method != "qlora" else (4 if spec.precision == "fp32" else 2)
        return inv.layer_params * wb, outside * wb
    unq = 4 if spec.precision == "fp32" or _kbit_prep(spec) else 2
    quantized = [mod.in_features * mod.out_features for mod in P.layer_linears(m) if mod.is_nn_linear
                 for _ in range(mod.n_per_layer)]
    packed = sum(-(-k // P.NF4_CODES_PER_BYTE) for k in quantized)
    return packed + (inv.layer_params - sum(quantized)) * unq, outside * unq


def _shard_parameters(
    spec: EstimateSpec, inv: P.ParamInventory, weights: int, replicated: int, cpu: int
) -> tuple[int, int, int, list[str]]:
    """ZeRO-3/FSDP full sharding of the weights: (weights per GPU, CPU bytes, gathered bytes, notes).

    Each GPU keeps 1/N of every parameter (ceil-divided on the total: the per-tensor padding FSDP adds to
    a multiple of N, at most N − 1 elements per flattened unit, is not counted, so this is approximate by
    that much) or, with parameter offload, none of it. bitsandbytes keeps a 4-bit weight's quant state
    (absmax, code table) as an attribute, not a Parameter, so FSDP-QLoRA neither shards nor offloads it.
    Gathered while they run: two decoder blocks (current + prefetched, FSDP `backward_prefetch`) and the root
    unit (embeddings, final norm, LM head), which is in use from the first layer's forward to the last
    layer's backward: FSDP1 never frees the root after forward (torch distributed/fsdp/_runtime_utils.py
    `_post_forward_reshard`), nor does FSDP2 unless `reshard_after_forward` is set (`_fsdp_state.py`
    `_lazy_init`), and then it gathers the root again for backward.
    """
    n = spec.n_gpus
    shardable = weights - replicated
    if spec.offload_params:
        cpu, weights = cpu + shardable, replicated
    else:
        weights = replicated + -(-shardable // n)
    block, outside = _stored_bytes(spec, inv)
    storage = " (FSDP-QLoRA: NF4 flattened in `bnb_4bit_quant_storage`)" if replicated else ""
    if spec.shard_root_unit:  # embeddings and LM head gathered one at a time, like a block
        gather = max(2 * block, _root_largest_bytes(spec, inv, outside))
        notes = [f"ZeRO-3/FSDP gathers in the stored dtype: two decoder blocks at a time ({2 * block} B), "
                 f"embeddings and LM head each as its own unit{storage}"]
    else:
        gather = 2 * block + outside
        notes = [f"ZeRO-3/FSDP gathers in the stored dtype: two decoder blocks at a time ({2 * block} B) and the "
                 f"root unit, embeddings + final norm + LM head ({outside} B), kept whole from forward to "
                 f"backward{storage}"]
    if replicated:
        notes.append(f"FSDP-QLoRA: quant state ({replicated} B) whole on every GPU (not a Parameter, not sharded)")
    if spec.offload_params:
        notes.append(f"parameters offloaded: {shardable // n} B per GPU in host memory, "
                     f"{shardable} B over the {n} GPUs of a node (FSDP CPUOffload / ZeRO offload_param)")
    return weights, cpu, gather, notes


def _root_largest_bytes(spec: EstimateSpec, inv: P.ParamInventory, outside: int) -> int:
    """The larger of the embedding and the LM head as stored (the rest outside the blocks is norms)."""
    largest = max(inv.embedding_params, inv.lm_head_params)
    rest = inv.n_params - spec.model.n_layers * inv.layer_params
    return outside * largest // rest if rest else 0


def stored_weight_bytes(spec: EstimateSpec) -> int:
    """Bytes of all parameters as ZeRO-3/FSDP shards and gathers them (stored dtype, NF4 packed for QLoRA)."""
    inv = P.count_params(spec.model)
    block, outside = _stored_bytes(spec, inv)
    return spec.model.n_layers * block + outside


def trainable_gradient_bytes(spec: EstimateSpec) -> int:
    """Bytes of the gradients of every trainable parameter, unsharded (what data parallel reduces)."""
    if spec.uses_lora:
        n = P.lora_params(spec.model, spec.lora_rank, spec.lora_targets)
    elif spec.uses_adapter:
        n = P.peft_params(spec.model, spec.train_method, n_virtual=spec.num_virtual_tokens,
                          ia3_targets=spec.ia3_targets)
    else:
        n = P.count_params(spec.model).n_params
    return n * _trainable_param_bytes(spec)


def _model_states(spec: EstimateSpec, inv: P.ParamInventory, n_trainable: int) -> tuple[_States, list[str]]:
    m, notes = spec.model, []
    wb = _weight_bytes(spec)
    method = spec.train_method
    replicated = 0  # bytes every GPU holds whole under ZeRO-3/FSDP (bitsandbytes quant state)
    if method == "qlora" and _base_left_16bit(spec):
        base = inv.n_params * (4 if spec.precision == "fp32" else 2)
        notes.append(
            f"QLoRA base of {m.arch}: transformers 5 quantizes only modules whose type is exactly nn.Linear, and "
            "this architecture's linears subclass it, so nothing is 4-bit: the base stays 16-bit "
            "(transformers/integrations/bitsandbytes.py replace_with_bnb_linear); use LoRA, or transformers 4.x"
        )
    elif method == "qlora":
        unq = 4 if spec.precision == "fp32" or _kbit_prep(spec) else 2
        nf4 = P.nf4_bytes(m, spec.double_quant, unquantized_bytes_per_param=unq)
        base = nf4.total_bytes
        head = _quantized_head_params(spec)
        if head:  # the LM head packed like a block linear, with its own quant state
            base += -(-head // P.NF4_CODES_PER_BYTE) + P._quant_state_bytes(head, spec.double_quant) - head * unq
            notes.append(f"QLoRA: the LM head is 4-bit too ({head} weights; Lightning's BitsandbytesPrecision "
                         "replaces every nn.Linear)")
        if _experts_4bit(spec):
            experts = [(n, count * m.n_layers) for n, count in _v4_expert_weights(m)]
            base += sum(count * (-(-n // P.NF4_CODES_PER_BYTE) + P._quant_state_bytes(n, spec.double_quant) - n * unq)
                        for n, count in experts)
            notes.append("transformers 4: every expert is its own nn.Linear, quantized to NF4 like the attention "
                         "linears (transformers 5 fuses them into 3-D parameters that stay 16-bit); LoRA targets are "
                         "still counted as PEFT maps them onto transformers 5's fused experts")
        elif m.is_moe and spec.bnb_via_transformers:
            notes.append("transformers 5: the fused 3-D expert parameters are not nn.Linear, so bitsandbytes leaves "
                         "them 16-bit (--transformers 4 quantizes each expert)")
        # bitsandbytes keeps the quant state beside the Parameter, so FSDP/ZeRO-3 cannot shard it; torchao's
        # NF4Tensor (torchtune, bnb_via_transformers False) shards its scalers with the data under FSDP2.
        replicated = nf4.quant_state_bytes if spec.bnb_via_transformers else 0
        notes.append(
            f"QLoRA base: NF4 4-bit linears {nf4.quantized_bytes} B + quantization constants "
            f"{nf4.quant_state_bytes} B (double_quant={spec.double_quant}) + unquantized modules "
            f"{nf4.unquantized_bytes} B in {unq}-byte dtype (bitsandbytes via transformers"
            + ("; fp32 after prepare_model_for_kbit_training)" if _kbit_prep(spec) else ")")
        )
    else:
        base = inv.n_params * wb
    weights, master = base, 0
    if spec.uses_adapter and not spec.uses_lora:
        weights += n_trainable * _adapter_bytes(spec)
        notes.append(f"{method} weights in fp32: PEFT creates them in fp32 over a 16-bit base (checked in "
                     "tests/test_estimate_params.py)")
    if spec.uses_lora:
        weights += n_trainable * _adapter_bytes(spec)
        trl_bytes = QLORA_ADAPTER_BYTES if method == "qlora" else ADAPTER_BYTES
        if spec.adapter_dtype is not None and DTYPE_BYTES[spec.adapter_dtype] != trl_bytes:
            notes.append(
                "LoRA adapters in fp32: PEFT get_peft_model(autocast_adapter_dtype=True) upcasts them, and "
                "nothing casts them back (unlike TRL for QLoRA)" if spec.adapter_dtype == "fp32"
                else "LoRA adapters in bf16, as set (PEFT would keep them in fp32)"
            )
        else:
            notes.append(
                "LoRA adapters in bf16: TRL casts QLoRA adapters to bf16 (QLoRA paper §3)"
                if spec.train_method == "qlora"
                else "LoRA adapters in fp32: PEFT get_peft_model(autocast_adapter_dtype=True) upcasts them"
            )
    if spec.precision.endswith("-mixed") and method != "qlora":
        master = base  # the fp32 model
        weights = n_trainable * 2 + (n_trainable * _adapter_bytes(spec) if spec.uses_adapter else 0)
        notes.append(
            "mixed precision: the model stays fp32 (master weights); autocast caches a 16-bit copy of each "
            "trainable weight during forward/backward (HF docs 'model memory anatomy': 6 B/param of weights)"
        )
    grads = n_trainable * _trainable_param_bytes(spec)
    opt = optimizer_state_bytes(spec)
    reference = 0
    if spec.method == "dpo" and not spec.uses_lora:
        # TRL's DPOTrainer loads the reference in the policy's own dtype (`dtype=self.model.dtype`): fp32 when
        # the policy trains with fp32 master weights under autocast (trl/trainer/dpo_trainer.py, TRL 1.x).
        reference = base
        notes.append("DPO with a fully trained policy keeps a frozen reference copy of the model, in its dtype")
    elif spec.method == "dpo":
        notes.append("DPO with LoRA: the reference is the base with the adapter switched off (no copy)")

    n, cpu, gather = spec.n_gpus, 0, 0
    if spec.offload_optimizer:
        # ZeRO-Offload keeps fp32 gradients, master weights and optimizer state on the CPU and runs the
        # step there (DeepSpeed estimate_zero2/3_model_states_mem_needs; FSDP CPUOffload moves gradients too).
        cpu += opt + master + grads
        opt, master, grads = 0, 0, 0
        notes.append("optimizer state, gradients and fp32 master weights offloaded to CPU memory")
    if spec.zero_stage >= 1:
        opt, master = -(-opt // n), -(-master // n)
    if spec.zero_stage >= 2:
        grads = -(-grads // n)
    if spec.zero_stage == 3:
        weights, cpu, gather, shard_notes = _shard_parameters(spec, inv, weights, replicated, cpu)
        if not spec.offload_params:
            reference = -(-reference // n)
        notes += shard_notes
    if spec.zero_stage:
        notes.append(
            f"ZeRO stage {spec.zero_stage} over {n} GPUs: optimizer"
            + (", gradients" if spec.zero_stage >= 2 else "")
            + (", parameters" if spec.zero_stage == 3 else "")
            + f" divided by {n} (DeepSpeed ZeRO, Rajbhandari et al. 2020)"
        )
    accumulated = 0
    if spec.fsdp_no_sync:
        accumulated, grads, no_sync_note = _no_sync_gradients(spec, inv, n_trainable)
        notes.append(no_sync_note)
    return _States(weights, master, grads, opt, reference, cpu, gather, accumulated), notes


def _no_sync_gradients(spec: EstimateSpec, inv: P.ParamInventory, n_trainable: int) -> tuple[int, int, str]:
    """FSDP1 gradient accumulation under no_sync(): (unsharded gradients held per GPU, sharded after the sync, note).

    While `_sync_gradients` is off, `_post_backward_hook` reshards the parameters but returns before the
    reduce-scatter, so `flat_param.grad` stays unsharded and accumulates (torch distributed/fsdp/_runtime_utils.py,
    2.1 on). With `use_orig_params=True` a FlatParameter requires grad when any of its parameters does, and the
    frozen ones are views of it too, so autograd fills the gradient of the whole unit (torch _wrap_utils.py warns:
    "gradient memory usage will be higher than expected"). litgpt wraps each Block, LoRA inside, so every block's
    frozen weights get gradients; the root unit (embeddings, final norm, LM head) holds none trainable under LoRA.
    After the syncing micro-batch each GPU keeps 1/N of those flat-parameter gradients.
    """
    if spec.train_method == "lora":
        held = spec.model.n_layers * inv.layer_params * _weight_bytes(spec) + n_trainable * _adapter_bytes(spec)
        what = "every block's weights, frozen ones included (use_orig_params=True)"
    else:
        held = n_trainable * _trainable_param_bytes(spec)
        what = "all weights"
    sharded = -(-held // spec.n_gpus)
    note = (f"FSDP no_sync gradient accumulation: every GPU keeps the unsharded gradients of {what} between "
            f"syncs ({held} B), {sharded} B once reduce-scattered")
    return held, sharded, note


def _logit_bytes(spec: EstimateSpec, tokens: int) -> tuple[int, int]:
    """Transient tensors at the loss, beyond what is saved: (forward, backward).

    chunked: one logits tile and the per-token fp32 statistics; in backward the tile, the fp32 gradient
    of the hidden states, and — when the LM head trains — its fp32 gradient, cast to the weight dtype at
    the end, and a compute-dtype copy of each weight slice when the weights are stored wider. On CPU, the
    fp32 temporaries of the torch fallback that folds each tile.
    full: logits and their fp32 upcast; in backward their gradients.
    """
    m, dt, v = spec.model, _compute_bytes(spec), spec.model.vocab_size
    if spec.loss_kernel == "chunked":
        tile = min(tokens, FUSED_TOKEN_TILE) * FUSED_VOCAB_TILE * dt  # the buffer is full width even for small V
        forward = tile + tokens * FUSED_FP32_PER_TOKEN * 4
        backward = tile + tokens * m.hidden_size * 4
        if spec.train_method == "full":
            wb = _weight_bytes(spec)
            backward += v * m.hidden_size * (4 + (wb if wb != 4 else 0))  # .to() of fp32 into fp32 copies nothing
            if wb != dt:
                backward += min(v, FUSED_VOCAB_TILE) * m.hidden_size * dt
        if spec.device == "cpu":  # torch fallback of the tile kernels (see TORCH_TILE_FP32_FORWARD)
            used = min(tokens, FUSED_TOKEN_TILE) * min(v, FUSED_VOCAB_TILE)
            forward += TORCH_TILE_FP32_FORWARD * used * 4
            backward += TORCH_TILE_FP32_BACKWARD * used * 4 + used
        return forward, backward
    upcast = LOSS_FP32_BYTES if dt != LOSS_FP32_BYTES else 0
    return tokens * v * (dt + upcast), tokens * v * (LOSS_FP32_BYTES + dt)


def _bnb_note(spec: EstimateSpec) -> str:
    """What the bitsandbytes version means for the saved activations (QLoRA)."""
    if bnb_keeps_4bit_inputs(spec):
        return (f"bitsandbytes {spec.bitsandbytes} (< 0.43.2): MatMul4Bit keeps each 4-bit linear's input for "
                "backward (ctx.tensors = (A, B); freed by bitsandbytes#1270), counted once per shared input")
    version = spec.bitsandbytes or "≥ 0.43.2"
    return (f"bitsandbytes {version}: MatMul4Bit keeps only the packed weight for backward, so a 4-bit base saves "
            "what a frozen 16-bit one does (--bitsandbytes 0.42 for older releases)")


def _held_logit_bytes(spec: EstimateSpec, tokens: int) -> int:
    """The logits the loop's `outputs` keeps through backward and the step (`logits_held`, full loss only): in
    the LM head's output dtype, fp32 when the model computes in fp32 (no autocast over an fp32 head)."""
    if not spec.logits_held or spec.loss_kernel == "chunked":
        return 0
    return tokens * spec.model.vocab_size * _compute_bytes(spec)


def _training_phases(spec: EstimateSpec, st: _States, acts: ActivationBytes) -> dict[str, int]:
    tokens = spec.batch_size * spec.seq_len
    resident = st.weights + st.master + st.optimizer + st.reference + st.gather
    workspace = _dequant_bytes(spec)
    logits_fwd, logits_bwd = _logit_bytes(spec, tokens)
    # DPO scores chosen and rejected (2 sequences per pair) with the policy, and with the reference
    # under no_grad first (its logits are freed before the policy's forward).
    recompute = acts.per_block if spec.grad_ckpt else 0
    held = _held_logit_bytes(spec, tokens)
    accumulated = st.accumulated  # FSDP no_sync: last micro-batches' unsharded gradients, alive throughout
    forward = resident + accumulated + acts.total + logits_fwd + workspace
    backward = resident + accumulated + acts.total + logits_bwd + recompute + workspace + held
    grads_end = resident + max(st.gradients, accumulated) + workspace + held
    step = resident + st.gradients + held
    eval_phase = resident + _eval_working_set(spec, tokens)
    return {
        "forward": forward,
        "backward": max(backward, grads_end),
        "optimizer": step,
        "eval": eval_phase,
    }


def _eval_working_set(spec: EstimateSpec, tokens: int) -> int:
    """no_grad forward: one block's transient tensors plus logits and their fp32 upcast."""
    m, dt = spec.model, _compute_bytes(spec)
    inter = m.intermediate_size * (m.n_experts_active if m.is_moe else 1)
    block = tokens * (3 * m.hidden_size + (3 if m.mlp_gated else 2) * inter) * dt
    logits_fwd, _ = _logit_bytes(spec, tokens)
    if spec.loss_kernel == "chunked":
        return block + logits_fwd
    return block + logits_fwd + tokens * m.vocab_size * LOSS_FP32_BYTES


def _inference(spec: EstimateSpec, inv: P.ParamInventory) -> MemoryEstimate:
    m, dt = spec.model, _compute_bytes(spec)
    weights = inv.n_params * _weight_bytes(spec)
    context = spec.context_tokens or spec.seq_len
    kv = 2 * m.n_layers * m.n_kv_heads * m.head_dim * context * spec.batch_size * dt
    # Prefill of the whole prompt: one block's working set; generation keeps only the last position's logits.
    inter = m.intermediate_size * (m.n_experts_active if m.is_moe else 1)
    tokens = spec.batch_size * context
    workspace = tokens * (3 * m.hidden_size + (3 if m.mlp_gated else 2) * inter) * dt
    workspace += spec.batch_size * m.vocab_size * LOSS_FP32_BYTES
    allocated = weights + kv + workspace
    notes = [
        f"weights in {_weight_bytes(spec)}-byte dtype; KV cache 2·layers·kv_heads·head_dim·tokens·batch·{dt} B "
        f"for {context} tokens × batch {spec.batch_size}",
        "prefill working set: one decoder block's intermediate tensors over the prompt (SDPA, no s×s matrix)",
        *_common_notes(),
    ]
    return MemoryEstimate(
        n_params=inv.n_params,
        n_trainable_params=0,
        weights_bytes=weights,
        kv_cache_bytes=kv,
        workspace_bytes=workspace,
        cuda_context_bytes=_context(spec),
        allocator_overhead_bytes=int(allocated * ALLOCATOR_FRAGMENTATION),
        phases_bytes={"prefill": allocated},
        peak_phase="prefill",
        assumptions=notes,
    )


@dataclass(frozen=True)
class _PrepSplit:
    """What k-bit prep adds to the weights, the kept activations and the recomputed block."""

    weights: int = 0
    activations: int = 0
    recompute: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.recompute


def _kbit_prep_split(
    spec: EstimateSpec, act_spec: EstimateSpec, inv: P.ParamInventory, n_trainable: int, states: _States,
    acts: ActivationBytes,
) -> _PrepSplit:
    """The k-bit prep share of each component: this estimate minus the same job without the upcast."""
    if not _kbit_prep(spec):
        return _PrepSplit()
    plain_states, _ = _model_states(spec.model_copy(update={"kbit_prep": False}), inv, n_trainable)
    plain = saved_activation_bytes(act_spec.model_copy(update={"kbit_prep": False}))
    recompute = acts.per_block - plain.per_block if spec.grad_ckpt else 0
    return _PrepSplit(states.weights - plain_states.weights, acts.blocks + acts.head - plain.blocks - plain.head,
                      recompute)


def _context(spec: EstimateSpec) -> int:
    return CUDA_CONTEXT_BYTES if spec.device == "cuda" else 0


def _common_notes() -> list[str]:
    return [
        f"CUDA context {CUDA_CONTEXT_BYTES / 1e6:.0f} MB outside the allocator (gpu_poor's fixed 650 MB; "
        "vram.asmirnov.xyz: 300 MiB–2 GiB)",
        f"allocator fragmentation {ALLOCATOR_FRAGMENTATION:.0%} of the allocated peak (reserved − allocated "
        "in published runs: 1–2 GiB at 15–40 GiB)",
    ]


def estimate_memory(spec: EstimateSpec) -> MemoryEstimate:
    """Estimate peak memory per GPU for one training step (or for inference).

    Args:
        spec: Model architecture, method, precision, optimizer, LoRA/QLoRA settings, micro-batch,
            sequence length, checkpointing, attention kernel and sharding.

    Returns:
        The breakdown per component, the allocated bytes at the end of each phase, the phase that sets
        the peak, and every assumption behind the numbers.
    """
    inv = P.count_params(spec.model)
    if spec.method == "inference":
        return _inference(spec, inv)
    if spec.uses_lora:
        n_trainable = P.lora_params(spec.model, spec.lora_rank, spec.lora_targets)
    elif spec.uses_adapter:
        n_trainable = P.peft_params(spec.model, spec.train_method, n_virtual=spec.num_virtual_tokens,
                                    ia3_targets=spec.ia3_targets)
    else:
        n_trainable = inv.n_params
    states, notes = _model_states(spec, inv, n_trainable)
    act_spec = spec
    if spec.extra_tokens:
        act_spec = spec.model_copy(update={"seq_len": spec.seq_len + spec.extra_tokens})
        notes.append(f"{spec.train_method}: {spec.extra_tokens} virtual tokens in front of every sequence, so "
                     f"activations and logits are counted at {act_spec.seq_len} positions")
    elif spec.train_method == "prefix_tuning":
        notes.append(f"prefix tuning: attention keys and values span {spec.num_virtual_tokens} prefix positions "
                     "more in every layer")
    if spec.method == "dpo":
        # TRL's DPOTrainer runs chosen and rejected through the policy as one concatenated batch.
        act_spec = spec.model_copy(update={"batch_size": 2 * spec.batch_size})
        notes.append("DPO: chosen and rejected sequences go through the model together (2 × micro-batch)")
    acts = saved_activation_bytes(act_spec)
    phases = _training_phases(act_spec, states, acts)
    peak_phase = max(phases, key=phases.__getitem__)
    tokens = act_spec.batch_size * act_spec.seq_len
    logits_fwd, logits_bwd = _logit_bytes(act_spec, tokens)
    workspace = _dequant_bytes(spec)
    if workspace:
        largest = "lm_head" if _quantized_head_params(spec) else _largest_linear(spec.model).name
        copies = (f" (from {spec.bnb_quant_dtype}, then cast: two copies)"
                  if spec.bnb_quant_dtype not in (None, _dtype_name(spec)) else "")
        notes.append(f"QLoRA: the largest 4-bit weight ({largest}) dequantized while it runs{copies}")
    prep = _kbit_prep_split(spec, act_spec, inv, n_trainable, states, acts)
    if prep.total:
        notes.append(
            f"k-bit prep (PEFT prepare_model_for_kbit_training): embeddings, LM head and norms upcast to fp32 "
            f"(+{prep.weights} B); fp32 residual stream, checkpointed block inputs and MLP activations, and "
            f"autocast's 16-bit copy of the LM head saved for backward (+{prep.activations + prep.recompute} B)"
        )
    if spec.packing:
        notes.append("packed: every micro-batch holds batch × seq_len real tokens (no padding)")
    if spec.train_method == "qlora":
        notes.append(_bnb_note(spec))
    if _held_logit_bytes(act_spec, tokens):
        notes.append(f"the training loop keeps `outputs` through backward and the optimizer step: its logits "
                     f"({_held_logit_bytes(act_spec, tokens)} B) stay allocated")
    notes += [
        f"activations: tensors autograd saves per decoder block ({acts.per_block} B at micro-batch "
        f"{act_spec.batch_size} × {spec.seq_len} tokens, attention `{spec.attention}`)"
        + ("; gradient checkpointing keeps each block's input and recomputes one block" if spec.grad_ckpt else ""),
        "loss: TRL's fused LM head, logits one 4096 × 32768 tile at a time (trl/kernels/chunked_logprob.py)"
        if spec.loss_kernel == "chunked"
        else "loss: logits upcast to fp32 and fp32 log-probs over the vocabulary (transformers ForCausalLMLoss)",
        f"optimizer `{spec.optimizer}` over {n_trainable} trainable parameters",
        *_common_notes(),
    ]
    allocated = phases[peak_phase]
    return MemoryEstimate(
        n_params=inv.n_params,
        n_trainable_params=n_trainable,
        weights_bytes=states.weights - prep.weights,
        master_weights_bytes=states.master,
        gradients_bytes=max(states.gradients, states.accumulated),
        optimizer_bytes=states.optimizer,
        activations_bytes=acts.blocks + acts.head - prep.activations,
        logits_bytes=acts.loss + max(logits_fwd, logits_bwd + _held_logit_bytes(act_spec, tokens)),
        reference_bytes=states.reference,
        kbit_prep_bytes=prep.total,
        workspace_bytes=workspace + states.gather + (acts.per_block if spec.grad_ckpt else 0) - prep.recompute,
        cuda_context_bytes=_context(spec),
        allocator_overhead_bytes=int(allocated * ALLOCATOR_FRAGMENTATION),
        phases_bytes=phases,
        peak_phase=peak_phase,
        cpu_offload_bytes=states.cpu,
        assumptions=notes,
    )
