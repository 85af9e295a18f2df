"""Write the serving configurations and exports of a run's trained models: check → group → write → estimate."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.fileio import write_text_atomic
from advisor.core.models import ServedModel, ServeStep
from backends.serve import engines, export, ollama
from backends.serve.results import RESULT_FILE, Export, ServeResult

__all__ = ["run"]


def _rel(path: Path, step_dir: Path) -> str:
    return str(path.relative_to(step_dir))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def _groups(models: list[ServedModel]) -> list[tuple[str, list[ServedModel]]]:
    """(model the server loads, what it serves): all adapters on one base together, each whole model alone."""
    groups: dict[str, list[ServedModel]] = {}
    for m in models:
        key = m.base_path if m.kind == "adapter" else m.path
        groups.setdefault(key, []).append(m)
    return list(groups.items())


def _check_checkpoint_quantization(step: ServeStep) -> None:
    """gptq / awq / compressed-tensors name a checkpoint already quantized so: vLLM refuses a 16-bit one.

    Raises:
        AdvisorError: a model the server would load has no such `quantization_config` in its config.json.
    """
    from advisor.core.estimate.quantized import read_quantization_config

    if step.quantization not in ("gptq", "awq", "compressed-tensors"):
        return
    for model, _ in _groups(step.models):
        stored = read_quantization_config(model) or {}
        if str(stored.get("quant_method", "")).lower() != step.quantization:
            raise AdvisorError(
                f"quantization `{step.quantization}`: `{model}` is not a {step.quantization} checkpoint (its "
                "config.json has no such `quantization_config`)",
                "quantize it first (GPTQModel, AutoAWQ or llm-compressor write one), or set `quantization: fp8` or "
                "`bitsandbytes`, which vLLM applies as it loads the 16-bit model")


def _tokenizer_dir(m: ServedModel) -> Path:
    adapter = Path(m.path)
    return adapter if (adapter / "tokenizer_config.json").is_file() else Path(m.base_path)


def _modelfile(m: ServedModel, source: str, adapter: str | None, num_ctx: int, notes: list[str]) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(_tokenizer_dir(m)), trust_remote_code=False)
    try:
        fmt = ollama.role_format(tokenizer)
        template = ollama.go_template(fmt)
        stops = [s for s in dict.fromkeys([tokenizer.eos_token, fmt.user[0].strip(), fmt.system[0].strip()]) if s]
    except ollama.TemplateError as exc:
        template, stops = None, [tokenizer.eos_token] if tokenizer.eos_token else []
        notes.append(f"Ollama Modelfile of `{m.name}` has no TEMPLATE: {exc}")
    return ollama.modelfile(source, adapter, template, stops, num_ctx)


def run(step: ServeStep, step_dir: Path) -> ServeResult:
    """Write every file into `step_dir / step.output_dir` and `result.json` into `step_dir`.

    Raises:
        AdvisorError: nothing to serve, or an export failed.
    """
    import yaml

    from advisor.core.catalog import resolve_model
    from advisor.core.estimate.params import count_params
    from advisor.core.estimate.quantized import (
        format_from_config,
        format_from_engine,
        read_quantization_config,
    )
    from advisor.core.estimate.replica import estimate_serving
    from backends.common.tiny import is_demo_model

    if not step.models:
        raise AdvisorError("nothing to serve: no training step before this one produced a model",
                           "put the serve step after a `train` step")
    _check_checkpoint_quantization(step)
    out = step_dir / step.output_dir
    if out.exists():
        shutil.rmtree(out)  # this step's own folder: written again from the inputs, which have not changed
    out.mkdir(parents=True)
    notes: list[str] = []
    max_len = step.max_model_len or max(m.seq_len for m in step.models)
    files: dict[str, str] = {}
    vllm_all, sglang_all = [], []
    groups = _groups(step.models)
    for g, (model, served) in enumerate(groups):
        suffix = f"-{g + 1}" if len(groups) > 1 else ""
        what = "the base with " + ", ".join(m.name for m in served) if served[0].kind == "adapter" else served[0].name
        quant = {"quantization": step.quantization, "kv_cache_dtype": step.kv_cache_dtype}
        config = engines.vllm_config(model, served, max_model_len=max_len, concurrency=step.max_concurrency,
                                     dtype=step.dtype, port=step.port + g, **quant)
        config_path = _write(out / f"vllm{suffix}.yaml", yaml.safe_dump(config, sort_keys=False))
        vllm_argv = [model, "--config", str(config_path)]
        script = _write(out / f"vllm-serve{suffix}.sh", "#!/usr/bin/env bash\n# vLLM: " + what + "\n"
                        + shlex.join(["vllm", "serve", *vllm_argv]) + "\n")
        sg = engines.sglang_argv(model, served, max_model_len=max_len, concurrency=step.max_concurrency,
                                 dtype=step.dtype, port=step.port + g, **quant)
        sg_script = _write(out / f"sglang-serve{suffix}.sh", "#!/usr/bin/env bash\n# SGLang: " + what + "\n"
                           + shlex.join(["python", "-m", "sglang.launch_server", *sg]) + "\n")
        files[f"vLLM config ({what})"] = _rel(config_path, step_dir)
        files[f"vLLM command ({what})"] = _rel(script, step_dir)
        files[f"SGLang command ({what})"] = _rel(sg_script, step_dir)
        vllm_all.append(vllm_argv)
        sglang_all.append(sg)

    exports: list[Export] = []
    for m in step.models:
        if m.kind == "adapter":
            size = sum(p.stat().st_size for p in Path(m.path).glob("adapter_model.*"))
            exports.append(Export(name=m.name, form="adapter", path=m.path, size_bytes=size,
                                  n_params=export.count_safetensors_params(m.path)))
        source = m.merged_path if m.kind == "adapter" else m.path
        if source is None:
            notes.append(f"`{m.name}`: no merged export (step {m.step} did not merge: the training backend merges "
                         "and checks the loss with `merge: true` and a validation split)")
            continue
        merged = out / "export" / f"{m.name}-{step.dtype}"
        print(f"serve: {m.name}: 16-bit safetensors → {merged}", flush=True)
        size = export.export_16bit(Path(source), [_tokenizer_dir(m), Path(m.base_path)], merged, step.dtype)
        exports.append(Export(name=m.name, form="merged-16bit", path=_rel(merged, step_dir), size_bytes=size,
                              n_params=export.count_safetensors_params(merged)))
        if step.llama_cpp_dir:
            gguf_file = out / "export" / f"{m.name}-{step.gguf_type}.gguf"
            export.export_gguf(Path(step.llama_cpp_dir), merged, gguf_file, step.gguf_type)
            read: dict = {}
            try:
                read = export.read_gguf(gguf_file)
            except ImportError:
                notes.append('GGUF not read back: `gguf` is not installed (pip install "advisor[serve]")')
            exports.append(Export(name=m.name, form="gguf", path=_rel(gguf_file, step_dir),
                                  size_bytes=gguf_file.stat().st_size, n_params=read.get("n_params"),
                                  gguf_architecture=read.get("architecture")))

    for m in step.models:
        own = [e for e in exports if e.name == m.name]
        gguf = next((e for e in own if e.form == "gguf"), None)
        if gguf is not None:
            source, adapter = str(step_dir / gguf.path), None
        elif m.kind == "adapter":
            source, adapter = m.base_path, m.path
        else:
            source, adapter = m.path, None
        path = _write(out / "ollama" / m.name / "Modelfile", _modelfile(m, source, adapter, max_len, notes))
        files[f"Ollama Modelfile ({m.name})"] = _rel(path, step_dir)
    names = [m.name for m in step.models]
    files["OpenAI client (python)"] = _rel(_write(out / "client.py", engines.client_snippet(names, step.port)),
                                           step_dir)

    base = step.models[0].base_path
    spec = resolve_model(base)
    adapter_params = [e.n_params or 0 for e in exports if e.form == "adapter"]
    quant, stored = format_from_engine(step.quantization), read_quantization_config(base)
    if stored:  # a checkpoint quantized already: vLLM serves it as its config says
        try:
            quant = format_from_config(stored)
        except AdvisorError as exc:
            notes.append(f"serving estimate sized as {quant.label if quant else '16-bit'} weights: {exc.message}")
    serving = estimate_serving(spec, adapter_params=adapter_params,
                               n_whole_models=sum(m.kind == "model" for m in step.models),
                               max_model_len=max_len, concurrency=step.max_concurrency, quant=quant,
                               kv_cache_dtype=step.kv_cache_dtype)
    result = ServeResult(models=step.models, files=files, vllm_argv=vllm_all, sglang_argv=sglang_all,
                         exports=exports, base_params_config=count_params(spec).n_params,
                         base_params_files=export.count_safetensors_params(base) if Path(base).is_dir() else 0,
                         serving=serving, is_demo_model=is_demo_model(base), notes=notes)
    write_text_atomic(step_dir / RESULT_FILE, result.model_dump_json(indent=2))
    return result
