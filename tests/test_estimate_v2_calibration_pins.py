"""Pinned calibration: every published run the estimator expresses keeps today's estimate/measured ratio.

The runs are tests/fixtures/calibration/memory-published*.csv (copies of ../shared/calibration/, source
columns included); today's ratio per row is pinned_ratios.csv, written by
`python benchmarks/bench_memory_calibration.py --write-pins`. A change that moves any row's estimate by more
than ROW_BAND, drops a row, or raises a method group's median absolute error fails here; rewrite the pins
only for a change meant to move the estimate.
"""

from __future__ import annotations

import csv
import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "calibration"
ROW_BAND = 0.05  # |ratio now / ratio pinned − 1|
MEDIAN_SLACK = 1e-6  # rounding of the pinned ratios (6 decimals)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_memory_calibration",
                                                  ROOT / "benchmarks" / "bench_memory_calibration.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pins_now() -> tuple[list[dict[str, str]], dict[tuple[str, str], dict[str, str]]]:
    bench = _bench()
    with (FIXTURES / "pinned_ratios.csv").open(newline="", encoding="utf-8") as fh:
        pinned = list(csv.DictReader(fh))
    now = {(p["file"], p["row"]): p for p in bench.pin_rows(bench.DEFAULT_CSVS)}
    return pinned, now


def test_fixtures_are_the_shared_calibration_files() -> None:
    shared = ROOT.parent / "shared" / "calibration"
    for name in ("memory-published.csv", "memory-published-2.csv"):
        rows = list(csv.DictReader((FIXTURES / name).open(newline="", encoding="utf-8")))
        assert rows and "source" in rows[0] and "measured_peak_gb" in rows[0]
        if (shared / name).is_file():  # where the shared tree is checked out beside the repo
            assert (shared / name).read_bytes() == (FIXTURES / name).read_bytes(), f"re-copy {name}"


def test_every_pinned_row_is_still_estimated_and_nothing_new_is_unpinned(pins_now) -> None:
    pinned, now = pins_now
    assert len(pinned) >= 80
    assert {(p["file"], p["row"]) for p in pinned} == set(now)


def test_each_row_stays_within_its_band(pins_now) -> None:
    pinned, now = pins_now
    moved = []
    for pin in pinned:
        current = now.get((pin["file"], pin["row"]))
        if current is None:
            continue
        drift = float(current["ratio"]) / float(pin["ratio"]) - 1
        if abs(drift) > ROW_BAND:
            moved.append(f"{pin['file']}:{pin['row']} {pin['model']} {pin['method']} ({pin['stack']}): "
                         f"ratio {float(pin['ratio']):.3f} -> {float(current['ratio']):.3f} ({drift:+.1%})")
    assert not moved, f"{len(moved)} rows moved more than ±{ROW_BAND:.0%}:\n" + "\n".join(moved)


def _median_abs_error(rows) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row["method"], []).append(abs(float(row["ratio"]) - 1))
    return {method: statistics.median(errors) for method, errors in groups.items()}


def test_no_method_groups_median_error_rises(pins_now) -> None:
    pinned, now = pins_now
    before, after = _median_abs_error(pinned), _median_abs_error(now.values())
    assert set(after) == set(before)
    worse = {m: (before[m], after[m]) for m in before if after[m] > before[m] + MEDIAN_SLACK}
    assert not worse, f"median |estimate/measured − 1| rose: {worse}"
