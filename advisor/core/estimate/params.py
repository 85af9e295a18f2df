"""Exact parameter inventory of a decoder-only model: counts, LoRA, soft-prompt and IA3 parameters, NF4 bytes.

Everything here is exact, not estimated: each number equals what the real library objects hold, and
tests/test_estimate_params.py checks that against transformers 5, PEFT 0.21 and bitsandbytes 0.50.

Formulas (H hidden size, I intermediate size, V vocabulary, L layers, h query heads, k key/value heads,
d head size, E experts, e active experts, r LoRA rank):

- Embedding ``V·H``; LM head ``V·H`` unless tied to the embedding, then 0.
- Attention (llama, mistral, mixtral, qwen2, qwen3, gemma, gemma2, stablelm): ``q_proj H→h·d``,
  ``k_proj``/``v_proj H→k·d``, ``o_proj h·d→H``, each plus its bias when the family has one
  (Qwen2: q/k/v; Llama: ``attention_bias``; StableLM: ``use_qkv_bias``). Phi-3 fuses them into
  ``qkv_proj H→(h+2k)·d``; Falcon into ``query_key_value`` with ``dense`` as the output projection.
- Gated MLP: ``gate_proj``/``up_proj H→I`` and ``down_proj I→H`` (Phi-3: ``gate_up_proj H→2I``).
  Falcon's MLP is not gated: ``dense_h_to_4h H→I``, ``dense_4h_to_h I→H``.
- Mixtral in transformers 5 stores its experts as two 3-D parameters per layer, not as ``nn.Linear``:
  ``experts.gate_up_proj (E, 2I, H)`` and ``experts.down_proj (E, H, I)``; the router ``gate`` is an
  ``E×H`` weight in a custom module. Active parameters per token count ``e`` of the ``E`` experts.
- Norms: ``norms_per_layer·H`` per block plus the final norm (LayerNorm doubles that for its bias).
  Per-head q/k norms: Qwen3 shares one RMSNorm of size ``d`` for q and one for k (``2d`` per block);
  StableLM's ``qk_layernorm`` keeps one weight-only LayerNorm per head (``(h+k)·d`` per block).
- LoRA on a linear ``in→out`` adds ``r·(in+out)`` trainable parameters (A is ``r×in``, B ``out×r``;
  Hu et al. 2021, arXiv:2106.09685). PEFT's ``all-linear`` picks every ``nn.Linear`` except the output
  layer (peft/tuners/tuners_utils.py ``_maybe_include_all_linear_layers``). For Mixtral on
  transformers 5, PEFT maps the v4 names onto the fused experts (peft/utils/transformers_weight_conversion.py):
  ``gate`` → ``gate.weight``, ``w2`` → ``down_proj``, and ``w1`` + ``w3`` together → ``gate_up_proj`` at
  rank ``2r``; each expert gets its own A and B, so an expert target adds ``E·r'·(in+out)``.
- NF4 (QLoRA, Dettmers et al. 2023, arXiv:2305.14314): transformers replaces every ``nn.Linear`` except
  the output layer with ``bnb.nn.Linear4bit``; the Mixtral experts and router are not ``nn.Linear`` and
  stay in 16 bit. A quantized weight of ``n`` elements stores ``ceil(n/2)`` bytes (two 4-bit codes per
  byte) and a QuantState: without double quantization one fp32 absmax per 64-element block plus the
  16-entry fp32 NF4 code; with it, one uint8 absmax per block, an fp32 offset, one fp32 absmax per 256
  absmax values and a copy of the 256-entry fp32 dynamic map (bitsandbytes/functional.py
  ``quantize_4bit``, ``quantize_blockwise``). Biases, norms, embeddings and the LM head stay unquantized.

Ignored: buffers (rotary inverse frequencies), which are not parameters; quantization of anything but
``nn.Linear`` (no library does it for these families).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, computed_field

from advisor.core.errors import InvalidInputError
from advisor.core.models import SOFT_PROMPT_METHODS, Model, ModelSpec

__all__ = [
    "IA3_DEFAULT_TARGETS",
    "IA3_FEEDFORWARD_NAMES",
    "LinearModule",
    "Nf4Bytes",
    "ParamInventory",
    "count_params",
    "layer_linears",
    "lora_params",
    "nf4_bytes",
    "peft_params",
    "resolve_ia3_targets",
    "resolve_lora_targets",
    "SOFT_PROMPT_METHODS",
    "soft_prompt_shapes",
]

NF4_BLOCK_SIZE = 64  # elements per absmax block; bitsandbytes nn/modules.py Params4bit: blocksize None -> 64
NF4_CODES_PER_BYTE = 2  # two 4-bit codes packed into one uint8 (quant_storage=torch.uint8, the default)
NF4_CODE_ENTRIES = 16  # fp32 NF4 code table per QuantState; bitsandbytes functional.get_4bit_type("nf4")
DOUBLE_QUANT_BLOCK_SIZE = (
    256  # absmax values per nested block; functional.quantize_4bit: quantize_blockwise(..., blocksize=256)
)
DYNAMIC_MAP_ENTRIES = (
    256  # fp32 8-bit dynamic map copied into each nested state; functional.create_dynamic_map()
)
FP32_BYTES = 4  # absmax, offset, code tables are float32
UINT8_BYTES = 1  # double-quantized absmax values are uint8

MIXTRAL_FUSED_EXPERT_TARGETS = ("w1", "w3")  # fused into gate_up_proj; PEFT needs both, at rank 2r
MIXTRAL_TARGET_TO_MODULE = {"gate": "gate", "w1": "gate_up_proj", "w3": "gate_up_proj", "w2": "down_proj"}


@dataclass(frozen=True)
class LinearModule:
    """One linear map inside a decoder block, as HF/PEFT names it.

    Attributes:
        name: Module (or, for fused experts, parameter) name inside a block: ``q_proj``, ``qkv_proj``, ...
        in_features: Input width.
        out_features: Output width.
        has_bias: The module has a bias vector.
        n_per_layer: Copies per decoder block (``n_experts`` for expert linears).
        is_expert: Part of a mixture-of-experts MLP (only the routed experts run per token).
        is_router: The MoE router (counted in ``router_params``, not ``layer_linear_params``).
        lora_rank_factor: PEFT multiplies the LoRA rank by this (Mixtral ``w1``+``w3`` fused: 2).
    """

    name: str
    in_features: int
    out_features: int
    has_bias: bool
    n_per_layer: int = 1
    is_expert: bool = False
    is_router: bool = False
    lora_rank_factor: int = 1

    @property
    def n_params(self) -> int:
        """Weights and biases of all copies in one block."""
        return (
            self.in_features * self.out_features + (self.out_features if self.has_bias else 0)
        ) * self.n_per_layer

    @property
    def is_nn_linear(self) -> bool:
        """A real ``nn.Linear`` (quantized by bitsandbytes, picked by PEFT's all-linear)."""
        return not (self.is_expert or self.is_router)


class ParamInventory(Model):
    """Parameters of a model by component; ``n_params`` equals ``sum(p.numel())`` of the HF model."""

    embedding_params: int = Field(description="Input embedding matrix")
    lm_head_params: int = Field(description="Output projection; 0 when tied to the embedding")
    layer_linear_params: int = Field(
        description="All linear weights and biases of all blocks, experts included"
    )
    norm_params: int = Field(description="All norm weights/biases, the final norm and q/k norms included")
    router_params: int = Field(description="MoE router weights of all blocks")
    layer_params: int = Field(description="Everything in one decoder block")
    n_params: int = Field(description="All parameters")
    n_active_params: int = Field(description="Parameters used per token (MoE: only the routed experts)")


class Nf4Bytes(Model):
    """Bytes of a model loaded with bitsandbytes NF4 through transformers' BitsAndBytesConfig."""

    quantized_bytes: int = Field(description="Packed 4-bit weights of the quantized linears")
    quant_state_bytes: int = Field(description="absmax, offsets and code tables of every quantized weight")
    unquantized_bytes: int = Field(
        description="Embeddings, LM head, norms, biases, router, experts at 16 bit"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_bytes(self) -> int:
        return self.quantized_bytes + self.quant_state_bytes + self.unquantized_bytes


def layer_linears(model: ModelSpec) -> list[LinearModule]:
    """List the linear maps of one decoder block.

    Args:
        model: The architecture.

    Returns:
        One entry per distinct linear (experts once, with ``n_per_layer = n_experts``), in HF order.
    """
    h, d = model.hidden_size, model.head_dim
    q_out, kv_out = model.n_heads * d, model.n_kv_heads * d
    inter = model.intermediate_size
    if model.arch == "falcon":
        return [
            LinearModule("query_key_value", h, q_out + 2 * kv_out, model.qkv_bias),
            LinearModule("dense", q_out, h, model.o_bias),
            LinearModule("dense_h_to_4h", h, inter, model.mlp_bias),
            LinearModule("dense_4h_to_h", inter, h, model.mlp_bias),
        ]
    if model.arch == "phi3":
        attention = [
            LinearModule("qkv_proj", h, q_out + 2 * kv_out, model.qkv_bias),
            LinearModule("o_proj", q_out, h, model.o_bias),
        ]
        return attention + [
            LinearModule("gate_up_proj", h, 2 * inter, model.mlp_bias),
            LinearModule("down_proj", inter, h, model.mlp_bias),
        ]
    attention = [
        LinearModule("q_proj", h, q_out, model.qkv_bias),
        LinearModule("k_proj", h, kv_out, model.qkv_bias),
        LinearModule("v_proj", h, kv_out, model.qkv_bias),
        LinearModule("o_proj", q_out, h, model.o_bias),
    ]
    if model.is_moe:
        n_experts = model.n_experts
        return attention + [
            LinearModule("gate", h, n_experts, False, is_router=True),
            LinearModule("gate_up_proj", h, 2 * inter, False, n_per_layer=n_experts, is_expert=True),
            LinearModule("down_proj", inter, h, False, n_per_layer=n_experts, is_expert=True),
        ]
    if not model.mlp_gated:
        return attention + [
            LinearModule("up_proj", h, inter, model.mlp_bias),
            LinearModule("down_proj", inter, h, model.mlp_bias),
        ]
    return attention + [
        LinearModule("gate_proj", h, inter, model.mlp_bias),
        LinearModule("up_proj", h, inter, model.mlp_bias),
        LinearModule("down_proj", inter, h, model.mlp_bias),
    ]


def _norm_params_per_layer(model: ModelSpec) -> int:
    per_norm = model.hidden_size * (2 if model.norm == "layernorm" else 1)
    qk = 0
    if model.qk_norm:
        # Qwen3: one q_norm and one k_norm of head_dim; StableLM: one weight-only LayerNorm per head
        qk = (
            (model.n_heads + model.n_kv_heads) * model.head_dim
            if model.arch == "stablelm"
            else 2 * model.head_dim
        )
    return model.norms_per_layer * per_norm + qk


def count_params(model: ModelSpec) -> ParamInventory:
    """Count the parameters of a model exactly, by component.

    Args:
        model: The architecture.

    Returns:
        The inventory; ``n_params`` equals ``sum(p.numel() for p in hf_model.parameters())``.
    """
    linears = layer_linears(model)
    linear_per_layer = sum(m.n_params for m in linears if not m.is_router)
    router_per_layer = sum(m.n_params for m in linears if m.is_router)
    expert_per_layer = sum(m.n_params for m in linears if m.is_expert)
    norm_per_layer = _norm_params_per_layer(model)
    final_norm = model.hidden_size * (2 if model.norm == "layernorm" else 1)
    embedding = model.vocab_size * model.hidden_size
    lm_head = 0 if model.tie_embeddings else embedding
    layer = linear_per_layer + router_per_layer + norm_per_layer
    total = embedding + lm_head + model.n_layers * layer + final_norm
    inactive_experts = 0
    if model.is_moe:
        inactive_experts = expert_per_layer * (model.n_experts - model.n_experts_active) // model.n_experts
    return ParamInventory(
        embedding_params=embedding,
        lm_head_params=lm_head,
        layer_linear_params=model.n_layers * linear_per_layer,
        norm_params=model.n_layers * norm_per_layer + final_norm,
        router_params=model.n_layers * router_per_layer,
        layer_params=layer,
        n_params=total,
        n_active_params=total - model.n_layers * inactive_experts,
    )


def _valid_target_names(model: ModelSpec) -> list[str]:
    names = [m.name for m in layer_linears(model) if m.is_nn_linear]
    if model.is_moe:
        names += list(MIXTRAL_TARGET_TO_MODULE)
    return names


def resolve_lora_targets(model: ModelSpec, targets: list[str] | Literal["all-linear"]) -> list[LinearModule]:
    """Turn LoRA target names into the linears PEFT adapts in each block.

    Args:
        model: The architecture.
        targets: Module names as given to ``peft.LoraConfig(target_modules=...)``, or ``"all-linear"``.

    Returns:
        The adapted linears, each once; fused Mixtral experts carry ``lora_rank_factor=2``.

    Raises:
        InvalidInputError: A name is not a linear of this architecture, or ``w1``/``w3`` come alone.
    """
    valid = _valid_target_names(model)
    names = valid if targets == "all-linear" else list(dict.fromkeys(targets))
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InvalidInputError(
            [f"lora_targets: unknown module `{n}` for {model.arch}" for n in unknown],
            hint="valid names: " + ", ".join(f"`{v}`" for v in valid) + ", or `all-linear`",
        )
    by_name = {m.name: m for m in layer_linears(model)}
    if not model.is_moe:
        return [by_name[n] for n in names]
    fused = [n for n in MIXTRAL_FUSED_EXPERT_TARGETS if n in names]
    if len(fused) == 1:
        missing = next(n for n in MIXTRAL_FUSED_EXPERT_TARGETS if n not in names)
        raise InvalidInputError(
            [f"lora_targets: `{fused[0]}` needs `{missing}` too (both are fused into `gate_up_proj`)"],
            hint="target both `w1` and `w3`, or neither",
        )
    resolved: dict[str, LinearModule] = {}
    for name in names:
        module = by_name[MIXTRAL_TARGET_TO_MODULE.get(name, name)]
        if module.name == "gate_up_proj":
            module = dataclasses.replace(module, lora_rank_factor=len(MIXTRAL_FUSED_EXPERT_TARGETS))
        resolved[module.name] = module
    return list(resolved.values())


def lora_params(model: ModelSpec, rank: int, targets: list[str] | Literal["all-linear"]) -> int:
    """Count LoRA's trainable parameters, as PEFT creates them.

    Args:
        model: The architecture.
        rank: LoRA rank r.
        targets: Target module names, or ``"all-linear"``.

    Returns:
        ``L · Σ n_per_layer · r·factor · (in + out)`` over the targeted linears.
    """
    per_layer = sum(
        m.n_per_layer * rank * m.lora_rank_factor * (m.in_features + m.out_features)
        for m in resolve_lora_targets(model, targets)
    )
    return model.n_layers * per_layer


def _quant_state_bytes(n_elements: int, double_quant: bool) -> int:
    n_blocks = math.ceil(n_elements / NF4_BLOCK_SIZE)
    code = NF4_CODE_ENTRIES * FP32_BYTES
    if not double_quant:
        return n_blocks * FP32_BYTES + code
    nested_absmax = math.ceil(n_blocks / DOUBLE_QUANT_BLOCK_SIZE) * FP32_BYTES
    return n_blocks * UINT8_BYTES + code + FP32_BYTES + nested_absmax + DYNAMIC_MAP_ENTRIES * FP32_BYTES


def nf4_bytes(model: ModelSpec, double_quant: bool, unquantized_bytes_per_param: int = 2) -> Nf4Bytes:
    """Bytes of the model loaded in NF4 by transformers + bitsandbytes (QLoRA's base model).

    Args:
        model: The architecture.
        double_quant: ``bnb_4bit_use_double_quant``: quantize the absmax constants again.
        unquantized_bytes_per_param: Bytes of every parameter left unquantized (2 for bf16/fp16).

    Returns:
        Packed weights, quantization state and unquantized parameters, in bytes.
    """
    quantized = [m for m in layer_linears(model) if m.is_nn_linear]
    weights_per_layer = [m.in_features * m.out_features for m in quantized for _ in range(m.n_per_layer)]
    packed = model.n_layers * sum(math.ceil(n / NF4_CODES_PER_BYTE) for n in weights_per_layer)
    state = model.n_layers * sum(_quant_state_bytes(n, double_quant) for n in weights_per_layer)
    n_unquantized = count_params(model).n_params - model.n_layers * sum(weights_per_layer)
    return Nf4Bytes(
        quantized_bytes=packed,
        quant_state_bytes=state,
        unquantized_bytes=n_unquantized * unquantized_bytes_per_param,
    )


# --- soft prompts and IA3 ------------------------------------------------------------------------------
#
# PEFT 0.21 (tests/test_estimate_params.py checks every count against `peft.get_peft_model` on meta models):
# - prompt tuning (Lester et al. 2021, arXiv:2104.08691): one embedding of ``n_virtual × H``
#   (peft/tuners/prompt_tuning/model.py PromptEmbedding; one transformer submodule for a causal LM).
# - P-tuning (Liu et al. 2021, arXiv:2103.10385): the same embedding plus PEFT's MLP encoder
#   ``H→H, H→H, H→H`` with biases (peft/tuners/p_tuning/model.py; encoder_hidden_size defaults to H).
# - prefix tuning (Li & Liang 2021, arXiv:2101.00190), without re-parameterisation (PEFT's default): one
#   embedding of ``n_virtual × (2·L·kv_width)``, a key and a value prefix per layer. For configs that name
#   key/value heads PEFT sizes ``kv_width = n_kv_heads · head_dim`` (peft/utils/other.py
#   _prepare_prompt_learning_config), else the hidden size.
# - IA3 (Liu et al. 2022, arXiv:2205.05638): one vector per targeted linear: ``out`` entries, or ``in`` for a
#   feed-forward module, which scales its input (peft/tuners/ia3/layer.py). Default targets are PEFT's
#   TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING; Mixtral's ``w2`` names no module under transformers 5
#   (the experts are fused 3-D parameters), so only k/v are scaled there.

IA3_FEEDFORWARD_NAMES = frozenset({"down_proj", "dense_4h_to_h", "fc2", "w2"})
IA3_DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("k_proj", "v_proj", "down_proj"),
    "mistral": ("k_proj", "v_proj", "down_proj"),
    "mixtral": ("k_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj", "down_proj"),
    "qwen3": ("q_proj", "v_proj", "down_proj"),
    "gemma": ("q_proj", "v_proj", "down_proj"),
    "gemma2": ("q_proj", "v_proj", "down_proj"),
    "falcon": ("query_key_value", "dense_4h_to_h"),
}


def prefix_width(model: ModelSpec) -> int:
    """Width of one layer's key (or value) prefix per virtual token, as PEFT sizes it.

    Raises:
        InvalidInputError: Falcon, whose config names no key/value heads: PEFT sizes the prefix for every query
            head, which its multi-query or grouped attention cannot take.
    """
    if model.arch == "falcon":
        raise InvalidInputError(
            ["prefix_tuning: PEFT sizes Falcon's prefix for all query heads, more than its key/value heads"],
            hint="use `prompt_tuning`, `ia3` or `lora` for Falcon",
        )
    return model.n_kv_heads * model.head_dim


def soft_prompt_shapes(model: ModelSpec, method: str, n_virtual: int) -> list[tuple[int, ...]]:
    """Shapes of the trainable tensors of a soft prompt, one per tensor (in PEFT's order)."""
    h = model.hidden_size
    if method == "prompt_tuning":
        return [(n_virtual, h)]
    if method == "prefix_tuning":
        return [(n_virtual, 2 * model.n_layers * prefix_width(model))]
    if method == "p_tuning":
        return [(n_virtual, h)] + [(h, h), (h,)] * 3
    raise ValueError(f"not a soft-prompt method: {method}")


def resolve_ia3_targets(model: ModelSpec,
                        targets: list[str] | Literal["default"]) -> list[tuple[LinearModule, bool]]:
    """The linears IA3 scales in each block, each with whether it is a feed-forward module (scales its input).

    Raises:
        InvalidInputError: A name that is not an ``nn.Linear`` of the architecture, or `default` for an
            architecture PEFT has no default list for.
    """
    linears = {m.name: m for m in layer_linears(model) if m.is_nn_linear}
    if targets == "default":
        if model.arch not in IA3_DEFAULT_TARGETS:
            raise InvalidInputError(
                [f"ia3_targets: PEFT has no default IA3 modules for {model.arch}"],
                hint="name them in `ia3_targets` (`--ia3-targets` on the command line), e.g. "
                + ",".join(n for n in linears if "proj" in n),
            )
        names = list(IA3_DEFAULT_TARGETS[model.arch])
    else:
        names = list(dict.fromkeys(targets))
    unknown = [n for n in names if n not in linears]
    if unknown:
        raise InvalidInputError(
            [f"ia3_targets: unknown module `{n}` for {model.arch}" for n in unknown],
            hint="valid names: " + ", ".join(f"`{v}`" for v in linears) + ", or `default`",
        )
    return [(linears[n], n in IA3_FEEDFORWARD_NAMES) for n in names]


def ia3_shapes(model: ModelSpec, targets: list[str] | Literal["default"]) -> list[tuple[int, ...]]:
    """Shapes of IA3's trainable vectors over all blocks (``(out, 1)``, or ``(1, in)`` feed-forward)."""
    one = [(1, m.in_features) if ff else (m.out_features, 1) for m, ff in resolve_ia3_targets(model, targets)]
    return one * model.n_layers


def peft_params(model: ModelSpec, method: str, *, n_virtual: int = 20,
                ia3_targets: list[str] | Literal["default"] = "default") -> int:
    """Trainable parameters of a soft prompt or IA3, as PEFT creates them."""
    shapes = ia3_shapes(model, ia3_targets) if method == "ia3" else soft_prompt_shapes(model, method, n_virtual)
    return sum(math.prod(shape) for shape in shapes)
