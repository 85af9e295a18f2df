"""Quantized serving: per-format tensor bytes against hand-computed layouts and the real library objects,
`quantization_config` read from config.json, the 8-bit KV cache, tokens/s per replica feeding the monthly
bill, `advisor estimate --serve-quant/--kv-cache-dtype`, and the engine flags the serve step writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from advisor.core.catalog import resolve_gpu, resolve_model
from advisor.core.errors import InvalidInputError
from advisor.core.estimate import params as P
from advisor.core.estimate import serving as S
from advisor.core.estimate.fit import fits
from advisor.core.estimate.quantized import (
    SERVE_QUANT_FLAGS,
    QuantFormat,
    format_from_config,
    format_from_engine,
    format_from_flag,
    linear_tensor_bytes,
    quantized_inference_memory,
    quantized_weight_bytes,
    read_quantization_config,
)
from advisor.core.estimate.replica import estimate_serving
from advisor.core.models import EstimateSpec, ServedModel
from backends.serve import engines
from backends.serve.flags import SGLANG_FLAGS, VLLM_FLAGS, config_to_argv, parser

_register()
K, N = 4096, 11008  # Llama-2-7B gate_proj: in_features, out_features


# --- one linear, format by format ---------------------------------------------------------------------------


def test_gptq_layout_of_one_linear() -> None:
    """AutoGPTQ QuantLinear: qweight [K//32·bits, N] int32, qzeros [K/g, N//32·bits] int32, scales [K/g, N] fp16."""
    plain = linear_tensor_bytes(QuantFormat("gptq", 4, 128), K, N)
    assert plain == {"qweight": (4096 // 32 * 4) * 11008 * 4, "qzeros": 32 * (11008 // 32 * 4) * 4,
                     "scales": 32 * 11008 * 2}
    act_order = linear_tensor_bytes(QuantFormat("gptq", 4, 128, desc_act=True), K, N)
    assert act_order == plain | {"g_idx": 4096 * 4}
    three = linear_tensor_bytes(QuantFormat("gptq", 3, -1), K, N)  # one group over the whole row
    assert three["qweight"] == 4096 // 32 * 3 * 11008 * 4 and three["scales"] == 1 * 11008 * 2


def test_awq_layout_packs_along_out_features() -> None:
    parts = linear_tensor_bytes(QuantFormat("awq", 4, 64), K, N)
    assert parts == {"qweight": 4096 * (11008 // 8) * 4, "qzeros": (4096 // 64) * (11008 // 8) * 4,
                     "scales": (4096 // 64) * 11008 * 2}


def test_bnb_int8_matches_linear8bitlt_state_dict() -> None:
    """bitsandbytes Linear8bitLt quantized on the CPU: int8 weight and one fp32 absmax (SCB) per row."""
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear8bitLt(96, 40, bias=False, has_fp16_weights=False).to("cpu")
    held = {"weight": layer.weight, "SCB": layer.weight.SCB}  # weight_format is a 1-byte code in the file only
    real = {k: v.numel() * v.element_size() for k, v in held.items()}
    assert linear_tensor_bytes(format_from_flag("int8"), 96, 40) == real
    assert layer.state_dict()["SCB"].dtype.itemsize == 4


@pytest.mark.parametrize(("block", "scheme"), [((128, 128), "dynamic"), (None, "dynamic"), (None, "static"),
                                                ((128, 64), "static")])
def test_fp8_matches_transformers_fp8linear(block, scheme) -> None:
    """transformers' FP8Linear built on meta: fp8 weight + fp32 scales (per tensor or per block) + input scale."""
    torch = pytest.importorskip("torch")
    from transformers.integrations.finegrained_fp8 import FP8Linear

    with torch.device("meta"):
        layer = FP8Linear(4096, 1000, block_size=block, activation_scheme=scheme)
    real = sum(v.numel() * v.element_size() for v in layer.state_dict().values())
    fmt = QuantFormat("fp8", 8, scale="block" if block else "tensor", block=block or (128, 128),
                      static_input_scale=scheme == "static")
    assert sum(linear_tensor_bytes(fmt, 4096, 1000).values()) == real


def test_compressed_tensors_packed_and_channel_layouts() -> None:
    w4 = linear_tensor_bytes(QuantFormat("ct-packed", 4, 128, symmetric=False), K, N)
    assert w4 == {"weight_packed": 11008 * (4096 // 8) * 4, "weight_scale": 11008 * 32 * 2, "weight_shape": 16,
                  "weight_zero_point": (11008 // 8) * 32 * 4}
    w8 = linear_tensor_bytes(QuantFormat("ct-8bit", 8, scale="channel", static_input_scale=True), K, N)
    assert w8 == {"weight": 4096 * 11008, "weight_scale": 11008 * 4, "input_scale": 4}


# --- the whole model -----------------------------------------------------------------------------------------


def test_model_bytes_are_the_layer_layouts_times_layers_plus_16bit_rest() -> None:
    model = resolve_model("llama-3.1-8b")
    fmt = format_from_flag("gptq-4bit")
    per_layer = sum(sum(linear_tensor_bytes(fmt, m.in_features, m.out_features).values())
                    for m in P.layer_linears(model))
    n_quantized = model.n_layers * sum(m.in_features * m.out_features for m in P.layer_linears(model))
    got = quantized_weight_bytes(model, fmt)
    assert got.quantized_bytes + got.scale_bytes == model.n_layers * per_layer
    assert got.unquantized_bytes == (P.count_params(model).n_params - n_quantized) * 2
    head_too = quantized_weight_bytes(model, QuantFormat("gptq", 4, 128, quantize_lm_head=True))
    head = sum(linear_tensor_bytes(fmt, model.hidden_size, model.vocab_size).values())
    assert head_too.total_bytes == got.total_bytes - model.hidden_size * model.vocab_size * 2 + head


def test_moe_experts_quantized_except_by_bitsandbytes_and_router_kept() -> None:
    model = resolve_model("mixtral-8x7b")
    gptq, int8 = quantized_weight_bytes(model, format_from_flag("gptq-4bit")), quantized_weight_bytes(
        model, format_from_flag("int8"))
    experts = sum(m.in_features * m.out_features * m.n_per_layer for m in P.layer_linears(model) if m.is_expert)
    assert gptq.n_quantized_params - int8.n_quantized_params == model.n_layers * experts
    router = next(m for m in P.layer_linears(model) if m.is_router)
    assert gptq.n_quantized_params + model.n_layers * router.in_features * router.out_features <= \
        P.count_params(model).n_params


def test_4bit_lets_a_70b_replica_fit_one_80gb_gpu_where_bf16_does_not() -> None:
    model, gpu = resolve_model("llama-3.1-70b"), resolve_gpu("h100-80gb")
    spec = EstimateSpec(model=model, method="inference", precision="bf16", seq_len=4096, batch_size=8)
    bf16 = quantized_inference_memory(spec, None)
    awq = quantized_inference_memory(spec, format_from_flag("awq-4bit"))
    assert not fits(bf16, gpu) and fits(awq, gpu)
    assert S.replica_throughput(model, gpu, 1000, 200).n_gpus == 2
    assert S.replica_throughput(model, gpu, 1000, 200, quant=format_from_flag("awq-4bit")).n_gpus == 1


# --- config.json quantization_config -------------------------------------------------------------------------


def _hf_dict(config) -> dict:
    return json.loads(json.dumps(config.to_dict()))  # as `save_pretrained` writes it into config.json


def test_formats_read_from_transformers_quantization_configs() -> None:
    from transformers import AwqConfig, BitsAndBytesConfig, FineGrainedFP8Config, GPTQConfig

    gptq = format_from_config(_hf_dict(GPTQConfig(bits=4, group_size=32, desc_act=True)), "x")
    assert (gptq.method, gptq.bits, gptq.group_size, gptq.desc_act) == ("gptq", 4, 32, True)
    awq = format_from_config(_hf_dict(AwqConfig(bits=4, group_size=64, modules_to_not_convert=["gate"])), "x")
    assert (awq.method, awq.group_size, awq.skip) == ("awq", 64, ("gate",))
    assert format_from_config(_hf_dict(BitsAndBytesConfig(load_in_8bit=True)), "x").method == "bnb-int8"
    assert format_from_config(_hf_dict(BitsAndBytesConfig(load_in_4bit=True)), "x").method == "bnb-nf4"
    fp8 = format_from_config(_hf_dict(FineGrainedFP8Config()), "x")
    assert (fp8.scale, fp8.block) == ("block", (128, 128))


def test_compressed_tensors_config_w4a16() -> None:
    cfg = {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
           "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
               "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}}}}
    fmt = format_from_config(cfg, "x")
    assert (fmt.method, fmt.bits, fmt.group_size, fmt.skip) == ("ct-packed", 4, 128, ())


def test_unknown_quant_method_is_a_user_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown quantization_config quant_method `hqq`"):
        format_from_config({"quant_method": "hqq"}, "cfg.json")


def _quantized_folder(tmp_path: Path, quant: dict) -> Path:
    cfg = json.loads(json.dumps(resolve_model_config("llama-3.1-8b")))
    (tmp_path / "config.json").write_text(json.dumps(cfg | {"quantization_config": quant}))
    return tmp_path


def resolve_model_config(name: str) -> dict:
    from advisor.core.catalog import load_model_rows

    return next(r["config"] for r in load_model_rows() if r["name"] == name)


def test_estimate_reads_a_local_quantized_folder(tmp_path: Path) -> None:
    folder = _quantized_folder(tmp_path, {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False})
    result = CliRunner().invoke(app, ["estimate", "-m", str(folder), "--method", "inference", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = quantized_weight_bytes(resolve_model(str(folder)), format_from_config(read_quantization_config(
        str(folder))))
    assert data["memory"]["weights_bytes"] == expected.total_bytes
    assert data["serving"]["weights_format"] == "gptq 4-bit g128"


def test_estimate_unknown_quant_method_exits_2_with_one_line(tmp_path: Path) -> None:
    folder = _quantized_folder(tmp_path, {"quant_method": "hqq", "nbits": 4})
    result = CliRunner().invoke(app, ["estimate", "-m", str(folder), "--method", "inference"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert [ln for ln in result.output.splitlines() if ln.startswith("error:")] == [
        f"error: {folder / 'config.json'}: unknown quantization_config quant_method `hqq`"]


def test_estimate_serve_flags_only_with_inference() -> None:
    result = CliRunner().invoke(app, ["estimate", "-m", "llama-3.1-8b", "--method", "lora", "--serve-quant", "fp8"])
    assert result.exit_code == 2 and "--method inference" in result.output


def test_estimate_fp8_kv_cache_halves_the_kv_bytes_and_reports_speed() -> None:
    base = ["estimate", "-m", "llama-3.1-8b", "--method", "inference", "--gpu", "h100-80gb", "--context", "8192",
            "-b", "8", "--json", "--requests-per-day", "50000"]
    plain = json.loads(CliRunner().invoke(app, base).stdout)
    fp8 = json.loads(CliRunner().invoke(app, [*base, "--kv-cache-dtype", "fp8"]).stdout)
    assert fp8["memory"]["kv_cache_bytes"] * 2 == plain["memory"]["kv_cache_bytes"]
    assert fp8["memory"]["weights_bytes"] == plain["memory"]["weights_bytes"]
    assert fp8["serving"]["output_tokens_per_s"] > plain["serving"]["output_tokens_per_s"]


# --- KV cache, tokens/s and the monthly bill -----------------------------------------------------------------


def test_replica_kv_cache_in_fp8_is_half() -> None:
    model = resolve_model("llama-3.1-8b")
    kw = {"adapter_params": [], "n_whole_models": 1, "max_model_len": 4096, "concurrency": 16}
    plain, fp8 = estimate_serving(model, **kw), estimate_serving(model, **kw, kv_cache_dtype="fp8")
    assert plain.kv_cache_bytes == 2 * model.n_layers * model.n_kv_heads * model.head_dim * 4096 * 16 * 2
    assert fp8.kv_cache_bytes * 2 == plain.kv_cache_bytes


def test_decode_is_bandwidth_bound_and_reads_the_quantized_bytes() -> None:
    model, gpu = resolve_model("llama-3.1-8b"), resolve_gpu("a100-80gb")
    fmt = format_from_flag("gptq-4bit")
    r = S.replica_throughput(model, gpu, 500, 200, quant=fmt)
    weights = quantized_weight_bytes(model, fmt).total_bytes
    kv = 2 * model.n_layers * model.n_kv_heads * model.head_dim * 2 * 700
    step = (weights + r.batch * kv * 600 / 700) / (gpu.bandwidth_gb_per_s * 1e9 * S.BANDWIDTH_EFFICIENCY)
    assert r.bandwidth_bound and r.decode_step_s == pytest.approx(step)
    assert r.output_tokens_per_s == pytest.approx(r.batch / step)
    assert r.prefill_s == pytest.approx(500 * 2 * P.count_params(model).n_active_params
                                        / ((gpu.bf16_tflops or gpu.fp16_tflops) * 1e12 * S.PREFILL_MFU))


def test_bandwidth_efficiency_rederived_from_the_published_latencies() -> None:
    """NeMo docs, Llama-2-7B TRT-LLM TP1 batch 1, 20 output tokens: 153.8 ms (H100 SXM), 234.0 ms (A100 80GB)."""
    weights = P.count_params(resolve_model("llama-2-7b")).n_params * 2
    h100 = 20 * weights / (resolve_gpu("h100-80gb").bandwidth_gb_per_s * 1e9) / 0.1538
    a100 = 20 * weights / (resolve_gpu("a100-80gb").bandwidth_gb_per_s * 1e9) / 0.2340
    assert 0.50 < h100 < S.BANDWIDTH_EFFICIENCY < a100 < 0.60


def test_fewer_bytes_per_token_means_fewer_gpus_and_a_lower_bill() -> None:
    model, gpu = resolve_model("llama-3.1-70b"), resolve_gpu("h100-80gb")
    bf16 = S.estimate_self_hosted_monthly(model, gpu, 200_000, 800, 200)
    awq = S.estimate_self_hosted_monthly(model, gpu, 200_000, 800, 200, quant=format_from_flag("awq-4bit"),
                                         kv_cache_dtype="fp8")
    assert awq.n_gpus < bf16.n_gpus and awq.monthly_usd < bf16.monthly_usd
    assert awq.output_tokens_per_s > bf16.output_tokens_per_s
    one = S.replica_throughput(model, gpu, 800, 200, quant=format_from_flag("awq-4bit"), kv_bytes=1)
    busy_h = 200_000 * (one.prefill_s + 200 * one.decode_step_s / one.batch) / 3600
    assert awq.n_gpus == one.n_gpus * max(1, math.ceil(busy_h / (24 * S.TARGET_LOAD)))  # 2 replicas × 1 GPU


def _gpus_at(model, gpu, size, quant, volume=200_000, prompt=800, output=200) -> int:
    r = S.replica_throughput(model, gpu, prompt, output, quant=quant, n_gpus=size)
    busy_h = volume * (r.prefill_s + output * r.decode_step_s / r.batch) / 3600
    return r.n_gpus * max(1, math.ceil(busy_h / (24 * S.TARGET_LOAD)))


def test_replica_size_is_the_tensor_parallel_size_needing_fewest_gpus() -> None:
    """FP8 70B fills one H100 with weights (batch 14); two GPUs per replica hold a batch of 64 instead."""
    model, gpu, fp8 = resolve_model("llama-3.1-70b"), resolve_gpu("h100-80gb"), format_from_flag("fp8")
    fewest = _gpus_at(model, gpu, None, fp8)
    est = S.estimate_self_hosted_monthly(model, gpu, 200_000, 800, 200, quant=fp8)
    assert est.n_gpus == min(_gpus_at(model, gpu, n, fp8) for n in (1, 2, 4, 8)) < fewest
    idle = S.estimate_self_hosted_monthly(model, gpu, 0, 800, 200, quant=fp8)
    assert idle.n_gpus == 1  # no volume: the smallest replica


def test_serve_prediction_carries_the_format_and_gpus() -> None:
    model, gpu = resolve_model("llama-3.1-70b"), resolve_gpu("h100-80gb")
    kw = {"adapter_params": [1_000_000], "n_whole_models": 0, "max_model_len": 2048, "concurrency": 8, "gpu": gpu,
          "requests_per_day": 10_000, "prompt_tokens": 500, "output_tokens": 200}
    bf16 = estimate_serving(model, **kw)
    q = estimate_serving(model, **kw, quant=format_from_flag("gptq-4bit"), kv_cache_dtype="fp8")
    assert (q.weights_format, q.kv_cache_dtype) == ("gptq 4-bit g128", "fp8")
    assert q.weights_bytes == quantized_weight_bytes(model, format_from_flag("gptq-4bit")).total_bytes
    assert q.n_gpus < bf16.n_gpus and q.monthly_usd < bf16.monthly_usd


# --- engine flags ---------------------------------------------------------------------------------------------


def test_engine_flags_carry_quantization_and_kv_cache_dtype() -> None:
    served = [ServedModel(name="m", kind="model", path="/runs/m", base_path="/runs/base", seq_len=512, step=1)]
    kw = {"max_model_len": 1024, "concurrency": 4, "dtype": "bfloat16", "port": 8000}
    config = engines.vllm_config("/runs/m", served, **kw, quantization="fp8", kv_cache_dtype="fp8")
    args = parser(VLLM_FLAGS, positional_model=True).parse_args(["/runs/m", *config_to_argv(config)])
    assert (args.quantization, args.kv_cache_dtype) == ("fp8", "fp8")
    sg = engines.sglang_argv("/runs/m", served, **kw, quantization="awq", kv_cache_dtype="fp8")
    sargs = parser(SGLANG_FLAGS, positional_model=False).parse_args(sg)
    assert (sargs.quantization, sargs.kv_cache_dtype) == ("awq", "fp8_e4m3")  # SGLang has no bare `fp8`
    plain = engines.vllm_config("/runs/m", served, **kw)
    assert "quantization" not in plain and "kv-cache-dtype" not in plain


def test_every_flag_format_and_engine_name_is_sized() -> None:
    model = resolve_model("qwen2.5-0.5b") if "qwen2.5-0.5b" in _catalog() else resolve_model("llama-3.1-8b")
    bf16 = P.count_params(model).n_params * 2
    for name in SERVE_QUANT_FLAGS:
        assert 0 < quantized_weight_bytes(model, format_from_flag(name)).total_bytes < bf16
    for engine in ("gptq", "awq", "bitsandbytes", "fp8", "compressed-tensors"):
        assert format_from_engine(engine).vllm_name in (engine, "bitsandbytes")
    assert format_from_engine(None) is None


def _catalog() -> set[str]:
    from advisor.core.catalog import load_models

    return set(load_models())


def test_serve_step_refuses_gptq_flags_for_a_16bit_checkpoint(tmp_path: Path) -> None:
    from advisor.core.errors import AdvisorError
    from advisor.core.models import ServeStep
    from backends.serve.run import run

    model_dir = tmp_path / "merged"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(resolve_model_config("llama-3.1-8b")))
    served = ServedModel(name="m", kind="model", path=str(model_dir), base_path=str(model_dir), seq_len=512, step=1)
    step = ServeStep(models=[served], quantization="gptq", kv_cache_dtype="fp8")
    with pytest.raises(AdvisorError, match="is not a gptq checkpoint"):
        run(step, tmp_path / "step")
    assert not (tmp_path / "step").exists()  # nothing half-written


def test_quantized_search_finds_a_larger_batch() -> None:
    from advisor.core.estimate.job import JobRequest
    from advisor.core.estimate.serve_job import run_serving_estimate

    gpu = resolve_gpu("a100-80gb")
    spec = EstimateSpec(model=resolve_model("llama-3.1-8b"), method="inference", precision="bf16", seq_len=8192)
    request = JobRequest(gpu=gpu, max_batch=True, fit_all=True)
    plain = run_serving_estimate(spec, request, "bf16", [gpu], None, "auto")
    small = run_serving_estimate(spec, request, "bf16", [gpu], format_from_flag("awq-4bit"), "fp8")
    assert small.max_batch_size > plain.max_batch_size > 0  # the prefill working set grows with the batch too
    for result, batch in ((plain, plain.max_batch_size), (small, small.max_batch_size)):
        quant = None if result is plain else format_from_flag("awq-4bit")
        kv = "auto" if result is plain else "fp8"
        assert fits(quantized_inference_memory(spec.model_copy(update={"batch_size": batch}), quant, kv), gpu)
        assert not fits(quantized_inference_memory(spec.model_copy(update={"batch_size": batch + 1}), quant, kv), gpu)
    assert small.fit[0].peak_bytes == small.memory.peak_bytes < plain.memory.peak_bytes


def test_compressed_tensors_fp8_kv_cache_scheme_is_read(tmp_path: Path) -> None:
    quant = {"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
             "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False},
             "config_groups": {"group_0": {"targets": ["Linear"],
                                           "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                                           "input_activations": {"num_bits": 8, "type": "float", "dynamic": True}}}}
    folder = _quantized_folder(tmp_path, quant)
    got = json.loads(CliRunner().invoke(app, ["estimate", "-m", str(folder), "--method", "inference", "--json",
                                              "--context", "4096"]).stdout)
    model = resolve_model(str(folder))
    assert got["serving"]["kv_cache_dtype"] == "fp8"
    assert got["memory"]["kv_cache_bytes"] == 2 * model.n_layers * model.n_kv_heads * model.head_dim * 4096
    fmt = format_from_config(read_quantization_config(str(folder)))
    assert (fmt.method, fmt.scale, fmt.static_input_scale) == ("ct-8bit", "channel", False)
    assert got["memory"]["weights_bytes"] == quantized_weight_bytes(model, fmt).total_bytes
