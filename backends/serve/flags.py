"""The command-line flags we emit for vLLM and SGLang, with the types their documentation gives.

vLLM: `vllm serve` (docs.vllm.ai/en/latest/cli/serve.html; vllm/engine/arg_utils.py and vllm/config/lora.py,
where `max_lora_rank` is `MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]`). SGLang:
`python -m sglang.launch_server` (docs.sglang.io/advanced_features/server_arguments.html and lora.html).
`parser(table)` builds an argparse parser from a table, so what we write can be parsed back as the engine would.
Quantization: vLLM `--quantization` (vllm/model_executor/layers/quantization QuantizationMethods) and
`--kv-cache-dtype` (vllm/config/cache.py CacheDType); SGLang's server_args.py takes the same methods and
`--kv-cache-dtype auto|fp8_e5m2|fp8_e4m3` (no bare `fp8`: vLLM's `fp8` is e4m3, SGLANG_KV_CACHE_DTYPE maps it).
"""

from __future__ import annotations

import argparse

__all__ = ["QUANTIZATIONS", "SGLANG_FLAGS", "SGLANG_KV_CACHE_DTYPE", "VLLM_FLAGS", "VLLM_LORA_RANKS", "config_to_argv",
           "parser", "vllm_lora_rank"]

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
QUANTIZATIONS = ("gptq", "awq", "bitsandbytes", "fp8", "compressed-tensors")  # the ones ServeStep names
VLLM_KV_CACHE_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2")
SGLANG_KV_CACHE_DTYPES = ("auto", "fp8_e5m2", "fp8_e4m3", "bf16", "bfloat16")
SGLANG_KV_CACHE_DTYPE = {"auto": "auto", "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2"}

# flag → (type, nargs, choices); type None: a switch without a value.
VLLM_FLAGS: dict[str, tuple[type | None, str | None, tuple | None]] = {
    "--served-model-name": (str, "+", None),
    "--dtype": (str, None, ("auto", "half", "float16", "bfloat16", "float", "float32")),
    "--max-model-len": (int, None, None),
    "--max-num-seqs": (int, None, None),
    "--gpu-memory-utilization": (float, None, None),
    "--host": (str, None, None),
    "--port": (int, None, None),
    "--enable-lora": (None, None, None),
    "--lora-modules": (str, "+", None),
    "--max-lora-rank": (int, None, VLLM_LORA_RANKS),
    "--max-loras": (int, None, None),
    "--max-cpu-loras": (int, None, None),
    "--quantization": (str, None, QUANTIZATIONS),
    "--kv-cache-dtype": (str, None, VLLM_KV_CACHE_DTYPES),
}
SGLANG_FLAGS: dict[str, tuple[type | None, str | None, tuple | None]] = {
    "--model-path": (str, None, None),
    "--served-model-name": (str, None, None),
    "--dtype": (str, None, ("auto", "half", "float16", "bfloat16", "float", "float32")),
    "--context-length": (int, None, None),
    "--max-running-requests": (int, None, None),
    "--host": (str, None, None),
    "--port": (int, None, None),
    "--enable-lora": (None, None, None),
    "--lora-paths": (str, "+", None),
    "--max-lora-rank": (int, None, None),
    "--max-loras-per-batch": (int, None, None),
    "--quantization": (str, None, QUANTIZATIONS),
    "--kv-cache-dtype": (str, None, SGLANG_KV_CACHE_DTYPES),
}


def vllm_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts for `--max-lora-rank` that holds `rank`.

    Raises:
        ValueError: `rank` is above vLLM's largest (512).
    """
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ValueError(f"LoRA rank {rank} is above the largest vLLM serves ({VLLM_LORA_RANKS[-1]})")


def parser(table: dict, *, positional_model: bool) -> argparse.ArgumentParser:
    """An argparse parser accepting exactly the flags of `table` (and vLLM's positional model)."""
    p = argparse.ArgumentParser(exit_on_error=False, allow_abbrev=False)
    if positional_model:
        p.add_argument("model")
    for flag, (kind, nargs, choices) in table.items():
        if kind is None:
            p.add_argument(flag, action="store_true")
        else:
            p.add_argument(flag, type=kind, nargs=nargs, choices=choices)
    return p


def config_to_argv(config: dict) -> list[str]:
    """A vLLM `--config` YAML's mapping as the arguments it stands for (key → `--key`, lists repeated, true → switch)."""
    argv: list[str] = []
    for key, value in config.items():
        flag = f"--{key}"
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *(str(v) for v in value)]
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv
