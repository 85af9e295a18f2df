"""Cold-start wall time of `advisor estimate ... --json` against a bare `python -c pass`, in the same run.

Run: python benchmarks/bench_cold_start.py [--repeat 15]
Prints the median of each and their ratio (target: under 3× the bare interpreter).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

ESTIMATE = [sys.executable, "-m", "advisor", "estimate", "--model", "llama-3.1-8b", "--method", "qlora",
            "--gpu", "rtx-4090", "--json"]
BARE = [sys.executable, "-c", "pass"]
HELP = [sys.executable, "-m", "advisor", "--help"]


def _median_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    _median_seconds(ESTIMATE, 2)  # warm the file cache and .pyc files
    # Interleave so that machine noise hits both sides alike.
    bare, help_, est = [], [], []
    for _ in range(args.repeat):
        bare.append(_median_seconds(BARE, 1))
        help_.append(_median_seconds(HELP, 1))
        est.append(_median_seconds(ESTIMATE, 1))
    b, h, e = statistics.median(bare), statistics.median(help_), statistics.median(est)
    print(f"python -c pass           median {b * 1000:7.1f} ms")
    print(f"advisor --help           median {h * 1000:7.1f} ms   ratio {h / b:5.2f}x")
    print(f"advisor estimate --json  median {e * 1000:7.1f} ms   ratio {e / b:5.2f}x   (target < 3x)")


if __name__ == "__main__":
    main()
