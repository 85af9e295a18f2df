"""Benchmark: advisor's memory estimate against the measured CUDA peaks of real training steps on one NVIDIA GPU.

For each case (model × method × micro-batch × sequence length) this builds a randomly initialised model from
its catalog config (no download: `AutoModelForCausalLM.from_config`; the QLoRA base is saved to a temporary
folder and reloaded through bitsandbytes, as users load it), runs `--steps` real optimizer steps on random
token ids, and records `torch.cuda.max_memory_allocated` / `max_memory_reserved` and tokens/s next to
`advisor.core.estimate.memory.estimate_memory` for the same spec. A case that runs out of memory is recorded
as OOM beside the estimate's own fit verdict.

The steps are run the way `advisor train` runs them and the estimator's default (`--stack trl`) assumes:

- full: fp32 weights under bf16 autocast (`storage_precision`: fp32 master weights), torch's fused AdamW;
- LoRA: the base in bf16, PEFT adapters r=16, alpha 32, dropout 0.05 on all linears (fp32, PEFT's default);
- QLoRA: NF4 + double quantization, bf16 compute and storage (`backends.train.builders._to_bnb_config`),
  adapters cast to bf16 as TRL's SFTTrainer does, no prepare_model_for_kbit_training;
- every method: gradient checkpointing with input gradients enabled (TRL), SDPA attention, TRL's fused LM
  head (`trl.trainer.utils.add_fused_lm_head`, loss from per-token log-probabilities in tiles);
- DPO: chosen and rejected as one 2 × micro-batch through the policy; the reference is the adapter switched
  off (LoRA) or a frozen bf16 copy (full), scored under no_grad first; sigmoid loss, beta 0.1.

Run (one command; about 5 minutes on one H100/H200, under the 8 minute budget `--budget-s` enforces):

    python benchmarks/gpu_memory.py                 # writes benchmarks/results/gpu_memory.md
    python benchmarks/gpu_memory.py --dry-run       # no GPU, no torch: the planned cases and their estimates

Without CUDA it says so and exits 0 without measuring. `--smoke` runs one step of every method on a tiny
model on the CPU (the code path, no memory figures), which the test suite does.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_memory.md"
GIB = 2**30
STEPS = 3  # the first step allocates the optimizer state; the peak is reached by the second
BUDGET_S = 450  # stop starting new cases after this (the budget is 8 minutes on one H100/H200)
DPO_BETA = 0.1  # backends.train.builders.DPO_BETA
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear")  # TrainStep defaults
SHAPES = [(1, 512), (4, 512), (1, 2048), (4, 2048)]  # (micro-batch, sequence length)
# Catalog models (rules/catalog/models.yaml): Qwen2.5 0.5B/1.5B (Llama layout with q/k/v biases) and Llama-3.1-8B.
PLAN = [
    ("qwen2.5-0.5b", ["full", "lora", "qlora", "dpo-lora", "dpo-full"]),
    ("qwen2.5-1.5b", ["full", "lora", "qlora", "dpo-lora"]),
    ("llama-3.1-8b", ["lora", "qlora"]),
]
OOM_PROBE = ("llama-3.1-8b", "full", 1, 512)  # last: 8B full fine-tuning in fp32 + AdamW is ~128 GiB of states
TINY = dict(model_type="llama", vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False)


@dataclass(frozen=True)
class Case:
    model: str
    method: str  # full | lora | qlora | dpo-lora | dpo-full
    batch: int
    seq: int

    @property
    def train(self) -> str:
        return self.method.removeprefix("dpo-")

    @property
    def is_dpo(self) -> bool:
        return self.method.startswith("dpo")


@dataclass
class Measured:
    allocated: int | None = None
    reserved: int | None = None
    tokens_per_s: float | None = None
    status: str = "ok"


def plan() -> list[Case]:
    cases = [Case(m, method, b, s) for m, methods in PLAN for method in methods for b, s in SHAPES]
    return [*cases, Case(*OOM_PROBE)]


def estimate(case: Case, model_spec=None):
    """advisor's estimate for the case, as `advisor train` would predict it (stack trl, bf16 compute)."""
    from advisor.core.catalog import load_models
    from advisor.core.estimate.memory import estimate_memory
    from advisor.core.estimate.precision import storage_precision
    from advisor.core.models import EstimateSpec

    spec = EstimateSpec(
        model=model_spec or load_models()[case.model], method="dpo" if case.is_dpo else case.train,
        dpo_policy=case.train, precision=storage_precision(case.train, "bf16"), lora_rank=LORA["r"],
        lora_dropout=LORA["lora_dropout"], batch_size=case.batch, seq_len=case.seq, grad_ckpt=True,
        attention="sdpa", loss_kernel="chunked", stack="trl",
    )
    return estimate_memory(spec)


# --- building and running (torch from here on) -------------------------------------------------------------


def _hf_config(name: str):
    import transformers

    from advisor.core.catalog import load_model_rows

    raw = TINY if name == "tiny" else next(r for r in load_model_rows() if r["name"] == name)["config"]
    cfg = dict(raw)
    cfg = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    cfg._attn_implementation = "sdpa"
    return cfg


def _build(name: str, train: str, device: str, workdir: Path):
    """The model as `advisor train` loads it for `train`, randomly initialised."""
    import torch
    import transformers

    from backends.train.builders import _to_bnb_config

    cfg = _hf_config(name)
    torch.manual_seed(0)
    if train == "qlora":
        folder = workdir / f"{name}-bf16"
        if not folder.exists():
            with torch.device(device):
                base = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
            base.save_pretrained(folder)
            del base
            _free(device)
        kwargs = {"device_map": {"": 0}} if device == "cuda" else {}
        return transformers.AutoModelForCausalLM.from_pretrained(
            folder, quantization_config=_to_bnb_config("bf16"), dtype=torch.bfloat16, **kwargs)
    dtype = torch.float32 if train == "full" else torch.bfloat16
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)


def _prepare(model, train: str):
    """Fused LM head, checkpointing, adapters: what TRL's trainers do before the first step."""
    import peft
    import torch
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model)
    model.config.use_cache = False
    model.gradient_checkpointing_enable()
    model.train()
    if train == "full":
        return model
    model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA))
    model.enable_input_require_grads()
    if train == "qlora":  # SFTTrainer/DPOTrainer cast a quantized model's adapters to bf16
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.to(torch.bfloat16)
    return model


def _reference(name: str, model, train: str, device: str):
    """DPO's frozen reference: the policy with its adapter off (LoRA), or a bf16 copy (full)."""
    import copy

    import torch

    if train != "full":
        return None
    ref = copy.deepcopy(model).to(torch.bfloat16)
    ref.requires_grad_(False)
    ref.eval()
    return ref


def _sequence_logps(model, ids):
    return model(input_ids=ids, labels=ids, fused_lm_head=True).log_probs.sum(-1)


def _step(model, ref, optimizer, case: Case, vocab: int, device: str) -> None:
    import torch
    import torch.nn.functional as F

    autocast = torch.autocast(device, dtype=torch.bfloat16)
    ids = torch.randint(0, vocab, (case.batch * (2 if case.is_dpo else 1), case.seq), device=device)
    with autocast:
        if not case.is_dpo:
            loss = model(input_ids=ids, labels=ids, fused_lm_head=True).loss
        else:
            with torch.no_grad():
                if ref is None:
                    with model.disable_adapter():
                        ref_logps = _sequence_logps(model, ids)
                else:
                    ref_logps = _sequence_logps(ref, ids)
            logps = _sequence_logps(model, ids)
            b = case.batch
            margin = (logps[:b] - ref_logps[:b]) - (logps[b:] - ref_logps[b:])
            loss = -F.logsigmoid(DPO_BETA * margin).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def run_case(model, ref, case: Case, vocab: int, device: str, steps: int) -> Measured:
    """`steps` optimizer steps from a fresh optimizer; CUDA peaks from a reset after the model was built."""
    import torch

    _free(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=device == "cuda")  # adamw_torch_fused
    measured = Measured()
    try:
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            _step(model, ref, optimizer, case, vocab, device)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        tokens = case.batch * case.seq * (2 if case.is_dpo else 1)
        timed = times[1:] or times
        measured.tokens_per_s = tokens * len(timed) / sum(timed)
    except torch.OutOfMemoryError:
        measured.status = "OOM"
    if device == "cuda":
        measured.allocated = torch.cuda.max_memory_allocated()
        measured.reserved = torch.cuda.max_memory_reserved()
    for p in params:
        p.grad = None
    del optimizer
    _free(device)
    return measured


def measure_all(cases: list[Case], device: str, steps: int, budget_s: float, workdir: Path):
    """Run every case, grouped so each model is built once per method; stop starting cases past the budget."""
    import torch

    started, rows = time.monotonic(), []
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.model, case.method), []).append(case)
    for (name, method), group in groups.items():
        if time.monotonic() - started > budget_s:
            rows += [(c, Measured(status="skipped: time budget")) for c in group]
            continue
        print(f"[{time.monotonic() - started:5.0f}s] {name} {method}", file=sys.stderr, flush=True)
        model = ref = None
        try:
            _free(device)
            model = _prepare(_build(name, method.removeprefix("dpo-"), device, workdir), method.removeprefix("dpo-"))
            ref = _reference(name, model, method.removeprefix("dpo-"), device) if method.startswith("dpo") else None
        except torch.OutOfMemoryError:
            rows += [(c, Measured(status="OOM (loading)")) for c in group]
            model = ref = None
            _free(device)
            continue
        vocab = model.config.vocab_size
        for case in group:
            if time.monotonic() - started > budget_s:
                rows.append((case, Measured(status="skipped: time budget")))
                continue
            rows.append((case, run_case(model, ref, case, vocab, device, steps)))
        del model, ref
        _free(device)
    return rows, time.monotonic() - started


# --- reporting -------------------------------------------------------------------------------------------


def _versions() -> str:
    import importlib.metadata as md

    names = ["torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            found.append(f"{name} -")
    return ", ".join(found)


def _gib(n: float | None) -> str:
    return "-" if n is None else f"{n / GIB:.2f}"


def report(rows, wall_s: float, gpu: str, total_bytes: int | None, command: str) -> str:
    """The results as Markdown: one row per case, then the allocated-peak ratio by method."""
    import statistics

    from advisor.core.estimate.fit import usable_bytes

    lines = [
        "# Estimated vs measured GPU memory of real training steps", "",
        f"Date: {datetime.date.today().isoformat()}  ",
        f"GPU: {gpu}" + (f" ({total_bytes / GIB:.1f} GiB)" if total_bytes else "") + "  ",
        f"Versions: Python {platform.python_version()}, {_versions()}  ",
        f"Command: `{command}` ({wall_s:.0f} s)", "",
        "Estimate: `estimate_memory` for the case as `advisor train` runs it (stack `trl`). Allocated compares with "
        "`torch.cuda.max_memory_allocated`; reserved = allocated + allocator fragmentation, with "
        "`max_memory_reserved` (neither includes the CUDA context). Ratio = estimate / measured.", "",
        "| model | method | b × seq | est alloc GiB | meas alloc GiB | ratio | est resv GiB | meas resv GiB "
        "| ratio | tokens/s | fits (est) | status |",
        "|" + "---|" * 12,
    ]
    ratios: dict[str, list[float]] = {}
    for case, m in rows:
        est = estimate(case)
        est_resv = est.peak_allocated_bytes + est.allocator_overhead_bytes
        fits = total_bytes is not None and est.peak_bytes <= usable_bytes(total_bytes)
        ok = m.status == "ok" and m.allocated
        r_alloc = est.peak_allocated_bytes / m.allocated if ok else None
        r_resv = est_resv / m.reserved if ok and m.reserved else None
        if r_alloc:
            ratios.setdefault(case.method, []).append(r_alloc)
        lines.append(
            f"| {case.model} | {case.method} | {case.batch} × {case.seq} | {_gib(est.peak_allocated_bytes)} "
            f"| {_gib(m.allocated if ok else None)} | {f'{r_alloc:.2f}' if r_alloc else '-'} | {_gib(est_resv)} "
            f"| {_gib(m.reserved if ok else None)} | {f'{r_resv:.2f}' if r_resv else '-'} "
            f"| {f'{m.tokens_per_s:,.0f}' if m.tokens_per_s else '-'} | {'yes' if fits else 'no'} | {m.status} |")
    lines += ["", "| method | n | allocated ratio min / median / max |", "|---|---|---|"]
    for method, values in ratios.items():
        lines.append(f"| {method} | {len(values)} | {min(values):.2f} / {statistics.median(values):.2f} / "
                     f"{max(values):.2f} |")
    return "\n".join(lines) + "\n"


def dry_run() -> None:
    print("| model | method | b × seq | est allocated GiB | est peak GiB (with context) |")
    print("|---|---|---|---|---|")
    for case in plan():
        est = estimate(case)
        print(f"| {case.model} | {case.method} | {case.batch} × {case.seq} | {_gib(est.peak_allocated_bytes)} "
              f"| {_gib(est.peak_bytes)} |")


def smoke() -> None:
    """One step of every method on a tiny model on the CPU: the code path, not the memory figures."""
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("full", "lora", "qlora", "dpo-lora", "dpo-full"):
            train = method.removeprefix("dpo-")
            model = _prepare(_build("tiny", train, "cpu", Path(tmp)), train)
            ref = _reference("tiny", model, train, "cpu") if method.startswith("dpo") else None
            m = run_case(model, ref, Case("tiny", method, 2, 32), TINY["vocab_size"], "cpu", 1)
            print(f"{method}: {m.status}, {m.tokens_per_s:.0f} tokens/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list the cases and their estimates; no GPU needed")
    parser.add_argument("--smoke", action="store_true", help="one step per method on a tiny model on the CPU")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown results file")
    parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps per case")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="stop starting cases after this many s")
    args = parser.parse_args(argv)
    if args.dry_run:
        dry_run()
        return 0
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "peft", "trl", "bitsandbytes")):
        print("gpu_memory: needs torch, transformers, peft, trl and bitsandbytes (pip install \"advisor[train]\")",
              file=sys.stderr)
        return 0
    if args.smoke:
        smoke()
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_memory: no CUDA GPU here, nothing measured (run it on an NVIDIA machine; --dry-run lists the "
              "cases and their estimates)", file=sys.stderr)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="gpu_memory_"))
    try:
        rows, wall_s = measure_all(plan(), "cuda", args.steps, args.budget_s, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    total = torch.cuda.get_device_properties(0).total_memory
    command = "python benchmarks/gpu_memory.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    text = report(rows, wall_s, torch.cuda.get_device_name(0), total, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
