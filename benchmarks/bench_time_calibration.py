"""Benchmark: our training-time estimator against published throughput, and the MFU the evidence implies.

Reads `shared/calibration/memory-published.csv`, keeps the rows whose notes carry a measured speed (torchtune
"tokens/sec N"; litgpt "time per 1k iters X min" or "runtime X min" for an Alpaca2k run of E epochs) on a
catalog model and a catalog GPU, and turns each row into an `EstimateSpec` with the memory benchmark's row
parser (`bench_memory_calibration.build_case`). For every row it prints the measured tokens/s, our predicted
tokens/s at the default utilisation (peak TFLOP/s × GPUs × MFU / FLOPs per token), the error of our predicted
training time, and the implied MFU (measured tokens/s × FLOPs per token / (peak × GPUs)). Then the median
implied MFU per (GPU class, method, framework), and the median absolute time error with the current defaults
against the medians the rows support.

FLOPs per token are `advisor.core.estimate.compute.flops_per_token` (recomputation included when the run
checkpoints), so an implied MFU here is exactly the `utilization=` that would have predicted the run.

Token counts. torchtune reports tokens/s itself (label tokens that are not padding; the README's multi-GPU
figures are the whole job's, not per GPU: per GPU they would exceed the peak). litgpt reports time only, so
tokens = iterations × micro-batch × padded length: litgpt pads each micro-batch to its longest sample, and
the GPU computes those pad tokens, so we count them (the padded length is the expected longest of `b`
Alpaca samples, see `ALPACA_*`). The Alpaca2k runtimes are whole-run wall clock (load, validation, sample
generation included), so their implied MFU is a lower bound.

Run: `python benchmarks/bench_time_calibration.py [CSV]`  (no torch; a few seconds)
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_memory_calibration import DEFAULT_CSVS, Skip, _source_kind, build_case  # noqa: E402

from advisor.core.catalog import load_gpus  # noqa: E402
from advisor.core.errors import AdvisorError  # noqa: E402
from advisor.core.estimate.compute import (  # noqa: E402
    default_utilization,
    flops_per_token,
    peak_tflops,
    tf32_matmuls,
)
from advisor.core.models import EstimateSpec, GpuSpec  # noqa: E402

# Alpaca sample lengths (prompt template included), modelled as log-normal: median 110 tokens (litgpt
# tutorials/prepare_dataset.md histogram, quoted in shared/research/memory-estimators.md) and a spread that
# makes the longest of its 51,759 samples the longest litgpt reports (Llama-2 tokenizer: 1,304 tokens).
ALPACA_MEDIAN_TOKENS = 110
ALPACA_LONGEST_TOKENS = 1304
ALPACA_N_SAMPLES = 51_759
ALPACA2K_TRAIN_SAMPLES = 1900  # litgpt Alpaca2k: 2,000 samples, val_split_fraction 0.05
ALPACA2K_MAX_SEQ = 512  # config_hub yamls: train.max_seq_length 512

IMPLAUSIBLE_MFU = 0.8  # above this the token count, the GPU or the FLOP count is off: out of the medians
HELD_OUT_NOTES = {
    "cpu offload": "CPU offload with a fused optimizer: step time is set by host Adam and PCIe, not GPU FLOPs",
}


@dataclass
class Row:
    """One published speed expressed as an estimator input."""

    index: int
    framework: str  # torchtune | litgpt
    model: str
    spec: EstimateSpec
    gpu: GpuSpec
    measured_tps: float  # tokens/s over all GPUs, padding included where the GPU computed it
    token_note: str
    weak: bool = False  # whole-run wall clock, not a training-loop rate
    held_out: str = ""

    @property
    def gpu_class(self) -> str:
        return "consumer" if self.gpu.name.startswith("rtx-") else "datacenter"

    @property
    def method(self) -> str:
        return self.spec.train_method or "full"

    @property
    def flops_per_token(self) -> float:
        return flops_per_token(self.spec)

    @property
    def peak_flops(self) -> float:
        tf32, _ = tf32_matmuls(self.spec)  # fp32 rows: TF32 only where the run set matmul precision 'high'
        return peak_tflops(self.gpu, self.spec.precision, tf32=tf32)[0] * 1e12 * self.spec.n_gpus

    @property
    def default_mfu(self) -> float:
        return default_utilization(self.spec, self.gpu)[0]

    @property
    def implied_mfu(self) -> float:
        return self.measured_tps * self.flops_per_token / self.peak_flops

    def predicted_tps(self, mfu: float) -> float:
        return self.peak_flops * mfu / self.flops_per_token

    def time_err(self, mfu: float) -> float:
        """Signed % error of the predicted training time (+: we say it takes longer than it did)."""
        return 100 * (self.measured_tps / self.predicted_tps(mfu) - 1)


# --- Alpaca padding model ------------------------------------------------------------------------------


def _alpaca_sigma() -> float:
    z = NormalDist().inv_cdf(1 - 1 / (ALPACA_N_SAMPLES + 1))
    return math.log(ALPACA_LONGEST_TOKENS / ALPACA_MEDIAN_TOKENS) / z


def expected_longest(batch: int, cap: float, steps: int = 4000) -> tuple[float, float]:
    """(E[min(longest of `batch` samples, cap)], E[min(one sample, cap)]) under the Alpaca length model."""
    dist, mu = NormalDist(math.log(ALPACA_MEDIAN_TOKENS), _alpaca_sigma()), math.log(ALPACA_MEDIAN_TOKENS)
    del mu
    width = cap / steps
    longest = mean = 0.0
    for i in range(steps):  # E[min(X, cap)] = ∫0^cap P(X > x) dx, midpoint rule
        cdf = dist.cdf(math.log((i + 0.5) * width))
        longest += (1 - cdf**batch) * width
        mean += (1 - cdf) * width
    return longest, mean


# --- reading a row -------------------------------------------------------------------------------------


def _gpu(row: dict[str, str], gpus: dict[str, GpuSpec]) -> GpuSpec:
    text = (row["gpus"] + " " + row["notes"]).lower()
    if not row["gpus"].strip():
        raise Skip("GPU not stated")
    if "4090" in text:
        return gpus["rtx-4090"]
    if "a6000" in text:
        return gpus["a6000"]
    if "a10g" in text:
        return gpus["a10g-24gb"]
    if "a100" in text:
        return gpus["a100-40gb" if "40gb" in text else "a100-80gb"]
    raise Skip("GPU not in the catalog", row["gpus"])


def _speed(row: dict[str, str], kind: str, spec: EstimateSpec) -> tuple[float, int, str, bool]:
    """(tokens/s over all GPUs, padded length for the attention term, how it was read, weak)."""
    notes, b, n = row["notes"], spec.batch_size, spec.n_gpus
    match = re.search(r"tokens/sec ([\d.]+)", notes)
    if match:
        tps = float(match.group(1))
        if "unpacked" in row["seq_len"]:
            longest, _ = expected_longest(b, spec.seq_len)
            return tps, round(longest), "torchtune tokens/s (non-pad tokens; unpacked: pad computed, not counted)", False
        scope = "whole job, 8 GPUs" if n > 1 else "1 GPU"
        return tps, spec.seq_len, f"torchtune tokens/s ({scope}; packed, no pad)", False
    match = re.search(r"time per 1k iters ([\d.]+) min", notes)
    if match:
        longest, mean = expected_longest(b, ALPACA_LONGEST_TOKENS)
        tps = 1000 * n * b * longest / (float(match.group(1)) * 60)
        note = f"litgpt 1k iters × {n} GPU × b{b} × {longest:.0f} padded tok ({mean:.0f} real/sample)"
        return tps, round(longest), note, False
    match = re.search(r"epochs (\d+); runtime ([\d.]+) min", notes)
    if match:
        longest, mean = expected_longest(b, ALPACA2K_MAX_SEQ)
        epochs, minutes = int(match.group(1)), float(match.group(2))
        tokens = epochs * ALPACA2K_TRAIN_SAMPLES * longest  # b samples per iteration, each padded to `longest`
        note = f"Alpaca2k {epochs} ep × {ALPACA2K_TRAIN_SAMPLES} × {longest:.0f} padded tok / whole-run time"
        return tokens / (minutes * 60), round(longest), note, True
    raise Skip("no throughput in the notes")


def build_row(index: int, row: dict[str, str], running: set[str], gpus: dict[str, GpuSpec]) -> Row:
    if not re.search(r"tokens/sec [\d.]|time per 1k iters [\d.]|runtime [\d.]", row["notes"]):
        raise Skip("no throughput in the notes")
    kind = _source_kind(row["source"])
    case = build_case(index, row, running)  # raises Skip for held-out rows, unmodelled methods and models
    gpu = _gpu(row, gpus)
    tps, seq_len, note, weak = _speed(row, kind, case.spec)
    spec = case.spec.model_copy(update={"seq_len": seq_len})
    held = next((why for key, why in HELD_OUT_NOTES.items() if key in row["notes"].lower()), "")
    framework = "torchtune" if kind.startswith("tt-") else "litgpt"
    result = Row(index, framework, row["model"], spec, gpu, tps, note, weak, held)
    if not held and result.implied_mfu > IMPLAUSIBLE_MFU:
        result.held_out = (f"implausible: implied MFU {result.implied_mfu:.2f} > {IMPLAUSIBLE_MFU} of a dense peak "
                           "(token count, GPU or recipe, e.g. checkpointing, not as stated)")
    return result


def run(rows: list[dict[str, str]]) -> tuple[list[Row], list[tuple[int, Skip]]]:
    gpus = load_gpus()
    used, skipped = [], []
    running: set[str] = set()
    for index, row in enumerate(rows, start=1):
        try:
            used.append(build_row(index, row, running, gpus))
        except Skip as skip:
            skipped.append((index, skip))
        except AdvisorError as exc:
            skipped.append((index, Skip("estimator rejected the spec", str(exc))))
    return used, skipped


# --- reporting -----------------------------------------------------------------------------------------


def _label(r: Row) -> str:
    s = r.spec
    label = r.method
    if s.uses_lora:
        targets = s.lora_targets if isinstance(s.lora_targets, str) else ",".join(
            t.replace("_proj", "") for t in s.lora_targets)
        label += f" r{s.lora_rank} {targets}"
    return label + (", ckpt" if s.grad_ckpt else "")


def print_rows(rows: list[Row]) -> None:
    print("| row | fw | model | method | GPU × n | b × seq | measured tok/s | GFLOP/tok | default MFU "
          "| predicted tok/s | time err % | implied MFU | tokens counted |")
    print("|" + "---|" * 13)
    for r in rows:
        s = r.spec
        weak = " (weak)" if r.weak else ""
        print(f"| {r.index} | {r.framework} | {r.model}{weak} | {_label(r)} | {r.gpu.name} × {s.n_gpus} "
              f"| {s.batch_size} × {s.seq_len} | {r.measured_tps:,.0f} | {r.flops_per_token / 1e9:.1f} "
              f"| {r.default_mfu:.2f} | {r.predicted_tps(r.default_mfu):,.0f} | {r.time_err(r.default_mfu):+.0f} "
              f"| {r.implied_mfu:.3f} | {r.token_note} |")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _bucket(r: Row) -> str:
    """The estimator's own prior buckets (`default_utilization`)."""
    if r.gpu_class == "consumer":
        return "consumer (any method)"
    return "datacenter QLoRA" if r.method == "qlora" else "datacenter full/LoRA"


def print_summary(rows: list[Row]) -> dict[str, float]:
    print()
    print("## Median implied MFU per group")
    print()
    print("| GPU class | method | framework | n | median implied MFU | min | max | rows |")
    print("|---|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.gpu_class, r.method, r.framework), []).append(r)
    for (cls, method, fw), group in sorted(groups.items()):
        mfus = [r.implied_mfu for r in group]
        print(f"| {cls} | {method} | {fw} | {len(group)} | {_median(mfus):.3f} | {min(mfus):.3f} "
              f"| {max(mfus):.3f} | {', '.join(str(r.index) for r in group)} |")

    strong = [r for r in rows if not r.weak]
    print()
    print("## Suggested priors (median implied MFU per estimator bucket)")
    print()
    print("| bucket | current | rows (all) | median (all) | rows (no weak) | median (no weak) "
          "| torchtune only | litgpt only |")
    print("|---|---|---|---|---|---|---|---|")
    suggested: dict[str, float] = {}
    buckets = sorted({_bucket(r) for r in rows})
    for bucket in buckets:
        group = [r for r in rows if _bucket(r) == bucket]
        no_weak = [r for r in group if not r.weak]
        tt = [r.implied_mfu for r in group if r.framework == "torchtune"]
        lit = [r.implied_mfu for r in group if r.framework == "litgpt"]
        suggested[bucket] = _median([r.implied_mfu for r in no_weak] or [r.implied_mfu for r in group])
        print(f"| {bucket} | {group[0].default_mfu:.2f} | {len(group)} | {_median([r.implied_mfu for r in group]):.3f} "
              f"| {len(no_weak)} | {_median([r.implied_mfu for r in no_weak]):.3f} "
              f"| {_median(tt):.3f} ({len(tt)}) | {_median(lit):.3f} ({len(lit)}) |")

    group_median = {key: _median([r.implied_mfu for r in g]) for key, g in groups.items()}
    print()
    print("## Time error: current defaults vs suggested")
    print()
    print("| rows | n | current: median abs % | current: median signed % | bucket medians: median abs % "
          "| bucket medians: signed % | per-group medians: median abs % |")
    print("|---|---|---|---|---|---|---|")
    sets = {
        "all rows used": rows,
        "without weak rows (litgpt Alpaca2k whole-run times)": strong,
        "torchtune": [r for r in rows if r.framework == "torchtune"],
        "litgpt": [r for r in rows if r.framework == "litgpt"],
    }
    for name, group in sets.items():
        cur = [r.time_err(r.default_mfu) for r in group]
        sug = [r.time_err(suggested[_bucket(r)]) for r in group]
        per = [r.time_err(group_median[(r.gpu_class, r.method, r.framework)]) for r in group]
        print(f"| {name} | {len(group)} | {_median([abs(v) for v in cur]):.0f} | {_median(cur):+.0f} "
              f"| {_median([abs(v) for v in sug]):.0f} | {_median(sug):+.0f} | {_median([abs(v) for v in per]):.0f} |")
    print()
    print("Bucket medians are taken over the non-weak rows of each bucket: "
          + "; ".join(f"{k} {v:.3f}" for k, v in suggested.items()) + ".")
    print("Per-group medians (class × method × framework) are the floor a constant per group could reach.")
    return suggested


def print_pairs(rows: list[Row]) -> None:
    """Same source, model, GPU, GPUs, batch and length, different method: the method's own effect on MFU."""
    print()
    print("## Paired rows: implied-MFU ratio between methods in otherwise identical runs")
    print()
    print("| framework | model | GPU × n | b × seq | ratio | value | rows |")
    print("|---|---|---|---|---|---|---|")
    cells: dict[tuple, dict[str, list[Row]]] = {}
    for r in rows:
        s = r.spec
        key = (r.framework, r.weak, s.model.name, r.gpu.name, s.n_gpus, s.batch_size, s.seq_len, s.grad_ckpt)
        cells.setdefault(key, {}).setdefault(r.method, []).append(r)
    ratios: dict[str, list[float]] = {}
    for key, by_method in cells.items():
        for num, den in (("qlora", "lora"), ("lora", "full")):
            if num in by_method and den in by_method:
                a = _median([r.implied_mfu for r in by_method[num]])
                b = _median([r.implied_mfu for r in by_method[den]])
                ratios.setdefault(f"{num}/{den}", []).append(a / b)
                ids = ", ".join(str(r.index) for r in by_method[num] + by_method[den])
                print(f"| {key[0]}{' (weak)' if key[1] else ''} | {key[2]} | {key[3]} × {key[4]} | {key[5]} × {key[6]} "
                      f"| {num}/{den} | {a / b:.2f} | {ids} |")
    print()
    for name, values in ratios.items():
        print(f"- median {name} implied-MFU ratio: {_median(values):.2f} over {len(values)} pairs "
              f"(range {min(values):.2f}–{max(values):.2f})")


def print_held_out(held: list[Row], skipped: list[tuple[int, Skip]], n_rows: int) -> None:
    print()
    print(f"## Held out ({len(held)}) and skipped ({len(skipped)}) of {n_rows} rows")
    print()
    for r in held:
        print(f"- row {r.index} ({r.model}, {r.method}, {r.gpu.name} × {r.spec.n_gpus}): {r.held_out}; "
              f"implied MFU {r.implied_mfu:.3f}, not in the medians")
    by_group: dict[str, list[tuple[int, Skip]]] = {}
    for index, skip in skipped:
        by_group.setdefault(skip.group, []).append((index, skip))
    for group, items in sorted(by_group.items(), key=lambda kv: -len(kv[1])):
        print(f"- **{group}** ({len(items)}): rows " + ", ".join(str(i) for i, _ in items))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSVS[0], help="memory-published.csv")
    args = parser.parse_args(argv)
    with args.csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    used, skipped = run(rows)
    kept = [r for r in used if not r.held_out]
    held = [r for r in used if r.held_out]
    print(f"Published throughput: `{args.csv.name}`, {len(rows)} rows (row = 1-based data row), "
          f"{len(kept)} used, {len(held)} held out")
    print()
    print(f"Alpaca length model: log-normal, median {ALPACA_MEDIAN_TOKENS}, sigma {_alpaca_sigma():.3f} "
          f"(longest of {ALPACA_N_SAMPLES:,} ≈ {ALPACA_LONGEST_TOKENS}); mean sample "
          f"{expected_longest(1, ALPACA_LONGEST_TOKENS)[1]:.0f} tokens.")
    print()
    print_rows(kept)
    print_summary(kept)
    print_pairs(kept)
    print_held_out(held, skipped, len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
