"""What the catalog holds: model architectures, GPUs and API prices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, computed_field, model_validator

from advisor.core.models.base import Arch, Model

__all__ = ["ApiPriceSpec", "DeviceInfo", "GpuSpec", "MODEL_LIMITS", "ModelSpec"]

# Upper bounds on an architecture: several times the largest published model of each kind, so every real
# config passes while a typo (`num_hidden_layers: 1e9`) is an error instead of an hours-long estimate.
MAX_VOCAB_SIZE = 4_194_304  # 16x Gemma's 256,000
MAX_HIDDEN_SIZE = 131_072  # 8x Llama-3.1-405B's 16,384
MAX_INTERMEDIATE_SIZE = 1_048_576  # ~20x Llama-3.1-405B's 53,248
MAX_LAYERS = 1_024  # 8x Llama-3.1-405B's 126
MAX_HEADS = 1_024  # 8x Llama-3.1-405B's 128 query heads
MAX_HEAD_DIM = 4_096  # 16x Gemma's 256
MAX_CONTEXT = 16_777_216  # 2^24 tokens, above the longest published window (Llama 4 Scout, 10M)
MAX_EXPERTS = 1_024  # 4x DeepSeek-V3's 256 routed experts
MAX_NORMS_PER_LAYER = 16  # Gemma-2 has 4
# ModelSpec field -> its upper bound (also the bound on the config.json key it is read from).
MODEL_LIMITS = {
    "vocab_size": MAX_VOCAB_SIZE, "hidden_size": MAX_HIDDEN_SIZE, "intermediate_size": MAX_INTERMEDIATE_SIZE,
    "n_layers": MAX_LAYERS, "n_heads": MAX_HEADS, "n_kv_heads": MAX_HEADS, "head_dim": MAX_HEAD_DIM,
    "max_context": MAX_CONTEXT, "n_experts": MAX_EXPERTS, "n_experts_active": MAX_EXPERTS,
    "norms_per_layer": MAX_NORMS_PER_LAYER,
}


class ModelSpec(Model):
    """Architecture of a decoder-only transformer: what the estimator needs from a `config.json`."""

    name: str = Field(description="Catalog name, Hugging Face id or path the architecture came from")
    arch: Arch = Field(description="Architecture family; decides module names and layout (`model_type` in HF)")
    vocab_size: int = Field(
        gt=0, le=MAX_VOCAB_SIZE, description="Tokens in the vocabulary (rows of the embedding matrix)"
    )
    hidden_size: int = Field(gt=0, le=MAX_HIDDEN_SIZE, description="Width of the residual stream")
    intermediate_size: int = Field(
        gt=0, le=MAX_INTERMEDIATE_SIZE, description="Width of the MLP (per expert for a mixture of experts)"
    )
    n_layers: int = Field(gt=0, le=MAX_LAYERS, description="Decoder blocks")
    n_heads: int = Field(gt=0, le=MAX_HEADS, description="Query heads")
    n_kv_heads: int = Field(gt=0, le=MAX_HEADS, description="Key/value heads (fewer than query heads with GQA/MQA)")
    head_dim: int = Field(gt=0, le=MAX_HEAD_DIM, description="Width of one attention head")
    tie_embeddings: bool = Field(description="The LM head shares the input embedding matrix")
    n_experts: int = Field(0, ge=0, le=MAX_EXPERTS, description="MLP experts per layer; 0 for a dense model")
    n_experts_active: int = Field(
        0, ge=0, le=MAX_EXPERTS, description="Experts each token is routed to; 0 for a dense model"
    )
    max_context: int = Field(
        gt=0, le=MAX_CONTEXT, description="Longest sequence the model was trained for, in tokens"
    )
    qkv_bias: bool = Field(False, description="Query/key/value projections have a bias (Qwen2)")
    o_bias: bool = Field(False, description="Attention output projection has a bias")
    mlp_bias: bool = Field(False, description="MLP projections have a bias")
    mlp_gated: bool = Field(True, description="Gated MLP (SwiGLU/GeGLU, three matrices) rather than two")
    norm: Literal["rmsnorm", "layernorm"] = Field("rmsnorm", description="Normalisation (layernorm has a bias)")
    norms_per_layer: int = Field(
        2, ge=1, le=MAX_NORMS_PER_LAYER, description="Norm modules per decoder block (Gemma-2: 4, Falcon-7B: 1)"
    )
    qk_norm: bool = Field(False, description="Per-head RMSNorm on queries and keys (Qwen3)")
    source: str = Field("", description="Where these numbers come from (URL of the config.json, or a path)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 1

    @model_validator(mode="after")
    def _check_heads(self) -> ModelSpec:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads must be a multiple of n_kv_heads (got {self.n_heads} and {self.n_kv_heads})")
        if self.n_experts and not 0 < self.n_experts_active <= self.n_experts:
            raise ValueError(
                f"n_experts_active must be in 1..n_experts (got {self.n_experts_active} of {self.n_experts})"
            )
        return self



class GpuSpec(Model):
    """One GPU model from the catalog."""

    name: str = Field(description="Catalog id, e.g. `a100-80gb`")
    label: str = Field(description="Human name, e.g. `NVIDIA A100 80GB SXM4`")
    memory_bytes: int = Field(gt=0, description="Memory per GPU, in bytes")
    bf16_tflops: float | None = Field(None, gt=0, description="Dense bf16 tensor TFLOP/s; None: no bf16 support")
    fp16_tflops: float = Field(gt=0, description="Dense fp16 tensor TFLOP/s")
    fp32_tflops: float = Field(gt=0, description="Dense fp32 TFLOP/s (TF32 tensor cores where present)")
    fp32_cuda_core_tflops: float | None = Field(
        None, gt=0, description="Dense fp32 TFLOP/s without TF32 (CUDA cores: PyTorch's default "
        "`float32_matmul_precision` 'highest'); None: the GPU has no TF32, `fp32_tflops` is that rate")
    supports_bf16: bool = Field(description="bf16 arithmetic in hardware (Ampere and newer)")
    bandwidth_gb_per_s: float = Field(gt=0, description="Memory bandwidth, GB/s")
    price_per_hour_usd: float | None = Field(None, ge=0, description="Typical rental price per GPU-hour")
    price_source: str = Field("", description="Where the price comes from, with its date")
    source: str = Field(description="Where the specs come from")



class ApiPriceSpec(Model):
    """An LLM API's list price."""

    name: str = Field(description="Catalog id, e.g. `gpt-5.4-mini`")
    provider: str
    input_per_mtok_usd: float = Field(ge=0, description="USD per million input tokens")
    output_per_mtok_usd: float = Field(ge=0, description="USD per million output tokens")
    supports_tuning: bool = Field(False, description="The provider offers fine-tuning of this model")
    source: str
    as_of: str


class DeviceInfo(Model):
    """The device a job runs on: a GPU found by the backend, a catalog GPU it is planned for, or the CPU."""

    kind: Literal["cuda", "cpu"] = Field(description="Where tensors live")
    name: str = Field(description="GPU name, or `cpu`")
    n_devices: int = Field(description="GPUs visible (1 for CPU)")
    memory_bytes: int = Field(description="Memory of one GPU; on CPU the memory available to the process now")
    supports_bf16: bool = Field(description="bf16 arithmetic in hardware")
