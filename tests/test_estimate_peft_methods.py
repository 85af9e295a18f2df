"""Soft prompts (prompt, prefix, P-tuning) and IA3: trainable parameters, states and saved activations against PEFT.

Trainable counts are exact against `peft.get_peft_model` on catalog models built on the meta device; weights and
AdamW state are exact against what the training backend loads (`backends.train.builders._to_peft_config`) on
tiny models of every catalog family; saved activations are within the memory tests' 1% of autograd's own.
"""

from __future__ import annotations

import pytest
from test_estimate_memory import SAVED_TOLERANCE, _measure_saved, _tiny
from test_estimate_params import ROWS, TINY_CONFIGS, _bnb_stored_bytes, _hf_model, _spec
from test_estimate_translate import CPU, FAMILIES, H100, V100

from advisor.core.errors import InvalidInputError
from advisor.core.estimate.compute import flops_per_token
from advisor.core.estimate.memory import estimate_memory, saved_activation_bytes
from advisor.core.estimate.params import peft_params, resolve_ia3_targets
from advisor.core.estimate.precision import choose_precision
from advisor.core.estimate.translate import train_spec
from advisor.core.models import DeviceInfo, EstimateSpec, TrainStep

SOFT = ("prompt_tuning", "prefix_tuning", "p_tuning")
CATALOG = ["llama-3.1-8b", "mistral-7b", "qwen2.5-7b", "gemma-2-2b", "phi-3-mini", "falcon-7b", "tinyllama-1.1b"]


def _peft_config(method: str, n_virtual: int = 20, targets="default"):
    step = TrainStep(method=method, base_model="m", data_path="d.jsonl", num_virtual_tokens=n_virtual,
                     ia3_targets=targets, grad_ckpt=method != "prefix_tuning")
    from backends.train.builders import _to_peft_config

    return _to_peft_config(step)


def _peft_trainable(cfg: dict, method: str, n_virtual: int = 20, targets="default") -> int:
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(_hf_model(cfg), _peft_config(method, n_virtual, targets))
    trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable


@pytest.mark.parametrize("name", CATALOG)
@pytest.mark.parametrize("method", SOFT)
@pytest.mark.parametrize("n_virtual", [8, 20, 100])
def test_soft_prompt_params_equal_peft_on_catalog_models(name: str, method: str, n_virtual: int) -> None:
    cfg = ROWS[name]["config"]
    if method == "prefix_tuning" and cfg["model_type"] == "falcon":
        with pytest.raises(InvalidInputError, match="Falcon"):
            peft_params(_spec(cfg), method, n_virtual=n_virtual)
        return
    assert peft_params(_spec(cfg), method, n_virtual=n_virtual) == _peft_trainable(cfg, method, n_virtual)


IA3_CASES = [
    ("llama-3.1-8b", "default"), ("mistral-7b", "default"), ("qwen2.5-7b", "default"), ("gemma-2-2b", "default"),
    ("falcon-7b", "default"), ("tinyllama-1.1b", "default"),
    ("llama-3.1-8b", ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]),
    ("qwen2.5-7b", ["v_proj", "down_proj"]), ("phi-3-mini", ["qkv_proj", "down_proj"]),
    ("gemma-2-2b", ["gate_proj"]), ("falcon-7b", ["dense", "dense_4h_to_h"]),
]


@pytest.mark.parametrize(("name", "targets"), IA3_CASES)
def test_ia3_params_equal_peft_on_catalog_models(name: str, targets) -> None:
    cfg = ROWS[name]["config"]
    assert peft_params(_spec(cfg), "ia3", ia3_targets=targets) == _peft_trainable(cfg, "ia3", targets=targets)


@pytest.mark.parametrize("layout", ["mixtral", "qwen3", "gemma2", "falcon-new-bias"])
def test_ia3_default_equals_peft_on_tiny_layouts(layout: str) -> None:
    cfg = TINY_CONFIGS[layout]
    assert peft_params(_spec(cfg), "ia3") == _peft_trainable(cfg, "ia3")


def test_ia3_without_a_peft_default_or_with_an_unknown_module_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no default IA3 modules for phi3") as exc:
        resolve_ia3_targets(_spec(ROWS["phi-3-mini"]["config"]), "default")
    assert "qkv_proj" in exc.value.hint
    with pytest.raises(InvalidInputError, match="`w2`"):
        resolve_ia3_targets(_spec(TINY_CONFIGS["mixtral"]), ["k_proj", "w2"])


@pytest.fixture(scope="module")
def saved_families(tmp_path_factory) -> dict[str, str]:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    paths = {}
    for family in sorted(set(FAMILIES.values())):
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**TINY_CONFIGS[family]))
        path = tmp_path_factory.mktemp(family)
        model.save_pretrained(path)
        paths[family] = str(path)
    return paths


def _real_states(model_dir: str, step: TrainStep, compute: str) -> tuple[int, int]:
    """(weight bytes, AdamW state bytes) as the backend loads the model and PEFT adds its weights."""
    import torch
    from peft import get_peft_model

    from backends.train.builders import _to_peft_config
    from backends.train.model import load_model

    model = get_peft_model(load_model(model_dir, step.method, compute), _to_peft_config(step))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, foreach=False, fused=False)
    for param in trainable:
        param.grad = torch.zeros_like(param)
    optimizer.step()
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if isinstance(t, torch.Tensor))
    return _bnb_stored_bytes(model), state


@pytest.mark.parametrize("family", sorted(set(FAMILIES.values())))
@pytest.mark.parametrize("method", [*SOFT, "ia3"])
@pytest.mark.parametrize("device", [H100, V100, CPU], ids=["bf16-gpu", "no-bf16-gpu", "cpu"])
def test_estimate_counts_what_the_backend_loads(saved_families, family: str, method: str,
                                                device: DeviceInfo) -> None:
    cfg = TINY_CONFIGS[family]
    mspec = _spec(cfg)
    targets = "default"
    if method == "ia3" and mspec.arch in ("phi3", "stablelm"):
        targets = ["qkv_proj" if mspec.arch == "phi3" else "k_proj", "down_proj"]
    if method == "prefix_tuning" and mspec.arch == "falcon":
        pytest.skip("prefix tuning is refused for Falcon (tested above)")
    step = TrainStep(method=method, base_model=saved_families[family], data_path="d.jsonl", num_virtual_tokens=8,
                     ia3_targets=targets, grad_ckpt=method != "prefix_tuning")
    compute, _ = choose_precision(step.precision, device)
    estimate = estimate_memory(train_spec(step, mspec, compute))
    weights, optimizer = _real_states(saved_families[family], step, compute)
    assert estimate.weights_bytes == weights
    assert estimate.optimizer_bytes == optimizer
    assert estimate.gradients_bytes == 4 * estimate.n_trainable_params  # fp32 PEFT weights


ACTIVATION_CASES = [
    # (method, grad_ckpt, dtype, n_virtual)
    ("prompt_tuning", False, "fp32", 8), ("prompt_tuning", True, "fp32", 20), ("prompt_tuning", False, "bf16", 8),
    ("p_tuning", False, "fp32", 8),
    ("prefix_tuning", False, "fp32", 8), ("prefix_tuning", False, "fp32", 30),
    ("ia3", False, "fp32", 0), ("ia3", True, "fp32", 0), ("ia3", False, "bf16", 0),
]


@pytest.mark.parametrize(("method", "ckpt", "dtype", "n_virtual"), ACTIVATION_CASES)
def test_saved_activations_match_autograd(method: str, ckpt: bool, dtype: str, n_virtual: int) -> None:
    peft = pytest.importorskip("peft")
    model, mspec = _tiny("llama", dtype)
    model = peft.get_peft_model(model, _peft_config(method, max(n_virtual, 1)))
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    batch, seq = 2, 48
    measured = _measure_saved(model, batch, seq)
    spec = EstimateSpec(model=mspec, method=method, precision=dtype, num_virtual_tokens=max(n_virtual, 1),
                        batch_size=batch, seq_len=seq, grad_ckpt=ckpt, device="cpu", loss_kernel="full")
    estimated = saved_activation_bytes(spec.model_copy(update={"seq_len": seq + spec.extra_tokens})).total
    assert abs(estimated - measured) / measured <= SAVED_TOLERANCE, (estimated, measured)


def test_soft_prompts_lengthen_the_sequence_and_prefix_tuning_refuses_checkpointing() -> None:
    model = _spec(ROWS["llama-3.1-8b"]["config"])
    base = dict(model=model, batch_size=2, seq_len=512)
    plain = estimate_memory(EstimateSpec(method="lora", lora_targets=["q_proj"], **base))
    prompt = estimate_memory(EstimateSpec(method="prompt_tuning", num_virtual_tokens=100, **base))
    assert prompt.activations_bytes > plain.activations_bytes  # 612 positions instead of 512
    assert any("612 positions" in note for note in prompt.assumptions)
    long = flops_per_token(EstimateSpec(method="prompt_tuning", num_virtual_tokens=100, **base))
    short = flops_per_token(EstimateSpec(method="prompt_tuning", num_virtual_tokens=10, **base))
    assert long > short
    with pytest.raises(ValueError, match="grad_ckpt"):
        EstimateSpec(method="prefix_tuning", grad_ckpt=True, **base)
    with pytest.raises(ValueError, match="grad_ckpt"):
        TrainStep(method="prefix_tuning", base_model="m", data_path="d.jsonl")
    with pytest.raises(ValueError, match="merge"):
        TrainStep(method="prompt_tuning", base_model="m", data_path="d.jsonl", merge=True)
    assert TrainStep(method="ia3", base_model="m", data_path="d.jsonl", merge=True).merge


def test_estimate_command_reports_peft_trainable_params_and_refuses_what_peft_would() -> None:
    import json

    from typer.testing import CliRunner

    from advisor.app.cli import _register, app

    _register()
    runner = CliRunner()
    model = _spec(ROWS["llama-3.1-8b"]["config"])
    for method, extra, expected in [
        ("prompt_tuning", ["--num-virtual-tokens", "100"], peft_params(model, "prompt_tuning", n_virtual=100)),
        ("prefix_tuning", [], peft_params(model, "prefix_tuning")),
        ("ia3", ["--ia3-targets", "v_proj,down_proj"], peft_params(model, "ia3", ia3_targets=["v_proj", "down_proj"])),
    ]:
        result = runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--method", method, "--gpu", "a100-80gb",
                                     "--examples", "1000", "--json", *extra])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["memory"]["n_trainable_params"] == expected
        assert data["time"]["hours"] > 0
        assert data["spec"]["grad_ckpt"] is (method != "prefix_tuning")
    refused = runner.invoke(app, ["estimate", "--model", "phi-3-mini", "--method", "ia3"])
    assert refused.exit_code == 2 and "no default IA3 modules for phi3" in refused.stderr
    assert "Traceback" not in refused.output
