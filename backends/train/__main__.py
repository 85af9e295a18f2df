"""Worker for several processes: `accelerate launch -m backends.train RUN_DIR [--resume] [--plan PLAN]`.

Each process trains its share; the main process writes `result.json`. `run()` starts this on one machine;
`launch-multinode.sh` (written by `advisor run --emit-launch`) on each of several. An advisor error is printed
as one `error: ...` line (the launcher's caller reports it) and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.models import TrainStep
from advisor.core.planning import load_plan
from backends.train.run import PLAN_FILE, train_here


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backends.train")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--plan", type=Path, default=None, help="plan file; default RUN_DIR/plan.yaml")
    args = parser.parse_args()
    try:
        step = next(s for s in load_plan(args.plan or args.run_dir / PLAN_FILE).steps if isinstance(s, TrainStep))
        args.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        train_here(step, args.run_dir, resume=args.resume)
    except AdvisorError as error:
        print(f"error: {error.message}", file=sys.stderr, flush=True)
        sys.exit(2)
    from accelerate.state import AcceleratorState

    state = AcceleratorState()  # the one the Trainer set up: how this process trained
    print(f"process {state.process_index} of {state.num_processes}: {state.distributed_type.value}, backend "
          f"{state.backend}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
