"""J12 on a Dask ``LocalCluster``: one worker, two workers, and a local ``job.run()`` beside them.

By default J12 at 100,000 rows; ``CELLFRONTIER_BENCH_FULL=1`` runs 1,000,000 rows (the target
size: two workers at least 1.7x as fast as one, one worker within 10% of a local run).  Both
clusters (one-thread process workers on 127.0.0.1, no dashboard) start once for the module.
``python benchmarks/dask_harness.py report`` prints the same comparison as a table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from dask_harness import CONFIGURATIONS, cores_used, local_cluster, run, settings

from cellfrontier.testing.j12 import j12_task_count

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
FULL = os.environ.get("CELLFRONTIER_BENCH_FULL", "") not in ("", "0")
ROWS = 1_000_000 if FULL else 100_000


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, Any]]:
    with local_cluster(1) as one, local_cluster(2) as two:
        connected = {"1 worker": one, "2 workers": two}
        for configuration in CONFIGURATIONS:  # warm up and check each path once, outside the timing
            assert run(configuration, 20_000, connected, check=True).checked
        yield connected


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_j12_configuration(benchmark: Any, clients: dict[str, Any], configuration: str) -> None:
    """One configuration on J12 (Parquet output to a temporary directory)."""
    benchmark.group = f"J12 on Dask, {ROWS:,} rows"
    figures = benchmark.pedantic(run, args=(configuration, ROWS, clients), rounds=1)
    assert figures.tasks == j12_task_count(ROWS) and figures.records == ROWS
    benchmark.extra_info.update({**figures.as_dict(), "cores_used": cores_used(figures), **settings(ROWS)})


def test_j12_scaling_side_by_side(benchmark: Any, clients: dict[str, Any]) -> None:
    """The ratios, from the three configurations run in turn (best of two rounds each)."""
    benchmark.group = f"J12 on Dask, {ROWS:,} rows"

    def round_() -> dict[str, float]:
        return {c: run(c, ROWS, clients).seconds for c in CONFIGURATIONS}

    rounds = [round_(), benchmark.pedantic(round_, rounds=1)]
    best = {c: min(r[c] for r in rounds) for c in CONFIGURATIONS}
    benchmark.extra_info.update(
        {
            "seconds": best,
            "speedup_two_workers_over_one": best["1 worker"] / best["2 workers"],
            "overhead_one_worker_over_local": best["1 worker"] / best["local"] - 1.0,
        }
    )
