"""Library-version facts in the estimate: bitsandbytes < 0.43.2 keeps every 4-bit linear's input, and a training
loop that holds its `outputs` keeps the logits through backward (advisor/core/estimate/memory.py)."""

from __future__ import annotations

import inspect

import pytest
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from advisor.core.catalog import load_models
from advisor.core.estimate.memory import bnb_keeps_4bit_inputs, estimate_memory, saved_activation_bytes
from advisor.core.models import EstimateSpec

_register()
runner = CliRunner()


def _qlora(**kw) -> EstimateSpec:
    args = dict(model=load_models()["llama-2-7b"], method="qlora", lora_rank=32, lora_targets=["q_proj", "v_proj"],
                lora_dropout=0.05, batch_size=2, seq_len=512, grad_ckpt=False, attention="sdpa")
    return EstimateSpec(**(args | kw))


def test_installed_bitsandbytes_no_longer_keeps_the_input() -> None:
    """`bitsandbytes=None` means a current release: the installed MatMul4Bit stores `(None, B)`, not `(A, B)`."""
    functions = pytest.importorskip("bitsandbytes.autograd._functions")
    source = inspect.getsource(functions.MatMul4Bit.forward)
    assert "ctx.tensors = (None, B)" in source and "ctx.tensors = (A, B)" not in source


@pytest.mark.parametrize(("version", "keeps"), [("0.41.1", True), ("0.42.0", True), ("0.43", True),
                                                 ("0.43.1", True), ("0.43.2", False), ("0.50.2", False)])
def test_the_release_that_freed_the_input_is_0_43_2(version: str, keeps: bool) -> None:
    assert bnb_keeps_4bit_inputs(_qlora(bitsandbytes=version)) is keeps
    assert not bnb_keeps_4bit_inputs(_qlora(method="lora", bitsandbytes=version))


def test_old_bitsandbytes_saves_each_distinct_4bit_input_once() -> None:
    """Llama, q/v LoRA, SDPA, no checkpointing: per block the normed MLP input (gate/up share it) and the down
    input; the attention input (q/k/v share it) from the second block on (the first block's input needs no
    gradient); o_proj reads a view of SDPA's saved output."""
    spec = _qlora()
    m, tokens = spec.model, spec.batch_size * spec.seq_len
    now = saved_activation_bytes(spec)
    old = saved_activation_bytes(_qlora(bitsandbytes="0.42.0"))
    per_block = tokens * 2 * (2 * m.hidden_size + m.intermediate_size)
    assert old.per_block - now.per_block == per_block
    assert old.blocks - now.blocks == m.n_layers * per_block - tokens * 2 * m.hidden_size
    assert old.head == now.head and old.loss == now.loss
    assert saved_activation_bytes(_qlora(bitsandbytes="0.43.2")) == now


def test_old_bitsandbytes_under_eager_attention_also_keeps_the_o_proj_input() -> None:
    spec, old = _qlora(attention="eager"), _qlora(attention="eager", bitsandbytes="0.41.1")
    m, tokens = spec.model, spec.batch_size * spec.seq_len
    extra = saved_activation_bytes(old).per_block - saved_activation_bytes(spec).per_block
    assert extra == tokens * 2 * (2 * m.hidden_size + m.n_heads * m.head_dim + m.intermediate_size)


def test_checkpointing_keeps_block_inputs_only_and_recomputes_one_block_with_the_inputs() -> None:
    spec, old = _qlora(grad_ckpt=True), _qlora(grad_ckpt=True, bitsandbytes="0.42.0")
    assert saved_activation_bytes(old).blocks == saved_activation_bytes(spec).blocks
    assert estimate_memory(old).peak_allocated_bytes > estimate_memory(spec).peak_allocated_bytes


def test_inputs_lora_a_already_saves_are_not_counted_twice() -> None:
    """Dropout 0 with bf16 adapters over bf16 compute: lora_A saves the module input itself."""
    kw = dict(lora_targets="all-linear", lora_dropout=0.0, adapter_dtype="bf16")
    assert saved_activation_bytes(_qlora(**kw, bitsandbytes="0.42.0")) == saved_activation_bytes(_qlora(**kw))


def test_the_explain_notes_name_the_bitsandbytes_behaviour() -> None:
    old = estimate_memory(_qlora(bitsandbytes="0.42.0")).assumptions
    assert any("bitsandbytes 0.42.0 (< 0.43.2)" in line for line in old)
    assert any("keeps only the packed weight" in line for line in estimate_memory(_qlora()).assumptions)


def test_held_outputs_keep_the_logits_through_backward_and_the_step() -> None:
    spec = _qlora(loss_kernel="full")
    held = _qlora(loss_kernel="full", logits_held=True)
    logits = spec.batch_size * spec.seq_len * spec.model.vocab_size * 2
    a, b = estimate_memory(spec), estimate_memory(held)
    assert b.phases_bytes["forward"] == a.phases_bytes["forward"]
    assert b.phases_bytes["optimizer"] - a.phases_bytes["optimizer"] == logits
    assert b.phases_bytes["backward"] - a.phases_bytes["backward"] == logits
    fp32 = _qlora(loss_kernel="full", logits_held=True, precision="fp32")
    assert (estimate_memory(fp32).phases_bytes["optimizer"]
            - estimate_memory(_qlora(loss_kernel="full", precision="fp32")).phases_bytes["optimizer"]) == 2 * logits
    chunked = _qlora(loss_kernel="chunked")  # the fused head never holds b·s·V logits
    assert estimate_memory(chunked.model_copy(update={"logits_held": True})) == estimate_memory(chunked)


def test_cli_bitsandbytes_flag_moves_a_qlora_estimate_and_says_why() -> None:
    base = ["estimate", "--model", "llama-2-7b", "--method", "qlora", "--lora-targets", "q_proj,v_proj",
            "-b", "2", "-s", "512", "--no-grad-ckpt", "--json"]
    import json

    now = runner.invoke(app, [*base, "--bitsandbytes", "0.50.2"])
    old = runner.invoke(app, [*base, "--bitsandbytes", "0.42"])
    assert now.exit_code == 0 and old.exit_code == 0, (now.stderr, old.stderr)
    a, b = json.loads(now.stdout), json.loads(old.stdout)
    assert b["memory"]["activations_bytes"] > a["memory"]["activations_bytes"]
    assert b["spec"]["bitsandbytes"] == "0.42"
    assert any("< 0.43.2" in line for line in b["assumptions"])


def test_cli_bad_bitsandbytes_version_is_one_error_line() -> None:
    result = runner.invoke(app, ["estimate", "--model", "llama-2-7b", "--method", "qlora", "--bitsandbytes", "new"])
    assert_user_error(result, "--bitsandbytes")


def _litgpt_qlora(**kw) -> EstimateSpec:
    model = load_models()["llama-3.2-1b"].model_copy(update={"tie_embeddings": False})  # litgpt unties the head
    return _qlora(model=model, bnb_via_transformers=False, adapter_dtype="bf16", double_quant=False, **kw)


def test_a_4bit_lm_head_is_packed_and_dequantized_like_the_block_linears() -> None:
    from advisor.core.estimate import params as P

    plain, quantized = _litgpt_qlora(), _litgpt_qlora(bnb_lm_head=True)
    m = plain.model
    head = m.vocab_size * m.hidden_size
    a, b = estimate_memory(plain), estimate_memory(quantized)
    nf4 = head // 2 + P._quant_state_bytes(head, False)  # one fp32 absmax per 64 values, plus the code table
    assert a.weights_bytes - b.weights_bytes == head * 2 - nf4
    assert a.workspace_bytes - b.workspace_bytes == -(head - m.hidden_size * m.intermediate_size) * 2
    assert any("LM head is 4-bit" in line for line in b.assumptions)
    tied = _qlora(model=load_models()["llama-3.2-1b"], bnb_lm_head=True)  # a tied head stays the embedding
    assert estimate_memory(tied).weights_bytes == estimate_memory(_qlora(model=tied.model)).weights_bytes


def test_weights_quantized_from_fp16_dequantize_to_fp16_then_cast() -> None:
    one = estimate_memory(_litgpt_qlora(bnb_lm_head=True, bnb_quant_dtype="bf16")).workspace_bytes
    two = estimate_memory(_litgpt_qlora(bnb_lm_head=True, bnb_quant_dtype="fp16"))
    m = load_models()["llama-3.2-1b"]
    assert two.workspace_bytes - one == m.vocab_size * m.hidden_size * 2
    assert one == estimate_memory(_litgpt_qlora(bnb_lm_head=True)).workspace_bytes
    assert any("two copies" in line for line in two.assumptions)


def test_old_bitsandbytes_keeps_the_4bit_head_input_too() -> None:
    spec = _litgpt_qlora(bnb_lm_head=True, bitsandbytes="0.42.0")
    unquantized_head = _litgpt_qlora(bitsandbytes="0.42.0")
    tokens = spec.batch_size * spec.seq_len
    assert (saved_activation_bytes(spec).head - saved_activation_bytes(unquantized_head).head
            == tokens * spec.model.hidden_size * 2)


def test_transformers_4_quantizes_each_mixtral_expert_and_5_leaves_them_16bit() -> None:
    from advisor.core.estimate import params as P

    model = load_models()["mixtral-8x7b"]
    v5 = estimate_memory(EstimateSpec(model=model, method="qlora"))
    v4 = estimate_memory(EstimateSpec(model=model, method="qlora", transformers=4))
    n = model.hidden_size * model.intermediate_size  # w1, w3 (h→inter) and w2 (inter→h) of every expert
    per_weight = n * 2 - (n // 2 + P._quant_state_bytes(n, True))
    assert v5.weights_bytes - v4.weights_bytes == 3 * model.n_experts * model.n_layers * per_weight
    assert any("transformers 5: the fused 3-D expert" in line for line in v5.assumptions)
    assert any("transformers 4: every expert" in line for line in v4.assumptions)
    assert v4.peak_allocated_bytes < v5.peak_allocated_bytes / 3


def test_transformers_4_quantizes_falcons_linear_subclasses() -> None:
    model = load_models()["falcon-7b"]
    v5 = estimate_memory(EstimateSpec(model=model, method="qlora"))
    v4 = estimate_memory(EstimateSpec(model=model, method="qlora", transformers=4))
    lora = estimate_memory(EstimateSpec(model=model, method="lora", adapter_dtype="bf16"))
    assert v5.weights_bytes - v5.n_trainable_params * 2 == lora.weights_bytes - lora.n_trainable_params * 2
    assert v4.weights_bytes < v5.weights_bytes / 3
    # ... and dequantizes its largest linear, dense_h_to_4h, while it runs
    assert v4.workspace_bytes - v5.workspace_bytes == model.hidden_size * model.intermediate_size * 2


def test_cli_transformers_flag_and_its_bounds() -> None:
    import json

    base = ["estimate", "--model", "mixtral-8x7b", "--method", "qlora", "--json"]
    v4, v5 = runner.invoke(app, [*base, "--transformers", "4"]), runner.invoke(app, [*base, "--transformers", "5"])
    assert v4.exit_code == 0 and v5.exit_code == 0, (v4.stderr, v5.stderr)
    assert json.loads(v4.stdout)["spec"]["transformers"] == 4
    assert json.loads(v4.stdout)["memory"]["weights_bytes"] < json.loads(v5.stdout)["memory"]["weights_bytes"]
    assert_user_error(runner.invoke(app, [*base, "--transformers", "3"]), "--transformers")


def test_falcons_parallel_block_saves_its_shared_input_once_and_the_first_mlp_nothing() -> None:
    """Falcon-7B, LoRA on query_key_value, no checkpointing: per block the one normed input (attention and MLP read
    it) and dense_4h_to_h's input; in the first block, whose input needs no gradient, neither (the MLP runs beside
    attention, not after it)."""
    model = load_models()["falcon-7b"]
    kw = dict(model=model, lora_targets=["query_key_value"], bnb_via_transformers=False)
    spec, old = _qlora(**kw), _qlora(**kw, bitsandbytes="0.42.0")
    tokens = spec.batch_size * spec.seq_len
    per_block = tokens * 2 * (model.hidden_size + model.intermediate_size)
    assert saved_activation_bytes(old).per_block - saved_activation_bytes(spec).per_block == per_block
    assert saved_activation_bytes(old).blocks - saved_activation_bytes(spec).blocks == (model.n_layers - 1) * per_block


def _saved_storage_bytes(fn, *args) -> int:
    import torch

    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args)
    return sum(seen.values())


@pytest.mark.parametrize("layout", ["repeated", "broadcast"])
def test_litgpt_attention_layouts_save_what_torch_saves(layout: str) -> None:
    """litgpt copies grouped k/v to every query head before SDPA; a single KV head (2023) goes to the math backend."""
    torch = pytest.importorskip("torch")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from advisor.core.catalog import resolve_model
    from advisor.core.estimate.memory import _attention_saved

    b, t, h, d = 2, 40, 8, 16
    g = 2 if layout == "repeated" else 1
    model = resolve_model("llama-3.2-1b").model_copy(update={"n_heads": h, "n_kv_heads": g, "head_dim": d,
                                                             "hidden_size": h * d})
    q = torch.randn(b, h, t, d, requires_grad=True)
    k, v = (torch.randn(b, g, t, d, requires_grad=True) for _ in range(2))

    def attention(q, k, v):
        if layout == "repeated":  # litgpt: k.expand(B, n_query_groups, q_per_kv, T, hs).reshape(B, -1, T, hs)
            k, v = (x[:, :, None].expand(b, g, h // g, t, d).reshape(b, h, t, d) for x in (k, v))
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        with sdpa_kernel(SDPBackend.MATH):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    spec = EstimateSpec(model=model, method="full", precision="fp32", batch_size=b, seq_len=t, device="cpu",
                        sdpa_kv=layout)
    assert _attention_saved(spec, b, t) == _saved_storage_bytes(attention, q, k, v)
    native = _attention_saved(spec.model_copy(update={"sdpa_kv": "native"}), b, t)
    assert _attention_saved(spec, b, t) > native  # the copies (and, broadcast, the s×s matrix) cost more
