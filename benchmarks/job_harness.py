"""Measurement code for the job workloads J12 and J12-LAT (``test_job.py`` and its report).

Runs go through :func:`cellfrontier.simulate.job_drivers.run_job_workload`, the same call
the ``simulate`` command makes.  Memory is measured in a fresh subprocess (this file run as a
script), so that the peak RSS of earlier runs in the benchmark process cannot hide a run's own
growth: the child imports everything, reads its RSS (the baseline), runs the job and reports
``ru_maxrss`` minus that baseline.

    python benchmarks/job_harness.py run J12 1000000 --backend job       # one run, JSON out
    python benchmarks/job_harness.py report [--full]                     # the BENCHMARKS.md tables

Quote figures as ratios measured side by side in one process run; the machine may be shared.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from cellfrontier.simulate.job_drivers import JobFigures, run_job_workload

FULL = os.environ.get("CELLFRONTIER_BENCH_FULL", "") not in ("", "0")
J12_SIZES = (20_000, 100_000, 1_000_000) if FULL else (20_000,)
LAT_ROWS = 200_000
"""J12-LAT at 200,000 rows runs for about 70 s at the ceiling: utilization over >= 60 s."""


def warm_up() -> None:
    """Pay the one-off costs (pyarrow's first import and first write) outside any timing."""
    run_job_workload("J12", 2_000, backend="floor")
    run_job_workload("J12", 2_000, backend="job")


def j12(backend: str, rows: int, *, check: bool = False) -> JobFigures:
    """J12 with Parquet output to a temporary directory (the job's and the floor's)."""
    return run_job_workload("J12", rows, backend=backend, check=check)


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_in_subprocess(
    workload: str, rows: int, backend: str = "job", timeout: float = 1800
) -> dict[str, Any]:
    """Run one workload in a fresh interpreter; its figures plus RSS baseline, peak and growth."""
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "run", workload, str(rows), "--backend", backend]
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_here(workload: str, rows: int, backend: str) -> dict[str, Any]:
    import cellfrontier.job.output as output

    output.require_pyarrow("the benchmark")
    run_job_workload("J12", 1_000, backend="job", check=False)  # the first write's one-off costs
    baseline = _rss_bytes()
    figures = run_job_workload(workload, rows, backend=backend, check=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {**figures.as_dict(), "rss_baseline": baseline, "rss_peak": peak, "rss_growth": peak - baseline}


def profile_j12(rows: int = 100_000, top: int = 14) -> str:
    """Where the job's time goes on J12 (cProfile, sorted by own time), as text."""
    warm_up()
    profiler = cProfile.Profile()
    profiler.enable()
    run_job_workload("J12", rows, check=False)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def report(full: bool) -> None:
    """Print the J12 / J12-LAT tables (markdown) and save them as JSON."""
    warm_up()
    rows_list = (20_000, 100_000, 1_000_000) if full else (20_000, 100_000)
    results: dict[str, Any] = {"j12": [], "memory": None, "lat": None}
    print("| rows | floor s | job s | job / floor | floor CPU us/task | job CPU us/task |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in rows_list:
        best: dict[str, JobFigures] = {}
        for _ in range(3 if rows < 1_000_000 else 1):
            for backend in ("floor", "job"):
                figures = j12(backend, rows)
                if backend not in best or figures.seconds < best[backend].seconds:
                    best[backend] = figures
        floor, job = best["floor"], best["job"]
        results["j12"].append({"floor": floor.as_dict(), "job": job.as_dict()})
        print(
            f"| {rows:,} | {floor.seconds:.2f} | {job.seconds:.2f} | {job.seconds / floor.seconds:.2f} "
            f"| {floor.cpu_us_per_task:.2f} | {job.cpu_us_per_task:.2f} |"
        )
    if full:
        memory = measure_in_subprocess("J12", 1_000_000)
        results["memory"] = memory
        print(f"\nJ12 1,000,000 rows with output_dir: RSS growth {memory['rss_growth'] / 2**20:.1f} MiB")
        lat = measure_in_subprocess("J12-LAT", LAT_ROWS)
        results["lat"] = lat
        print(
            f"\nJ12-LAT {LAT_ROWS:,} rows: {lat['seconds']:.1f} s, {lat['cell_tasks_per_second']:,.0f} "
            f"cell tasks/s = {100 * lat['utilization']:.1f}% of {lat['ceiling']:,.0f}; "
            f"CPU {lat['cpu_us_per_task']:.1f} us/task; peak active groups {lat['peak_active_row_groups']}; "
            f"RSS growth {lat['rss_growth'] / 2**20:.1f} MiB"
        )
    print("\n```\n" + profile_j12() + "```")
    Path(__file__).with_name("job_results.json").write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one run in this process, JSON figures on stdout")
    run.add_argument("workload")
    run.add_argument("rows", type=int)
    run.add_argument("--backend", default="job")
    rep = sub.add_parser("report", help="the tables of BENCHMARKS.md")
    rep.add_argument("--full", action="store_true", help="add 1M rows, memory and J12-LAT (minutes)")
    args = parser.parse_args()
    if args.command == "run":
        print(json.dumps(_run_here(args.workload, args.rows, args.backend)))
    else:
        report(args.full)


if __name__ == "__main__":
    main()
