"""Bytes of a model served with quantized weights (GPTQ, AWQ, bitsandbytes int8/NF4, FP8, compressed-tensors).

Tensors each quantized linear (in_features K, out_features N) holds, as the formats store them:

    GPTQ (AutoGPTQ / GPTQModel QuantLinear)   qweight int32 [K // 32 · bits, N]   (bits packed along K)
                                              qzeros  int32 [⌈K/g⌉, N // 32 · bits] (packed along N)
                                              scales  fp16  [⌈K/g⌉, N]
                                              g_idx   int32 [K]  (counted under desc_act/act-order only)
    AWQ GEMM (AutoAWQ WQLinear_GEMM)          qweight int32 [K, N // (32 / bits)]  (packed along N)
                                              qzeros  int32 [K // g, N // (32 / bits)]
                                              scales  fp16  [K // g, N]
    bitsandbytes int8 (Linear8bitLt)          weight int8 [N, K] + SCB fp32 [N] (one absmax per row)
    bitsandbytes NF4                          params.nf4_bytes (QLoRA's base model)
    FP8 (vLLM `fp8`, transformers FP8)        weight fp8 [N, K] + fp32 weight_scale: one per tensor, or
                                              weight_scale_inv [⌈N/bn⌉, ⌈K/bk⌉] with `weight_block_size`;
                                              + fp32 input_scale with a static activation scheme
    compressed-tensors pack-quantized         weight_packed int32 [N, K // (32 / bits)], weight_scale
                                              [N, ⌈K/g⌉] in the model dtype, weight_shape int64 [2],
                                              weight_zero_point int32 [N // (32 / bits), ⌈K/g⌉] if asymmetric
    compressed-tensors int/float-quantized    weight 1 byte [N, K] + fp32 scale per tensor / row / group / block

g = group_size (-1: K). These are the stored tensors, which transformers holds as they are. vLLM's Marlin
kernels (Ampere and newer) repack qweight to the same bytes, drop GPTQ's qzeros for symmetric checkpoints and
keep g_idx (with a sort index of the same size) only under act-order: differences under 1% of the weights
(qzeros of a 70B 4-bit g128 model: 0.27 GB of 39.8 GB). Biases stay 16-bit. Embeddings, norms, the MoE router and the LM head stay in the
serving dtype (GPTQModel's `lm_head: true` quantizes the head), as do the modules a config names in
`modules_to_not_convert` / `ignore`. bitsandbytes through transformers converts only real nn.Linear modules,
so fused MoE experts stay 16-bit there; the other formats quantize every expert (vLLM's MoE kernels).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from advisor.core.errors import InvalidInputError
from advisor.core.estimate import params as P
from advisor.core.models import ModelSpec

__all__ = [
    "KV_CACHE_DTYPES",
    "SERVE_QUANT_FLAGS",
    "QuantFormat",
    "QuantizedWeights",
    "format_from_config",
    "format_from_engine",
    "format_from_flag",
    "kv_bytes_per_element",
    "kv_dtype_from_config",
    "linear_tensor_bytes",
    "quantized_weight_bytes",
    "read_quantization_config",
]

SERVING_DTYPE_BYTES = 2  # bf16/fp16: what every unquantized tensor is served in
FP32 = 4
INT32 = 4
INT64 = 8
PACK_BITS = 32  # GPTQ, AWQ and compressed-tensors pack into int32 words
Method = Literal["gptq", "awq", "bnb-int8", "bnb-nf4", "fp8", "ct-packed", "ct-8bit"]

# `--kv-cache-dtype` (vLLM's names) → bytes per cached element; SGLang takes the same fp8 names but `fp8`.
KV_CACHE_DTYPES = {"auto": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}
QUANT_METHODS = ("gptq", "awq", "bitsandbytes", "fp8", "compressed-tensors")


@dataclass(frozen=True)
class QuantFormat:
    """One quantized serving format with the choices that change its storage.

    Attributes:
        method: The storage layout (see the module docstring).
        bits: Bits per quantized weight.
        group_size: Weights sharing one scale along in_features; -1: the whole row.
        desc_act: GPTQ act-order: vLLM keeps g_idx (int32 per in-feature) to permute the groups.
        symmetric: compressed-tensors: no zero points when symmetric.
        scale: FP8 / 8-bit compressed-tensors scale granularity.
        block: FP8 block shape (out, in) with `scale == "block"`.
        static_input_scale: A fp32 activation scale per linear (static activation scheme).
        quantize_lm_head: GPTQModel `lm_head: true`.
        skip: Module names left in the serving dtype (`modules_to_not_convert`, `ignore`).
        vllm_name: vLLM's `--quantization` value for this format.
        source: Where it was read (a flag or a config.json).
    """

    method: Method
    bits: int
    group_size: int = -1
    desc_act: bool = False
    symmetric: bool = True
    scale: Literal["tensor", "channel", "group", "block"] = "tensor"
    block: tuple[int, int] = (128, 128)
    static_input_scale: bool = False
    quantize_lm_head: bool = False
    skip: tuple[str, ...] = ()
    vllm_name: str = ""
    source: str = "--serve-quant"

    @property
    def label(self) -> str:
        """A short name: `gptq 4-bit g128`, `fp8 per-tensor`, ..."""
        base = {"bnb-int8": "bitsandbytes int8", "bnb-nf4": "bitsandbytes nf4", "ct-packed": "compressed-tensors",
                "ct-8bit": "compressed-tensors"}.get(self.method, self.method)
        group = f" g{self.group_size}" if self.group_size > 0 and self.method in ("gptq", "awq", "ct-packed") else ""
        extra = " act-order" if self.desc_act else ""
        if self.method in ("fp8", "ct-8bit"):
            extra = f" per-{self.scale}" + (f" {self.block[0]}×{self.block[1]}" if self.scale == "block" else "")
        return f"{base} {self.bits}-bit{group}{extra}"


# `--serve-quant` choices: checkpoints as their tools write them by default (GPTQ/AWQ 4-bit, group 128).
SERVE_QUANT_FLAGS: dict[str, QuantFormat] = {
    "gptq-4bit": QuantFormat("gptq", 4, 128, vllm_name="gptq"),
    "gptq-8bit": QuantFormat("gptq", 8, 128, vllm_name="gptq"),
    "awq-4bit": QuantFormat("awq", 4, 128, vllm_name="awq"),
    "int8": QuantFormat("bnb-int8", 8, vllm_name="bitsandbytes"),
    "nf4": QuantFormat("bnb-nf4", 4, vllm_name="bitsandbytes"),
    "fp8": QuantFormat("fp8", 8, vllm_name="fp8"),  # vLLM's online FP8: one scale per tensor, dynamic activations
}


@dataclass(frozen=True)
class QuantizedWeights:
    """Bytes of the served weights by part."""

    quantized_bytes: int
    scale_bytes: int
    unquantized_bytes: int
    n_quantized_params: int
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.quantized_bytes + self.scale_bytes + self.unquantized_bytes


def kv_bytes_per_element(kv_cache_dtype: str) -> int:
    """Bytes of one cached key or value element under vLLM's `--kv-cache-dtype`.

    Raises:
        InvalidInputError: Not a dtype vLLM names.
    """
    if kv_cache_dtype not in KV_CACHE_DTYPES:
        raise InvalidInputError([f"--kv-cache-dtype: unknown `{kv_cache_dtype}`"],
                                hint="one of " + ", ".join(f"`{k}`" for k in KV_CACHE_DTYPES))
    return KV_CACHE_DTYPES[kv_cache_dtype]


def format_from_flag(name: str) -> QuantFormat:
    """The format a `--serve-quant` value stands for.

    Raises:
        InvalidInputError: Not one of SERVE_QUANT_FLAGS.
    """
    if name not in SERVE_QUANT_FLAGS:
        raise InvalidInputError([f"--serve-quant: unknown `{name}`"],
                                hint="one of " + ", ".join(f"`{k}`" for k in SERVE_QUANT_FLAGS))
    return SERVE_QUANT_FLAGS[name]


# A serve step's `--quantization` → the format sized for it: GPTQ/AWQ as their tools write by default, vLLM's
# in-flight bitsandbytes (4-bit NF4) and online FP8, compressed-tensors as llm-compressor's W4A16 default.
ENGINE_FORMATS = {
    "gptq": "gptq-4bit", "awq": "awq-4bit", "bitsandbytes": "nf4", "fp8": "fp8",
}


def format_from_engine(quantization: str | None) -> QuantFormat | None:
    """The format a serve step's `quantization` (vLLM's name) is sized as; None: 16-bit weights."""
    if quantization is None:
        return None
    if quantization == "compressed-tensors":
        return QuantFormat("ct-packed", 4, 128, vllm_name="compressed-tensors", source="serve step")
    return replace(SERVE_QUANT_FLAGS[ENGINE_FORMATS[quantization]], source="serve step")


def linear_tensor_bytes(fmt: QuantFormat, in_features: int, out_features: int) -> dict[str, int]:
    """Bytes of each stored tensor of one quantized linear (bias not included: it stays 16-bit)."""
    k, n, b = in_features, out_features, fmt.bits
    g = fmt.group_size if fmt.group_size > 0 else k
    if fmt.method == "gptq":
        groups = math.ceil(k / g)
        out = {"qweight": k // PACK_BITS * b * n * INT32, "qzeros": groups * (n // PACK_BITS * b) * INT32,
               "scales": groups * n * SERVING_DTYPE_BYTES}
        if fmt.desc_act:
            out["g_idx"] = k * INT32
        return out
    if fmt.method == "awq":
        per_word = PACK_BITS // b
        return {"qweight": k * (n // per_word) * INT32, "qzeros": (k // g) * (n // per_word) * INT32,
                "scales": (k // g) * n * SERVING_DTYPE_BYTES}
    if fmt.method == "bnb-int8":
        return {"weight": n * k, "SCB": n * FP32}
    if fmt.method == "ct-packed":
        per_word = PACK_BITS // b
        groups = math.ceil(k / g)
        out = {"weight_packed": n * math.ceil(k / per_word) * INT32,
               "weight_scale": n * groups * SERVING_DTYPE_BYTES, "weight_shape": 2 * INT64}
        if not fmt.symmetric:
            out["weight_zero_point"] = math.ceil(n / per_word) * groups * INT32
        return out
    if fmt.method in ("fp8", "ct-8bit"):
        scales = {"tensor": 1, "channel": n, "group": n * math.ceil(k / g),
                  "block": math.ceil(n / fmt.block[0]) * math.ceil(k / fmt.block[1])}[fmt.scale]
        out = {"weight": n * k, ("weight_scale_inv" if fmt.scale == "block" else "weight_scale"): scales * FP32}
        if fmt.static_input_scale:
            out["input_scale"] = FP32
        return out
    raise ValueError(f"no per-linear layout for {fmt.method}")


def _quantized_linears(model: ModelSpec, fmt: QuantFormat) -> list[P.LinearModule]:
    """The block's linears the format quantizes, fused MoE experts split into their w1/w3 halves."""
    out = []
    for m in P.layer_linears(model):
        if m.is_router or m.name in fmt.skip or (m.is_expert and fmt.method in ("bnb-int8", "bnb-nf4")):
            continue
        if m.is_expert and m.name == "gate_up_proj":  # checkpoints and vLLM hold w1 and w3 apart
            half = m.out_features // 2
            out += [replace(m, name="w1", out_features=half), replace(m, name="w3", out_features=half)]
        else:
            out.append(m)
    return out


def quantized_weight_bytes(model: ModelSpec, fmt: QuantFormat) -> QuantizedWeights:
    """Bytes of `model`'s weights stored in `fmt`, everything left unquantized in the serving dtype."""
    inv = P.count_params(model)
    if fmt.method == "bnb-nf4":
        nf4 = P.nf4_bytes(model, double_quant=True, unquantized_bytes_per_param=SERVING_DTYPE_BYTES)
        n_q = model.n_layers * sum(m.in_features * m.out_features * m.n_per_layer for m in P.layer_linears(model)
                                   if m.is_nn_linear)
        return QuantizedWeights(nf4.quantized_bytes, nf4.quant_state_bytes, nf4.unquantized_bytes, n_q,
                                ["bitsandbytes NF4 with double quantization (params.nf4_bytes)"])
    weights = scales = n_q = 0
    for m in _quantized_linears(model, fmt):
        parts = linear_tensor_bytes(fmt, m.in_features, m.out_features)
        main = parts.get("qweight", parts.get("weight_packed", parts.get("weight", 0)))
        weights += main * m.n_per_layer * model.n_layers
        scales += (sum(parts.values()) - main) * m.n_per_layer * model.n_layers
        n_q += m.in_features * m.out_features * m.n_per_layer * model.n_layers
    notes = []
    if fmt.quantize_lm_head:
        head = linear_tensor_bytes(fmt, model.hidden_size, model.vocab_size)
        main = head.get("qweight", head.get("weight_packed", head.get("weight", 0)))
        weights, scales = weights + main, scales + sum(head.values()) - main
        n_q += model.hidden_size * model.vocab_size
        if model.tie_embeddings:
            notes.append("lm_head quantized; the tied input embedding stays 16-bit beside it")
    names = {m.name for m in P.layer_linears(model)} | {"lm_head"}
    unmatched = [s for s in fmt.skip if s not in names]
    if unmatched:
        notes.append("modules to keep unquantized that name no linear of a block (counted as quantized): "
                     + ", ".join(unmatched))
    extra_head = model.hidden_size * model.vocab_size if fmt.quantize_lm_head and model.tie_embeddings else 0
    unquantized = (inv.n_params - n_q + extra_head) * SERVING_DTYPE_BYTES
    return QuantizedWeights(weights, scales, unquantized, n_q, notes)


# --- config.json `quantization_config` -------------------------------------------------------------------


def read_quantization_config(name_or_path: str) -> dict[str, Any] | None:
    """The `quantization_config` of a local model folder's (or file's) config.json; None when there is none."""
    path = Path(name_or_path).expanduser()
    config = path / "config.json" if path.is_dir() else path
    if not config.is_file() or config.suffix != ".json":
        return None
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # catalog.resolve_model has already reported an unreadable config
    quant = cfg.get("quantization_config") if isinstance(cfg, dict) else None
    if quant is None:
        return None
    if not isinstance(quant, dict):
        raise InvalidInputError([f"{config}: `quantization_config` must be a JSON object"],
                                hint="give the config.json the quantization tool wrote")
    return {**quant, "_source": str(config)}


def _int(cfg: dict, key: str, default: int, source: str, allowed: tuple[int, ...] | None = None) -> int:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or (allowed and value not in allowed):
        want = "one of " + ", ".join(map(str, allowed)) if allowed else "a whole number"
        raise InvalidInputError([f"{source}: quantization_config `{key}` must be {want} (got {value!r})"],
                                hint="give the config.json the quantization tool wrote")
    return value


def _skip(cfg: dict, *keys: str) -> tuple[str, ...]:
    names: list[str] = []
    for key in keys:
        value = cfg.get(key) or []
        names += [str(v).split(".")[-1] if not str(v).startswith("re:") else str(v) for v in value]
    return tuple(n for n in dict.fromkeys(names) if n != "lm_head")


def format_from_config(cfg: dict[str, Any], source: str | None = None) -> QuantFormat:
    """The serving format a config.json's `quantization_config` describes.

    Raises:
        InvalidInputError: An unknown `quant_method`, or a field the layout needs with a wrong value.
    """
    source = source or str(cfg.get("_source", "quantization_config"))
    method = str(cfg.get("quant_method", "")).lower()
    if method == "gptq":
        bits = _int(cfg, "bits", 4, source, (2, 3, 4, 8))
        return QuantFormat("gptq", bits, _int(cfg, "group_size", 128, source), desc_act=bool(cfg.get("desc_act")),
                           quantize_lm_head=bool(cfg.get("lm_head")), skip=_skip(cfg, "modules_to_not_convert"),
                           vllm_name="gptq", source=source)
    if method == "awq":
        bits = _int(cfg, "bits", _int(cfg, "w_bit", 4, source), source, (4,))
        return QuantFormat("awq", bits, _int(cfg, "group_size", _int(cfg, "q_group_size", 128, source), source),
                           skip=_skip(cfg, "modules_to_not_convert"), vllm_name="awq", source=source)
    if method == "bitsandbytes":
        skip = _skip(cfg, "llm_int8_skip_modules")
        if cfg.get("load_in_4bit") or cfg.get("_load_in_4bit"):
            return QuantFormat("bnb-nf4", 4, skip=skip, vllm_name="bitsandbytes", source=source)
        if cfg.get("load_in_8bit") or cfg.get("_load_in_8bit"):
            return QuantFormat("bnb-int8", 8, skip=skip, vllm_name="bitsandbytes", source=source)
        raise InvalidInputError([f"{source}: bitsandbytes quantization_config sets neither `load_in_8bit` nor "
                                 "`load_in_4bit`"], hint="give the config.json transformers saved with the model")
    if method == "fp8":
        block = cfg.get("weight_block_size")
        ok_block = isinstance(block, (list, tuple)) and len(block) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in block)
        if block is not None and not ok_block:
            raise InvalidInputError([f"{source}: quantization_config `weight_block_size` must be two whole "
                                     f"numbers (got {block!r})"], hint="e.g. [128, 128]")
        return QuantFormat("fp8", 8, scale="block" if block else "tensor", block=tuple(block) if block else (128, 128),
                           static_input_scale=cfg.get("activation_scheme") == "static",
                           skip=_skip(cfg, "ignored_layers", "modules_to_not_convert"), vllm_name="fp8",
                           source=source)
    if method == "compressed-tensors":
        return _compressed_tensors(cfg, source)
    raise InvalidInputError(
        [f"{source}: unknown quantization_config quant_method `{method or cfg.get('quant_method')}`"],
        hint="supported: " + ", ".join(f"`{m}`" for m in QUANT_METHODS) + "; or pass `--serve-quant` yourself")


def _compressed_tensors(cfg: dict, source: str) -> QuantFormat:
    groups = cfg.get("config_groups") or {}
    schemes = [g for g in groups.values() if isinstance(g, dict)] if isinstance(groups, dict) else []
    weights = [s.get("weights") for s in schemes if isinstance(s.get("weights"), dict)]
    if len(weights) != 1:
        raise InvalidInputError([f"{source}: compressed-tensors config needs exactly one weight scheme in "
                                 f"`config_groups` (found {len(weights)})"],
                                hint="mixed schemes per module are not modelled; pass `--serve-quant` instead")
    w = weights[0]
    bits = _int(w, "num_bits", 8, source, (4, 8))
    strategy = str(w.get("strategy", "tensor"))
    if strategy not in ("tensor", "channel", "group", "block"):
        raise InvalidInputError([f"{source}: compressed-tensors weight strategy `{strategy}` is not modelled"],
                                hint="tensor, channel, group or block")
    group = _int(w, "group_size", -1, source) if strategy == "group" else -1
    block = tuple(w.get("block_structure") or (128, 128))
    inputs = next((s.get("input_activations") for s in schemes if isinstance(s.get("input_activations"), dict)), None)
    skip = _skip(cfg, "ignore")
    if bits < 8 or cfg.get("format") == "pack-quantized":  # W4A16 / W8A16: int32-packed, model-dtype scales
        return QuantFormat("ct-packed", bits, group, symmetric=bool(w.get("symmetric", True)), skip=skip,
                           vllm_name="compressed-tensors", source=source)
    return QuantFormat("ct-8bit", 8, group, scale=strategy, block=block,  # type: ignore[arg-type]
                       static_input_scale=bool(inputs) and not inputs.get("dynamic", False), skip=skip,
                       vllm_name="compressed-tensors", source=source)


def kv_dtype_from_config(cfg: dict[str, Any] | None) -> str | None:
    """`fp8` when a compressed-tensors config quantizes the KV cache to 8-bit floats (`kv_cache_scheme`)."""
    scheme = (cfg or {}).get("kv_cache_scheme")
    if isinstance(scheme, dict) and scheme.get("num_bits") == 8 and scheme.get("type", "float") == "float":
        return "fp8"
    return None


# --- `advisor estimate --method inference` with a quantized format or an 8-bit KV cache -------------------


def quantized_inference_memory(spec: Any, quant: QuantFormat | None, kv_cache_dtype: str = "auto") -> Any:
    """`estimate_memory(spec)` for inference with the weights in `quant` and the KV cache in `kv_cache_dtype`.

    The prefill working set is unchanged (activations stay 16-bit: W4A16/W8A8 kernels dequantize per tile).
    """
    from advisor.core.estimate.memory import ALLOCATOR_FRAGMENTATION, estimate_memory

    memory = estimate_memory(spec)
    if quant is None and kv_cache_dtype == "auto":
        return memory
    notes = [n for n in memory.assumptions if not n.startswith("weights in ")]  # restated below
    weights = memory.weights_bytes
    if quant is not None:
        q = quantized_weight_bytes(spec.model, quant)
        weights = q.total_bytes
        notes.append(f"weights: {quant.label} ({quant.source}): quantized linears {q.quantized_bytes:,} B + scales, "
                     f"zeros and indices {q.scale_bytes:,} B + 16-bit embeddings, head, norms, biases and kept "
                     f"modules {q.unquantized_bytes:,} B (storage layouts: advisor/core/estimate/quantized.py)")
        notes += q.notes
    kv = memory.kv_cache_bytes
    if kv_cache_dtype != "auto":
        m, context = spec.model, spec.context_tokens or spec.seq_len
        kv = 2 * m.n_layers * m.n_kv_heads * m.head_dim * context * spec.batch_size * kv_bytes_per_element(
            kv_cache_dtype)
        notes.append(f"KV cache in {kv_cache_dtype} (vLLM `--kv-cache-dtype`): 1 byte per element; the per-layer "
                     "k/v scales are a few bytes")
    if quant is None:
        notes.insert(0, f"weights in {memory.weights_bytes // memory.n_params}-byte dtype")
    elif kv_cache_dtype == "auto":
        notes.insert(0, "KV cache 2·layers·kv_heads·head_dim·tokens·batch·2 B (16-bit)")
    allocated = weights + kv + memory.workspace_bytes
    return memory.model_copy(update={
        "weights_bytes": weights, "kv_cache_bytes": kv, "phases_bytes": {"prefill": allocated},
        "allocator_overhead_bytes": int(allocated * ALLOCATOR_FRAGMENTATION), "assumptions": notes,
    })
