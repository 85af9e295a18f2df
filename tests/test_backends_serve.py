"""The serve backend: vLLM/SGLang arguments parsed back against the engines' documented flags, the Ollama
Modelfile parsed back and its Go template rendered like the tokenizer's chat template, GGUF read by `gguf`,
the serving estimate, and `advisor run` of a two-adapter plan and of the support-assistant demo."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from advisor.core.catalog import resolve_gpu, resolve_model
from advisor.core.estimate.params import count_params, lora_params
from advisor.core.estimate.replica import estimate_serving
from advisor.core.models import ServedModel
from backends.serve import engines
from backends.serve.flags import SGLANG_FLAGS, VLLM_FLAGS, config_to_argv, parser, vllm_lora_rank
from backends.serve.ollama import go_template, modelfile, parse_modelfile, role_format

ROOT = Path(__file__).resolve().parent.parent
_register()


def _adapters(ranks: list[int]) -> list[ServedModel]:
    return [ServedModel(name=f"task{i}", kind="adapter", path=f"/runs/x/{i}/lora", base_path="/runs/x/base",
                        lora_rank=r, seq_len=512, step=i) for i, r in enumerate(ranks, start=1)]


# --- vLLM and SGLang arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rank", "expected"), [(1, 1), (4, 8), (8, 8), (16, 16), (20, 32), (300, 320), (512, 512)])
def test_vllm_lora_rank_is_the_smallest_value_vllm_accepts(rank: int, expected: int) -> None:
    assert vllm_lora_rank(rank) == expected


def test_vllm_refuses_a_rank_above_512() -> None:
    with pytest.raises(ValueError, match="above the largest"):
        vllm_lora_rank(513)


def test_vllm_config_parses_back_with_every_adapter_on_one_base() -> None:
    config = engines.vllm_config("/runs/x/base", _adapters([8, 20]), max_model_len=1024, concurrency=12,
                                 dtype="bfloat16", port=8001)
    # The YAML as written, read back and turned into the arguments vLLM's --config stands for.
    argv = ["/runs/x/base", *config_to_argv(yaml.safe_load(yaml.safe_dump(config)))]
    args = parser(VLLM_FLAGS, positional_model=True).parse_args(argv)
    assert args.model == "/runs/x/base" and args.enable_lora
    assert args.lora_modules == ["task1=/runs/x/1/lora", "task2=/runs/x/2/lora"]
    assert (args.max_lora_rank, args.max_loras, args.max_model_len, args.max_num_seqs) == (32, 2, 1024, 12)
    assert (args.dtype, args.port) == ("bfloat16", 8001)


def test_vllm_parser_rejects_a_rank_vllm_does_not_accept() -> None:
    import argparse

    with pytest.raises(argparse.ArgumentError):
        parser(VLLM_FLAGS, positional_model=True).parse_args(["m", "--max-lora-rank", "20"])


def test_a_whole_model_is_served_as_itself() -> None:
    model = ServedModel(name="full", kind="model", path="/runs/x/1/model", base_path="/b", seq_len=256, step=1)
    config = engines.vllm_config(model.path, [model], max_model_len=256, concurrency=4, dtype="float16", port=8000)
    args = parser(VLLM_FLAGS, positional_model=True).parse_args([model.path, *config_to_argv(config)])
    assert not args.enable_lora and args.lora_modules is None and args.served_model_name == ["full"]


def test_sglang_arguments_parse_back() -> None:
    argv = engines.sglang_argv("/runs/x/base", _adapters([16, 16, 64]), max_model_len=2048, concurrency=8,
                               dtype="bfloat16", port=30000)
    args = parser(SGLANG_FLAGS, positional_model=False).parse_args(argv)
    assert args.model_path == "/runs/x/base" and args.enable_lora
    assert args.lora_paths == [f"task{i}=/runs/x/{i}/lora" for i in (1, 2, 3)]
    assert (args.max_lora_rank, args.max_loras_per_batch, args.context_length) == (64, 3, 2048)


def test_client_snippet_is_python_naming_every_model() -> None:
    code = engines.client_snippet(["billing", "shipping"], 8000)
    compile(code, "client.py", "exec")
    assert "['billing', 'shipping']" in code and "http://127.0.0.1:8000/v1" in code


# --- the serving estimate ------------------------------------------------------------------------------------


def test_one_base_with_adapters_against_separate_models() -> None:
    model = resolve_model("llama-3.2-3b")
    adapter = lora_params(model, 16, "all-linear")
    est = estimate_serving(model, adapter_params=[adapter, adapter, adapter], n_whole_models=0, max_model_len=2048,
                           concurrency=16, gpu=resolve_gpu("a10g-24gb"), requests_per_day=30000,
                           prompt_tokens=800, output_tokens=200)
    weights = count_params(model).n_params * 2
    kv = 2 * model.n_layers * model.n_kv_heads * model.head_dim * 2048 * 16 * 2
    assert (est.weights_bytes, est.kv_cache_bytes, est.adapters_bytes) == (weights, kv, 3 * adapter * 2)
    assert est.replica_bytes == weights + kv + 3 * adapter * 2
    assert est.separate_bytes == 3 * (weights + kv) > est.replica_bytes
    assert est.monthly_usd is not None and est.separate_monthly_usd is not None
    assert est.separate_monthly_usd >= est.monthly_usd > 0 and est.output_tokens_per_s > 0


def test_a_plan_that_trains_ends_with_a_serve_step() -> None:
    from advisor.core.planning import build_plan
    from advisor.core.recommend import load_answers, recommend

    answers = load_answers(ROOT / "examples/support-assistant/answers.yaml")
    plan = build_plan(recommend(answers), answers)
    assert [s.kind for s in plan.steps][-1] == "serve"
    train = plan.steps[0]
    assert train.merge  # the export: merged by the training backend, which checks the loss
    prediction = plan.steps[-1].prediction
    assert prediction is not None and prediction.gpu == train.prediction.gpu and prediction.n_adapters == 1
    assert prediction.max_model_len == train.seq_len and prediction.requests_per_day == answers.requests_per_day



def test_the_serve_prediction_sizes_the_weights_and_kv_cache_the_serve_step_asks_for() -> None:
    from advisor.core.estimate.quantized import format_from_engine, quantized_weight_bytes
    from advisor.core.planning import build_plan, predict_serving
    from advisor.core.recommend import load_answers, recommend

    answers = load_answers(ROOT / "examples/support-assistant/answers.yaml")
    plan = build_plan(recommend(answers), answers)
    trained, serve = [s for s in plan.steps if s.kind == "train"], plan.steps[-1]
    plain = predict_serving(serve, trained)
    fp8 = predict_serving(serve.model_copy(update={"quantization": "fp8", "kv_cache_dtype": "fp8"}), trained)
    expected = quantized_weight_bytes(resolve_model(trained[0].base_model), format_from_engine("fp8"))
    assert fp8.weights_bytes == expected.total_bytes
    assert fp8.weights_bytes < plain.weights_bytes and fp8.kv_cache_bytes * 2 == plain.kv_cache_bytes
    assert (plain.weights_format, fp8.kv_cache_dtype) == ("16-bit", "fp8")

# --- Ollama ----------------------------------------------------------------------------------------------------


def _go_render(template: str, messages: list[dict]) -> str:
    """A Go-template evaluator for what go_template writes: range over .Messages, if / else if eq, literals."""
    tokens = re.split(r"(\{\{-?\s*.*?\s*-?\}\})", template)

    def action(tok: str) -> str:
        return re.sub(r"^\{\{-?\s*|\s*-?\}\}$", "", tok)

    def run(i: int, msg: dict | None, out: list[str], stop: tuple[str, ...]) -> int:
        while i < len(tokens):
            tok = tokens[i]
            if not tok.startswith("{{"):
                out.append(tok)
                i += 1
                continue
            act = action(tok)
            if act.split(" ")[0] in stop or act.startswith("else"):
                return i
            if act.startswith("range"):
                start = i + 1
                for m in messages:
                    i = run(start, m, out, ("end",))
                i = run(start, None, [], ("end",)) + 1
            elif act.startswith("if"):
                chosen, i = False, i
                while True:
                    cond = action(tokens[i])
                    role = re.search(r'eq \$m\.Role "(\w+)"', cond).group(1)
                    take = not chosen and msg is not None and msg["role"] == role
                    i = run(i + 1, msg, out if take else [], ("end",))
                    chosen = chosen or take
                    if action(tokens[i]) == "end":
                        i += 1
                        break
            elif act == "$m.Content":
                out.append(msg["content"] if msg else "")  # None: the pass that only finds the range's end
                i += 1
            elif act.startswith('"'):
                out.append(json.loads(act))
                i += 1
            else:
                raise AssertionError(f"unknown action {act}")
        return i

    out: list[str] = []
    run(0, None, out, ())
    return "".join(out)


@pytest.mark.extras("train")
def test_ollama_template_renders_as_the_chat_template_does() -> None:
    from backends.common.tiny import build_tokenizer

    tokenizer = build_tokenizer([{"messages": [{"role": "user", "content": "hello there"},
                                               {"role": "assistant", "content": "hi {{ friend }}"}]}])
    template = go_template(role_format(tokenizer))
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is {{x}}?"},
                    {"role": "assistant", "content": "Here."}, {"role": "user", "content": "Thanks"}]
    expected = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert _go_render(template, conversation) == expected
    text = modelfile("/m/base", "/m/lora", template, ["</s>", "<|user|>"], 512)
    parsed = parse_modelfile(text)
    assert parsed[0] == ("FROM", "/m/base") and parsed[1] == ("ADAPTER", "/m/lora")
    assert dict(parsed)["TEMPLATE"] == template
    assert [a for k, a in parsed if k == "PARAMETER"] == ["stop </s>", "stop <|user|>", "num_ctx 512"]


def test_modelfile_parser_rejects_unknown_instructions() -> None:
    with pytest.raises(ValueError, match="unknown Modelfile instruction"):
        parse_modelfile("FROM x\nTEMPERATURE 1\n")


# --- advisor run ----------------------------------------------------------------------------------------------

SHORT_STEPS = 6  # optimizer steps of each training step in the slow runs here: the files, not the learning


def _short_copy(plan_path: Path, folder: Path) -> Path:
    """The plan with its data paths absolute and every training step cut to SHORT_STEPS."""
    plan = yaml.safe_load(plan_path.read_text())
    for step in plan["steps"]:
        if step["kind"] == "train":
            step.update(max_steps=SHORT_STEPS, data_path=str(plan_path.parent / step["data_path"]))
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    return folder / "plan.yaml"


# A stand-in for llama.cpp's converter with its command line: writes a real GGUF of the model's tensors.
FAKE_CONVERTER = '''
import argparse, json
from pathlib import Path
import gguf
from safetensors.torch import load_file

p = argparse.ArgumentParser()
p.add_argument("model"); p.add_argument("--outfile"); p.add_argument("--outtype")
a = p.parse_args()
cfg = json.loads((Path(a.model) / "config.json").read_text())
w = gguf.GGUFWriter(a.outfile, "llama")
w.add_block_count(cfg["num_hidden_layers"]); w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
for f in sorted(Path(a.model).glob("*.safetensors")):
    for name, t in load_file(str(f)).items():
        w.add_tensor(name, t.float().numpy().astype("float16"))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
'''


def test_llama_cpp_that_is_not_a_checkout_is_one_line_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (tmp_path / "plan.yaml").write_text("steps:\n- kind: serve\n")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "plan.yaml"), "--yes", "--out", str(out),
                                      "--llama-cpp", str(tmp_path)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not a llama.cpp checkout" in errors[0] and "Traceback" not in result.output
    assert not out.exists()


def test_llama_cpp_on_a_plan_without_a_serve_step_is_refused(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "plan.yaml").write_text("steps:\n- kind: rag\n  docs_dir: docs\n")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "plan.yaml"), "--yes", "--out", str(tmp_path / "r"),
                                      "--llama-cpp", str(tmp_path)])
    assert result.exit_code == 2 and "this plan has none" in result.output and not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.extras("train")
def test_two_adapters_on_one_base_served_and_exported(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    llama = tmp_path / "llama.cpp"
    llama.mkdir()
    (llama / "convert_hf_to_gguf.py").write_text(FAKE_CONVERTER)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(_short_copy(ROOT / "examples/two-adapters/plan.yaml", tmp_path)),
                                      "--yes", "--demo", "--out", str(out), "--llama-cpp", str(llama)])
    assert result.exit_code == 0, result.output
    serve = out / "3-serve"
    data = json.loads((serve / "result.json").read_text())
    bases = {m["base_path"] for m in data["models"]}
    assert [m["name"] for m in data["models"]] == ["billing", "shipping"] and len(bases) == 1
    config = yaml.safe_load((serve / "serve/vllm.yaml").read_text())
    command = shlex.split((serve / "serve/vllm-serve.sh").read_text().splitlines()[-1])
    assert command[:2] == ["vllm", "serve"] and command[3:] == ["--config", str(serve / "serve/vllm.yaml")]
    args = parser(VLLM_FLAGS, positional_model=True).parse_args([command[2], *config_to_argv(config)])
    assert args.model == bases.pop() and args.max_lora_rank == 16 and args.max_loras == 2
    assert [m.split("=")[0] for m in args.lora_modules] == ["billing", "shipping"]
    assert all(Path(m.split("=", 1)[1], "adapter_config.json").is_file() for m in args.lora_modules)
    for name in ("billing", "shipping"):
        parsed = dict(parse_modelfile((serve / f"serve/ollama/{name}/Modelfile").read_text()))
        assert parsed["FROM"].endswith(f"{name}-f16.gguf") and "$m.Content" in parsed["TEMPLATE"]
        merged = serve / f"serve/export/{name}-bfloat16"
        assert json.loads((merged / "config.json").read_text())["torch_dtype"] == "bfloat16"
        reader = gguf.GGUFReader(str(serve / f"serve/export/{name}-f16.gguf"))
        assert reader.get_field("general.architecture").contents() == "llama"
        exported = {e["form"]: e for e in data["exports"] if e["name"] == name}
        assert exported["gguf"]["n_params"] == exported["merged-16bit"]["n_params"] == data["base_params_files"]
    report = (out / "report.md").read_text()
    assert "serve/vllm-serve.sh" in report and "serve/ollama/billing/Modelfile" in report
    assert "one base + 2 adapter(s) vs 2 separate models" in report


@pytest.mark.slow
@pytest.mark.extras("train")
def test_support_assistant_demo_report_lists_the_serving_files(tmp_path: Path) -> None:
    """The support assistant's own plan (from its answers), its index step left out and training cut short:
    tests/test_examples.py runs the whole of it."""
    from advisor.core.planning import absolute_plan, build_plan, save_plan
    from advisor.core.recommend import load_answers, recommend

    folder = ROOT / "examples/support-assistant"
    answers = load_answers(folder / "answers.yaml")
    plan = absolute_plan(build_plan(recommend(answers), answers), folder)
    # No validation split: the verdict's generations would take most of the time (the two-adapter test merges).
    short = {"max_steps": SHORT_STEPS, "eval_fraction": 0.0}
    steps = [s.model_copy(update=short) if s.kind == "train" else s for s in plan.steps if s.kind != "rag"]
    save_plan(plan.model_copy(update={"steps": steps}), tmp_path / "plan.yaml")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(tmp_path / "plan.yaml"), "--yes", "--demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for name in ("serve/vllm.yaml", "serve/vllm-serve.sh", "serve/sglang-serve.sh", "serve/ollama/lora/Modelfile",
                 "serve/client.py", "export adapter (lora)", "no merged export"):
        assert name in report
    rows = json.loads((out / "result.json").read_text())["steps"]
    served = rows[-1]
    assert served["kind"] == "serve" and served["predicted"]["gpu"] == "a10g-24gb"
    assert served["predicted"]["monthly_usd"] > 0


def test_an_ia3_plan_is_served_at_the_tuned_prompt_length() -> None:
    """The serve step prices the prompt the trained option serves (IA3 too), not an empty one."""
    from advisor.core.planning import build_plan, predict_serving
    from advisor.core.recommend import load_answers, recommend

    answers = load_answers(ROOT / "examples/many-tenants-ia3/answers.yaml")
    answers = answers.model_copy(update={"requests_per_day": 3_000_000})  # where prefill sets the GPU count
    rec = recommend(answers)
    plan = build_plan(rec, answers)
    trained, serve = [s for s in plan.steps if s.kind == "train"], plan.steps[-1]
    assert rec.stack[0] == "ia3" and rec.option("ia3").prompt_tokens > 0
    volume = dict(requests_per_day=answers.requests_per_day, output_tokens=answers.output_tokens)
    at_tuned = predict_serving(serve, trained, prompt_tokens=rec.option("ia3").prompt_tokens, **volume)
    assert serve.prediction.monthly_usd == at_tuned.monthly_usd
    assert at_tuned.monthly_usd != predict_serving(serve, trained, prompt_tokens=0, **volume).monthly_usd
