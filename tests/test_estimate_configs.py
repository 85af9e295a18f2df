"""`--from` config reading: one real-format file per tool, launcher configs, every key accounted for, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.estimate.configs import detect_tool, parse_training_config, read_training_config
from advisor.core.estimate.launchers import fsdp_settings, read_accelerate, read_deepspeed

CONFIGS = Path(__file__).parent / "fixtures" / "configs"


@pytest.mark.parametrize(
    "name,tool,model,method,options",
    [
        ("axolotl-qlora.yml", "axolotl", "meta-llama/Llama-3.1-8B", "qlora",
         dict(lora_rank=32, lora_targets="all-linear", lora_dropout=0.05, batch_size=2, seq_len=2048, packing=True,
              grad_ckpt=True, optimizer="paged-adamw-8bit", attention="flash", double_quant=True)),
        ("axolotl-dpo-lora.yml", "axolotl", "meta-llama/Llama-3.2-1B", "dpo",
         dict(lora_rank=16, lora_targets=["q_proj", "k_proj", "v_proj", "o_proj"], lora_dropout=0.0, batch_size=1,
              seq_len=1024, packing=False, grad_ckpt=True, optimizer="adamw", attention="sdpa")),
        ("llama-factory-lora-sft.yaml", "llama-factory", "Qwen/Qwen2.5-7B-Instruct", "lora",
         dict(lora_rank=8, lora_targets="all-linear", lora_dropout=0.0, batch_size=1, seq_len=1024, grad_ckpt=True,
              packing=False, optimizer="adamw", attention="sdpa")),
        ("llama-factory-qlora-ds.yaml", "llama-factory", "meta-llama/Llama-3.1-8B", "qlora",
         dict(lora_rank=16, lora_targets=["q_proj", "v_proj"], batch_size=2, seq_len=2048, double_quant=True,
              zero_stage=2, offload_optimizer=True)),
        ("trl-sft-qlora.yaml", "trl", "Qwen/Qwen2.5-1.5B-Instruct", "qlora",
         dict(lora_rank=16, lora_targets="all-linear", lora_dropout=0.05, batch_size=2, seq_len=2048, packing=True,
              grad_ckpt=True, double_quant=True, attention="sdpa")),
        ("hf-training-args.json", "hf-trainer", None, "full",
         dict(batch_size=4, grad_ckpt=True, optimizer="adamw", packing=False)),
    ],
)
def test_each_tool_config_is_read(name, tool, model, method, options):
    reading = read_training_config(CONFIGS / name)
    assert (reading.tool, reading.model, reading.method) == (tool, model, method)
    assert {k: reading.options.get(k) for k in options} == options
    assert reading.compute in ("auto", "bf16")
    assert not reading.unsupported
    # Every key of the file is in exactly one list.
    import json

    import yaml

    text = (CONFIGS / name).read_text()
    keys = set(json.loads(text) if name.endswith(".json") else yaml.safe_load(text))
    lists = [set(reading.used), set(reading.ignored), set(reading.unknown)]
    assert set.union(*lists) == keys and sum(map(len, lists)) == len(keys)
    assert reading.unknown == []


def test_tool_defaults_are_named():
    reading = read_training_config(CONFIGS / "llama-factory-lora-sft.yaml")
    assert any("`lora_dropout` not set: 0.0" in line for line in reading.defaulted)
    assert reading.fp32_weights == "trainable"  # LLaMA-Factory casts trainable params to fp32 (full FT: mixed)


def test_unknown_keys_are_listed_not_dropped():
    data = {"base_model": "meta-llama/Llama-3.1-8B", "adapter": "lora", "lora_dropuot": 0.1, "micro_batch_size": 2}
    reading = parse_training_config(data, "x.yml")
    assert reading.unknown == ["lora_dropuot"]
    assert reading.options["lora_dropout"] == 0.0  # Axolotl's default, said in `defaulted`
    assert any("lora_dropout" in line for line in reading.defaulted)


def test_what_cannot_be_modelled_is_named():
    reading = parse_training_config({"base_model": "m", "adapter": "lora", "load_in_8bit": True,
                                     "optimizer": "lion_8bit"}, "x.yml")
    assert set(reading.unsupported) == {"method", "optimizer"}
    assert "8-bit base" in reading.unsupported["method"] and "lion_8bit" in reading.unsupported["optimizer"]


def test_trl_loads_a_model_id_in_fp32_unless_dtype_says():
    base = {"model_name_or_path": "m", "use_peft": True, "max_length": 512, "bf16": True}
    assert parse_training_config(base, "t.yaml").fp32_weights == "all"  # ModelConfig.dtype defaults to float32
    assert parse_training_config({**base, "dtype": "bfloat16"}, "t.yaml").fp32_weights == "none"
    qlora = parse_training_config({**base, "load_in_4bit": True}, "t.yaml")
    assert qlora.options["kbit_prep"] is True  # non-4-bit modules stay fp32, like k-bit prep leaves them


@pytest.mark.parametrize(
    "data,tool",
    [({"base_model": "m", "sequence_len": 1}, "axolotl"),
     ({"model_name_or_path": "m", "stage": "sft", "finetuning_type": "lora"}, "llama-factory"),
     ({"model_name_or_path": "m", "max_length": 1}, "trl"),
     ({"per_device_train_batch_size": 1, "output_dir": "o"}, "hf-trainer"),
     ({"colour": "blue"}, None)],
)
def test_detect_tool(data, tool):
    assert detect_tool(data) == tool


def test_deepspeed_and_accelerate_and_fsdp():
    ds = read_deepspeed({"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"},
                                               "offload_param": {"device": "nvme"}},
                         "train_micro_batch_size_per_gpu": 4}, "ds.json")
    assert (ds["zero_stage"], ds["offload_optimizer"], ds["offload_params"], ds["batch_size"]) == (3, True, True, 4)
    assert "batch_size" not in read_deepspeed({"train_micro_batch_size_per_gpu": "auto"}, "ds.json")
    import yaml

    acc = read_accelerate(yaml.safe_load((CONFIGS / "accelerate-fsdp.yaml").read_text()), "acc.yaml")
    assert (acc["n_gpus"], acc["zero_stage"], acc["compute"]) == (4, 3, "bf16")
    assert fsdp_settings("shard_grad_op auto_wrap", None, "x")["zero_stage"] == 2
    assert fsdp_settings(True, {"reshard_after_forward": False}, "x")["zero_stage"] == 2
    offload = fsdp_settings(["full_shard", "offload"], None, "x")
    assert offload["offload_optimizer"] and offload["offload_params"]
    assert fsdp_settings(None, {"min_num_params": 0}, "x") == {}  # a TrainingArguments dump's default fsdp_config


def test_accelerate_config_gives_gpu_count():
    reading = read_training_config(CONFIGS / "hf-training-args.json", accelerate_config=CONFIGS / "accelerate-fsdp.yaml")
    assert (reading.options["n_gpus"], reading.options["zero_stage"]) == (4, 3)


@pytest.mark.parametrize(
    "name,fragment",
    [("bad-not-a-mapping.yaml", "must be a mapping"), ("bad-syntax.yml", "not valid YAML"),
     ("bad-unknown-format.yaml", "not an Axolotl, LLaMA-Factory or TRL"),
     ("bad-value.yml", "`micro_batch_size` must be a positive integer")],
)
def test_bad_files_are_one_line_errors(name, fragment):
    with pytest.raises(AdvisorError) as info:
        read_training_config(CONFIGS / name)
    assert fragment in info.value.message and "\n" not in info.value.message


def test_missing_deepspeed_file_is_named(tmp_path):
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: m\nstage: sft\ndeepspeed: nowhere.json\n")
    with pytest.raises(InvalidInputError) as info:
        read_training_config(tmp_path / "cfg.yaml")
    assert "nowhere.json" in info.value.message and "--deepspeed" in (info.value.hint or "")
