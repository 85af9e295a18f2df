"""Worker for several GPUs: `accelerate launch -m backends.train RUN_DIR [--resume]`.

Each process trains its share; the main process writes `result.json`. `run()` starts this; people do not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.models import TrainStep
from advisor.core.planning import load_plan
from backends.train.run import PLAN_FILE, train_here


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backends.train")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    step = next(s for s in load_plan(args.run_dir / PLAN_FILE).steps if isinstance(s, TrainStep))
    train_here(step, args.run_dir, resume=args.resume)


if __name__ == "__main__":
    main()
