"""vLLM and SGLang command lines (and vLLM's config file), and an OpenAI-compatible client snippet.

Every adapter on one base goes into one server: vLLM `--enable-lora --lora-modules name=path ...` with
`--max-lora-rank` the smallest value vLLM accepts above the largest trained rank, SGLang `--lora-paths
name=path ...`. A whole model (fully trained, or an adapter merged) is served as the model itself.
`--quantization` and `--kv-cache-dtype` are written only when the serve step sets them.
"""

from __future__ import annotations

from advisor.core.models import ServedModel
from backends.serve.flags import SGLANG_KV_CACHE_DTYPE, vllm_lora_rank

__all__ = ["client_snippet", "sglang_argv", "vllm_config"]

GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default share of GPU memory for weights and KV cache


def vllm_config(model: str, served: list[ServedModel], *, max_model_len: int, concurrency: int, dtype: str,
                port: int, quantization: str | None = None, kv_cache_dtype: str = "auto") -> dict:
    """The `vllm serve MODEL --config FILE` mapping (long option names as keys) for one base or one model."""
    adapters = [m for m in served if m.kind == "adapter"]
    config: dict = {"dtype": dtype, "max-model-len": max_model_len, "max-num-seqs": concurrency,
                    "gpu-memory-utilization": GPU_MEMORY_UTILIZATION, "host": "127.0.0.1", "port": port}
    if quantization:
        config["quantization"] = quantization
    if kv_cache_dtype != "auto":
        config["kv-cache-dtype"] = kv_cache_dtype
    if adapters:
        config |= {"enable-lora": True, "lora-modules": [f"{m.name}={m.path}" for m in adapters],
                   "max-lora-rank": vllm_lora_rank(max(m.lora_rank or 1 for m in adapters)),
                   "max-loras": len(adapters), "max-cpu-loras": len(adapters)}
    else:
        config["served-model-name"] = [served[0].name]
    return config


def sglang_argv(model: str, served: list[ServedModel], *, max_model_len: int, concurrency: int, dtype: str,
                port: int, quantization: str | None = None, kv_cache_dtype: str = "auto") -> list[str]:
    """`python -m sglang.launch_server` arguments for one base with its adapters, or one model."""
    adapters = [m for m in served if m.kind == "adapter"]
    argv = ["--model-path", model, "--dtype", dtype, "--context-length", str(max_model_len),
            "--max-running-requests", str(concurrency), "--host", "127.0.0.1", "--port", str(port)]
    if quantization:
        argv += ["--quantization", quantization]
    if kv_cache_dtype != "auto":
        argv += ["--kv-cache-dtype", SGLANG_KV_CACHE_DTYPE[kv_cache_dtype]]
    if adapters:
        argv += ["--enable-lora", "--lora-paths", *(f"{m.name}={m.path}" for m in adapters),
                 "--max-lora-rank", str(max(m.lora_rank or 1 for m in adapters)),
                 "--max-loras-per-batch", str(len(adapters))]
    else:
        argv += ["--served-model-name", served[0].name]
    return argv


def client_snippet(names: list[str], port: int) -> str:
    """A Python script asking each served model one question through the `openai` client."""
    return f'''"""Ask each served model one question through the OpenAI-compatible API (vLLM or SGLang on port {port})."""

from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:{port}/v1", api_key="not-needed")
for model in {names!r}:
    reply = client.chat.completions.create(
        model=model, messages=[{{"role": "user", "content": "Hello, what can you help with?"}}], max_tokens=128,
    )
    print(model, "→", reply.choices[0].message.content)
'''
