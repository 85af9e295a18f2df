"""Builders for library objects, precision choice, accelerate configs, the tiny model and the estimator bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError
from advisor.core.models import TrainStep
from backends.train.device import DeviceInfo, choose_precision
from backends.train.launch import accelerate_config, launch_command, write_accelerate_config

FIXTURES = Path(__file__).parent / "fixtures" / "train"
CPU = DeviceInfo(kind="cpu", name="cpu", n_devices=1, memory_bytes=8 * 2**30, supports_bf16=False)
H100 = DeviceInfo(kind="cuda", name="NVIDIA H100", n_devices=8, memory_bytes=80 * 2**30, supports_bf16=True)
T4 = DeviceInfo(kind="cuda", name="Tesla T4", n_devices=1, memory_bytes=16 * 2**30, supports_bf16=False)


def _step(**kwargs) -> TrainStep:
    return TrainStep(**{"method": "lora", "base_model": "tiny-demo", "data_path": "d.jsonl", **kwargs})


@pytest.mark.parametrize(
    ("requested", "device", "expected"),
    [("auto", H100, "bf16"), ("auto", T4, "fp16"), ("auto", CPU, "fp32"), ("fp16", T4, "fp16"), ("fp32", H100, "fp32")],
)
def test_choose_precision(requested: str, device: DeviceInfo, expected: str) -> None:
    precision, reason = choose_precision(requested, device)
    assert precision == expected
    assert reason


@pytest.mark.parametrize(("requested", "device"), [("bf16", T4), ("fp16", CPU)])
def test_choose_precision_refuses_what_the_device_lacks(requested: str, device: DeviceInfo) -> None:
    with pytest.raises(AdvisorError):
        choose_precision(requested, device)


def test_lora_config_carries_the_plan() -> None:
    pytest.importorskip("peft")
    from backends.train.builders import _to_lora_config

    config = _to_lora_config(_step(lora_rank=8, lora_alpha=16, lora_dropout=0.1, use_dora=True,
                                   lora_targets=["q_proj", "v_proj"]))
    assert (config.r, config.lora_alpha, config.lora_dropout, config.use_dora) == (8, 16, 0.1, True)
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    assert config.task_type == "CAUSAL_LM"


def test_bnb_config_is_nf4_double_quant() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("bitsandbytes")
    from backends.train.builders import _to_bnb_config

    config = _to_bnb_config("bf16")
    assert config.load_in_4bit and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_sft_config_follows_the_step(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from backends.train.builders import _to_dpo_config, _to_sft_config

    step = _step(batch_size=2, grad_accum=4, seq_len=128, max_steps=7, packing=True, grad_ckpt=False,
                 optimizer="paged-adamw-8bit", early_stopping_patience=2)
    config = _to_sft_config(step, tmp_path, "fp32", use_cpu=True)
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 4)
    assert (config.max_length, config.max_steps, config.packing) == (128, 7, True)
    assert config.activation_checkpointing is False
    assert config.bf16 is False and config.fp16 is False
    assert config.optim == "paged_adamw_8bit"
    assert config.load_best_model_at_end and config.metric_for_best_model == "eval_loss"
    assert config.completion_only_loss is True
    dpo = _to_dpo_config(_step(method="dpo"), tmp_path, "fp32", use_cpu=True)
    assert dpo.beta == pytest.approx(0.1)
    assert dpo.bf16 is False


@pytest.mark.parametrize(
    ("distributed", "distributed_type"),
    [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED")],
)
def test_accelerate_accepts_the_generated_config(tmp_path: Path, distributed: str, distributed_type: str) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    step = _step(n_gpus=4, distributed=distributed)
    path = write_accelerate_config(step, "bf16", tmp_path)
    loaded = load_config_from_file(str(path))  # raises on unknown keys or bad values
    assert isinstance(loaded, ClusterConfig)
    assert loaded.distributed_type.value == distributed_type
    assert (loaded.num_processes, loaded.mixed_precision) == (4, "bf16")
    if distributed.startswith("zero"):
        assert loaded.deepspeed_config["zero_stage"] == int(distributed[-1])
    if distributed == "fsdp":
        assert loaded.fsdp_config["fsdp_version"] == 2


def test_launch_command_runs_the_worker(tmp_path: Path) -> None:
    command = launch_command(tmp_path / "accelerate.yaml", tmp_path, resume=True)
    assert command[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    assert command[-4:] == ["-m", "backends.train", str(tmp_path), "--resume"]
    assert accelerate_config(_step(n_gpus=2), "fp32")["mixed_precision"] == "no"


def test_tiny_demo_builds_and_loads(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from backends.common.data import load_examples
    from backends.common.tiny import build_tiny_demo, is_demo_model

    records = load_examples(FIXTURES / "sft_chat.jsonl", for_preference=False).records
    path = build_tiny_demo(records, tmp_path / "tiny")
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    assert is_demo_model(path)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert model.config.vocab_size == len(tokenizer)
    text = tokenizer.apply_chat_template(records[0]["messages"][:3], tokenize=False)
    assert text.endswith("City 0.</s>\n")
    ids = tokenizer("Capital of country 7?", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "Capital of country 7?"  # byte-level: lossless


def test_param_count_matches_real_model(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    from backends.common.data import load_examples
    from backends.common.tiny import build_tiny_demo
    from backends.train.builders import _to_lora_config
    from backends.train.fitting import count_params

    records = load_examples(FIXTURES / "sft_chat.jsonl", for_preference=False).records
    model = transformers.AutoModelForCausalLM.from_pretrained(build_tiny_demo(records, tmp_path / "tiny"))
    step = _step(lora_rank=4)
    config = model.config.to_dict()
    adapted = peft.get_peft_model(model, _to_lora_config(step))
    n_params, n_trainable = count_params(config, step)
    assert n_params == sum(p.numel() for p in adapted.parameters())
    assert n_trainable == sum(p.numel() for p in adapted.parameters() if p.requires_grad)


def test_prediction_comes_from_the_estimator(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    estimator = pytest.importorskip("advisor.core.estimate.memory",
                                    reason="advisor.core.estimate.memory.estimate_memory is not written yet")
    if not hasattr(estimator, "estimate_memory"):
        pytest.skip("advisor.core.estimate.memory has no estimate_memory yet")
    from backends.common.tiny import build_tokenizer, tiny_config
    from backends.train.predict import predict_memory

    tokenizer = build_tokenizer([{"prompt": "a b", "chosen": "c", "rejected": "d"}])
    config = tiny_config(tokenizer).to_dict()
    estimate, note = predict_memory(_step(seq_len=64, batch_size=2), config, "tiny-demo", "fp32")
    if estimate is None:
        pytest.skip(note)
    assert estimate.n_params > 0 and estimate.n_trainable_params < estimate.n_params
    assert "estimate_memory" in note
