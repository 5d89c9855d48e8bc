"""Run every comparison directly (no pytest), write a JSON of results and print markdown tables.

    python benchmarks/report.py                 # 10k and 100k rows
    python benchmarks/report.py --full          # adds 1M rows (cellfrontier; DataDesigner with --dd-1m)
    python benchmarks/report.py --skip workloads mem micro scaling   # only the DataDesigner jobs

Timings of one process run only; quote them as ratios. Each workload run is repeated
``--repeat`` times below 1M rows (at 1M too for the driver floor and the bulk driver, which take
a second) and the fastest run is kept (the machine may be shared).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import (
    ADAPTER_BACKEND,
    BACKENDS,
    DD_BACKEND,
    GRAPHLIB_MAX_ROWS,
    MEM_RUNNERS,
    ONE_MILLION,
    SCALING_ROWS,
    data_designer_skip_reason,
    floor_cases,
    measure_floors,
    micro_cases,
    run_workload,
    scaling_cases,
    time_case,
)

import cellfrontier
from cellfrontier.simulate.datadesigner_jobs import (
    LAT_DEFAULT_ROWS,
    compare_tracker_backends,
    dd_skip_reason,
    run_dd_j12,
)
from cellfrontier.simulate.reporting import format_bytes
from cellfrontier.testing.j12 import LAT_CEILING_PER_SECOND


def _dd_version() -> str:
    try:
        return importlib.metadata.version("data-designer-engine")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


HERE = Path(__file__).resolve().parent
LABELS = {
    "cellfrontier-tasks": "cellfrontier task-at-a-time",
    "cellfrontier-bulk": "cellfrontier bulk",
    ADAPTER_BACKEND: "cellfrontier DataDesigner backend",
    DD_BACKEND: "DataDesigner",
    "graphlib": "graphlib (explicit cells)",
    "null": "driver floor (no-op tracker)",
    "cellfrontier": "cellfrontier",
}
SHORT = {
    "cellfrontier-tasks": "tasks",
    "cellfrontier-bulk": "bulk",
    ADAPTER_BACKEND: "DD backend",
    DD_BACKEND: "DD",
    "graphlib": "graphlib",
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_workloads(args: argparse.Namespace, dd_reason: str | None) -> list[dict[str, Any]]:
    """Every backend on W10 and W64 at every size it runs at."""
    sizes = [10_000, 100_000] + ([ONE_MILLION] if args.full else [])
    results: list[dict[str, Any]] = []
    for workload in ("W10", "W64"):
        for rows in sizes:
            for backend in ("null", *BACKENDS):
                if backend == "graphlib" and rows > GRAPHLIB_MAX_ROWS:
                    continue
                if backend == ADAPTER_BACKEND and (dd_reason or rows >= ONE_MILLION):
                    continue
                if backend == DD_BACKEND and (dd_reason or (rows >= ONE_MILLION and not args.dd_1m)):
                    continue
                if backend == DD_BACKEND and workload == "W64" and rows >= ONE_MILLION:
                    continue
                fast = backend in ("null", "cellfrontier-bulk")  # a second or less, even at 1M rows
                repeat = args.repeat if (rows < ONE_MILLION or fast) and backend != DD_BACKEND else 1
                if backend == "graphlib" and rows >= 100_000:
                    repeat = 1
                _log(f"{workload} {rows:>9,} {backend} x{repeat} ...")
                best = None
                for _ in range(repeat):
                    result = run_workload(backend, workload, rows)
                    if best is None or result.seconds < best.seconds:
                        best = result
                assert best is not None
                _log(f"    {best.seconds:.3f} s, {best.us_per_task:.3f} us/task")
                results.append(
                    {
                        "workload": workload,
                        "rows": rows,
                        "backend": backend,
                        "tasks": best.tasks,
                        "seconds": best.seconds,
                        "us_per_task": best.us_per_task,
                        "tasks_per_second": best.tasks_per_second,
                        "peak_bytes": best.peak_bytes,
                        "note": best.note,
                        "repeats": repeat,
                    }
                )
    return results


def run_mem(args: argparse.Namespace, dd_reason: str | None) -> list[dict[str, Any]]:
    """MEM for cellfrontier (10k, 100k, 1M) and DataDesigner (10k, and 100k with --full)."""
    plan = [("cellfrontier", 10_000), ("cellfrontier", 100_000)]
    if args.full:
        plan.append(("cellfrontier", ONE_MILLION))
    if dd_reason is None:
        plan.append((DD_BACKEND, 10_000))
        if args.full:
            plan.append((DD_BACKEND, 100_000))
    out = []
    for backend, rows in plan:
        _log(f"MEM {rows:>9,} {backend} ...")
        result = MEM_RUNNERS[backend](rows)
        _log(f"    {format_bytes(result.bytes)} ({result.seconds:.1f} s)")
        out.append(result.as_dict())
    return out


def run_micro(dd_reason: str | None, rounds: int) -> dict[str, Any]:
    """Single operations and both floors; the floors are timed before and after, best kept."""
    floors_before = measure_floors()
    ops: list[dict[str, Any]] = []
    for backend in ("cellfrontier", *(() if dd_reason else (DD_BACKEND,))):
        for case in micro_cases(backend):
            _log(f"micro {backend} {case.op} ...")
            seconds = time_case(case, rounds if backend == "cellfrontier" else 3)
            ops.append(
                {"backend": backend, "op": case.op, "seconds": seconds, "description": case.description}
            )
    floors_after = measure_floors()
    call = min(floors_before.call, floors_after.call)
    copy = min(floors_before.copy, floors_after.copy)
    for op in ops:
        op["ratio_to_call"] = op["seconds"] / call
        op["ratio_to_copy"] = op["seconds"] / copy
    floor_desc = {c.op: c.description for c in floor_cases()}
    return {
        "floor_call": call,
        "floor_copy": copy,
        "floor_call_description": floor_desc["floor_call"],
        "floor_copy_description": floor_desc["floor_copy"],
        "ops": ops,
    }


def run_scaling(rounds: int) -> list[dict[str, Any]]:
    """Single events in row groups of growing size: ns per event at each size."""
    out = []
    for rows in SCALING_ROWS:
        for case in scaling_cases(rows):
            _log(f"scaling {case.op} {rows:,} rows ...")
            out.append({"op": case.op, "rows": rows, "seconds": time_case(case, rounds)})
    return out


DD_JOB_BUFFER_SIZES = (1_000, 10_000)


def run_dd_jobs(args: argparse.Namespace) -> dict[str, Any]:
    """J12 on DataDesigner's engine with and without cellfrontier's tracker, then J12-LAT."""
    reason = dd_skip_reason()
    if reason is not None:
        _log(f"DataDesigner jobs skipped: {reason}")
        return {"skipped": reason, "j12": [], "lat": None}
    out: dict[str, Any] = {"j12": [], "lat": None}
    if "ddjobs" not in args.skip:
        _log(f"J12 on DataDesigner, {args.dd_job_rows:,} rows, both trackers ...")
        comparisons = compare_tracker_backends(
            args.dd_job_rows, DD_JOB_BUFFER_SIZES, rounds=args.dd_job_rounds, log=lambda m: _log(f"    {m}")
        )
        out["j12"] = [c.as_dict() for c in comparisons]
    if "ddlat" not in args.skip:
        _log(f"J12-LAT on DataDesigner, {args.dd_lat_rows:,} rows ...")
        lat = run_dd_j12(args.dd_lat_rows, latency=True)
        _log(f"    {lat.summary()}")
        out["lat"] = lat.as_dict()
    return out


# --------------------------------------------------------------------------- markdown


def _find(results: list[dict[str, Any]], workload: str, rows: int, backend: str) -> dict[str, Any] | None:
    return next(
        (r for r in results if r["workload"] == workload and r["rows"] == rows and r["backend"] == backend),
        None,
    )


def workload_tables(results: list[dict[str, Any]]) -> str:
    """One table per workload and size: time, µs/task, tasks/s, memory, ratios to each alternative."""
    lines: list[str] = []
    keys = sorted({(r["workload"], r["rows"]) for r in results})
    for workload, rows in keys:
        lines.append(f"\n**{workload}, {rows:,} rows**\n")
        present = [b for b in BACKENDS if _find(results, workload, rows, b)]
        header = ["backend", "tasks", "seconds", "µs/task", "tasks/s", "tracker memory"]
        header += [f"÷ {SHORT[b]}" for b in present]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
        for backend in ("null", *BACKENDS):
            r = _find(results, workload, rows, backend)
            if r is None:
                continue
            cells = [
                LABELS[backend],
                f"{r['tasks']:,}",
                f"{r['seconds']:.3f}",
                f"{r['us_per_task']:.3f}",
                f"{r['tasks_per_second']:,.0f}",
                format_bytes(r["peak_bytes"]) if backend.startswith("cellfrontier") else "n/a",
            ]
            for other in present:
                o = _find(results, workload, rows, other)
                assert o is not None
                cells.append("" if other == backend else f"{o['us_per_task'] / r['us_per_task']:.1f}x")
            lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "\n`÷ X` is X's µs per task divided by this row's: how many times faster this backend is than X. "
        "graphlib runs W10 without drops (70,030 tasks per 10k rows instead of 69,630), so its ratios "
        "use µs per task. Tracker memory is the largest `tracker.nbytes` seen at the end of a tick."
    )
    return "\n".join(lines)


def mem_table(mem: list[dict[str, Any]]) -> str:
    """MEM: bytes held, split into Python objects and numpy state."""
    lines = [
        "| backend | rows | tasks completed | held | Python objects | numpy | bytes per row |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in mem:
        lines.append(
            f"| {LABELS[m['backend']]} | {m['rows']:,} | {m['tasks']:,} | {format_bytes(m['bytes'])} | "
            f"{format_bytes(m['python_bytes'])} | {format_bytes(m['numpy_bytes'])} | "
            f"{m['bytes'] / m['rows']:,.1f} |"
        )
    return "\n".join(lines)


def micro_table(micro: dict[str, Any]) -> str:
    """Single operations with their distance from each floor."""
    call, copy = micro["floor_call"], micro["floor_copy"]
    lines = [
        f"Floors: {micro['floor_call_description']} {call * 1e9:,.0f} ns; "
        f"{micro['floor_copy_description']} {copy * 1e9:,.0f} ns.\n",
        "| operation | backend | ns per op | ÷ empty call | ÷ bitmap copy | DD ÷ cellfrontier |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    by = {(o["backend"], o["op"]): o for o in micro["ops"]}
    for o in micro["ops"]:
        mine = by.get(("cellfrontier", o["op"]))
        dd = by.get((DD_BACKEND, o["op"]))
        speedup = (
            f"{dd['seconds'] / mine['seconds']:,.0f}x"
            if o["backend"] == "cellfrontier" and dd and mine
            else ""
        )
        lines.append(
            f"| {o['op']}: {o['description']} | {LABELS[o['backend']]} | {o['seconds'] * 1e9:,.0f} | "
            f"{o['ratio_to_call']:,.1f} | {o['ratio_to_copy']:,.1f} | {speedup} |"
        )
    return "\n".join(lines)


def scaling_table(scaling: list[dict[str, Any]]) -> str:
    """ns per event at each row-group size, and the largest size over the smallest."""
    ops = list(dict.fromkeys(s["op"] for s in scaling))
    sizes = sorted({s["rows"] for s in scaling})
    header = ["event", *(f"{r:,} rows" for r in sizes), "largest ÷ smallest"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
    ]
    for op in ops:
        ns = {s["rows"]: s["seconds"] * 1e9 for s in scaling if s["op"] == op}
        cells = [f"{ns[r]:,.0f} ns" for r in sizes]
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {ns[sizes[-1]] / ns[sizes[0]]:.2f}x |")
    return "\n".join(lines)


def dd_job_tables(dd_jobs: dict[str, Any]) -> str:
    """J12 with and without cellfrontier's tracker, and J12-LAT's utilization, on DataDesigner."""
    if dd_jobs.get("skipped"):
        return f"not run: {dd_jobs['skipped']}"
    lines: list[str] = []
    if dd_jobs.get("j12"):
        lines += [
            "| buffer | tracker | rows | seconds | µs/row | CPU s | CPU µs/task | gc s | peak RSS growth "
            "| speed-up | CPU speed-up |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for pair in dd_jobs["j12"]:
            for key, label in (("data_designer", "DataDesigner's"), ("cellfrontier", "cellfrontier's")):
                r = pair[key]
                ratios = (
                    f"{pair['speedup']:.2f}x | {pair['cpu_speedup']:.2f}x" if key == "cellfrontier" else " | "
                )
                lines.append(
                    f"| {r['buffer_size']:,} | {label} | {r['rows']:,} | {r['seconds']:.1f} | "
                    f"{r['us_per_row']:,.0f} | {r['cpu_seconds']:.1f} | {r['cpu_us_per_task']:,.0f} | "
                    f"{r['gc_seconds']:.1f} | {format_bytes(r['peak_rss_growth'])} | {ratios} |"
                )
        lines.append(
            "\nspeed-up / CPU speed-up: the job's wall / CPU time with DataDesigner's tracker divided by the "
            "same with cellfrontier's installed, run back to back in this process. CPU counts every "
            "thread; tasks are 7 cells per row plus 6 full-column tasks per row group (four roots, "
            "`summary`, and one task for the sampler column)."
        )
    lat = dd_jobs.get("lat")
    if lat:
        lines += [
            "",
            "| rows | seconds | cell tasks | cell tasks/s | of the ceiling | CPU µs/task "
            "| calls in flight: peak, mean | a call's latency: asked, taken | peak row groups in flight "
            "| peak RSS growth |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {lat['rows']:,} | {lat['seconds']:.1f} | {lat['cell_tasks']:,} | "
            f"{lat['cell_tasks_per_second']:,.0f} | {lat['utilization']:.1%} | "
            f"{lat['cpu_us_per_task']:,.0f} | "
            f"{lat['peak_in_flight']:,}, {lat['mean_calls_in_flight']:,.0f} | "
            f"{lat['latency_asked_seconds'] / lat['cell_tasks'] * 1e3:.0f} ms, "
            f"{lat['latency_taken_seconds'] / lat['cell_tasks'] * 1e3:.0f} ms | "
            f"{lat['peak_row_groups_in_flight']} "
            f"(of {lat['max_active_row_groups']}) | {format_bytes(lat['peak_rss_growth'])} |",
            f"\nThe ceiling is {LAT_CEILING_PER_SECOND:,.0f} cell tasks per second: 1,024 calls at once "
            "over a mean latency of 50 ms. A call's latency *taken* is the time from the start of its "
            "sleep until it resumed: a busy event loop runs the timer's callback late.",
        ]
    return "\n".join(lines) if lines else "not run"


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured figure and whether it is met."""
    res, mem, micro = data["workloads"], data["mem"], data["micro"]
    out: list[dict[str, Any]] = []

    def ratio(workload: str, rows: int, slow: str, fast: str) -> float | None:
        a, b = _find(res, workload, rows, slow), _find(res, workload, rows, fast)
        return a["us_per_task"] / b["us_per_task"] if a and b else None

    def add(name: str, value: float | None, goal: float, higher: bool, unit: str = "x") -> None:
        met = None if value is None else (value >= goal if higher else value <= goal)
        out.append(
            {
                "target": name,
                "measured": value,
                "goal": goal,
                "higher_is_better": higher,
                "unit": unit,
                "met": met,
            }
        )

    add(
        "W10 100k: task-at-a-time ≥ 20x DataDesigner",
        ratio("W10", 100_000, DD_BACKEND, "cellfrontier-tasks"),
        20,
        True,
    )
    add(
        "W10 100k: bulk ≥ 200x DataDesigner",
        ratio("W10", 100_000, DD_BACKEND, "cellfrontier-bulk"),
        200,
        True,
    )
    add(
        "W10 100k: DataDesigner backend ≥ 8x DataDesigner",
        ratio("W10", 100_000, DD_BACKEND, ADAPTER_BACKEND),
        8,
        True,
    )
    add("W64 100k: bulk ≥ 50x graphlib", ratio("W64", 100_000, "graphlib", "cellfrontier-bulk"), 50, True)
    for backend in ("cellfrontier-tasks", "cellfrontier-bulk"):
        big, small = _find(res, "W64", ONE_MILLION, backend), _find(res, "W64", 100_000, backend)
        growth = big["us_per_task"] / small["us_per_task"] if big and small else None
        add(f"W64 {backend}: µs/task at 1M ≤ 1.5x that at 100k", growth, 1.5, False)
    cf = next((m for m in mem if m["backend"] == "cellfrontier" and m["rows"] == ONE_MILLION), None)
    add("MEM 1M: cellfrontier ≤ 32 MiB", cf["mib"] if cf else None, 32, False, " MiB")
    dd = next((m for m in mem if m["backend"] == DD_BACKEND and m["rows"] == 100_000), None)
    add(
        "MEM: DataDesigner at 100k ÷ cellfrontier at 1M",
        dd["bytes"] / cf["bytes"] if dd and cf else None,
        1,
        True,
    )
    for o in micro["ops"]:
        if o["backend"] == "cellfrontier":
            add(f"op {o['op']} ≤ 10x its bitmap-copy floor", o["ratio_to_copy"], 10, False)
    scaling = data.get("scaling", [])
    for op in dict.fromkeys(s["op"] for s in scaling):
        ns = {s["rows"]: s["seconds"] for s in scaling if s["op"] == op}
        small, big = min(ns), max(ns)
        add(f"{op}: cost at {big:,} rows ≤ 1.5x that at {small:,} rows", ns[big] / ns[small], 1.5, False)
    return out


def targets_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the targets."""
    lines = ["| target | measured | met |", "| --- | ---: | :---: |"]
    for t in rows:
        value = "not run" if t["measured"] is None else f"{t['measured']:,.2f}{t['unit']}"
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {value} | {met} |")
    return "\n".join(lines)


def render(data: dict[str, Any]) -> str:
    """All tables as markdown."""
    parts = [
        "### Workloads\n",
        workload_tables(data["workloads"]),
        "\n### MEM\n",
        mem_table(data["mem"]),
        "\n### Single operations\n",
        micro_table(data["micro"]),
        "\n### Per-event cost against row-group size\n",
        scaling_table(data.get("scaling", [])) if data.get("scaling") else "not run",
        "\n### NVIDIA DataDesigner jobs (J12, J12-LAT)\n",
        dd_job_tables(data.get("dd_jobs", {})),
        "\n### Targets\n",
        targets_table(data["targets"]),
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run, write the JSON, print the markdown."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="add the 1,000,000-row sizes")
    parser.add_argument(
        "--dd-1m", action="store_true", help="also run DataDesigner on W10 at 1M rows (~3 min)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per fast case below 1M rows (best kept)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write results")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["workloads", "mem", "micro", "scaling", "ddjobs", "ddlat"]
    )
    parser.add_argument(
        "--dd-job-rows", type=int, default=20_000, help="J12 rows on DataDesigner, per tracker and buffer"
    )
    parser.add_argument(
        "--dd-job-rounds", type=int, default=1, help="J12 on DataDesigner: rounds per tracker (fastest kept)"
    )
    parser.add_argument(
        "--dd-lat-rows", type=int, default=LAT_DEFAULT_ROWS, help="J12-LAT rows on DataDesigner (over 60 s)"
    )
    args = parser.parse_args(argv)
    dd_reason = data_designer_skip_reason()
    if dd_reason:
        _log(f"DataDesigner skipped: {dd_reason}")
    started = time.perf_counter()
    data: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "numpy": np.__version__,
            "cellfrontier": cellfrontier.__version__,
        },
        "full": args.full,
        "data_designer": dd_reason or "data-designer-engine " + _dd_version(),
    }
    data["micro"] = run_micro(dd_reason, rounds=7) if "micro" not in args.skip else {"ops": []}
    data["scaling"] = run_scaling(rounds=5) if "scaling" not in args.skip else []
    data["workloads"] = run_workloads(args, dd_reason) if "workloads" not in args.skip else []
    data["mem"] = run_mem(args, dd_reason) if "mem" not in args.skip else []
    data["dd_jobs"] = run_dd_jobs(args)
    if "micro" in args.skip:
        data["micro"] = {
            "ops": [],
            "floor_call": 1.0,
            "floor_copy": 1.0,
            "floor_call_description": "",
            "floor_copy_description": "",
        }
    data["targets"] = targets(data)
    data["wall_seconds"] = time.perf_counter() - started
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    text = render(data)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    _log(f"wrote {args.json} in {data['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
