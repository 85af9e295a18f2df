"""The estimate is the job that runs: the one precision policy and translator against the backend's own loading.

For every layout family of the catalog (tiny models of the same architecture, built from configs) × method ×
a GPU with bf16, one without, and a CPU without AMX: the estimator's weight bytes and optimizer bytes for
`train_spec(step)` equal what `backends.train.model.load_model` (+ PEFT adapters, + torch's AdamW after one
step) actually allocates under the dtype `choose_precision` picks. Exact, no tolerance.
"""

from __future__ import annotations

import pytest
from test_estimate_params import TINY_CONFIGS, _bnb_stored_bytes

from advisor.core.catalog import load_model_rows, model_spec_from_hf_config
from advisor.core.estimate.memory import estimate_memory
from advisor.core.estimate.precision import choose_precision, storage_precision
from advisor.core.estimate.translate import train_method, train_spec
from advisor.core.models import DeviceInfo, TrainStep

H100 = DeviceInfo(kind="cuda", name="h100", n_devices=1, memory_bytes=80 * 2**30, supports_bf16=True)
V100 = DeviceInfo(kind="cuda", name="v100", n_devices=1, memory_bytes=32 * 2**30, supports_bf16=False)
CPU = DeviceInfo(kind="cpu", name="cpu", n_devices=1, memory_bytes=16 * 2**30, supports_bf16=False)
# One tiny config per layout family; every architecture in the catalog must have one (asserted below).
FAMILIES = {"llama": "llama", "mistral": "llama", "mixtral": "mixtral", "qwen2": "qwen2", "qwen3": "qwen3",
            "phi3": "phi3", "falcon": "falcon", "gemma": "gemma", "gemma2": "gemma2", "stablelm": "stablelm-qk"}
METHODS = [("full", "lora"), ("lora", "lora"), ("qlora", "lora"), ("dpo", "full"), ("dpo", "lora")]


def test_every_catalog_architecture_has_a_family_here() -> None:
    archs = {row["config"]["model_type"] for row in load_model_rows()}
    assert archs <= set(FAMILIES), f"add a tiny config for {sorted(archs - set(FAMILIES))}"


@pytest.mark.parametrize(("device", "compute", "full_storage"), [
    (H100, "bf16", "bf16-mixed"), (V100, "fp16", "fp16-mixed"), (CPU, "fp32", "fp32"), (None, "bf16", "bf16-mixed"),
])
def test_policy_and_storage(device, compute: str, full_storage: str) -> None:
    chosen, reason = choose_precision("auto", device)
    assert chosen == compute and reason.startswith("auto")
    assert storage_precision("full", chosen) == full_storage
    assert storage_precision("lora", chosen) == chosen == storage_precision(None, chosen)


def _real_states(model_dir: str, step: TrainStep, compute: str) -> tuple[int, int, int]:
    """(policy weight bytes, reference weight bytes, AdamW state bytes) as the backend loads and trains them."""
    import copy

    import torch

    from backends.train.builders import _to_lora_config
    from backends.train.model import load_model

    method = train_method(step)
    model = load_model(model_dir, method, compute)
    reference = 0
    if step.method == "dpo" and method == "full":
        # TRL's DPOTrainer loads the reference in the policy's dtype (trl/trainer/dpo_trainer.py).
        reference = sum(p.numel() * p.element_size() for p in copy.deepcopy(model).parameters())
    if method in ("lora", "qlora"):
        from peft import get_peft_model

        model = get_peft_model(model, _to_lora_config(step))  # PEFT keeps adapters fp32 (autocast_adapter_dtype)
        if method == "qlora":  # TRL's SFTTrainer/DPOTrainer cast QLoRA adapters to bf16 (QLoRA paper §3)
            for param in model.parameters():
                if param.requires_grad:
                    param.data = param.data.to(torch.bfloat16)
    weights = _bnb_stored_bytes(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, foreach=False, fused=False)
    for param in trainable:
        param.grad = torch.zeros_like(param)
    optimizer.step()
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if isinstance(t, torch.Tensor))
    return weights, reference, state


@pytest.fixture(scope="module")
def saved_families(tmp_path_factory) -> dict[str, str]:
    pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    paths = {}
    for family in sorted(set(FAMILIES.values())):
        torch.manual_seed(0)
        config = transformers.AutoConfig.for_model(**TINY_CONFIGS[family])
        model = transformers.AutoModelForCausalLM.from_config(config)
        path = tmp_path_factory.mktemp(family)
        model.save_pretrained(path)
        paths[family] = str(path)
    return paths


@pytest.mark.parametrize("family", sorted(set(FAMILIES.values())))
@pytest.mark.parametrize(("method", "policy"), METHODS)
@pytest.mark.parametrize("device", [H100, V100, CPU], ids=["bf16-gpu", "no-bf16-gpu", "cpu"])
def test_estimate_counts_what_the_backend_loads(saved_families, family: str, method: str, policy: str,
                                                device: DeviceInfo) -> None:
    # PEFT refuses dropout on fused 3-D expert weights (ParamWrapper): the plan sets 0 for MoE models.
    dropout = 0.0 if TINY_CONFIGS[family].get("num_local_experts") else 0.05
    step = TrainStep(method=method, dpo_policy=policy, base_model=saved_families[family], data_path="d.jsonl",
                     lora_dropout=dropout)
    if train_method(step) == "qlora":
        pytest.importorskip("bitsandbytes")  # Falcon included: nothing of it is quantized under transformers 5
    compute, _ = choose_precision(step.precision, device)
    spec = train_spec(step, model_spec_from_hf_config(TINY_CONFIGS[family], family, family), compute)
    estimate = estimate_memory(spec)
    weights, reference, optimizer = _real_states(saved_families[family], step, compute)
    stored = estimate.master_weights_bytes if spec.precision.endswith("-mixed") else estimate.weights_bytes
    assert stored == weights, f"{spec.precision}: weights"
    assert estimate.reference_bytes == reference
    assert estimate.optimizer_bytes == optimizer
