"""``cellfrontier simulate``: run a reference workload and report throughput and memory.

The driver plays a scheduler whose generators finish instantly, so only the tracker's own
cost is measured.  ``--compare`` runs the same workload through every available backend in
one process, one after another, and prints the ratios side by side.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from cellfrontier import drivers
from cellfrontier.workloads import WORKLOADS, expected_task_count

__all__ = ["main"]

# graphlib holds one Python object per cell: about 21 GB at a million rows of W64.
GRAPHLIB_MAX_ROWS = 200_000
COMPARE_DEFAULT_ROWS = 100_000


class ProgressBar:
    """A dependency-free progress bar on stderr (plain periodic lines when not a terminal)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        fraction = min(done / self.total, 1.0)
        if self.tty:
            if now - self._last_draw < 0.1 and done < self.total:
                return
            self._last_draw = now
            width = 30
            filled = int(width * fraction)
            rate = done / max(now - self.start, 1e-9)
            self.stream.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{fraction:6.1%} {done:>12,} tasks {rate:>14,.0f}/s"
            )
            self.stream.flush()
        else:
            decile = int(fraction * 10)
            if decile > self._last_decile:
                self._last_decile = decile
                self.stream.write(f"{self.label}: {fraction:.0%} ({done:,} tasks)\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _mib(value: int | None) -> str:
    """Human-readable bytes (KiB below one MiB, so small states do not print as 0.0 MiB)."""
    if value is None:
        return "n/a"
    if value < 2**20:
        return f"{value / 2**10:,.1f} KiB"
    return f"{value / 2**20:,.1f} MiB"


BACKENDS: dict[str, tuple[str, Callable[..., drivers.RunResult]]] = {
    "tasks": ("cellfrontier (task-at-a-time)", drivers.run_cellfrontier_tasks),
    "bulk": ("cellfrontier (bulk numpy)", drivers.run_cellfrontier_bulk),
    "datadesigner": ("DataDesigner 0.9.6 tracker", drivers.run_data_designer),
    "adapter": ("cellfrontier DataDesigner backend", drivers.run_data_designer_adapter),
    "graphlib": ("graphlib.TopologicalSorter", drivers.run_graphlib),
}


def _run_one(key: str, workload_name: str, rows: int, show_progress: bool) -> drivers.RunResult | str:
    label, runner = BACKENDS[key]
    workload = WORKLOADS[workload_name]
    bar = ProgressBar(expected_task_count(workload, rows), label, enabled=show_progress)
    gc.collect()
    try:
        return runner(workload, rows, progress=bar)
    except drivers.BackendUnavailable as exc:
        return f"skipped: {exc}"
    finally:
        bar.close()


def _print_table(results: list[tuple[str, drivers.RunResult | str]], out: TextIO) -> None:
    reference = next((r for k, r in results if k == "tasks" and isinstance(r, drivers.RunResult)), None)
    header = (
        f"{'backend':<32} {'tasks':>11} {'seconds':>9} {'us/task':>9} {'tasks/s':>13} "
        f"{'memory':>12} {'vs cellfrontier':>16}"
    )
    out.write(header + "\n" + "-" * len(header) + "\n")
    for key, result in results:
        label = BACKENDS[key][0]
        if isinstance(result, str):
            out.write(f"{label:<32} {result}\n")
            continue
        per_task = result.seconds / max(result.tasks, 1) * 1e6
        rate = result.tasks / max(result.seconds, 1e-12)
        ratio = ""
        if reference is not None and result is not reference:
            ratio = f"{result.seconds / max(reference.seconds, 1e-12):,.1f}x slower"
            if result.seconds < reference.seconds:
                ratio = f"{reference.seconds / max(result.seconds, 1e-12):,.1f}x faster"
        out.write(
            f"{label:<32} {result.tasks:>11,} {result.seconds:>9.3f} {per_task:>9.3f} {rate:>13,.0f} "
            f"{_mib(result.peak_bytes):>12} {ratio:>16}\n"
        )
        if result.note:
            out.write(f"{'':<32} note: {result.note}\n")


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
    keys = ["tasks", "bulk", "adapter", "datadesigner", "graphlib"] if args.compare else [args.backend]
    results: list[tuple[str, drivers.RunResult | str]] = []
    baseline_rss = _peak_rss_bytes()
    for key in keys:
        if key == "graphlib" and rows > GRAPHLIB_MAX_ROWS:
            results.append((key, f"skipped: needs about {rows * 21 // 1_000_000:,} GB at {rows:,} rows"))
            continue
        results.append((key, _run_one(key, args.workload, rows, not args.no_progress)))
    out.write("\n")
    _print_table(results, out)
    out.write(
        f"\nprocess peak RSS {_mib(_peak_rss_bytes())} (baseline before the runs {_mib(baseline_rss)}); "
        "memory column: bytes the tracker holds at its peak\n"
    )
    for key, result in results:
        if isinstance(result, drivers.RunResult) and key in ("tasks", "bulk") and result.tasks != expected:
            out.write(f"error: {key} processed {result.tasks:,} tasks, expected {expected:,}\n")
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellfrontier", description="cellfrontier command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run a reference workload and report throughput and memory")
    sim.add_argument("--workload", choices=sorted(WORKLOADS), default="W10", help="workload (default W10)")
    sim.add_argument(
        "--rows",
        type=int,
        default=None,
        help=f"rows to generate (default 1,000,000; {COMPARE_DEFAULT_ROWS:,} with --compare)",
    )
    sim.add_argument(
        "--backend",
        choices=["tasks", "bulk", "adapter", "datadesigner", "graphlib"],
        default="tasks",
        help="tracker API to drive (default tasks: the task-at-a-time API)",
    )
    sim.add_argument("--compare", action="store_true", help="run every available backend side by side")
    sim.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "simulate":
        return simulate(args, sys.stdout)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
