"""FSDP gradient accumulation under no_sync() (`EstimateSpec.fsdp_no_sync`): each GPU keeps the unsharded gradients
of every flat parameter that needs one, frozen block weights included when a unit holds LoRA weights
(use_orig_params=True), until the syncing micro-batch (advisor/core/estimate/memory.py `_no_sync_gradients`)."""

from __future__ import annotations

import tempfile

import pytest

from advisor.core.catalog import load_models, model_spec_from_hf_config
from advisor.core.estimate import params as P
from advisor.core.estimate.memory import estimate_memory
from advisor.core.models import EstimateSpec


def _fsdp(**kw) -> EstimateSpec:
    args = dict(model=load_models()["llama-2-7b"], method="lora", lora_rank=8, lora_targets=["q_proj", "v_proj"],
                adapter_dtype="bf16", batch_size=1, seq_len=1024, grad_ckpt=True, n_gpus=2, zero_stage=3,
                loss_kernel="full")
    return EstimateSpec(**(args | kw))


def test_lora_under_no_sync_holds_every_blocks_gradient_unsharded() -> None:
    spec, plain = _fsdp(fsdp_no_sync=True), _fsdp()
    m, inv = spec.model, P.count_params(spec.model)
    lora = P.lora_params(m, 8, ["q_proj", "v_proj"])
    held = m.n_layers * inv.layer_params * 2 + lora * 2  # the root unit (embeddings, norm, head) has none
    a, b = estimate_memory(plain), estimate_memory(spec)
    assert b.gradients_bytes == held
    assert b.phases_bytes["forward"] - a.phases_bytes["forward"] == held
    assert b.phases_bytes["backward"] - a.phases_bytes["backward"] == held
    # after the sync each GPU keeps half of the flat parameters' gradients, frozen parts included
    assert b.phases_bytes["optimizer"] - a.phases_bytes["optimizer"] == -(-held // 2) - -(-lora * 2 // 2)
    assert any("FSDP no_sync" in line and "frozen ones included" in line for line in b.assumptions)


def test_full_fine_tuning_under_no_sync_holds_all_gradients_unsharded() -> None:
    spec = _fsdp(method="full", n_gpus=4, fsdp_no_sync=True)
    est = estimate_memory(spec)
    assert est.gradients_bytes == P.count_params(spec.model).n_params * 2
    plain = estimate_memory(_fsdp(method="full", n_gpus=4))
    assert est.phases_bytes["forward"] - plain.phases_bytes["forward"] == est.gradients_bytes
    assert est.phases_bytes["optimizer"] == plain.phases_bytes["optimizer"]  # reduce-scattered: the same shards


@pytest.mark.parametrize("kw", [dict(zero_stage=2), dict(method="qlora"), dict(offload_params=True,
                                                                               offload_optimizer=True)])
def test_no_sync_is_only_for_unoffloaded_fsdp_full_or_lora(kw) -> None:
    with pytest.raises(ValueError, match="fsdp_no_sync needs zero_stage 3"):
        _fsdp(fsdp_no_sync=True, **kw)


# --- the real torch FSDP, two CPU ranks over gloo ------------------------------------------------------------

_CONFIG = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
               model_type="llama", architectures=["LlamaForCausalLM"])
_RANK = 2


def _rank(rank: int, world: int, path: str, queue) -> None:
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    class Lora(nn.Module):  # a frozen base linear plus trainable A, B, as PEFT and litgpt add them
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.lora_a = nn.Linear(base.in_features, _RANK, bias=False)
            self.lora_b = nn.Linear(_RANK, base.out_features, bias=False)

        def forward(self, x):
            return self.base(x) + self.lora_b(self.lora_a(x))

    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in _CONFIG.items() if k != "architectures"}))
    for layer in model.model.layers:
        layer.self_attn.q_proj = Lora(layer.self_attn.q_proj)
        layer.self_attn.v_proj = Lora(layer.self_attn.v_proj)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name
    fsdp = FSDP(model, auto_wrap_policy=ModuleWrapPolicy({LlamaDecoderLayer}), use_orig_params=True,
                device_id=torch.device("cpu"))
    units = [u for u in fsdp.modules() if isinstance(u, FSDP)]

    def grad_bytes() -> int:
        return sum(u._flat_param.grad.numel() * u._flat_param.grad.element_size() for u in units
                   if u._flat_param is not None and u._flat_param.grad is not None)

    ids = torch.randint(0, 256, (2, 16))
    with fsdp.no_sync():
        fsdp(input_ids=ids).logits.sum().backward()
    held = grad_bytes()
    fsdp(input_ids=ids).logits.sum().backward()
    if rank == 0:
        queue.put((held, grad_bytes()))
    dist.destroy_process_group()


@pytest.mark.slow
def test_torch_fsdp_no_sync_keeps_what_the_estimate_counts() -> None:
    """Two CPU ranks: after a no_sync backward each holds the whole gradient of every decoder-layer unit (frozen
    weights and LoRA), none for the all-frozen root; after the syncing backward half of it."""
    mp = pytest.importorskip("torch.multiprocessing")
    pytest.importorskip("transformers")
    context = mp.get_context("spawn")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_rank, args=(2, f"{tmp}/rendezvous", queue), nprocs=2)
    held, synced = queue.get(timeout=10)
    model = model_spec_from_hf_config(_CONFIG, "fsdp-probe", "test")
    spec = EstimateSpec(model=model, method="lora", precision="fp32", lora_rank=_RANK,
                        lora_targets=["q_proj", "v_proj"], adapter_dtype="fp32", n_gpus=2, zero_stage=3,
                        fsdp_no_sync=True, seq_len=16, batch_size=2)
    est = estimate_memory(spec)
    assert held == est.gradients_bytes
    assert synced == -(-held // 2)
