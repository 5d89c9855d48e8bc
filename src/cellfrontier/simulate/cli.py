"""``cellfrontier simulate``: run a reference workload and report throughput and memory.

:func:`add_parser` adds the subcommand to the ``cellfrontier`` command (:mod:`cellfrontier.cli`).

For the tracker workloads (W10, W64) the driver plays a scheduler whose generators finish
instantly, so only the tracker's own cost is measured.  ``--compare`` runs the same workload
through every available backend in one process, one after another, and prints the ratios side
by side.  The job workloads (J12, J12-LAT) run whole jobs: :mod:`cellfrontier.simulate.job_cli`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from typing import Any, TextIO

from cellfrontier.simulate import drivers, job_cli, llm_cli
from cellfrontier.simulate.drivers import BackendInfo
from cellfrontier.simulate.job_drivers import JOB_BACKENDS
from cellfrontier.simulate.llm_jobs import LLM_BACKENDS
from cellfrontier.simulate.reporting import (
    ProgressBar,
    RssGrowth,
    format_bytes,
    peak_rss_bytes,
    write_ratio_matrix,
)
from cellfrontier.testing.j12 import JOB_WORKLOADS
from cellfrontier.testing.workloads import WORKLOADS, expected_task_count

__all__ = ["add_parser", "run"]

# graphlib holds one Python object per cell: about 21 GB at a million rows of W64.
GRAPHLIB_MAX_ROWS = 200_000
COMPARE_DEFAULT_ROWS = 100_000


OPTIONS: dict[str, BackendInfo] = {
    info.option: info for info in drivers.BACKENDS.values() if info.option is not None
}
"""The backends ``--backend`` offers, by option (from the drivers' one registry)."""
COMPARED = ("tasks", "bulk", "adapter", "datadesigner", "graphlib")
"""What ``--compare`` runs, in this order."""


class Outcome:
    """One backend's run as the table shows it: the driver's result and the RSS growth."""

    def __init__(self, result: drivers.RunResult, rss_growth: int | None) -> None:
        self.result = result
        self.rss_growth = rss_growth


def _run_one(key: str, workload_name: str, rows: int, show_progress: bool) -> Outcome | str:
    label, runner = OPTIONS[key].label, OPTIONS[key].run
    workload = WORKLOADS[workload_name]
    bar = ProgressBar(expected_task_count(workload, rows), label, enabled=show_progress)
    gc.collect()
    sampler = RssGrowth(bar)
    try:
        return Outcome(runner(workload, rows, progress=sampler), sampler.growth)
    except drivers.BackendUnavailable as exc:
        return f"skipped: {exc}"
    finally:
        bar.close()


def _print_table(results: list[tuple[str, Outcome | str]], out: TextIO) -> None:
    """Figures per backend, then how many times faster (per task) each row is than each column."""
    ran = [(key, o) for key, o in results if isinstance(o, Outcome)]
    header = (
        f"{'backend':<34} {'tasks':>11} {'seconds':>9} {'us/task':>9} {'tasks/s':>13} "
        f"{'tracker memory':>15} {'RSS growth':>12}"
    )
    out.write(header + "\n" + "-" * len(header) + "\n")
    for key, outcome in results:
        label = OPTIONS[key].label
        if isinstance(outcome, str):
            out.write(f"{label:<34} {outcome}\n")
            continue
        result = outcome.result
        out.write(
            f"{label:<34} {result.tasks:>11,} {result.seconds:>9.3f} {result.us_per_task:>9.3f} "
            f"{result.tasks_per_second:>13,.0f} {format_bytes(result.peak_bytes):>15} "
            f"{format_bytes(outcome.rss_growth):>12}\n"
        )
        if result.note:
            out.write(f"{'':<34} note: {result.note}\n")
    if len(ran) < 2:
        return
    out.write(
        "\nspeed ratios: the column's us/task divided by the row's "
        "(how many times faster the row's backend is than the column's)\n"
    )
    write_ratio_matrix(out, [(OPTIONS[k].label, OPTIONS[k].short, o.result.us_per_task) for k, o in ran])


def simulate(args: argparse.Namespace, out: TextIO) -> int:
    workload = WORKLOADS[args.workload]
    rows = args.rows if args.rows is not None else (COMPARE_DEFAULT_ROWS if args.compare else 1_000_000)
    if rows <= 0:
        raise SystemExit("simulate: --rows must be positive")
    expected = expected_task_count(workload, rows)
    out.write(
        f"workload {workload.name}: {len(workload.columns)} columns, {rows:,} rows, "
        f"buffer {workload.buffer_size}, window {workload.window}, expected tasks {expected:,}\n"
    )
    keys = list(COMPARED) if args.compare else [args.backend]
    results: list[tuple[str, Outcome | str]] = []
    if "datadesigner" in keys or "adapter" in keys:
        # Import DataDesigner before any run, so that no run's RSS growth includes the import.
        with contextlib.suppress(drivers.BackendUnavailable):
            drivers.import_data_designer()
    baseline_rss = peak_rss_bytes()
    for key in keys:
        if key == "graphlib" and rows > GRAPHLIB_MAX_ROWS:
            results.append((key, f"skipped: needs about {rows * 21 // 1_000_000:,} GB at {rows:,} rows"))
            continue
        results.append((key, _run_one(key, args.workload, rows, not args.no_progress)))
    out.write("\n")
    _print_table(results, out)
    out.write(
        f"\nprocess peak RSS {format_bytes(peak_rss_bytes())} "
        f"(baseline before the runs {format_bytes(baseline_rss)}); "
        "tracker memory: the largest tracker.nbytes (cellfrontier's numpy state) at the end of a tick; "
        "RSS growth: the process's resident set, sampled once per tick, above its size when the run "
        "started\n"
    )
    for key, outcome in results:
        if isinstance(outcome, Outcome) and key in ("tasks", "bulk") and outcome.result.tasks != expected:
            out.write(f"error: {key} processed {outcome.result.tasks:,} tasks, expected {expected:,}\n")
            return 1
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``simulate`` to the ``cellfrontier`` command's subcommands (its handler included)."""
    sim = subparsers.add_parser(
        "simulate",
        help="run a reference workload and report throughput and memory",
        description=(
            "Run a reference workload: W10 and W64 drive the tracker alone (generators that finish "
            "instantly); J12 and J12-LAT run whole jobs (generators called, values stored, Parquet "
            "written), J12-LAT with 25-75 ms of latency per cell; J12-LLM makes its cells model calls "
            "to a fake endpoint on 127.0.0.1."
        ),
    )
    sim.add_argument(
        "--workload",
        choices=[*sorted(WORKLOADS), *JOB_WORKLOADS, llm_cli.WORKLOAD],
        default="W10",
        help="workload (default W10)",
    )
    job_rows = job_cli.DEFAULT_ROWS
    sim.add_argument(
        "--rows",
        type=int,
        default=None,
        help=(
            f"rows to generate (default 1,000,000; {COMPARE_DEFAULT_ROWS:,} with --compare). "
            f"J12: {job_rows['J12']['job']:,} with job or floor, {job_rows['J12']['datadesigner']:,} "
            f"with datadesigner (about 3 s per 1,000 rows) and with --compare; J12-LAT: "
            f"{job_rows['J12-LAT']['job']:,} with job, {job_rows['J12-LAT']['datadesigner']:,} with "
            "datadesigner and with --compare (each about a minute)"
        ),
    )
    sim.add_argument(
        "--backend",
        choices=[
            *COMPARED,
            *(b for b in JOB_BACKENDS if b not in COMPARED),
            *(b for b in LLM_BACKENDS if b not in COMPARED),
        ],
        default=None,
        help=(
            "what runs the workload. W10/W64: the tracker API to drive (default tasks: the "
            "task-at-a-time API); J12/J12-LAT: job (cellfrontier.Job, the default), floor (a plain "
            "loop over the tracker; J12 only) or datadesigner (DataDesigner's own engine); J12-LLM: "
            "llm (cellfrontier.llm's model columns, the default), openai, openai-aiohttp, httpx, "
            "aiohttp (plain async generators over that client) or datadesigner (its LLM text columns)"
        ),
    )
    sim.add_argument("--compare", action="store_true", help="run every available backend side by side")
    sim.add_argument(
        "--latency-scale",
        type=float,
        default=None,
        help="J12-LLM: the fake endpoint's latency scale (1: 25-75 ms per answer, the default)",
    )
    sim.add_argument(
        "--workers",
        type=int,
        default=None,
        help="J12-LLM: run the job on N single-thread worker processes (Job.run(workers=N))",
    )
    sim.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    sim.add_argument(
        "--output-dir",
        default=None,
        help=(
            "J12/J12-LAT/J12-LLM: write the Parquet output here and keep it (an empty or new directory; a "
            "folder per backend with --compare); by default a temporary directory"
        ),
    )
    sim.set_defaults(handler=lambda args: run(args, sim))
    return sim


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handle ``cellfrontier simulate`` (*parser* reports a bad combination of options)."""
    problem = llm_cli.argument_problem(args)
    if problem is not None:
        parser.error(problem)
    if args.workload == llm_cli.WORKLOAD:
        return llm_cli.simulate_llm(args, sys.stdout)
    problem = job_cli.argument_problem(args.workload, args.backend, args.output_dir, COMPARED)
    if problem is not None:
        parser.error(problem)
    if args.workload in JOB_WORKLOADS:
        return job_cli.simulate_job(args, sys.stdout)
    if args.backend is None:
        args.backend = "tasks"
    return simulate(args, sys.stdout)
