"""``cellfrontier simulate --workload J12|J12-LAT``: whole jobs, one backend or side by side.

The job workloads call generators, store values and write Parquet, so what they measure is a
runner, not the tracker alone.  Three backends run them: ``job`` (:class:`cellfrontier.Job`),
``floor`` (the plain loop over the tracker a runner is held to; J12 only) and ``datadesigner``
(NVIDIA DataDesigner's own engine on the same job, when installed).  ``--compare`` runs every
available one in this process, one after another, and prints the ratios of wall and CPU time
per row (per row, because DataDesigner runs one more task per row group than the others).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
from pathlib import Path
from typing import TextIO

from cellfrontier.simulate.datadesigner_jobs import DataDesignerUnavailable, run_dd_j12
from cellfrontier.simulate.job_drivers import JobFigures, run_job_workload
from cellfrontier.simulate.reporting import ProgressBar, format_bytes, peak_rss_bytes, write_ratio_matrix
from cellfrontier.testing.j12 import JOB_WORKLOADS, JobWorkload, j12_task_count

__all__ = ["DEFAULT_ROWS", "argument_problem", "backends_for", "simulate_job"]

LABELS = {
    "job": "cellfrontier.Job",
    "floor": "floor (plain loop over the tracker)",
    "datadesigner": "DataDesigner engine",
}
SHORT = {"job": "job", "floor": "floor", "datadesigner": "DD"}

DEFAULT_ROWS: dict[str, dict[str, int]] = {
    "J12": {"job": 100_000, "floor": 100_000, "datadesigner": 20_000, "compare": 20_000},
    "J12-LAT": {"job": 200_000, "datadesigner": 36_000, "compare": 36_000},
}
"""Rows when ``--rows`` is not given, by workload and backend (``compare`` for ``--compare``).

DataDesigner's engine takes about 3 s per 1,000 rows of J12, so its runs (and the side-by-side
one) are shorter; J12-LAT's lengths make each run last about a minute, as the workload asks.
"""

CHECK_MAX_ROWS = 200_000
"""Outputs up to this many rows are read back and checked cell by cell, after the timing."""

LABEL_WIDTH = 36


def backends_for(workload: JobWorkload) -> tuple[str, ...]:
    """The backends that run *workload*, in the order ``--compare`` runs them."""
    return ("job", "datadesigner") if workload.latency is not None else ("job", "floor", "datadesigner")


def argument_problem(
    workload_name: str, backend: str | None, output_dir: str | None, tracker_backends: tuple[str, ...]
) -> str | None:
    """Why this combination of ``simulate`` options cannot run, or None when it can."""
    workload = JOB_WORKLOADS.get(workload_name)
    if workload is None:
        if backend in LABELS and backend not in tracker_backends:
            return (
                f"--backend {backend} runs the job workloads ({', '.join(JOB_WORKLOADS)}); "
                f"{workload_name} runs with {', '.join(tracker_backends)}"
            )
        if output_dir is not None:
            return (
                f"--output-dir is for the job workloads ({', '.join(JOB_WORKLOADS)}); "
                f"{workload_name} writes no output"
            )
        return None
    allowed = backends_for(workload)
    if backend is not None and backend not in allowed:
        runs_with = f"{workload_name} runs with {', '.join(allowed[:-1])} or {allowed[-1]}"
        if backend == "floor":
            return f"the floor backend runs J12 only (it calls plain generators in one loop); {runs_with}"
        return f"--backend {backend} drives the tracker workloads (W10, W64); {runs_with}"
    return None


def _target(output_dir: str | None, backend: str, compare: bool) -> Path | None:
    """Where a run writes: ``--output-dir`` (a folder per backend with ``--compare``) or None."""
    if output_dir is None:
        return None
    target = Path(output_dir) / backend if compare else Path(output_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SystemExit(f"simulate: --output-dir {target} must be an empty or missing directory")
    return target


def _warm_up(backends: tuple[str, ...]) -> None:
    """Pay one-off costs (pyarrow's first write, DataDesigner's lazy imports) outside the timing."""
    for backend in backends:
        if backend == "datadesigner":
            with contextlib.suppress(DataDesignerUnavailable):
                run_dd_j12(100, 100)
        else:
            run_job_workload("J12", 1_000, backend=backend, check=False)


def _run_one(
    workload: JobWorkload, backend: str, rows: int, show_progress: bool, target: Path | None
) -> JobFigures | str:
    """One backend's run with a progress bar, or why it was skipped."""
    bar = ProgressBar(j12_task_count(rows, workload.buffer_size), LABELS[backend], enabled=show_progress)
    gc.collect()
    try:
        return run_job_workload(
            workload.name,
            rows,
            backend=backend,
            output_dir=target,
            check=rows <= CHECK_MAX_ROWS,
            task_progress=bar,
            measure_rss=True,
        )
    except DataDesignerUnavailable as exc:
        return f"skipped: {exc}"
    finally:
        bar.close()


def _write_table(workload: JobWorkload, results: list[tuple[str, JobFigures | str]], out: TextIO) -> None:
    """Figures per backend, then wall and CPU ratios per row between every two that ran."""
    latency = workload.latency is not None
    header = (
        f"{'backend':<{LABEL_WIDTH}} {'rows':>9} {'tasks':>11} {'seconds':>9} {'CPU us/task':>11} "
        f"{'tasks/s':>11} {'records':>9} {'dropped':>7} {'peak groups':>11} {'RSS growth':>11}"
    )
    if latency:
        header += f" {'cell tasks/s':>12} {'utilization':>11}"
    out.write(header + "\n" + "-" * len(header) + "\n")
    for backend, figures in results:
        if isinstance(figures, str):
            out.write(f"{LABELS[backend]:<{LABEL_WIDTH}} {figures}\n")
            continue
        peak = "n/a" if figures.peak_active_row_groups is None else f"{figures.peak_active_row_groups:,}"
        line = (
            f"{LABELS[backend]:<{LABEL_WIDTH}} {figures.rows:>9,} {figures.tasks:>11,} "
            f"{figures.seconds:>9.3f} {figures.cpu_us_per_task:>11.2f} "
            f"{figures.tasks_per_second:>11,.0f} {figures.records:>9,} {figures.dropped:>7,} "
            f"{peak:>11} {format_bytes(figures.peak_rss_growth):>11}"
        )
        if latency:
            utilization = figures.utilization
            shown = "n/a" if utilization is None else f"{utilization:.1%}"
            line += f" {figures.cell_tasks_per_second:>12,.0f} {shown:>11}"
        out.write(line + "\n")
    ran = [(backend, figures) for backend, figures in results if isinstance(figures, JobFigures)]
    if len(ran) < 2:
        return
    for what, cost in (("wall", "us_per_row"), ("CPU", "cpu_us_per_row")):
        out.write(
            f"\n{what} time ratios: the column's {what} time per row divided by the row's "
            "(how many times faster the row's backend is than the column's)\n"
        )
        matrix = [(LABELS[b], SHORT[b], getattr(f, cost)) for b, f in ran]
        write_ratio_matrix(out, matrix, label_width=LABEL_WIDTH)


def _write_notes(
    workload: JobWorkload, results: list[tuple[str, JobFigures | str]], baseline_rss: int, out: TextIO
) -> None:
    ran = [(b, f) for b, f in results if isinstance(f, JobFigures)]
    checked = [LABELS[b] for b, f in ran if f.checked]
    unchecked = [LABELS[b] for b, f in ran if not f.checked]
    notes = [
        f"process peak RSS {format_bytes(peak_rss_bytes())} "
        f"(baseline before the runs {format_bytes(baseline_rss)})",
        "RSS growth: the process's peak resident set during the run above its size at the start",
        "tasks/s and CPU us/task count each backend's own tasks; DataDesigner's engine runs one more "
        "per row group (its sampler column), so the ratios compare time per row",
        "peak groups: the most row groups active at once (the floor: its window; DataDesigner: the "
        "most with a call in flight, measured with latency only, else n/a; it allows 3)",
    ]
    if checked:
        notes.append(f"output checked cell by cell against J12 after the timing: {', '.join(checked)}")
    if unchecked:
        notes.append(f"output not checked (over {CHECK_MAX_ROWS:,} rows): {', '.join(unchecked)}")
    if workload.latency is not None:
        ceiling = workload.ceiling() or 0.0
        notes.append(
            f"utilization: cell tasks per second over the {ceiling:,.0f}/s the caps allow "
            f"({workload.max_concurrency:,} calls at once over a mean latency of "
            f"{workload.latency * 1e3:.0f} ms)"
        )
    out.write("\n" + "".join(f"- {note}\n" for note in notes))


def simulate_job(args: argparse.Namespace, out: TextIO) -> int:
    """``simulate`` for a job workload; the options were checked by :func:`argument_problem`."""
    workload = JOB_WORKLOADS[args.workload]
    backends = backends_for(workload) if args.compare else (args.backend or "job",)
    key = "compare" if args.compare else backends[0]
    rows = args.rows if args.rows is not None else DEFAULT_ROWS[workload.name][key]
    if rows <= 0:
        raise SystemExit("simulate: --rows must be positive")
    targets = {b: _target(args.output_dir, b, args.compare) for b in backends}
    expected = j12_task_count(rows, workload.buffer_size)
    groups = -(-rows // workload.buffer_size)
    active = workload.max_active_row_groups or "adaptive"
    out.write(
        f"workload {workload.name}: 12 columns, {rows:,} rows, buffer {workload.buffer_size}, "
        f"active row groups {active}, expected tasks {expected:,} "
        f"(7 cell tasks per row, 5 full-column tasks per row group; {groups:,} groups)\n"
    )
    out.flush()  # before the progress lines on stderr
    _warm_up(backends)
    baseline_rss = peak_rss_bytes()
    results = [(b, _run_one(workload, b, rows, not args.no_progress, targets[b])) for b in backends]
    out.write("\n")
    _write_table(workload, results, out)
    _write_notes(workload, results, baseline_rss, out)
    for backend, figures in results:
        if isinstance(figures, JobFigures) and backend != "datadesigner" and figures.tasks != expected:
            out.write(f"error: {backend} processed {figures.tasks:,} tasks, expected {expected:,}\n")
            return 1
    return 0
