"""Reading the training configs users already have into estimator inputs: Axolotl, LLaMA-Factory, TRL/transformers.

`advisor estimate --from FILE` turns one config file (plus, optionally, an accelerate or DeepSpeed config for
sharding, see `launchers.py`) into the fields of an `EstimateSpec`. Every key of the file ends up in exactly
one list of the `ConfigReading`: `used` (it changed a field), `ignored` (known to the tool, no effect on
memory: learning rate, dataset, logging, ...) or `unknown` (not a key advisor knows for that tool, so
possibly a misspelling or a feature it does not model). What the file leaves out takes the tool's own
default, named in `defaulted`; what advisor cannot express is in `unsupported` (field -> why), and the CLI
refuses it unless the matching flag overrides it.

Key names and defaults were read from the tools' own schemas (see stacks.py for versions):
Axolotl `src/axolotl/utils/schemas/{config,training,peft}.py`; LLaMA-Factory `src/llamafactory/hparams/
{model,data,finetuning}_args.py` (HF `Seq2SeqTrainingArguments` for the rest); TRL `SFTConfig`, `DPOConfig`,
`ModelConfig` and transformers `TrainingArguments` (the JSON `TrainingArguments.to_json_string()` writes).

The parsers are pure (a mapping in, a reading out); `read_training_config` is the one function that reads files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from advisor.core.errors import InvalidInputError
from advisor.core.estimate import config_keys as K
from advisor.core.estimate.launchers import fsdp_settings, merge_launcher, read_accelerate, read_deepspeed
from advisor.core.models import Method, Model

__all__ = ["TOOL_LABELS", "ConfigReading", "Tool", "detect_tool", "parse_training_config", "read_training_config"]

Tool = Literal["axolotl", "llama-factory", "trl", "hf-trainer"]
TOOL_LABELS = {"axolotl": "an Axolotl", "llama-factory": "a LLaMA-Factory", "trl": "a TRL",
               "hf-trainer": "a transformers TrainingArguments"}
Compute = Literal["auto", "fp32", "bf16", "fp16"]


class ConfigReading(Model):
    """One training config read into estimator fields, with every key accounted for."""

    path: str = Field(description="The file read")
    tool: Tool = Field(description="Which tool's format it is (also the stack profile of its defaults)")
    model: str | None = Field(description="The base model as the file names it; None: the file does not say")
    method: Method = Field(description="What the config trains")
    dpo_policy: Literal["full", "lora", "qlora"] = Field("lora", description="With method dpo: the policy")
    compute: Compute = Field(description="Compute dtype the file asks for; auto: bf16 where the GPU has it")
    fp32_weights: Literal["none", "trainable", "all"] = Field(
        description="Weights kept in fp32 under 16-bit autocast: none; the trainable ones (full fine-tuning); "
        "all (the model was loaded in fp32)"
    )
    options: dict[str, Any] = Field(description="EstimateSpec fields the file sets, by field name")
    used: list[str] = Field(description="Keys that set a field")
    ignored: list[str] = Field(description="Keys of the tool that do not change memory")
    unknown: list[str] = Field(description="Keys advisor does not know for this tool")
    defaulted: list[str] = Field(description="Fields the file leaves out, with the tool's default taken")
    unsupported: dict[str, str] = Field(description="Field -> what in the file advisor cannot express")
    notes: list[str] = Field(description="How values were read, and what is approximate")
    deepspeed_file: str | None = Field(None, description="A DeepSpeed JSON the file names (`deepspeed: PATH`)")


class _Cfg:
    """The file's mapping, recording which keys were read."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where, self.used = data, where, set()
        self.defaulted: list[str] = []
        self.unsupported: dict[str, str] = {}
        self.notes: list[str] = []

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, default: Any = None, what: str = "") -> Any:
        if key in self.data:
            self.used.add(key)
        value = self.data.get(key)
        if value is None:
            if what:
                self.defaulted.append(f"`{key}` not set: {default!r} ({what}'s default)")
            return default
        return value

    def default(self, key: str, value: Any, tool: str) -> Any:
        """`key` as an int/bool/str, or the tool's default (recorded)."""
        return self.get(key, value, what=tool)

    def integer(self, key: str, default: int, tool: str) -> int:
        value = self.default(key, default, tool)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError([f"{self.where}: `{key}` must be a positive integer (got {value!r})"])
        return value

    def number(self, key: str, default: float, tool: str) -> float:
        value = self.default(key, default, tool)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError([f"{self.where}: `{key}` must be a number (got {value!r})"])
        return float(value)

    def flag(self, key: str, default: bool, tool: str = "") -> bool:
        value = self.default(key, default, tool) if tool else self.get(key, default)
        if value in ("auto", "true", "True"):  # Axolotl's `bf16: auto`; YAML strings from templates
            return True
        if value in ("false", "False"):
            return False
        if not isinstance(value, bool):
            raise InvalidInputError([f"{self.where}: `{key}` must be true or false (got {value!r})"])
        return value


def _split(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _optimizer(cfg: _Cfg, key: str, tool: str) -> str | None:
    name = str(cfg.default(key, "adamw_torch_fused", tool)).lower()
    if name in K.OPTIMIZERS:
        return K.OPTIMIZERS[name]
    cfg.unsupported["optimizer"] = f"`{key}: {name}` is not modelled (AdamW, 8-bit/paged AdamW, Adafactor, SGD are)"
    return None


def _attention(name: Any) -> str | None:
    return K.ATTENTION.get(str(name).lower())


# --- Axolotl -------------------------------------------------------------------------------------------


def _axolotl(cfg: _Cfg) -> dict[str, Any]:
    tool = "Axolotl"
    out: dict[str, Any] = {"model": cfg.get("base_model")}
    adapter = cfg.get("adapter")
    if cfg.flag("load_in_8bit", False):
        cfg.unsupported["method"] = "`load_in_8bit: true`: LoRA on an 8-bit base is not modelled"
    qlora = adapter == "qlora" or (adapter == "lora" and cfg.flag("load_in_4bit", False))
    cfg.get("load_in_4bit")
    train = "qlora" if qlora else "lora" if adapter == "lora" else "full"
    if adapter not in (None, "lora", "qlora"):
        cfg.unsupported["method"] = f"`adapter: {adapter}` is not modelled (lora, qlora or none are)"
    rl = cfg.get("rl")
    if rl not in (None, "dpo", "ipo"):
        cfg.unsupported["method"] = f"`rl: {rl}` is not modelled (DPO is)"
    out["method"], out["dpo_policy"] = ("dpo", train) if rl else (train, "lora")
    if train != "full":
        out["lora_rank"] = cfg.integer("lora_r", 8, tool + " (PEFT LoraConfig r)")
        out["lora_dropout"] = cfg.number("lora_dropout", 0.0, tool)
        if cfg.flag("lora_target_linear", False) or not cfg.has("lora_target_modules"):
            out["lora_targets"] = "all-linear"
            cfg.get("lora_target_modules")
            if not cfg.has("lora_target_linear"):
                cfg.notes.append("no LoRA targets set: all-linear assumed (PEFT's default differs per model)")
        else:
            out["lora_targets"] = _split(cfg.get("lora_target_modules"))
        if cfg.has("lora_modules_to_save") or cfg.flag("peft_use_dora", False):
            cfg.notes.append("lora_modules_to_save / DoRA add trainable weights that are not modelled")
    out["batch_size"] = cfg.integer("micro_batch_size", 1, tool)
    out["seq_len"] = cfg.integer("sequence_len", 512, tool)
    out["packing"] = cfg.flag("sample_packing", False, tool)
    ckpt = cfg.default("gradient_checkpointing", False, tool)
    if ckpt in ("offload", "offload_disk"):
        cfg.notes.append(f"`gradient_checkpointing: {ckpt}` also offloads activations (counted as on the GPU)")
    out["grad_ckpt"] = bool(ckpt)
    out["optimizer"] = _optimizer(cfg, "optimizer", tool)
    out["attention"] = _axolotl_attention(cfg)
    if (cfg.has("plugins") and any("cut_cross_entropy" in p or "liger" in p for p in cfg.get("plugins"))) \
            or cfg.flag("liger_fused_linear_cross_entropy", False) or cfg.flag("cut_cross_entropy", False):
        out["loss_kernel"] = "chunked"
        cfg.notes.append("Liger / Cut Cross-Entropy never materialise the logits: counted as TRL's chunked head")
    if qlora:
        out["double_quant"] = True  # loaders/model.py: bnb_4bit_use_double_quant=True, always
    out["compute"], fp32 = _axolotl_precision(cfg)
    out["fp32_weights"] = "trainable" if fp32 else "none"
    return out


def _axolotl_attention(cfg: _Cfg) -> str:
    for key, kernel in (("flash_attention", "flash"), ("sdp_attention", "sdpa"), ("eager_attention", "eager"),
                        ("xformers_attention", "flash")):
        if cfg.flag(key, False):
            return kernel
    name = cfg.get("attn_implementation")
    if name is None:
        return "sdpa"
    kernel = _attention(name)
    if kernel is None:
        cfg.unsupported["attention"] = f"`attn_implementation: {name}` is not modelled (eager, sdpa, flash are)"
        return "sdpa"
    return kernel


def _axolotl_precision(cfg: _Cfg) -> tuple[Compute, bool]:
    for key in ("bfloat16", "float16", "fp16", "bf16", "float32"):
        cfg.get(key)
    if cfg.flag("bfloat16", False):
        return "bf16", False  # no AMP: the model is bf16
    if cfg.flag("float16", False):
        return "fp16", False
    if cfg.flag("fp16", False):
        return "fp16", True  # fp16 AMP needs fp32 weights for its gradient scaler
    bf16 = cfg.default("bf16", "auto", "Axolotl")
    if bf16 == "auto":
        return "auto", False
    return ("bf16", False) if cfg.flag("bf16", True) else ("fp32", False)


# --- LLaMA-Factory --------------------------------------------------------------------------------------


def _llama_factory(cfg: _Cfg) -> dict[str, Any]:
    tool = "LLaMA-Factory"
    out: dict[str, Any] = {"model": cfg.get("model_name_or_path")}
    stage = cfg.default("stage", "sft", tool)
    kind = cfg.default("finetuning_type", "lora", tool)
    bits = cfg.get("quantization_bit")
    if kind not in ("lora", "full"):
        cfg.unsupported["method"] = f"`finetuning_type: {kind}` is not modelled (lora, full are)"
    if stage not in ("sft", "pt", "dpo"):
        cfg.unsupported["method"] = f"`stage: {stage}` is not modelled (sft, pt, dpo are)"
    if bits not in (None, 4):
        cfg.unsupported["method"] = f"`quantization_bit: {bits}` is not modelled (4-bit bitsandbytes is)"
    if bits is not None and cfg.default("quantization_method", "bnb", tool) != "bnb":
        cfg.unsupported["method"] = f"`quantization_method: {cfg.get('quantization_method')}` is not modelled (bnb is)"
    train = "qlora" if (bits == 4 and kind == "lora") else kind if kind in ("lora", "full") else "lora"
    out["method"], out["dpo_policy"] = ("dpo", train) if stage == "dpo" else (train, "lora")
    if train != "full":
        out["lora_rank"] = cfg.integer("lora_rank", 8, tool)
        out["lora_dropout"] = cfg.number("lora_dropout", 0.0, tool)
        target = cfg.default("lora_target", "all", tool)
        out["lora_targets"] = "all-linear" if str(target).strip() == "all" else _split(target)
    if train == "qlora":
        out["double_quant"] = cfg.flag("double_quantization", True, tool)
    out["batch_size"] = cfg.integer("per_device_train_batch_size", 8, "HF TrainingArguments")
    out["seq_len"] = cfg.integer("cutoff_len", 2048, tool)
    out["packing"] = cfg.flag("packing", False, tool) or cfg.flag("neat_packing", False)
    out["grad_ckpt"] = not cfg.flag("disable_gradient_checkpointing", False, tool)
    out["optimizer"] = _optimizer(cfg, "optim", "HF TrainingArguments")
    flash = str(cfg.default("flash_attn", "auto", tool)).lower()
    out["attention"] = {"auto": "sdpa", "sdpa": "sdpa", "disabled": "eager", "fa2": "flash", "fa3": "flash"}.get(
        flash, "sdpa")
    if cfg.flag("enable_liger_kernel", False):
        out["loss_kernel"] = "chunked"
        cfg.notes.append("Liger's fused linear cross-entropy never materialises the logits: counted as chunked")
    if cfg.flag("upcast_layernorm", False) or cfg.flag("use_unsloth", False):
        cfg.notes.append("upcast_layernorm / use_unsloth change activation dtypes or kernels: not modelled")
    pure, bf16, fp16 = cfg.flag("pure_bf16", False), cfg.flag("bf16", False), cfg.flag("fp16", False)
    if bf16 or pure:
        out["compute"] = "bf16"
    elif fp16:
        out["compute"] = "fp16"
    else:
        out["compute"] = "fp32"
        cfg.defaulted.append("`bf16`/`fp16` not set: fp32 (HF TrainingArguments' default)")
    out["fp32_weights"] = "none" if pure else "trainable"  # model/adapter.py: trainable params cast to fp32
    return out


# --- TRL / transformers TrainingArguments ----------------------------------------------------------------


def _trl(cfg: _Cfg, tool: Tool) -> dict[str, Any]:
    name = "TRL" if tool == "trl" else "HF TrainingArguments"
    out: dict[str, Any] = {"model": cfg.get("model_name_or_path")}
    dpo = any(cfg.has(key) for key in K.TRL_DPO_MARKERS)
    if cfg.flag("load_in_8bit", False):
        cfg.unsupported["method"] = "`load_in_8bit: true`: LoRA on an 8-bit base is not modelled"
    peft = cfg.flag("use_peft", False) or cfg.has("lora_r") or cfg.has("lora_target_modules")
    qlora = cfg.flag("load_in_4bit", False)
    train = "qlora" if qlora else "lora" if peft else "full"
    if tool == "hf-trainer" and not peft:
        cfg.notes.append("TrainingArguments do not say whether PEFT is used: full fine-tuning assumed "
                         "(pass `--method lora` if the script wraps the model with get_peft_model)")
    out["method"], out["dpo_policy"] = ("dpo", train) if dpo else (train, "lora")
    if train != "full":
        out["lora_rank"] = cfg.integer("lora_r", 16, "TRL ModelConfig")
        out["lora_dropout"] = cfg.number("lora_dropout", 0.05, "TRL ModelConfig")
        targets = cfg.get("lora_target_modules")
        out["lora_targets"] = "all-linear" if targets in (None, "all-linear") else _split(targets)
    if qlora:
        out["double_quant"] = cfg.flag("use_bnb_nested_quant", False, "TRL ModelConfig")
    out["batch_size"] = cfg.integer("per_device_train_batch_size", 8, name)
    if tool == "trl":
        key = "max_seq_length" if cfg.has("max_seq_length") else "max_length"
        out["seq_len"] = cfg.integer(key, 1024, "TRL SFTConfig/DPOConfig")
    out["packing"] = cfg.flag("packing", False, name) if tool == "trl" else False
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing (the old name is an alias).
    key = "activation_checkpointing" if cfg.has("activation_checkpointing") else "gradient_checkpointing"
    cfg.get("gradient_checkpointing")
    out["grad_ckpt"] = cfg.flag(key, tool == "trl", name)
    if cfg.flag("torch_compile", False):
        cfg.notes.append("torch_compile fuses and frees intermediates: not modelled (the estimate is high)")
    out["optimizer"] = _optimizer(cfg, "optim", name)
    attn = cfg.get("attn_implementation")
    out["attention"] = _attention(attn) or "sdpa" if attn is not None else "sdpa"
    if cfg.flag("use_liger_kernel", False):
        out["loss_kernel"] = "chunked"
        cfg.notes.append("Liger's fused linear cross-entropy never materialises the logits: counted as chunked")
    if cfg.flag("activation_offloading", False):
        cfg.notes.append("activation_offloading moves saved activations to the CPU: not modelled (over-estimate)")
    bf16, fp16 = cfg.flag("bf16", tool == "trl" and not cfg.has("fp16")), cfg.flag("fp16", False)
    out["compute"] = "bf16" if bf16 else "fp16" if fp16 else "fp32"  # SFTConfig: bf16 unless fp16 is set
    out["fp32_weights"] = _trl_weights(cfg, tool, train, out)
    return out


def _trl_weights(cfg: _Cfg, tool: Tool, train: str, out: dict[str, Any]) -> str:
    """TRL loads a model named by id in ModelConfig.dtype, default float32 (sft_trainer.py: "If `dtype` is not
    specified ... it defaults to `float32`"); a TrainingArguments file does not say (transformers 5: the
    checkpoint's dtype, bf16 for current models)."""
    key = "dtype" if cfg.has("dtype") else "torch_dtype"
    default = "float32" if tool == "trl" else "auto"
    dtype = str(cfg.default(key, default, "TRL ModelConfig" if tool == "trl" else "transformers 5 from_pretrained"))
    if dtype not in ("float32", "fp32") or out["compute"] == "fp32":
        return "none"
    if train == "qlora":
        out.setdefault("kbit_prep", True)
        cfg.notes.append(f"`{key}: {dtype}`: the modules bitsandbytes does not quantize stay fp32, as k-bit prep "
                         "leaves them (counted as kbit_prep)")
        return "none"
    cfg.notes.append(f"`{key}: {dtype}`: the model is fp32 under 16-bit autocast")
    return "all"


# --- detection and assembly ------------------------------------------------------------------------------


def detect_tool(data: dict[str, Any]) -> Tool | None:
    """Which tool a config mapping is for, from keys only that tool has; None when nothing matches.

    Axolotl and LLaMA-Factory keys decide first (both also carry TrainingArguments names); then a TRL-only
    key (SFTConfig/ModelConfig) makes a TrainingArguments file TRL's.
    """
    keys = set(data)
    axolotl, factory = len(keys & K.MARKERS["axolotl"]), len(keys & K.MARKERS["llama-factory"])
    if axolotl or factory:
        return "axolotl" if axolotl > factory else "llama-factory"
    if keys & K.TRL_ONLY:
        return "trl"
    return "hf-trainer" if keys & K.MARKERS["hf-trainer"] else None


def _sharding(cfg: _Cfg, tool: Tool) -> tuple[dict[str, Any], str | None]:
    """ZeRO/FSDP settings written into the training config itself, and a DeepSpeed file it names.

    TrainingArguments always carry an `fsdp_config` (its JSON dump writes the defaults), so there only a
    non-empty `fsdp` switches FSDP on; Axolotl switches it on with `fsdp_config` or `fsdp_version`.
    """
    out: dict[str, Any] = {}
    deepspeed = cfg.get("deepspeed")
    path = None
    if isinstance(deepspeed, dict):
        out.update(read_deepspeed(deepspeed, f"{cfg.where}: deepspeed"))
    elif deepspeed:
        path = str(deepspeed)
    on = cfg.get("fsdp") or (tool == "axolotl" and (cfg.get("fsdp_version") or cfg.data.get("fsdp_config")))
    fsdp_config = cfg.get("fsdp_config")
    if on:
        out.update(fsdp_settings(cfg.data.get("fsdp") or True, fsdp_config, f"{cfg.where}: fsdp"))
    cfg.notes += out.pop("notes", [])
    return out, path


def parse_training_config(data: Any, where: str, tool: Tool | None = None) -> ConfigReading:
    """Read one training config mapping (already parsed from YAML/JSON).

    Args:
        data: The file's top-level mapping.
        where: The file name, for messages.
        tool: The format; None: detect it from the keys.

    Raises:
        InvalidInputError: Not a mapping, an unknown format, or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise InvalidInputError([f"{where}: a training config must be a mapping of keys to values"])
    tool = tool or detect_tool(data)
    if tool is None:
        raise InvalidInputError(
            [f"{where}: not an Axolotl, LLaMA-Factory or TRL/transformers config (no key any of them uses)"],
            hint="Axolotl configs have `base_model`, LLaMA-Factory `model_name_or_path` + `stage`, "
                 "TrainingArguments `per_device_train_batch_size`",
        )
    cfg = _Cfg(data, where)
    out = _axolotl(cfg) if tool == "axolotl" else _llama_factory(cfg) if tool == "llama-factory" else _trl(cfg, tool)
    sharding, deepspeed_file = _sharding(cfg, tool)
    compute = sharding.pop("compute", None)
    out.update(sharding)
    if compute is not None and out["compute"] == "auto":
        out["compute"] = compute
    known = K.KNOWN[tool]
    ignored = sorted(k for k in data if k not in cfg.used and k in known)
    unknown = sorted(k for k in data if k not in cfg.used and k not in known)
    compute, fp32_weights = out.pop("compute"), out.pop("fp32_weights")
    model, method, policy = out.pop("model"), out.pop("method"), out.pop("dpo_policy")
    return ConfigReading(
        path=where, tool=tool, model=str(model) if model is not None else None, method=method, dpo_policy=policy,
        compute=compute, fp32_weights=fp32_weights,
        options={k: v for k, v in out.items() if v is not None}, used=sorted(cfg.used), ignored=ignored,
        unknown=unknown, defaulted=cfg.defaulted, unsupported=cfg.unsupported, notes=cfg.notes,
        deepspeed_file=deepspeed_file,
    )


def _load(path: str | os.PathLike[str], what: str) -> Any:
    import json

    from advisor.core.yamlio import load_yaml_file, read_text_file

    if Path(path).suffix.lower() == ".json":
        text = read_text_file(path, what)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError([f"{what} `{path}`: not valid JSON (line {exc.lineno}: {exc.msg})"]) from None
    return load_yaml_file(path, what)


def read_training_config(
    path: str | os.PathLike[str],
    accelerate_config: str | os.PathLike[str] | None = None,
    deepspeed_config: str | os.PathLike[str] | None = None,
) -> ConfigReading:
    """Read a training config file and, optionally, the launcher config that shards it.

    A `deepspeed:` key in the training config that names a JSON file next to it is read too.

    Raises:
        AdvisorError: A file cannot be read or parsed, or holds values of the wrong type.
    """
    reading = parse_training_config(_load(path, "training config"), str(path))
    launch: list[tuple[str, dict[str, Any]]] = []
    if reading.deepspeed_file and deepspeed_config is None:
        named = Path(reading.deepspeed_file)
        beside = Path(path).parent / named
        deepspeed_config = beside if not named.is_absolute() and beside.is_file() else named
        if not Path(deepspeed_config).is_file():
            raise InvalidInputError(
                [f"{path}: `deepspeed: {reading.deepspeed_file}` names a file that is not there"],
                hint="pass the DeepSpeed JSON with `--deepspeed FILE`",
            )
    if deepspeed_config is not None:
        launch.append((str(deepspeed_config), read_deepspeed(_load(deepspeed_config, "DeepSpeed config"),
                                                             str(deepspeed_config))))
    if accelerate_config is not None:
        launch.append((str(accelerate_config), read_accelerate(_load(accelerate_config, "accelerate config"),
                                                               str(accelerate_config))))
    return merge_launcher(reading, launch)
