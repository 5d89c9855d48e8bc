"""J12 and J12-LAT: whole jobs through ``cellfrontier.Job`` against the floor loop.

By default J12 at 20,000 rows; ``CELLFRONTIER_BENCH_FULL=1`` adds 100,000 and 1,000,000 rows,
the peak RSS growth of a 1,000,000-row run with ``output_dir`` (target < 200 MiB) and J12-LAT
(about 70 s: utilization of the caps, CPU per task, peak active groups, peak memory).  Every
backend's output is checked cell by cell against the formulas at 20,000 rows, outside the
timing.
"""

from __future__ import annotations

from typing import Any

import pytest
from job_harness import FULL, J12_SIZES, LAT_ROWS, j12, measure_in_subprocess, warm_up

from cellfrontier.testing.j12 import j12_task_count

pytest.importorskip("pyarrow")
full_only = pytest.mark.skipif(not FULL, reason="set CELLFRONTIER_BENCH_FULL=1")


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()


@pytest.mark.parametrize("rows", J12_SIZES, ids=lambda r: f"{r}")
@pytest.mark.parametrize("backend", ["floor", "job"])
def test_j12(benchmark: Any, backend: str, rows: int) -> None:
    """One backend on J12 with Parquet output (timed without the check; 20,000 rows are checked after)."""
    benchmark.group = f"J12 {rows:,} rows"
    rounds = 3 if rows <= 100_000 else 1
    figures = benchmark.pedantic(j12, args=(backend, rows), rounds=rounds)
    assert figures.tasks == j12_task_count(rows) and figures.records == rows
    benchmark.extra_info.update(figures.as_dict())
    if rows <= 20_000:
        assert j12(backend, rows, check=True).checked


@pytest.mark.parametrize("rows", J12_SIZES, ids=lambda r: f"{r}")
def test_j12_job_against_floor(benchmark: Any, rows: int) -> None:
    """The ratio itself, measured side by side (best of three pairs): target within 2x of the floor."""
    benchmark.group = f"J12 {rows:,} rows"

    def pair() -> tuple[float, float]:
        return j12("floor", rows).seconds, j12("job", rows).seconds

    pairs = [pair() for _ in range(2 if rows < 1_000_000 else 0)] + [benchmark.pedantic(pair, rounds=1)]
    floor, job = min(p[0] for p in pairs), min(p[1] for p in pairs)
    benchmark.extra_info.update({"floor_seconds": floor, "job_seconds": job, "job_over_floor": job / floor})


@full_only
def test_j12_memory_one_million_rows(benchmark: Any) -> None:
    """Peak RSS growth of a 1,000,000-row J12 job writing Parquet (target < 200 MiB)."""
    benchmark.group = "J12 memory"
    figures = benchmark.pedantic(measure_in_subprocess, args=("J12", 1_000_000), rounds=1)
    assert figures["records"] == 1_000_000
    benchmark.extra_info.update({**figures, "rss_growth_mib": figures["rss_growth"] / 2**20})


@full_only
def test_j12_lat_utilization(benchmark: Any) -> None:
    """J12-LAT over >= 60 s: cell tasks per second against the 20,480 the caps allow."""
    benchmark.group = "J12-LAT"
    figures = benchmark.pedantic(measure_in_subprocess, args=("J12-LAT", LAT_ROWS), rounds=1)
    assert figures["records"] == LAT_ROWS
    benchmark.extra_info.update({**figures, "rss_growth_mib": figures["rss_growth"] / 2**20})
