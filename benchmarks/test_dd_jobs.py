"""NVIDIA DataDesigner's engine on the whole-job workloads: J12 and J12-LAT.

* ``test_dd_j12``: J12 through ``DatasetBuilder.build()`` with DataDesigner's own tracker and
  with cellfrontier's installed (``cellfrontier.integrations.data_designer.install()``), at
  1,000- and 10,000-row groups: what the drop-in backend buys a real job.  20,000 rows by
  default; ``CELLFRONTIER_BENCH_FULL=1`` adds 100,000 (about 5 minutes a run).
* ``test_dd_j12_lat``: J12-LAT (``async`` generators awaiting 25-75 ms, 256 calls per column,
  1,024 for the job), 36,000 rows, which lasts over a minute at DataDesigner's speed.

Every run's output is checked cell by cell against J12 before a figure is kept. The figures
in ``extra_info`` are the job's own (building and running the builder, not reading the
output back); ``benchmarks/report.py`` prints the ratios side by side.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from typing import Any

import pytest

from cellfrontier.simulate.datadesigner_jobs import LAT_DEFAULT_ROWS, dd_skip_reason, run_dd_j12, warm_up
from cellfrontier.testing.j12 import LAT_CEILING_PER_SECOND

FULL = os.environ.get("CELLFRONTIER_BENCH_FULL", "") not in ("", "0")

J12_ROWS = (20_000, 100_000)
BUFFER_SIZES = (1_000, 10_000)
BACKENDS = ("datadesigner", "datadesigner+cellfrontier")


@pytest.fixture(scope="module")
def data_designer_ready() -> None:
    """Skip without DataDesigner; otherwise pay its lazy imports once, before any timing."""
    reason = dd_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    warm_up()


def _j12_cases() -> list[Any]:
    params = []
    for rows in J12_ROWS:
        marks = [] if FULL or rows <= 20_000 else [pytest.mark.skip(reason="set CELLFRONTIER_BENCH_FULL=1")]
        for buffer_size in BUFFER_SIZES:
            for backend in BACKENDS:
                case_id = f"{backend}-{rows}-b{buffer_size}"
                params.append(pytest.param(rows, buffer_size, backend, id=case_id, marks=marks))
    return params


def _record(benchmark: Any, run: Any) -> None:
    benchmark.extra_info.update(run.as_dict())
    benchmark.extra_info["compared_with"] = (
        f"data-designer-engine {version('data-designer-engine')} DatasetBuilder.build()"
    )


@pytest.mark.usefixtures("data_designer_ready")
@pytest.mark.parametrize(("rows", "buffer_size", "backend"), _j12_cases())
def test_dd_j12(benchmark: Any, rows: int, buffer_size: int, backend: str) -> None:
    """One J12 job through DataDesigner's engine; its output must be J12 exactly."""
    benchmark.group = f"J12 on DataDesigner, {rows:,} rows, buffer {buffer_size:,}"
    run = benchmark.pedantic(
        run_dd_j12,
        args=(rows, buffer_size),
        kwargs={"cellfrontier_backend": backend != "datadesigner"},
        rounds=1,
        iterations=1,
    )
    assert run.backend == backend
    assert run.cell_tasks == 7 * rows
    _record(benchmark, run)


@pytest.mark.usefixtures("data_designer_ready")
def test_dd_j12_lat(benchmark: Any) -> None:
    """J12-LAT on DataDesigner: cell tasks per second against the 20,480/s the caps allow."""
    benchmark.group = "J12-LAT on DataDesigner"
    run = benchmark.pedantic(
        run_dd_j12, args=(LAT_DEFAULT_ROWS,), kwargs={"latency": True}, rounds=1, iterations=1
    )
    assert run.cell_tasks == 7 * LAT_DEFAULT_ROWS
    _record(benchmark, run)
    benchmark.extra_info["ceiling_cell_tasks_per_second"] = LAT_CEILING_PER_SECOND
