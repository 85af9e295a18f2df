"""Exports: a merged (or fully trained) model as 16-bit safetensors, and GGUF through llama.cpp's converter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from advisor.core.errors import AdvisorError

__all__ = ["CONVERTER", "count_safetensors_params", "export_16bit", "export_gguf", "read_gguf"]

CONVERTER = "convert_hf_to_gguf.py"  # at the top of a llama.cpp checkout
# Files of a model folder that are not weights and travel with it (tokenizer, chat template, generation config).
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
              "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json")


def count_safetensors_params(folder: str | Path) -> int:
    """Elements of every tensor in a folder's `*.safetensors` files, read from their headers (nothing loaded)."""
    import math

    from safetensors import safe_open

    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                total += math.prod(f.get_slice(name).get_shape())
    return total


def export_16bit(model_dir: Path, side_dirs: list[Path], out_dir: Path, dtype: str) -> int:
    """Copy `model_dir`'s weights to `out_dir` cast to `dtype` (bfloat16/float16), with its tokenizer files.

    Floating-point tensors are cast; integer tensors are copied as they are. Returns the bytes written.
    """
    import torch
    from safetensors.torch import load_file, save_file

    target = {"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    shards = sorted(model_dir.glob("*.safetensors"))
    if not shards:
        raise AdvisorError(f"`{model_dir}` holds no safetensors weights", "train again with safetensors saving")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    written = 0
    for shard in shards:
        tensors = {k: (v.to(target) if v.is_floating_point() else v) for k, v in load_file(str(shard)).items()}
        save_file(tensors, str(out_dir / shard.name), metadata={"format": "pt"})
        written += (out_dir / shard.name).stat().st_size
    for index in model_dir.glob("*.safetensors.index.json"):
        shutil.copyfile(index, out_dir / index.name)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config["torch_dtype"] = config["dtype"] = dtype
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    for folder in [model_dir, *side_dirs]:
        for name in SIDE_FILES:
            if (folder / name).is_file() and not (out_dir / name).exists():
                shutil.copyfile(folder / name, out_dir / name)
    return written


def export_gguf(llama_cpp_dir: Path, model_dir: Path, out_file: Path, outtype: str) -> None:
    """Run llama.cpp's `convert_hf_to_gguf.py` on a Hugging Face model folder.

    Raises:
        AdvisorError: the converter failed (its last output line is named).
    """
    command = [sys.executable, str(llama_cpp_dir / CONVERTER), str(model_dir), "--outfile", str(out_file),
               "--outtype", outtype]
    print(f"serve: {' '.join(command)}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.stdout:
        print(done.stdout, end="", flush=True)
    if done.returncode != 0 or not out_file.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AdvisorError(f"llama.cpp's converter failed on `{model_dir}` (exit {done.returncode}): {last}",
                           f"run it by hand: {' '.join(command)}")


def read_gguf(path: Path) -> dict:
    """What the `gguf` package reads back from a GGUF file: architecture, tensor count and parameters."""
    import math

    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    field = reader.get_field("general.architecture")
    arch = field.contents() if field is not None else None
    return {"architecture": arch, "n_tensors": len(reader.tensors),
            "n_params": sum(math.prod(int(d) for d in t.shape) for t in reader.tensors)}
