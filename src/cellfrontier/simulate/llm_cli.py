"""``cellfrontier simulate --workload J12-LLM``: J12 with model calls, one backend or side by side.

Each backend runs the same job against its own fake endpoint on 127.0.0.1 (same settings):
``llm`` (cellfrontier's model columns), ``openai`` / ``openai-aiohttp`` / ``httpx`` /
``aiohttp`` (the same Job with plain ``async def`` generators over that client) and
``datadesigner`` (DataDesigner's LLM text columns, in a subprocess with its telemetry off).
``--compare`` runs every one, one after another, and prints their figures and the ratios of
CPU per call side by side; every output is checked cell by cell against J12-LLM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TextIO

from cellfrontier.simulate.datadesigner_jobs import DataDesignerUnavailable
from cellfrontier.simulate.llm_jobs import LLM_BACKENDS, LlmJobFigures, run_j12_llm
from cellfrontier.simulate.reporting import ProgressBar, format_bytes, write_ratio_matrix
from cellfrontier.testing.j12 import j12_task_count
from cellfrontier.testing.j12_llm import LLM_BUFFER_SIZE, j12_llm_ceiling

__all__ = ["DEFAULT_ROWS", "WORKLOAD", "argument_problem", "simulate_llm"]

WORKLOAD = "J12-LLM"
LABELS = {
    "llm": "cellfrontier.llm (Job)",
    "openai": "openai SDK, default client (Job)",
    "openai-aiohttp": "openai SDK, aiohttp client (Job)",
    "httpx": "httpx.AsyncClient (Job)",
    "aiohttp": "aiohttp.ClientSession (Job)",
    "datadesigner": "DataDesigner LLM text columns",
}
SHORT = {
    "llm": "llm",
    "openai": "openai",
    "openai-aiohttp": "oai-aio",
    "httpx": "httpx",
    "aiohttp": "aiohttp",
}
SHORT["datadesigner"] = "DD"
DEFAULT_ROWS = {"llm": 20_000, "compare": 2_000}
"""Rows when ``--rows`` is not given: one ``llm`` run, or every backend side by side (the slow
clients take about 2.5-8 ms of CPU per call, so the side-by-side runs are shorter)."""
LABEL_WIDTH = 34
CHECK_MAX_ROWS = 200_000


def argument_problem(args: argparse.Namespace) -> str | None:
    """Why these options cannot run J12-LLM (or why J12-LLM's options were given to another workload)."""
    if args.workload != WORKLOAD:
        if args.latency_scale is not None or args.workers is not None:
            return f"--latency-scale and --workers are for --workload {WORKLOAD}"
        return None
    if args.backend is not None and args.backend not in LLM_BACKENDS:
        return f"{WORKLOAD} runs with {', '.join(LLM_BACKENDS)}; not --backend {args.backend}"
    if args.workers is not None and args.workers < 1:
        return "--workers must be at least 1"
    if args.workers is not None and (args.backend == "datadesigner" or args.compare):
        return "--workers runs cellfrontier's Job on worker processes; use it with one Job backend"
    if args.latency_scale is not None and not args.latency_scale > 0:
        return "--latency-scale must be above 0"
    return None


def _warm_up(backends: tuple[str, ...]) -> None:
    """Pay one-off costs (imports, pyarrow's first write) outside the timing: a tiny run each.

    DataDesigner's subprocess times its ``build()`` alone, so it needs none.
    """
    for backend in backends:
        if backend != "datadesigner":
            with contextlib.suppress(ImportError):
                run_j12_llm(50, backend, latency_scale=0.02, check=False)


def _run_one(backend: str, rows: int, args: argparse.Namespace, scale: float) -> LlmJobFigures | str:
    total = j12_task_count(rows, LLM_BUFFER_SIZE) if backend != "datadesigner" else 0
    bar = ProgressBar(total, LABELS[backend], enabled=not args.no_progress and backend != "datadesigner")
    target = None
    if args.output_dir is not None:
        target = os.path.join(args.output_dir, backend) if args.compare else args.output_dir
    try:
        return run_j12_llm(
            rows,
            backend,
            latency_scale=scale,
            workers=args.workers,
            check=rows <= CHECK_MAX_ROWS,
            output_dir=target,
            progress=bar,
        )
    except DataDesignerUnavailable as exc:
        return f"skipped: {exc}"
    except ImportError as exc:
        return f"skipped: {exc} (pip install 'cellfrontier[llm-compare]')"
    finally:
        bar.close()


def _write_table(results: list[tuple[str, LlmJobFigures | str]], out: TextIO) -> None:
    header = (
        f"{'backend':<{LABEL_WIDTH}} {'rows':>8} {'calls':>9} {'seconds':>8} {'calls/s':>9} "
        f"{'of ceiling':>10} {'CPU us/call':>11} {'endpoint us':>11} {'RSS growth':>10}"
    )
    out.write(header + "\n" + "-" * len(header) + "\n")
    for backend, figures in results:
        if isinstance(figures, str):
            out.write(f"{LABELS[backend]:<{LABEL_WIDTH}} {figures}\n")
            continue
        out.write(
            f"{LABELS[backend]:<{LABEL_WIDTH}} {figures.rows:>8,} {figures.calls:>9,} "
            f"{figures.seconds:>8.2f} "
            f"{figures.calls_per_second:>9,.0f} {figures.share_of_ceiling:>10.1%} "
            f"{figures.cpu_us_per_call:>11,.0f} {figures.endpoint_cpu_us_per_call:>11,.0f} "
            f"{format_bytes(figures.peak_rss_growth):>10}\n"
        )
    ran = [(b, f) for b, f in results if isinstance(f, LlmJobFigures)]
    if len(ran) >= 2:
        out.write(
            "\nCPU per call ratios: the column's CPU per call divided by the row's "
            "(how many times less CPU the row's backend spends per call)\n"
        )
        write_ratio_matrix(
            out, [(LABELS[b], SHORT[b], f.cpu_us_per_call) for b, f in ran], label_width=LABEL_WIDTH
        )


def simulate_llm(args: argparse.Namespace, out: TextIO) -> int:
    """``simulate --workload J12-LLM`` (options checked by :func:`argument_problem`)."""
    backends = LLM_BACKENDS if args.compare else (args.backend or "llm",)
    rows = args.rows if args.rows is not None else DEFAULT_ROWS["compare" if args.compare else "llm"]
    if rows <= 0:
        raise SystemExit("simulate: --rows must be positive")
    scale = 1.0 if args.latency_scale is None else args.latency_scale
    ceiling = j12_llm_ceiling(scale)
    load = os.getloadavg()
    out.write(
        f"workload {WORKLOAD}: J12 with its 7 cell columns as model calls, {rows:,} rows "
        f"({7 * rows:,} calls), 256 calls per column and 1,024 in all, latency scale {scale:g} "
        f"(mean {50 * scale:g} ms; ceiling {ceiling:,.0f} calls/s)"
        + (f", {args.workers} worker processes" if args.workers else "")
        + f"; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    out.flush()
    _warm_up(backends)
    results = [(b, _run_one(b, rows, args, scale)) for b in backends]
    out.write("\n")
    _write_table(results, out)
    notes = [
        "calls/s: answers the endpoint sent per second of the run; of ceiling: over the "
        f"{ceiling:,.0f}/s that 1,024 calls in flight allow at the mean latency",
        "CPU us/call: the client's CPU (this process and the processes it waited for: worker "
        "processes, DataDesigner's subprocess; every thread) per call; endpoint us: the fake "
        "endpoint's own CPU per call (it shares the machine)",
        "RSS growth: the client process's peak resident set over its start (worker processes not counted)",
        f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    checked = [LABELS[b] for b, f in results if isinstance(f, LlmJobFigures) and f.checked]
    if checked:
        notes.append(f"output checked cell by cell against J12-LLM: {', '.join(checked)}")
    out.write("\n" + "".join(f"- {note}\n" for note in notes))
    failed = [b for b, f in results if isinstance(f, LlmJobFigures) and f.records != rows]
    for backend in failed:
        out.write(f"error: {backend} wrote fewer than {rows:,} records\n")
    return 1 if failed else 0
