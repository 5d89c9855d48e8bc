"""W10 and W64, every backend, in one process run; each run checks the workload's task count."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest
from conftest import skip_unavailable
from harness import BACKENDS, DD_BACKEND, FULL, GRAPHLIB_MAX_ROWS, ONE_MILLION, run_workload

from cellfrontier.testing.workloads import expected_task_count, get_workload


def _cases() -> list[Any]:
    """(workload, backend, rows) triples; the slow comparison backends only where they are bearable."""
    cases: list[tuple[str, str, int]] = []
    for backend in BACKENDS:
        for rows in (10_000, 100_000):
            cases.append(("W10", backend, rows))
        if backend.startswith("cellfrontier"):
            cases.append(("W10", backend, ONE_MILLION))
    for backend in BACKENDS:
        cases.append(("W64", backend, 10_000))
        cases.append(("W64", backend, 100_000))
        if backend.startswith("cellfrontier"):
            cases.append(("W64", backend, ONE_MILLION))
    params = []
    for workload, backend, rows in cases:
        if backend == "graphlib" and rows > GRAPHLIB_MAX_ROWS:
            continue
        slow = rows >= ONE_MILLION or (
            workload == "W64" and rows >= 100_000 and not backend.startswith("cell")
        )
        marks = [] if FULL or not slow else [pytest.mark.skip(reason="set CELLFRONTIER_BENCH_FULL=1")]
        params.append(pytest.param(workload, backend, rows, id=f"{workload}-{backend}-{rows}", marks=marks))
    return params


@pytest.mark.parametrize(("workload", "backend", "rows"), _cases())
def test_workload(benchmark: Any, dd_skip_reason: str | None, workload: str, backend: str, rows: int) -> None:
    """One backend on one reference workload; the driver raises if the task count is wrong."""
    skip_unavailable(backend, dd_skip_reason)
    benchmark.group = f"{workload} {rows:,} rows"
    rounds = 3 if rows <= 10_000 else 1
    result = benchmark.pedantic(run_workload, args=(backend, workload, rows), rounds=rounds, iterations=1)
    wl = get_workload(workload)
    if backend == "graphlib":
        from dataclasses import replace

        wl = replace(wl, drop_column=None, drop_every=None)
    assert result.tasks == expected_task_count(wl, rows)
    benchmark.extra_info.update(
        {
            "backend": backend,
            "workload": workload,
            "rows": rows,
            "tasks": result.tasks,
            "us_per_task": result.us_per_task,
            "tasks_per_second": result.tasks_per_second,
            "peak_bytes": result.peak_bytes,
            "note": result.note,
        }
    )
    if backend == DD_BACKEND:
        benchmark.extra_info["compared_with"] = (
            f"data-designer-engine {version('data-designer-engine')} CompletionTracker"
        )
