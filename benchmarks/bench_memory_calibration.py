"""Benchmark: our memory estimator against published peak-memory measurements, and against accelerate.

Reads `shared/calibration/memory-published.csv` and `memory-published-2.csv` (one published run per row), turns
every row the estimator can express into an `EstimateSpec`, and prints one Markdown table row per run:
measured peak, our estimate of the same quantity, accelerate's rule of thumb, and both errors. Then the
median absolute error of both over the same rows, and the rows held out or skipped, grouped by reason.

Like with like: a row that reports allocated (or "active") memory is compared with `peak_allocated_bytes`;
`torch.cuda.max_memory_reserved` with allocated + allocator fragmentation (reserved excludes the CUDA
context); nvidia-smi or "uses N GB of VRAM" claims with `peak_bytes` (allocated + fragmentation + context).
GB is 1e9 bytes, GiB 2**30, as each row's notes say.

Baseline: Hugging Face `accelerate estimate-memory` (shared/research/memory-estimators.md §1.1). Full
fine-tuning with Adam reports the max over its stages: 16 B/param in fp32, 8 B/param in 16-bit or mixed
precision. It has no LoRA/QLoRA answer, so for those rows the baseline is its weights-only figure
(16-bit: 2 B/param; int4 = fp32 / 8 = 0.5 B/param) and the table marks it `w`. It has no sharding term: the
figure is per model, not divided over GPUs.

Stacks: each row is estimated with the knobs its framework's code sets (advisor/core/estimate/stacks.py for
the four profiled stacks; litgpt and torchtune keep LoRA weights in the model's bf16, canifinetune's bench
loop runs without autocast), and the summary reports the error by method and by stack, with the
estimate/measured ratio (min / median / max). Published OOM runs are checked separately: each is "called" when
the estimate does not fit the GPU the row names (a row that names none is skipped: it cannot be called).

Run: `python benchmarks/bench_memory_calibration.py [CSV ...]`  (default: both CSVs as pinned in
tests/fixtures/calibration/, copies of ../shared/calibration/; no torch; a few seconds).
`--write-pins` rewrites tests/fixtures/calibration/pinned_ratios.csv, the estimate/measured ratio of every row
that tests/test_estimate_v2_calibration_pins.py holds the estimator to: do it only when a change of the
estimate is meant, and say why in the commit.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from advisor.core.catalog import load_models
from advisor.core.errors import AdvisorError
from advisor.core.models import EstimateSpec, MemoryEstimate

CALIBRATION = Path(__file__).resolve().parents[1] / "tests/fixtures/calibration"  # copies of ../shared/calibration
DEFAULT_CSVS = [CALIBRATION / "memory-published.csv", CALIBRATION / "memory-published-2.csv"]
PINS = CALIBRATION / "pinned_ratios.csv"
PIN_FIELDS = ["file", "row", "source", "model", "method", "stack", "metric", "measured_gib", "estimate_gib", "ratio"]
GB, GIB = 1e9, 2**30
REASON_THRESHOLD_PCT = 25  # rows whose |error| exceeds this get a likely cause from their notes

# accelerate estimate-memory, "Training using Adam": max over {model, gradients, optimizer, step}.
ACCEL_FULL_BYTES_PER_PARAM = {"fp32": 16, "16-bit": 8}
ACCEL_WEIGHT_BYTES_PER_PARAM = {"16-bit": 2, "int4": 0.5}  # fp32 size / 2 and / 8

# Longest Alpaca sample per tokenizer, from litgpt tutorials/resource-tables.md (micro-batches are padded to it);
# the CSV notes list three of its four (Falcon's 1079 is in the same list, and in prepare_dataset.md's row).
ALPACA_LONGEST = {"phi-1.5": 1044, "stablelm": 1034, "llama 2": 1304, "falcon": 1079}
LLAMA2_LONGEST = ALPACA_LONGEST["llama 2"]
TORCHTUNE_LORA_MODULES = ["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# CSV model name (lower case) -> (catalog name, why that entry is the same architecture when the name differs).
MODEL_MAP = {
    "llama 3.1 8b": ("llama-3.1-8b", ""),
    "llama 3.1 8b instruct": ("llama-3.1-8b", ""),
    "llama-3.1-8b": ("llama-3.1-8b", ""),
    "meta-llama-3-8b-instruct": ("llama-3.1-8b", "Llama-3-8B has Llama-3.1-8B's shapes"),
    "meta-llama-3-8b": ("llama-3.1-8b", "Llama-3-8B has Llama-3.1-8B's shapes"),
    "llama-3-8b": ("llama-3.1-8b", "Llama-3-8B has Llama-3.1-8B's shapes"),
    "llama 3.1 70b": ("llama-3.1-70b", ""),
    "llama-3-70b (casperhansen/llama-3-70b-fp16)": ("llama-3.1-70b", "Llama-3-70B has Llama-3.1-70B's shapes"),
    "llama 3.1 405b": ("llama-3.1-405b", ""),
    "llama 3.3 70b instruct": ("llama-3.3-70b", ""),
    "llama 3.2 3b": ("llama-3.2-3b", ""),
    "llama-3.2-3b": ("llama-3.2-3b", ""),
    "llama-3.2-1b": ("llama-3.2-1b", ""),
    "llama-2-7b": ("llama-2-7b", ""),
    "llama 2 7b": ("llama-2-7b", ""),
    "llama 2 13b": ("llama-2-13b", ""),
    "falcon 7b": ("falcon-7b", ""),
    "falcon-7b": ("falcon-7b", ""),
    "falcon 40b": ("falcon-40b", ""),
    "gemma-2-9b": ("gemma-2-9b", ""),
    "gemma-7b": ("gemma-7b", ""),
    "mistral-7b": ("mistral-7b", ""),
    "mistral-7b-v0.2": ("mistral-7b", "v0.2 has v0.1's shapes (vocab 32000)"),
    "phi-3-mini-4k-instruct": ("phi-3-mini", ""),
    "tiny-llama": ("tinyllama-1.1b", ""),
    "qwen2-7b-instruct": ("qwen2.5-7b", "Qwen2-7B has Qwen2.5-7B's shapes"),
    "qwen/qwen2.5-0.5b-instruct": ("qwen2.5-0.5b", "the instruct model has its base's shapes"),
    "qwen/qwen2.5-1.5b-instruct": ("qwen2.5-1.5b", "the instruct model has its base's shapes"),
    "qwen/qwen2.5-3b-instruct": ("qwen2.5-3b", "the instruct model has its base's shapes"),
    "qwen/qwen2.5-7b-instruct": ("qwen2.5-7b", "the instruct model has its base's shapes"),
    "meta-llama/llama-3.1-8b": ("llama-3.1-8b", ""),
    "mistralai/mistral-7b-v0.3": ("mistral-7b-v0.3", ""),
}
# Source kind -> the stack whose code produced the run (profiles in advisor/core/estimate/stacks.py).
STACK_OF = {"axolotl": "axolotl", "lf-7409": "llama-factory", "ftune": "hf-trainer", "canifinetune": "canifinetune"}
# GPU named in a row -> catalog GPU (rules/catalog/gpus.yaml), for the OOM check.
GPU_MAP = {"a100 40gb": "a100-40gb", "a10g 24gb": "a10g-24gb", "a100 80gb": "a100-80gb", "rtx 4090": "rtx-4090"}
UNMAPPED = {
    "phi-1.5 1.3b": "Phi-1.5 (`phi` architecture) is not a supported arch",
    "phi-2": "Phi-2 (`phi` architecture) is not a supported arch",
    "stablelm alpha 3b": "StableLM-Alpha is GPT-NeoX; catalog `stablelm-3b` is StableLM-3B-4E1T (other shapes)",
    "stablelm-base-alpha-3b": "StableLM-Alpha is GPT-NeoX; catalog `stablelm-3b` is StableLM-3B-4E1T (other shapes)",
    "gemma-2b": "Gemma-1 2B is not in the catalog (arch `gemma` is supported)",
}


@dataclass
class Case:
    """One CSV row expressed as an estimator input, with how to read its measurement."""

    row: str  # 1-based data row, prefixed `2:` for the second CSV
    source: str
    model: str
    spec: EstimateSpec
    stack: str
    metric: str  # alloc | resv | smi
    measured_bytes: float
    causes: list[tuple[str, str]] = field(default_factory=list)  # (sign, cause): "-" real below model
    assumptions: list[str] = field(default_factory=list)
    weak: bool = False


@dataclass
class Result:
    case: Case
    ours_bytes: float
    accel_bytes: float
    accel_weights_only: bool

    @property
    def ratio(self) -> float:
        """Our estimate / measured."""
        return self.ours_bytes / self.case.measured_bytes

    @property
    def ours_err(self) -> float:
        return 100 * (self.ours_bytes - self.case.measured_bytes) / self.case.measured_bytes

    @property
    def accel_err(self) -> float:
        return 100 * (self.accel_bytes - self.case.measured_bytes) / self.case.measured_bytes


class Skip(Exception):
    """A row the benchmark does not compare, with the reason group and detail."""

    def __init__(self, group: str, detail: str = "") -> None:
        super().__init__(group)
        self.group, self.detail = group, detail


# --- reading a row ------------------------------------------------------------------------------------


def _source_kind(source: str) -> str:
    kinds = [
        ("Memory and training speed", "tt-readme"), ("Optimization flags", "tt-flags"),
        ("lora_finetune.rst", "tt-docs"), ("qlora_finetune.rst", "tt-docs"), ("llama3.rst", "tt-docs"),
        ("torchtune issue", "tt-issue"), ("resource-tables", "lit-res"), ("finetune_lora.md", "lit-prec"),
        ("prepare_dataset", "lit-oom"), ("config_hub", "lit-hub"), ("unsloth", "unsloth"),
        ("axolotl", "axolotl"), ("LlamaFactory", "lf-7409"), ("can-i-finetune-this", "canifinetune"),
        ("ftune", "ftune"),
    ]
    return next((kind for key, kind in kinds if key in source), "other")


def _held_out(row: dict[str, str]) -> str | None:
    measured, notes, method = row["measured_peak_gb"].strip(), row["notes"], row["method"]
    if "model init only" in method:
        return "model init only (not a training peak)"
    if measured.startswith("<="):
        return "capacity bound (`<= X`), not a peak reading"
    if measured.upper() == "OOM":
        return "OOM (no peak reading)"
    if "SUSPECT" in notes:
        return "SUSPECT in notes (below the bf16 AdamW state floor)"
    return None


def _method(row: dict[str, str]) -> str:
    method, quant = row["method"].lower(), row["quant"].lower()
    if method.startswith("adapter"):
        raise Skip("method not modelled: litgpt Adapter / Adapter-v2")
    if "8-bit base" in method or "int8" in quant:
        raise Skip("method not modelled: LoRA on an 8-bit (bnb int8) base")
    if "nf4" in quant or "4-bit" in quant or method.startswith("qlora"):
        return "qlora"
    if method.startswith("lora"):
        return "lora"
    if method.startswith("full"):
        return "full"
    raise Skip(f"method not modelled: {row['method']}")


def _model(row: dict[str, str], kind: str) -> tuple[str, str]:
    name = row["model"].strip().lower()
    if name == "gemma-2b" and "gemma2-2b" in row["notes"]:
        return "gemma-2-2b", "litgpt's `gemma-2b` row with config gemma2-2b is Gemma-2-2B"
    if name in MODEL_MAP:
        return MODEL_MAP[name]
    raise Skip("model not in the catalog", f"{row['model']}: " + UNMAPPED.get(name, "no catalog entry"))


def _targets(row: dict[str, str], arch: str, kind: str) -> tuple[list[str] | str, list[str]]:
    text = row["lora_targets"].lower()
    notes: list[str] = []
    if not text and kind.startswith("tt-"):
        return TORCHTUNE_LORA_MODULES, ["LoRA on q, v, output_proj + MLP (torchtune recipe default)"]
    if not text and kind == "lit-oom":
        text = "query value"
        notes.append("LoRA r8 on query+value (litgpt default of the time; row gives none)")
    if not text and kind == "lf-7409":
        return "all-linear", ["all-linear (trainable 0.2643% = r8 on every linear of Qwen2-7B)"]
    if kind == "ftune":
        if "all" in text:
            return "all-linear", ["ftune --lora-target all_linear: q,k,v,o,gate,up,down (benchmarks/benchmark.py)"]
        return ["q_proj", "v_proj"], ["ftune --lora-target attention is q_proj, v_proj in benchmarks/benchmark.py "
                                      "(the CSV says q,k,v,o)"]
    names = [t.strip() for t in text.split(",")]
    if len(names) > 1 and all(n.endswith("_proj") for n in names):
        return names, notes
    if "head" in text or "final output" in text:
        notes.append("LoRA on the LM head too: not expressible (adds r·(h+V) params, < 0.1 GiB)")
    if any(k in text for k in ("all linear", "mlp", "gate up down")):
        return "all-linear", notes
    if ("q_proj" in text and "v_proj" in text) or "query value" in text:
        fused = {"falcon": "query_key_value", "phi3": "qkv_proj"}
        if arch in fused:
            notes.append(f"q+v LoRA mapped to the fused `{fused[arch]}` (litgpt adapts only its q/v slices)")
            return [fused[arch]], notes
        return ["q_proj", "v_proj"], notes
    raise Skip("LoRA targets not stated", f"row targets `{row['lora_targets']}`")


def _rank(row: dict[str, str], kind: str, catalog: str) -> int:
    if row["lora_rank"].strip():
        return int(row["lora_rank"])
    if kind == "tt-readme":
        return 16 if catalog in ("llama-3.1-70b", "llama-3.1-405b") else 8
    if kind == "tt-flags":
        return 64  # llama3_2/3B_lora_single_device.yaml
    return 8


def _n_gpus(row: dict[str, str]) -> int:
    match = re.match(r"\s*(\d+)\s*(x|GPUs)", row["gpus"])
    return int(match.group(1)) if match else 1


def _unit_and_metric(kind: str, row: dict[str, str]) -> tuple[float, str, str]:
    """Bytes per unit, metric, and a note on how it was read."""
    notes = row["notes"]
    if kind == "tt-readme":
        return GIB, "alloc", "GiB; metric unstated, read as allocated/active"
    if kind == "tt-flags":
        return GIB, "alloc", "GiB, Peak Memory Active"
    if kind == "tt-docs":
        # Apr-2024 torchtune logged bytes / 1e9 as "GB"; lora_finetune.rst 15.57 = qlora_finetune.rst's reserved.
        return GB, "resv", "GB (torchtune logged /1e9 then), peak reserved"
    if kind.startswith("lit-"):
        return GB, "alloc", "GB, litgpt 'Memory used' = max_memory_allocated / 1e9"
    if kind == "axolotl":
        return (GIB if "GiB" in notes else GB), "smi", "README VRAM claim, read as nvidia-smi"
    if kind == "lf-7409":
        return GB, "smi", "GB, nvidia-smi (user report)"
    if kind == "canifinetune":
        return GIB, "resv", "GiB (bytes / 1024**3), torch.cuda.max_memory_reserved (bench/memory_trace.py)"
    if kind == "ftune":
        return GIB, "alloc", ("GiB, torch.cuda.max_memory_allocated after reset (benchmarks/benchmark.py "
                              "get_peak_memory_gb; the README calls it nvidia-smi)")
    raise Skip("unit/metric not known for this source")


# --- per-source spec details ---------------------------------------------------------------------------


def _seq_len(row: dict[str, str], kind: str, catalog: str, assumptions: list[str]) -> int:
    text = row["seq_len"].lower()
    if "longest" in text and kind == "lit-res":
        key = next((k for k in ALPACA_LONGEST if k in row["model"].lower()), None)
        if key is None:
            raise Skip("sequence length not stated", f"{row['model']}: no longest Alpaca sample for its tokenizer")
        assumptions.append(f"seq {ALPACA_LONGEST[key]} = longest Alpaca sample for this tokenizer (litgpt notes)")
        return ALPACA_LONGEST[key]
    if "variable" in text or ("unpacked" in text and "<=" in text):
        proxy = "" if catalog.startswith("llama-2") else " (a Llama-3 tokenizer gives fewer tokens)"
        assumptions.append(f"seq {LLAMA2_LONGEST} = longest Alpaca sample, Llama-2 tokenizer (litgpt notes){proxy}")
        return LLAMA2_LONGEST
    if "longest ~" in text:
        value = int(re.search(r"longest ~(\d+)", text).group(1))
        assumptions.append(f"seq {value} = longest Alpaca sample (row)")
        return value
    if text.startswith("<="):
        assumptions.append("seq = max_seq_length 512 (Alpaca2k has longer samples, so the peak batch is padded to it)")
    found = re.search(r"\d+", text)
    if found is None:
        raise Skip("sequence length not stated", f"{row['model']}: seq_len `{row['seq_len']}` gives no length")
    return int(found.group(0))


def _grad_ckpt(row: dict[str, str], kind: str, assumptions: list[str]) -> bool:
    text = row["grad_ckpt"].lower()
    if text:
        return text.startswith("yes")
    if kind in ("tt-readme", "lf-7409"):
        assumptions.append("gradient checkpointing on (recipe/framework default; row does not say)")
        return True
    return False  # litgpt single-GPU runs have none


def _optimizer(row: dict[str, str], kind: str, method: str, catalog: str) -> str:
    text = row["optimizer"].lower()
    if "paged" in text and "8bit" in text:
        return "paged-adamw-8bit"
    if "8-bit" in text or "8bit" in text:
        return "adamw-8bit"
    if "pagedadamw if quantized" in text and method == "qlora":
        return "paged-adamw"
    if kind == "tt-readme" and method == "full" and catalog == "llama-3.1-8b":
        return "paged-adamw-8bit"  # llama3_1/8B_full_single_device.yaml: PagedAdamW8bit, optimizer_in_bwd
    return "adamw"


def _lora_dropout(kind: str) -> float:
    # torchtune recipes, LLaMA-Factory and canifinetune's BenchConfig default to 0.0; litgpt, axolotl, ftune and
    # Apr-2024 torchtune docs use 0.05.
    return 0.0 if kind in ("tt-readme", "tt-flags", "lf-7409", "canifinetune") else 0.05


def _causes(row: dict[str, str], kind: str, method: str, flags: set[str]) -> list[tuple[str, str]]:
    """Framework differences named in the row's source/notes, signed by which way they move the real peak."""
    causes: list[tuple[str, str]] = []
    text = (row["notes"] + " " + row["method"]).lower()
    if "compile" in flags or "torch.compile on" in text:
        causes.append(("-", "torch.compile fuses/frees intermediates"))
    if "chunked" in flags or kind == "tt-readme":
        causes.append(("-", "torchtune chunked cross-entropy (no full fp32 logits)"))
    if kind.startswith("lit-"):
        causes.append(("-", "litgpt chunked cross-entropy / LM head"))
        causes.append(("-", "litgpt keeps LoRA weights in bf16, we assume fp32 (PEFT)"))
    if "offload" in flags or "cpu offload" in row["grad_ckpt"].lower():
        causes.append(("-", "activation offloading to CPU (not modelled)"))
    if "optim_bwd" in flags:
        causes.append(("-", "optimizer step fused into backward: no full gradient buffer (not modelled)"))
    if kind == "tt-readme" and method == "full" and "70b" not in row["model"].lower():
        causes.append(("-", "PagedAdamW8bit state in CUDA managed memory (outside the allocator) + optimizer_in_bwd"))
    if kind == "tt-readme":
        causes.append(("?", "recipe config not stated: torchtune defaults assumed"))
    if method == "qlora" and kind.startswith("lit-"):
        causes.append(("+", "litgpt's Lightning BitsandbytesPrecision also quantizes the LM head, whose input old "
                            "MatMul4Bit keeps too (the head is counted 16-bit, its input not kept)"))
    if kind in ("tt-docs", "tt-flags") and "packed" not in row["seq_len"]:
        causes.append(("-", "seq = longest-sample proxy; real peak batch may be shorter"))
    init = re.search(r"([\d.]+) GB reserved after model init", row["notes"])
    if init:
        causes.append(("+", f"{init.group(1)} GB already reserved after model init (checkpoint load/quantize); "
                            "no load phase is modelled"))
    if "cpu offload" in text and "fused optimizer" in text:
        causes.append(("-", "FSDP CPU offload also moves the sharded gradients to CPU; we keep them on GPU"))
    if method == "qlora" and _n_gpus(row) > 1:
        causes.append(("-", "ZeRO-3 gather counted at 2 B/param; QLoRA blocks are all-gathered in NF4"))
    if kind == "lit-oom":
        causes.append(("+", "litgpt copies Falcon's single KV head to all 71 heads before SDPA (part of it)"))
    if kind == "lf-7409":
        causes.append(("+", "nvidia-smi includes the allocator's cached pool; the bs-2 run grew to 32 GB"))
        causes.append(("?", "precision / attention / ckpt not stated (LLaMA-Factory defaults assumed)"))
    if kind == "axolotl":
        causes.append(("?", "coarse README claim (VRAM size), weak ground truth"))
    if kind == "ftune":
        causes.append(("-", "fp32 adapters under bf16 autocast save 16-bit copies of their inputs; we count the "
                            "fp32 dropout outputs (measured on CPU: ~16% fewer saved bytes without checkpointing)"))
    if kind == "canifinetune":
        causes.append(("+", "reserved − allocated is 4-26% in their per-run JSON, above our 5%"))
    return causes


def _tt_flags(row: dict[str, str], running: set[str]) -> set[str]:
    """torchtune's optimization table is cumulative top to bottom; LoRA rows list their own techniques."""
    method = row["method"].lower()
    marks = {"torch.compile": "compile", "chunked": "chunked", "fused into backward": "optim_bwd",
             "activation offloading": "offload", "act offload": "offload", "compile": "compile"}
    if method.startswith(("lora", "qlora")):
        return {flag for key, flag in marks.items() if key in method}
    running |= {flag for key, flag in marks.items() if key in method}
    return set(running)


def build_case(index: int | str, row: dict[str, str], running_flags: set[str]) -> Case:
    """Turn one CSV row into a Case, or raise Skip with the reason."""
    reason = _held_out(row)
    if reason:
        raise Skip("held out: " + reason)
    kind = _source_kind(row["source"])
    method = _method(row)
    catalog, model_note = _model(row, kind)
    model = load_models()[catalog]
    assumptions = [model_note] if model_note else []
    if kind.startswith("lit-") and model.tie_embeddings:
        # litgpt's GPT has its own lm_head Linear, never tied (litgpt/model.py); convert_hf_checkpoint copies the
        # embedding into it when the checkpoint ties them (scripts/convert_hf_checkpoint.py).
        model = model.model_copy(update={"tie_embeddings": False})
        assumptions.append("litgpt keeps an untied lm_head (a copy of the tied embedding)")
    flags = _tt_flags(row, running_flags) if kind == "tt-flags" else set()
    unit, metric, unit_note = _unit_and_metric(kind, row)
    assumptions.append(unit_note)
    kwargs: dict = {
        "model": model, "method": method, "precision": "bf16",
        "batch_size": int(row["batch_size"]), "seq_len": _seq_len(row, kind, catalog, assumptions),
        "grad_ckpt": _grad_ckpt(row, kind, assumptions), "optimizer": _optimizer(row, kind, method, catalog),
        "attention": "flash" if kind == "axolotl" else "eager" if kind == "ftune" else "sdpa",
        # These frameworks materialise the logits unless the row says chunked cross-entropy (torchtune's
        # chunks split the sequence, close enough to TRL's tiles for the vocabulary term).
        "loss_kernel": "chunked" if "chunked" in flags else "full",
    }
    if "mixed" in row["precision"]:
        kwargs["precision"] = "bf16-mixed"
    if method != "full":
        targets, notes = _targets(row, model.arch, kind)
        assumptions += notes
        kwargs.update(lora_rank=_rank(row, kind, catalog), lora_targets=targets, lora_dropout=_lora_dropout(kind))
        if method == "qlora":
            # litgpt's `bnb.nf4` is Lightning's _NF4Linear, compress_statistics=False (config_hub */qlora.yaml).
            kwargs["double_quant"] = "double-quant" in row["quant"] or kind not in ("lit-res", "lit-hub", "ftune")
            if kind == "ftune":
                kwargs["double_quant"] = True  # benchmarks/benchmark.py: bnb_4bit_use_double_quant=True
    stack, knobs, notes = _stack_knobs(kind, method)
    kwargs.update(knobs)
    assumptions += notes
    if kind.startswith("lit-") and model.n_kv_heads < model.n_heads:
        mqa_broadcast = model.n_kv_heads == 1 and kind != "lit-hub"  # before 50b1974b (2023-10-24)
        kwargs["sdpa_kv"] = "broadcast" if mqa_broadcast else "repeated"
        assumptions.append("litgpt (2023): one KV head broadcast by SDPA's math backend (s×s probabilities saved)"
                           if mqa_broadcast else "litgpt copies grouped k/v heads to every query head before SDPA")
    if kwargs.get("precision") == "fp32" and kwargs["attention"] == "sdpa" and model.n_kv_heads < model.n_heads:
        # An all-ones mask is dropped (transformers sdpa_mask's is_causal skip), so transformers passes
        # enable_gqa=True (integrations/sdpa_attention.py use_gqa_in_sdpa); in fp32 flash is out and the
        # mem-efficient/cuDNN kernels take no GQA broadcast, so SDPA runs its math backend (pytorch#181528):
        # q, the repeated k and v and the fp32 softmax are saved, as eager attention saves them.
        kwargs["attention"] = "eager"
        assumptions.append("fp32 GQA with enable_gqa=True: SDPA's math backend, counted as eager attention")
    if method == "qlora" and kind != "canifinetune":  # torchtune quantizes with torchao's NF4, not bitsandbytes
        version, note = _bnb_version(row, kind) if not kind.startswith("tt-") else (None, "")
        if version:
            kwargs["bitsandbytes"] = version
            assumptions.append(note)
    n_gpus = _n_gpus(row)
    if n_gpus > 1:
        kwargs.update(n_gpus=n_gpus, zero_stage=3)
        assumptions.append(f"FSDP full sharding over {n_gpus} GPUs (zero_stage 3)")
        if kind.startswith("tt-") and method == "full":
            # torchtune's full_finetune_distributed shards `custom_sharded_layers` as units of their own, and the
            # llama3_1/70B_full config of the table's time (Sep 2024) names ['tok_embeddings', 'output']; its
            # LoRA/QLoRA recipe shards the decoder layers only, so the root keeps embeddings and head gathered.
            kwargs["shard_root_unit"] = True
            assumptions.append("torchtune custom_sharded_layers: embeddings and output sharded as their own units")
        if "cpu offload" in row["notes"].lower() or "offload" in row["method"].lower():
            kwargs.update(offload_optimizer=True, offload_params=True)
            assumptions.append("FSDP CPU offload: parameters and optimizer state in CPU memory")
        if kind in ("lit-res", "lit-hub"):
            kwargs["fsdp_no_sync"] = True
            assumptions.append(LITGPT_NO_SYNC_NOTE)
    spec = EstimateSpec(**kwargs)
    measured = float(row["measured_peak_gb"]) * unit
    return Case(str(index), kind, row["model"], spec, stack, metric, measured, _causes(row, kind, method, flags),
                assumptions, weak=kind in ("axolotl", "lf-7409"))


# litgpt's multi-GPU runs accumulate gradients under FSDP no_sync. Oct 2023 (finetune/lora.py @ 8641822, Lightning
# @ 71aed751 from requirements.txt): gradient_accumulation_iters = 128 // micro_batch_size, every accumulating
# micro-batch inside `fabric.no_backward_sync(model, ...)`, which FSDPStrategy's _FSDPBackwardSyncControl turns
# into `module.no_sync()`; FSDPStrategy(auto_wrap_policy={Block}) with use_orig_params=True set by default, so each
# Block's flat parameter (LoRA inside) requires grad. Apr-Sep 2024 (litgpt/finetune/full.py @ 43c44323, Lightning
# 2.3.0.dev20240328): the same no_backward_sync loop, TrainArgs.gradient_accumulation_iters = 64 // 4 devices //
# micro-batch 4 = 4 in config_hub/finetune/{llama-2-7b,llama-3-8b}/full.yaml. The checkpoint load is not the peak:
# litgpt's load_checkpoint calls fabric.load_raw, whose _load_raw_module_state loads a CPU lazy_load state dict
# under FULL_STATE_DICT, and FSDP's _full_pre/post_load_state_dict_hook gather and free one unit at a time.
LITGPT_NO_SYNC_NOTE = ("litgpt accumulates gradients under FSDP no_sync (fabric.no_backward_sync): unsharded "
                       "gradients held between syncs, frozen block weights included (use_orig_params=True)")

# litgpt's pyproject.toml pinned bitsandbytes==0.42.0 from 2024-03-15 (#946) to 2024-12-28 (#1893), the span
# of its config_hub benchmark table (Apr-Sep 2024); rows that state a version say it in their notes.
LITGPT_2024_BNB = "0.42.0"


def _bnb_version(row: dict[str, str], kind: str) -> tuple[str | None, str]:
    """The bitsandbytes release a QLoRA row ran, from its source/notes or its framework's pin; None: unknown."""
    found = re.search(r"\b(?:bnb|bitsandbytes) (\d+\.\d+(?:\.\d+)?)\b", row["source"] + " " + row["notes"])
    if found:
        return found.group(1), f"bitsandbytes {found.group(1)} (row's notes)"
    if kind == "lit-hub":
        return LITGPT_2024_BNB, f"bitsandbytes {LITGPT_2024_BNB} (litgpt pyproject.toml pin, Mar-Dec 2024)"
    return None, ""


def _stack_knobs(kind: str, method: str) -> tuple[str, dict, list[str]]:
    """The stack that produced a row, and the knobs its code sets (only what the framework's code shows)."""
    if kind.startswith("lit-"):
        # litgpt builds the model under fabric's bf16-true precision: the LoRA weights are bf16 too.
        knobs = {"adapter_dtype": "bf16", "bnb_via_transformers": False}
        notes = ["LoRA weights bf16 (litgpt bf16-true precision); litgpt quantizes its own linears"]
        # CausalSelfAttention.forward copies grouped k/v heads out to every query head (k.expand(...).reshape)
        # before SDPA (lit_gpt/model.py@8641822, litgpt/model.py@43c44323); until 50b1974b (2023-10-24) it left
        # a single KV head (MQA) to SDPA's broadcast, which only the math backend takes. The 2023 tables
        # (resource-tables.md 2023-10-16, oom.md 2023-09-27, finetune_lora.md) predate it; config_hub is 2024.
        knobs["sdpa_kv"] = "repeated"
        if method == "qlora":
            # Lightning's BitsandbytesPrecision swaps every nn.Linear for its _Linear4bit, the LM head included
            # (no ignore_modules from litgpt), quantizing each weight from `.to(dtype=torch.half)`.
            knobs |= {"bnb_lm_head": True, "bnb_quant_dtype": "fp16"}
            notes.append("Lightning BitsandbytesPrecision: lm_head 4-bit too, weights quantized from fp16")
        return "litgpt", knobs, notes
    if kind.startswith("tt-"):
        # torchtune sets the default dtype to bf16 while it builds the model, LoRA layers included.
        return "torchtune", {"adapter_dtype": "bf16", "bnb_via_transformers": False}, [
            "LoRA weights bf16 (torchtune set_default_dtype); torchtune quantizes its own linears"]
    if kind == "canifinetune":
        # bench/runner.py: a plain loop, no autocast; QLoRA through prepare_model_for_kbit_training, so every
        # non-4-bit weight and every activation is fp32 (Linear4bit returns its fp32 input's dtype), which is
        # what precision fp32 counts; LoRA on a pure bf16 base. PEFT's fp32 adapters, transformers' full logits.
        # The loop keeps `outputs = model(...)` (its logits) alive through loss.backward() and optimizer.step():
        # their per-run JSON shows it, allocated after backward − after LoRA attach ≈ b·s·V·4 at 1.5B/2048.
        knobs = {"adapter_dtype": "fp32", "logits_held": True}
        held = "; `outputs` (logits) held through backward and the step (bench/runner.py)"
        if method == "qlora":
            return "canifinetune", {**knobs, "precision": "fp32", "bitsandbytes": "0.49.2"}, [
                "canifinetune bench loop: no autocast, k-bit prep, so fp32 activations (precision fp32)" + held]
        return "canifinetune", knobs, ["canifinetune bench loop: pure bf16 base, no autocast" + held]
    name = STACK_OF.get(kind)
    if name is None:
        return "other", {}, []
    from advisor.core.estimate.stacks import resolve_knobs

    values, _ = resolve_knobs(name, method, method, {})
    keep = {k: values[k] for k in ("stack", "adapter_dtype", "kbit_prep") if values.get(k) is not None}
    return name, keep, [f"{name} profile: adapters {keep.get('adapter_dtype')}, k-bit prep {keep.get('kbit_prep')}"]


# --- estimating and reporting ----------------------------------------------------------------------------


def _ours(est: MemoryEstimate, metric: str) -> float:
    if metric == "alloc":
        return est.peak_allocated_bytes
    if metric == "resv":
        return est.peak_allocated_bytes + est.allocator_overhead_bytes
    return est.peak_bytes


def accelerate_rule_of_thumb(spec: EstimateSpec, n_params: int) -> tuple[float, bool]:
    """accelerate estimate-memory: (bytes, weights-only?) — full: max over Adam stages; else weights."""
    if spec.method == "full":
        key = "fp32" if spec.precision == "fp32" else "16-bit"
        return n_params * ACCEL_FULL_BYTES_PER_PARAM[key], False
    key = "int4" if spec.method == "qlora" else "16-bit"
    return n_params * ACCEL_WEIGHT_BYTES_PER_PARAM[key], True


def run(rows: list[dict[str, str]], tag: str = "") -> tuple[list[Result], list[tuple[str, Skip]]]:
    results, skipped = [], []
    running_flags: set[str] = set()
    for number, row in enumerate(rows, start=1):
        index = f"{tag}{number}"
        try:
            case = build_case(index, row, running_flags)
        except Skip as skip:
            skipped.append((index, skip))
            continue
        except AdvisorError as exc:
            skipped.append((index, Skip("estimator rejected the spec", str(exc))))
            continue
        est = _estimate(case.spec)
        accel, weights_only = accelerate_rule_of_thumb(case.spec, est.n_params)
        results.append(Result(case, _ours(est, case.metric), accel, weights_only))
    return results, skipped


def _estimate(spec: EstimateSpec) -> MemoryEstimate:
    from advisor.core.estimate.memory import estimate_memory

    return estimate_memory(spec)


def _reason(result: Result) -> str:
    if abs(result.ours_err) <= REASON_THRESHOLD_PCT:
        return ""
    sign = "-" if result.ours_err > 0 else "+"  # we are high: the real run saves something we do not model
    matching = [text for s, text in result.case.causes if s in (sign, "?")]
    direction = "over" if sign == "-" else "under"
    return f"{direction}: " + ("; ".join(matching) if matching else "no cause named in the row")


def _precision_label(spec: EstimateSpec) -> str:
    label = spec.precision
    if spec.method == "qlora":
        label += "/nf4" + ("+dq" if spec.double_quant else "")
    if spec.optimizer != "adamw":
        label += f", {spec.optimizer}"
    return label


def _method_label(spec: EstimateSpec) -> str:
    if spec.method == "full":
        return "full"
    targets = spec.lora_targets if isinstance(spec.lora_targets, str) else ",".join(
        t.replace("_proj", "") for t in spec.lora_targets)
    return f"{spec.method} r{spec.lora_rank} {targets}"


def print_table(results: list[Result]) -> None:
    print("| row | source | model | method | precision/quant | b × seq | ckpt | GPUs | metric | measured GiB "
          "| ours GiB | ours/measured | ours err % | accel GiB | accel err % | likely cause (|ours err| > 25%) |")
    print("|" + "---|" * 16)
    for r in results:
        c, s = r.case, r.case.spec
        weak = " (weak)" if c.weak else ""
        accel_mark = " w" if r.accel_weights_only else ""
        print(f"| {c.row} | {c.source} | {c.model}{weak} | {_method_label(s)} | {_precision_label(s)} "
              f"| {s.batch_size} × {s.seq_len} | {'yes' if s.grad_ckpt else 'no'} | {s.n_gpus} | {c.metric} "
              f"| {c.measured_bytes / GIB:.2f} | {r.ours_bytes / GIB:.2f} | {r.ratio:.3f} | {r.ours_err:+.0f} "
              f"| {r.accel_bytes / GIB:.2f}{accel_mark} | {r.accel_err:+.0f} | {_reason(r)} |")


def _median_abs(values: list[float]) -> float:
    return statistics.median(abs(v) for v in values) if values else float("nan")


def _ratios(group: list[Result]) -> str:
    values = [r.ours_bytes / r.case.measured_bytes for r in group]
    if not values:
        return "-"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def print_summary(results: list[Result]) -> None:
    print()
    print("## Summary")
    print()
    groups = {
        "all rows used": results,
        "single-GPU rows": [r for r in results if r.case.spec.n_gpus == 1],
        "without weak rows (axolotl claims, LLaMA-Factory user report)": [r for r in results if not r.case.weak],
        "full fine-tuning": [r for r in results if r.case.spec.method == "full"],
        "LoRA": [r for r in results if r.case.spec.method == "lora"],
        "QLoRA": [r for r in results if r.case.spec.method == "qlora"],
    }
    for stack in sorted({r.case.stack for r in results}):
        groups[f"stack: {stack}"] = [r for r in results if r.case.stack == stack]
    for stack in sorted({r.case.stack for r in results}):
        for method in ("full", "lora", "qlora"):
            group = [r for r in results if r.case.stack == stack and r.case.spec.method == method]
            if group and len(group) != len(groups[f"stack: {stack}"]):
                groups[f"stack: {stack}, {method}"] = group
    print("| rows | n | ours: median abs err % | ours: median signed err % | ours/measured min / median / max "
          "| accelerate: median abs err % |")
    print("|---|---|---|---|---|---|")
    for name, group in groups.items():
        signed = statistics.median(r.ours_err for r in group) if group else float("nan")
        print(f"| {name} | {len(group)} | {_median_abs([r.ours_err for r in group]):.1f} | {signed:+.1f} "
              f"| {_ratios(group)} | {_median_abs([r.accel_err for r in group]):.1f} |")
    print()
    print("accelerate has no LoRA/QLoRA training figure: those rows (marked `w`) use its weights-only size.")


def print_skipped(name: str, results: list[Result], skipped: list[tuple[str, Skip]]) -> None:
    print()
    print(f"## Skipped in `{name}`: {len(skipped)} of {len(results) + len(skipped)} rows")
    print()
    by_group: dict[str, list[tuple[int, Skip]]] = {}
    for index, skip in skipped:
        by_group.setdefault(skip.group, []).append((index, skip))
    for group, items in sorted(by_group.items(), key=lambda kv: -len(kv[1])):
        print(f"- **{group}** ({len(items)}): rows " + ", ".join(str(i) for i, _ in items))
        details = sorted({s.detail for _, s in items if s.detail})
        for detail in details:
            print(f"  - {detail}")


def print_assumptions(results: list[Result]) -> None:
    print()
    print("## Assumptions per row")
    print()
    seen: dict[str, list[int]] = {}
    for r in results:
        for note in r.case.assumptions:
            seen.setdefault(note, []).append(r.case.row)
    for note, rows in seen.items():
        print(f"- {note}: rows {', '.join(map(str, rows))}")


NO_GPU = "no catalog GPU to hold the estimate against, so the OOM cannot be called either way"


def oom_checks(rows: list[dict[str, str]], tag: str) -> list[tuple[str, str, str]]:
    """Each published OOM run: (row, what ran, advisor's verdict on the GPU the row names)."""
    from advisor.core.catalog import load_gpus
    from advisor.core.estimate.fit import fits

    checks = []
    for number, row in enumerate(rows, start=1):
        if row["measured_peak_gb"].strip().upper() != "OOM":
            continue
        label = f"{row['model']} {row['method']} b{row['batch_size']} × {row['seq_len']} on {row['gpus'] or '?'}"
        gpu_key = next((key for key in GPU_MAP if key in row["gpus"].lower()), None)
        if gpu_key is None:  # nothing to check the estimate against
            shown = f"`{row['gpus']}` matches no catalog GPU" if row["gpus"].strip() else "its gpus column is empty"
            checks.append((f"{tag}{number}", label, f"skipped: {NO_GPU} ({shown})"))
            continue
        try:
            case = build_case(f"{tag}{number}", {**row, "measured_peak_gb": "1"}, set())
        except (Skip, AdvisorError, AttributeError, ValueError, StopIteration) as exc:  # a row parse fails
            reason = getattr(exc, "detail", "") or str(exc) or type(exc).__name__
            checks.append((f"{tag}{number}", label, f"not expressible ({reason})"))
            continue
        gpu = load_gpus()[GPU_MAP[gpu_key]]
        est = _estimate(case.spec)
        verdict = "called (does not fit)" if not fits(est, gpu) else "missed (estimate fits)"
        checks.append((f"{tag}{number}", label, f"{verdict}: estimate {est.peak_bytes / GIB:.1f} GiB on "
                                               f"{gpu.name} ({gpu.memory_bytes / GIB:.0f} GiB)"))
    return checks


def pin_rows(paths: list[Path]) -> list[dict[str, str]]:
    """One pin per row the estimator expresses in `paths`: its estimate/measured ratio today (PIN_FIELDS)."""
    pins = []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as fh:
            results, _ = run(list(csv.DictReader(fh)))
        for r in results:
            c = r.case
            pins.append({"file": path.name, "row": c.row, "source": c.source, "model": c.model,
                         "method": c.spec.method if c.spec.method != "dpo" else f"dpo-{c.spec.dpo_policy}",
                         "stack": c.stack, "metric": c.metric, "measured_gib": f"{c.measured_bytes / GIB:.4f}",
                         "estimate_gib": f"{r.ours_bytes / GIB:.4f}", "ratio": f"{r.ratio:.6f}"})
    return pins


def write_pins(paths: list[Path], out: Path = PINS) -> int:
    pins = pin_rows(paths)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PIN_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(pins)
    return len(pins)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="*", type=Path, default=DEFAULT_CSVS, help="calibration CSVs")
    parser.add_argument("--write-pins", action="store_true",
                        help=f"rewrite {PINS.name} (today's ratio per row) from the CSVs, then report as usual")
    args = parser.parse_args(argv)
    if args.write_pins:
        print(f"wrote {write_pins(args.csv)} pins to {PINS}", file=sys.stderr)
    every, skips, ooms = [], [], []
    for number, path in enumerate(args.csv, start=1):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        tag = f"{number}:" if len(args.csv) > 1 else ""
        results, skipped = run(rows, tag)
        every += results
        skips.append((path.name, results, skipped))
        ooms += oom_checks(rows, tag)
        print(f"Published peaks: `{path.name}`, {len(rows)} rows (row = {tag or ''}1-based data row, header excluded)")
        print()
        print_table(results)
        print()
    print_summary(every)
    print()
    checkable = [v for _, _, v in ooms if not v.startswith("skipped")]
    print(f"## Published OOM runs: {sum(v.startswith('called') for v in checkable)} of {len(checkable)} called"
          f" ({len(ooms) - len(checkable)} skipped: no GPU to check)")
    print()
    for row, label, verdict in ooms:
        print(f"- row {row}: {label}: {verdict}")
    for name, results, skipped in skips:
        print_skipped(name, results, skipped)
    print_assumptions(every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
