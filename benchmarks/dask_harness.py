"""J12 on a Dask cluster: one worker against two, and the distributed path against a local run.

Three ways to run the same J12 job (1,000 rows per group, at most 3 groups active per shard,
Parquet output to a temporary directory), side by side in one process run:

- ``local``: ``job.run()`` in this process (one shard over the whole job);
- ``1 worker``: ``job.run(client=...)`` on a ``LocalCluster`` of one process worker;
- ``2 workers``: the same on a ``LocalCluster`` of two process workers.

Both clusters are started once, bind to 127.0.0.1, have one thread per worker and no
dashboard, and are warmed up (imports, first Parquet write) before any timing; the three
configurations are run in turn, ``--rounds`` times, and the fastest of each is kept.  The
targets: 2 workers at least 1.7x as fast as 1 worker; 1 worker within 10% of the local run.

    python benchmarks/dask_harness.py report [--rows 1000000] [--rounds 2]

Quote the ratios, measured in one run; on a shared machine the absolute times are inflated.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cellfrontier.job.run.cluster import DEFAULT_SHARDS_PER_THREAD, WORKER_PROGRESS_INTERVAL
from cellfrontier.simulate.job_drivers import JobFigures, run_job_workload
from cellfrontier.testing.j12 import J12

ALLOWED_FAILURES = 3
"""The scheduler's ``distributed.scheduler.allowed-failures`` (Dask's default, set explicitly)."""
SHARD_RETRIES = 2
"""``run(shard_retries=...)``: its default, used here."""
CONFIGURATIONS = ("local", "1 worker", "2 workers")


@contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A ``LocalCluster`` of *workers* one-thread process workers on 127.0.0.1, and its client."""
    import dask
    import distributed

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="Port .* is already in use")  # the second cluster's
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port: never clashes with another cluster
            silence_logs=logging.ERROR,
        )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(workers, timeout=120)
            yield client
    finally:
        cluster.close(timeout=60)


def run(configuration: str, rows: int, clients: dict[str, Any], *, check: bool = False) -> JobFigures:
    """One J12 run in *configuration* (see the module doc)."""
    client = clients.get(configuration)
    return run_job_workload("J12", rows, client=client, check=check)


def settings(rows: int) -> dict[str, Any]:
    """What the runs were configured with (printed beside the figures)."""
    groups = -(-rows // J12.buffer_size)
    return {
        "rows": rows,
        "row_groups": groups,
        "buffer_size": J12.buffer_size,
        "max_active_row_groups_per_shard": J12.max_active_row_groups,
        "shards": {"1 worker": DEFAULT_SHARDS_PER_THREAD, "2 workers": 2 * DEFAULT_SHARDS_PER_THREAD},
        "groups_per_shard": {
            "1 worker": groups / DEFAULT_SHARDS_PER_THREAD,
            "2 workers": groups / (2 * DEFAULT_SHARDS_PER_THREAD),
        },
        "checkpoint_interval_s": 5.0,
        "worker_progress_interval_s": WORKER_PROGRESS_INTERVAL,
        "shard_retries": SHARD_RETRIES,
        "allowed_failures": ALLOWED_FAILURES,
        "threads_per_worker": 1,
    }


def _spin(iterations: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return time.perf_counter() - started


def machine_parallelism(iterations: int = 20_000_000) -> float:
    """How much faster two CPU-bound processes get through two loads than one process through one.

    2.0 on an idle two-core machine; what is left when other processes take CPU time.  Measured
    in the same run as the job, it is the ceiling the two-worker speedup can be read against.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # start both processes outside the timing
        started = time.perf_counter()
        pool.map(_spin, [iterations])
        one = time.perf_counter() - started
        started = time.perf_counter()
        pool.map(_spin, [iterations, iterations], chunksize=1)
        two = time.perf_counter() - started
    return 2 * one / two


def cores_used(figures: JobFigures) -> float:
    """CPU seconds per wall second of a run: how many cores it was given, on average.

    On a cluster run the CPU is the workers' (the shards' own); with two workers on an idle
    two-core machine it approaches 2, and a shortfall there is what other processes took.
    """
    return figures.cpu_seconds / figures.seconds if figures.seconds > 0 else 0.0


def report(rows: int, rounds: int) -> dict[str, Any]:
    """Run every configuration *rounds* times in turn; print and return the best of each."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with local_cluster(1) as one, local_cluster(2) as two:
        clients = {"1 worker": one, "2 workers": two}
        for configuration in CONFIGURATIONS:  # warm up, and check the output once per configuration
            assert run(configuration, 20_000, clients, check=True).checked
        parallelism: list[float] = []
        best: dict[str, JobFigures] = {}
        runs: dict[str, list[float]] = {c: [] for c in CONFIGURATIONS}
        for _ in range(rounds):
            parallelism.append(machine_parallelism())  # the machine as this round found it
            for configuration in CONFIGURATIONS:
                figures = run(configuration, rows, clients)
                assert figures.records == rows
                runs[configuration].append(figures.seconds)
                if configuration not in best or figures.seconds < best[configuration].seconds:
                    best[configuration] = figures
    local, single, double = (best[c] for c in CONFIGURATIONS)
    results = {
        "settings": settings(rows),
        "load_average_at_start": load,
        "runs_seconds": runs,
        "best": {c: best[c].as_dict() for c in CONFIGURATIONS},
        "speedup_two_workers_over_one": single.seconds / double.seconds,
        "overhead_one_worker_over_local": single.seconds / local.seconds - 1.0,
        "cores_used": {c: cores_used(best[c]) for c in CONFIGURATIONS},
        "machine_parallelism": parallelism,
    }
    print(f"J12, {rows:,} rows, best of {rounds} (load average at start: {load})")
    print("runs (s):", {c: [round(x, 2) for x in v] for c, v in runs.items()})
    print("| configuration | s | rows/s | CPU us/task | cores used |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for configuration in CONFIGURATIONS:
        f = best[configuration]
        print(
            f"| {configuration} | {f.seconds:.2f} | {rows / f.seconds:,.0f} | {f.cpu_us_per_task:.2f} "
            f"| {cores_used(f):.2f} |"
        )
    print(
        f"\n2 workers over 1 worker: {results['speedup_two_workers_over_one']:.2f}x (target >= 1.7x); "
        f"1 worker over local: {100 * results['overhead_one_worker_over_local']:+.1f}% (target < 10%)\n"
        "the machine before each round: two CPU-bound processes "
        + ", ".join(f"{p:.2f}x" for p in parallelism)
        + " as fast as one (2.00 when idle)"
    )
    print("settings:", json.dumps(results["settings"]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="local, 1 worker and 2 workers side by side")
    rep.add_argument("--rows", type=int, default=1_000_000)
    rep.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    results = report(args.rows, args.rounds)
    results["total_seconds"] = time.perf_counter() - started
    Path(__file__).with_name("dask_results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
