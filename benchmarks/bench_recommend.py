"""Wall time of `advisor recommend` on a seed scenario against `advisor --help`, in the same run.

Run: python benchmarks/bench_recommend.py [--repeat 10] [--scenario seed-09]
Prints the median of each, their ratio, and the in-process time of `recommend()` alone (claim: the whole
command answers in well under a second; `--help` is the floor every command pays for Python + typer).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_cold_start import _median_seconds  # the same timer for every start-up benchmark

SCENARIOS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "seed-scenarios.yaml"
HELP = [sys.executable, "-m", "advisor", "--help"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command (median is reported)")
    parser.add_argument("--scenario", default="seed-09", help="seed scenario id to recommend for")
    args = parser.parse_args()
    scenario = next(s for s in yaml.safe_load(SCENARIOS.read_text()) if s["id"] == args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.yaml"
        answers.write_text(yaml.safe_dump(scenario["inputs"]))
        recommend_cmd = [sys.executable, "-m", "advisor", "recommend", str(answers)]
        subprocess.run(recommend_cmd, check=True, stdout=subprocess.DEVNULL)  # warm the file cache
        help_s = _median_seconds(HELP, args.repeat)
        rec_s = _median_seconds(recommend_cmd, args.repeat)
        json_s = _median_seconds([*recommend_cmd, "--json"], args.repeat)
    from advisor.core.models import Answers
    from advisor.core.recommend import recommend

    answers_model = Answers(**scenario["inputs"])
    recommend(answers_model)  # load rules and catalogs once, as the CLI does on its first call
    start = time.perf_counter()
    for _ in range(args.repeat):
        recommend(answers_model)
    inproc_ms = (time.perf_counter() - start) / args.repeat * 1000
    print(f"scenario {args.scenario}, median of {args.repeat} runs")
    print(f"advisor --help              {help_s * 1000:7.0f} ms")
    print(f"advisor recommend           {rec_s * 1000:7.0f} ms  ratio {rec_s / help_s:.2f}× --help")
    print(f"advisor recommend --json    {json_s * 1000:7.0f} ms  ratio {json_s / help_s:.2f}× --help")
    print(f"recommend() in process      {inproc_ms:7.1f} ms (rules and catalogs already loaded)")


if __name__ == "__main__":
    main()
