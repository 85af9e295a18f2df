"""`advisor estimate --stack/--loss-kernel/--kbit-prep/... and --from FILE` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app

_register()
runner = CliRunner()
CONFIGS = Path(__file__).parent / "fixtures" / "configs"


def invoke(*args: str):
    return runner.invoke(app, ["estimate", *args])


def estimate_json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_loss_kernel_flag_moves_the_vocabulary_term():
    args = ("--model", "qwen2.5-1.5b", "--method", "lora", "--seq-len", "2048")
    chunked, full = estimate_json(*args), estimate_json(*args, "--loss-kernel", "full")
    assert chunked["spec"]["loss_kernel"] == "chunked" and full["spec"]["loss_kernel"] == "full"
    assert full["memory"]["logits_bytes"] > 4 * chunked["memory"]["logits_bytes"]


def test_default_stack_is_trl_and_todays_numbers():
    args = ("--model", "llama-3.1-8b", "--method", "qlora", "--gpu", "a10g-24gb")
    plain, trl = estimate_json(*args), estimate_json(*args, "--stack", "trl")
    assert plain["memory"] == trl["memory"]
    assert plain["stack"]["name"] == "trl" and plain["spec"]["grad_ckpt"] is True


def test_each_knob_is_a_flag_and_overrides_the_stack():
    data = estimate_json("--model", "qwen2.5-1.5b", "--method", "qlora", "--stack", "hf-trainer", "--grad-ckpt",
                         "--no-kbit-prep", "--adapter-dtype", "bf16", "--packing", "--attention", "eager",
                         "--optimizer", "paged-adamw-8bit")
    spec = data["spec"]
    assert (spec["stack"], spec["grad_ckpt"], spec["kbit_prep"], spec["adapter_dtype"], spec["packing"],
            spec["attention"], spec["optimizer"], spec["loss_kernel"]) == (
        "hf-trainer", True, False, "bf16", True, "eager", "paged-adamw-8bit", "full")
    assert any("set (the hf-trainer default is true)" in line for line in data["stack"]["knobs"])


def test_hf_trainer_qlora_shows_the_kbit_prep_row_and_profile():
    result = invoke("--model", "qwen2.5-1.5b", "--method", "qlora", "--stack", "hf-trainer", "--explain")
    assert result.exit_code == 0, result.output
    assert "fp32 upcast of k-bit prep" in result.stdout
    assert "stack profile `hf-trainer`" in result.stdout and "prepare_model_for_kbit_training" in result.stdout


@pytest.mark.parametrize("name,extra", [
    ("axolotl-qlora.yml", ()), ("axolotl-dpo-lora.yml", ()), ("llama-factory-lora-sft.yaml", ()),
    ("llama-factory-qlora-ds.yaml", ()), ("trl-sft-qlora.yaml", ()), ("hf-training-args.json", ("--model", "llama-3.2-1b")),
])
def test_from_each_tool(name, extra):
    result = invoke("--from", str(CONFIGS / name), *extra, "--gpu", "a100-80gb", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stack"]["name"] in ("axolotl", "llama-factory", "trl", "hf-trainer")
    assert f"read `{CONFIGS / name}`" in result.stderr and "keys used" in result.stderr


def test_from_axolotl_qlora_reads_the_job():
    data = estimate_json("--from", str(CONFIGS / "axolotl-qlora.yml"))
    spec = data["spec"]
    assert (data["model"], data["method"]) == ("llama-3.1-8b", "qlora")
    assert (spec["lora_rank"], spec["batch_size"], spec["seq_len"], spec["optimizer"], spec["loss_kernel"],
            spec["stack"], spec["adapter_dtype"]) == (32, 2, 2048, "paged-adamw-8bit", "full", "axolotl", "fp32")


def test_flags_typed_override_the_file():
    data = estimate_json("--from", str(CONFIGS / "axolotl-qlora.yml"), "--batch-size", "8", "--stack", "trl")
    assert data["spec"]["batch_size"] == 8 and data["spec"]["stack"] == "trl"
    assert data["spec"]["seq_len"] == 2048  # still the file's


def test_from_llama_factory_full_keeps_fp32_master_weights(tmp_path):
    cfg = (CONFIGS / "llama-factory-lora-sft.yaml").read_text().replace("finetuning_type: lora", "finetuning_type: full")
    (tmp_path / "full.yaml").write_text(cfg)
    data = estimate_json("--from", str(tmp_path / "full.yaml"), "--gpu", "h100-80gb")
    assert data["precision"] == "bf16-mixed" and "fp32 trainable weights" in data["precision_reason"]


def test_unknown_keys_are_warned(tmp_path):
    (tmp_path / "a.yml").write_text("base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nlora_dropuot: 0.1\n")
    result = invoke("--from", str(tmp_path / "a.yml"), "--json")
    assert result.exit_code == 0
    assert "warning: unknown keys" in result.stderr and "`lora_dropuot`" in result.stderr


@pytest.mark.parametrize("name,fragment", [
    ("bad-not-a-mapping.yaml", "must be a mapping"), ("bad-syntax.yml", "not valid YAML"),
    ("bad-unknown-format.yaml", "not an Axolotl"), ("bad-value.yml", "micro_batch_size"),
])
def test_bad_files_exit_2_with_one_line(name, fragment):
    assert_user_error(invoke("--from", str(CONFIGS / name)), fragment)


def test_missing_model_is_named():
    assert_user_error(invoke("--from", str(CONFIGS / "hf-training-args.json")), "names no base model", "--model")


def test_unsupported_setting_is_refused_unless_overridden(tmp_path):
    (tmp_path / "a.yml").write_text("base_model: meta-llama/Llama-3.2-1B\nadapter: lora\noptimizer: lion_8bit\n")
    assert_user_error(invoke("--from", str(tmp_path / "a.yml")), "lion_8bit", "--optimizer")
    assert invoke("--from", str(tmp_path / "a.yml"), "--optimizer", "adamw").exit_code == 0


def test_sharding_without_gpu_count_names_the_flag(tmp_path):
    (tmp_path / "a.yml").write_text("base_model: meta-llama/Llama-3.1-8B\nfsdp_version: 2\n"
                                    "fsdp_config:\n  reshard_after_forward: true\n")
    assert_user_error(invoke("--from", str(tmp_path / "a.yml")), "GPU count", "--gpus")
    data = estimate_json("--from", str(tmp_path / "a.yml"), "--gpus", "4")
    assert (data["spec"]["zero_stage"], data["spec"]["n_gpus"]) == (3, 4)


def test_launcher_configs_need_from():
    assert_user_error(invoke("--model", "llama-3.2-1b", "--deepspeed", str(CONFIGS / "ds_z2_offload_config.json")),
                      "--from")
