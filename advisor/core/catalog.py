"""Model and GPU catalogs: loads rules/catalog/*.yaml and turns Hugging Face config.json files into specs.

On the CLI's fast path: imports only the standard library, yaml and pydantic (never torch, transformers or
huggingface_hub). A Hub config is fetched with urllib, and only when the Hub is not switched off.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from advisor.core.errors import AdvisorError, InvalidInputError, UnknownNameError
from advisor.core.models import ApiPriceSpec, GpuSpec, ModelSpec
from advisor.core.models import catalog as limits

__all__ = [
    "load_gpus",
    "load_model_rows",
    "load_models",
    "model_spec_from_hf_config",
    "resolve_gpu",
    "resolve_model",
    "rules_dir",
]

HUB_CONFIG_URL = "https://huggingface.co/{repo_id}/resolve/main/config.json"
HUB_TIMEOUT_SECONDS = 5.0  # a CLI look-up: fail fast and suggest a local path instead
SUPPORTED_MODEL_TYPES = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "phi3",
    "falcon",
    "stablelm",
)
# Defaults of the HF config classes (transformers 5, configuration_<model_type>.py) for fields a published
# config.json may leave out; AutoConfig fills them the same way.
TIE_WORD_EMBEDDINGS_DEFAULT = {"gemma": True, "gemma2": True, "falcon": True}  # every other family: False
HEAD_DIM_DEFAULT = {"gemma": 256, "gemma2": 256}  # others: hidden_size // num_attention_heads
FALCON_MAX_POSITION_EMBEDDINGS_DEFAULT = 2048  # FalconConfig default; Falcon-7B's config.json does not set it
FALCON_FFN_MULTIPLIER = 4  # FalconConfig: ffn_hidden_size None -> 4 * hidden_size
NORMS_PER_LAYER = {"gemma2": 4}  # input, post-attention, pre- and post-feedforward RMSNorm; others 2
# Whole-number config.json keys this module reads, with the ModelSpec bound each one feeds (models/catalog.py).
CONFIG_INT_LIMITS = {
    "vocab_size": limits.MAX_VOCAB_SIZE, "hidden_size": limits.MAX_HIDDEN_SIZE,
    "intermediate_size": limits.MAX_INTERMEDIATE_SIZE, "ffn_hidden_size": limits.MAX_INTERMEDIATE_SIZE,
    "num_hidden_layers": limits.MAX_LAYERS, "num_attention_heads": limits.MAX_HEADS,
    "num_key_value_heads": limits.MAX_HEADS, "num_kv_heads": limits.MAX_HEADS, "head_dim": limits.MAX_HEAD_DIM,
    "max_position_embeddings": limits.MAX_CONTEXT, "num_local_experts": limits.MAX_EXPERTS,
    "num_experts_per_tok": limits.MAX_EXPERTS, "num_ln_in_parallel_attn": limits.MAX_NORMS_PER_LAYER,
}
CONFIG_FLAGS = ("tie_word_embeddings", "attention_bias", "mlp_bias", "use_qkv_bias", "qk_layernorm",
                "use_parallel_residual", "new_decoder_architecture", "multi_query", "parallel_attn", "bias")
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config.json is a few kilobytes; anything this large is another file


def rules_dir() -> Path:
    """Find the `rules/` folder: inside the installed wheel first, else the checkout's `<repo>/rules`."""
    package_dir = Path(__file__).resolve().parents[1]  # advisor/
    installed = package_dir / "_rules"  # pyproject.toml: hatch force-include "rules" = "advisor/_rules"
    if installed.is_dir():
        return installed
    return package_dir.parent / "rules"


def _cache_dir() -> Path:
    base = os.environ.get("ADVISOR_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "advisor"
    )
    return Path(base) / "catalog"


def _load_yaml(path: Path) -> Any:
    """Parse a catalog file, through a JSON copy keyed by the file's size and mtime.

    Importing and running the YAML parser costs more than the rest of `advisor estimate` together;
    JSON parses in a fraction of it (benchmarks/bench_cold_start.py). A stale or unwritable cache is
    ignored: the YAML file is the only source of truth.
    """
    stat = path.stat()
    cached = _cache_dir() / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}.json"
    try:
        return json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    from advisor.core.fileio import write_text_atomic

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cached, json.dumps(data))
    except OSError:
        pass
    return data


@cache
def load_model_rows() -> tuple[dict[str, Any], ...]:
    """The raw rows of `rules/catalog/models.yaml` (name, hf_id, source, aliases, note, config)."""
    return tuple(_load_yaml(rules_dir() / "catalog" / "models.yaml")["models"])


@cache
def load_models() -> dict[str, ModelSpec]:
    """Every catalog model as a ModelSpec, keyed by catalog name."""
    return {
        row["name"]: model_spec_from_hf_config(row["config"], row["name"], row["source"])
        for row in load_model_rows()
    }


@cache
def _gpu_rows() -> tuple[dict[str, Any], ...]:
    return tuple(_load_yaml(rules_dir() / "catalog" / "gpus.yaml")["gpus"])


@cache
def load_gpus() -> dict[str, GpuSpec]:
    """Every catalog GPU, keyed by catalog id."""
    return {row["name"]: GpuSpec(**{k: v for k, v in row.items() if k != "aliases"}) for row in _gpu_rows()}


def _require(cfg: dict[str, Any], field: str, source: str) -> Any:
    if cfg.get(field) is None:
        raise InvalidInputError(
            [f"{source}: config is missing `{field}`"],
            hint="give the model's full config.json (the file published next to its weights)",
        )
    return cfg[field]


def model_spec_from_hf_config(cfg: dict[str, Any], name: str, source: str) -> ModelSpec:
    """Map a Hugging Face config.json to a ModelSpec.

    Args:
        cfg: The parsed config.json.
        name: Name the spec goes by (catalog name, Hub id or path).
        source: Where the config came from (URL or path); named in error messages.

    Returns:
        The architecture, with the HF config class's defaults for fields the file leaves out.

    Raises:
        InvalidInputError: The config is not a JSON object, a field the architecture needs is missing, or a
            field has the wrong type or an absurd value (every such field is listed).
        AdvisorError: The `model_type` is not one the estimator knows.
    """
    cfg = _checked_config(cfg, source)
    model_type = _require(cfg, "model_type", source)
    if not isinstance(model_type, str) or model_type not in SUPPORTED_MODEL_TYPES:
        raise AdvisorError(
            f"unsupported model_type `{model_type if isinstance(model_type, str) else _shown(model_type)}` in {source}",
            "supported: " + ", ".join(f"`{t}`" for t in SUPPORTED_MODEL_TYPES),
        )
    hidden = _require(cfg, "hidden_size", source)
    n_heads = _require(cfg, "num_attention_heads", source)
    common: dict[str, Any] = {
        "name": name,
        "arch": model_type,
        "vocab_size": _require(cfg, "vocab_size", source),
        "hidden_size": hidden,
        "n_layers": _require(cfg, "num_hidden_layers", source),
        "n_heads": n_heads,
        "head_dim": cfg.get("head_dim") or HEAD_DIM_DEFAULT.get(model_type) or hidden // n_heads,
        "tie_embeddings": cfg.get("tie_word_embeddings", TIE_WORD_EMBEDDINGS_DEFAULT.get(model_type, False)),
        "source": source,
    }
    if not cfg.get("head_dim") and model_type not in HEAD_DIM_DEFAULT and hidden < n_heads:
        raise InvalidInputError([f"{source}: `hidden_size` ({hidden}) must be at least `num_attention_heads` "
                                 f"({n_heads}), or give `head_dim`"])
    if model_type == "falcon":
        return _model_spec({**common, **_falcon_fields(cfg, hidden, n_heads)})
    fields: dict[str, Any] = {
        "intermediate_size": _require(cfg, "intermediate_size", source),
        "n_kv_heads": cfg.get("num_key_value_heads") or n_heads,
        "max_context": _require(cfg, "max_position_embeddings", source),
        "norms_per_layer": NORMS_PER_LAYER.get(model_type, 2),
    }
    attention_bias = bool(cfg.get("attention_bias", False))
    if model_type in ("llama", "qwen3", "gemma", "gemma2"):
        fields.update(qkv_bias=attention_bias, o_bias=attention_bias)
    if model_type == "llama":
        fields["mlp_bias"] = bool(cfg.get("mlp_bias", False))
    if model_type == "qwen2":
        fields["qkv_bias"] = True  # Qwen2Attention: q/k/v_proj always have a bias, o_proj never
    if model_type == "qwen3":
        fields["qk_norm"] = True
    if model_type == "mixtral":
        fields.update(
            n_experts=_require(cfg, "num_local_experts", source),
            n_experts_active=_require(cfg, "num_experts_per_tok", source),
        )
    if model_type == "stablelm":
        fields.update(
            qkv_bias=bool(cfg.get("use_qkv_bias", False)),
            qk_norm=bool(cfg.get("qk_layernorm", False)),
            norm="layernorm",
            norms_per_layer=1 if cfg.get("use_parallel_residual", False) else 2,
        )
    return _model_spec({**common, **fields})


def _model_spec(fields: dict[str, Any]) -> ModelSpec:
    """ModelSpec's own checks (GQA head ratio, expert counts), each problem named with the config's source."""
    from pydantic import ValidationError

    from advisor.core.validation import validation_problems

    try:
        return ModelSpec(**fields)
    except ValidationError as exc:
        source = fields["source"]
        raise InvalidInputError([f"{source}: {p.removeprefix('(input): ')}" for p in validation_problems(exc)],
                                hint="check the model's config.json") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _checked_config(cfg: Any, source: str) -> dict[str, Any]:
    """The config with whole-number fields as ints; every wrong type or out-of-range value is an error."""
    if not isinstance(cfg, dict):
        raise InvalidInputError([f"{source}: a config.json must hold a JSON object (got a {type(cfg).__name__})"],
                                hint="give the model's config.json (the file published next to its weights)")
    checked, problems = dict(cfg), []
    for key, bound in CONFIG_INT_LIMITS.items():
        value = cfg.get(key)
        if value is None:
            continue
        whole = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            whole, value = True, int(value)
        if not whole or not 1 <= value <= bound:
            problems.append(f"{source}: `{key}` must be a whole number from 1 to {bound:,} (got {_shown(cfg[key])})")
        else:
            checked[key] = value
    problems += [f"{source}: `{key}` must be true or false (got {_shown(cfg[key])})" for key in CONFIG_FLAGS
                 if cfg.get(key) is not None and not isinstance(cfg[key], bool)]
    if problems:
        raise InvalidInputError(problems, hint="fix these fields of the config.json, or give the model's published one")
    return checked


def _falcon_fields(cfg: dict[str, Any], hidden: int, n_heads: int) -> dict[str, Any]:
    """FalconAttention/FalconDecoderLayer layout (transformers models/falcon/modeling_falcon.py)."""
    new_arch = bool(cfg.get("new_decoder_architecture", False))
    multi_query = bool(cfg.get("multi_query", True))
    parallel_attn = bool(cfg.get("parallel_attn", True))
    if new_arch:
        n_kv = cfg.get("num_kv_heads") or n_heads
    else:
        n_kv = 1 if multi_query else n_heads
    n_ln = cfg.get("num_ln_in_parallel_attn") or (2 if new_arch else 1)
    bias = bool(cfg.get("bias", False))
    return {
        "intermediate_size": cfg.get("ffn_hidden_size") or FALCON_FFN_MULTIPLIER * hidden,
        "n_kv_heads": n_kv,
        "max_context": cfg.get("max_position_embeddings") or FALCON_MAX_POSITION_EMBEDDINGS_DEFAULT,
        "qkv_bias": bias,
        "o_bias": bias,
        "mlp_bias": bias,
        "mlp_gated": False,
        "norm": "layernorm",
        "norms_per_layer": n_ln if parallel_attn else 2,
    }


def _model_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for row in load_model_rows():
        for key in (row["name"], row["hf_id"], *row.get("aliases", [])):
            index[key.lower()] = row["name"]
    return index


def _read_config_file(path: Path) -> ModelSpec:
    config_path = path / "config.json" if path.is_dir() else path
    if not config_path.is_file():
        raise InvalidInputError(
            [f"{path}: no config.json in this folder"], hint="give the model folder or its config.json"
        )
    from advisor.core.yamlio import read_text_file

    text = read_text_file(config_path, "config file", max_bytes=MAX_CONFIG_BYTES)
    try:
        cfg = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, a 5,000-digit number, [[[[...]]]] nesting
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise InvalidInputError([f"{config_path}: not a valid JSON file ({' '.join(reason.split())[:120]})"]) from None
    return model_spec_from_hf_config(cfg, str(path), str(config_path))


def _hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _fetch_hub_config(repo_id: str) -> dict[str, Any] | None:
    import urllib.error  # only when online look-ups happen: urllib.request costs ~30 ms to import
    import urllib.request

    url = HUB_CONFIG_URL.format(repo_id=repo_id)
    try:
        with urllib.request.urlopen(url, timeout=HUB_TIMEOUT_SECONDS) as response:  # noqa: S310 - fixed https URL
            return json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, RecursionError):
        return None


def _unknown_model(name: str, reason: str) -> UnknownNameError:
    error = UnknownNameError(
        "model", name, sorted(row["name"] for row in load_model_rows()), "advisor models"
    )
    error.hint = (
        f"{error.hint}, or give a path to a config.json or to the model folder that holds one ({reason})"
    )
    return error


def resolve_model(name_or_path: str) -> ModelSpec:
    """Find a model's architecture by catalog name, alias, Hub id, local path or (online) the Hub.

    Args:
        name_or_path: `llama-3.1-8b`, `meta-llama/Llama-3.1-8B`, `./my-model`, `./my-model/config.json`.

    Returns:
        The architecture.

    Raises:
        UnknownNameError: Not in the catalog, not a path, and the Hub is offline or has no such config.
        InvalidInputError: The config.json found lacks a needed field.
    """
    models = load_models()
    catalog_name = _model_index().get(name_or_path.lower())
    if catalog_name is not None:
        return models[catalog_name]
    path = Path(name_or_path).expanduser()
    if path.exists():
        return _read_config_file(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.endswith(".json"):
        raise InvalidInputError(
            [f"{name_or_path}: no such file or folder"],
            hint="give a path to a config.json or the model folder",
        )
    if "/" not in name_or_path or name_or_path.count("/") > 1:
        raise _unknown_model(name_or_path, "not in the catalog and no such path")
    if _hub_is_offline():
        raise _unknown_model(name_or_path, "not in the catalog and HF_HUB_OFFLINE=1")
    cfg = _fetch_hub_config(name_or_path)
    if cfg is None:
        raise _unknown_model(name_or_path, "its config.json could not be fetched from the Hub")
    return model_spec_from_hf_config(cfg, name_or_path, HUB_CONFIG_URL.format(repo_id=name_or_path))


def resolve_gpu(name: str) -> GpuSpec:
    """Find a GPU by catalog id or alias (case-insensitive).

    Raises:
        UnknownNameError: No such GPU; the hint names the closest ids.
    """
    gpus = load_gpus()
    index = {}
    for row in _gpu_rows():
        for key in (row["name"], *row.get("aliases", [])):
            index[str(key).lower()] = row["name"]
    gpu_id = index.get(name.lower())
    if gpu_id is None:
        raise UnknownNameError("GPU", name, sorted(gpus), "advisor gpus")
    return gpus[gpu_id]


@cache
def _price_doc() -> dict[str, Any]:
    return _load_yaml(rules_dir() / "catalog" / "prices.yaml")


def load_api_prices() -> dict[str, ApiPriceSpec]:
    """Every LLM API price row of `rules/catalog/prices.yaml`, keyed by name."""
    return {row["name"]: ApiPriceSpec(**row) for row in _price_doc()["api_models"]}


def resolve_api_model(name: str | None) -> ApiPriceSpec:
    """An API price row by name; None gives the catalog's default API model.

    Raises:
        UnknownNameError: No such API model; the hint names the closest.
    """
    prices = load_api_prices()
    key = name or _price_doc()["default_api_model"]
    if key not in prices:
        raise UnknownNameError("API model", key, sorted(prices), "advisor gpus --api")
    return prices[key]
