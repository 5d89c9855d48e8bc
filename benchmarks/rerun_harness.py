"""Reruns of an edited J12 job on its output directory, against a fresh run, side by side in one process.

    python benchmarks/rerun_harness.py [--rows 1000000] [--repeat 1] [--json PATH]

Runs, in this order, each on a directory of its own under a temporary root:

1. ``fresh``: J12 at ``--rows`` with ``output_dir``;
2. ``grow``: a fresh 1,000-row run on another directory, then grown to ``--rows``;
3. ``final``: the first directory rerun with only ``final`` changed (a new ``version=``): one
   column recomputed, eleven read back and carried;
4. ``h``: that directory rerun with ``h`` changed: ``h`` and everything downstream of it (eight
   columns) recomputed, the four roots kept;
5. ``fresh-again``: a fresh run once more; the mean of the two fresh runs is the reference.

Prints wall time, CPU time, tasks, cells kept and the time spent reading kept columns back,
and each rerun's wall time as a ratio of the fresh run's.  The bars the request sets: ``final``
at most 0.25, ``h`` at most 1.10, ``grow`` at most 1.00.  Quote the ratios, measured in one run
on a machine as quiet as you can get it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cellfrontier import Job, generator
from cellfrontier.testing.j12 import build_j12_graph, j12_generators

BARS = {"final": 0.25, "h": 1.10, "grow": 1.00}


def j12(out: Path, rows: int, changed: dict[str, str] | None = None) -> Job:
    generators: dict[str, Any] = j12_generators()
    for name, version in (changed or {}).items():
        generators[name] = generator(generators[name], version=version)
    return Job(
        build_j12_graph(), generators, rows, output_dir=out, max_active_row_groups=3, progress_bar=False
    )


def timed(job: Job) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    result = job.run()
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "tasks": result.tasks,
        "records": result.records,
        "cells_kept": result.cells_kept,
        "readback_seconds": result.readback_seconds,
    }


def measure(rows: int, root: Path) -> dict[str, dict[str, Any]]:
    """One round: a fresh run before and after the reruns, so drift shows (their mean is the reference)."""
    figures: dict[str, dict[str, Any]] = {}
    main = root / "main"
    figures["fresh"] = timed(j12(main, rows))
    grown = root / "grown"
    figures["grow-start"] = timed(j12(grown, 1_000))
    figures["grow"] = timed(j12(grown, rows))
    shutil.rmtree(grown, ignore_errors=True)
    plan_started = time.perf_counter()
    j12(main, rows, {"final": "2"}).plan_rerun()
    plan_seconds = time.perf_counter() - plan_started
    figures["final"] = timed(j12(main, rows, {"final": "2"}))
    figures["final"]["plan_seconds"] = plan_seconds
    figures["h"] = timed(j12(main, rows, {"final": "2", "h": "2"}))
    shutil.rmtree(main, ignore_errors=True)
    figures["fresh-again"] = timed(j12(root / "again", rows))
    shutil.rmtree(root / "again", ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    j12(Path(tempfile.mkdtemp(prefix="cf-warm-")) / "out", 2_000).run()  # pyarrow's first import and write
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="cf-rerun-bench-") as root:
            runs.append(measure(args.rows, Path(root)))
    print(
        f"J12 at {args.rows:,} rows with output_dir, best of {args.repeat} round(s); ratio to the mean fresh"
    )
    header = f"{'run':<12}{'wall s':>9}{'cpu s':>9}{'ratio':>8}{'bar':>7}{'tasks':>12}{'cells kept':>13}"
    print(header + f"{'read-back s':>13}")
    best = {name: min((run[name] for run in runs), key=lambda f: f["seconds"]) for name in runs[0]}
    reference = (best["fresh"]["seconds"] + best["fresh-again"]["seconds"]) / 2
    for name, figures in best.items():
        bar = f"{BARS[name]:.2f}" if name in BARS else ""
        print(
            f"{name:<12}{figures['seconds']:>9.2f}{figures['cpu_seconds']:>9.2f}"
            f"{figures['seconds'] / reference:>8.3f}"
            f"{bar:>7}{figures['tasks']:>12,}{figures['cells_kept']:>13,}{figures['readback_seconds']:>13.2f}"
        )
    print(f"plan_rerun() before the 'final' rerun: {best['final']['plan_seconds']:.3f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": args.rows, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
