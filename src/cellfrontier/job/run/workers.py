"""``job.run(workers=N)``: the job's shards on N single-thread worker processes of this machine.

One process runs one event loop on one core; a job whose generators cost CPU (model calls
parse answers, build prompts) needs more processes to use more cores.  This starts a Dask
``LocalCluster`` of N worker processes with one thread each, listening on 127.0.0.1 only,
without a dashboard, runs the job on it as on any cluster
(:func:`~cellfrontier.job.run.cluster.run_on_cluster`: shards, checkpoints, one progress
view, caps divided among the running shards) and closes it, even when the run fails.  The
worker processes stop by themselves if this process dies.  Like any cluster run it needs
``output_dir`` (the workers write the row groups there; the result reads them back).
"""

from __future__ import annotations

import logging
from typing import Any

from cellfrontier._validate import as_count
from cellfrontier.errors import InvalidArgumentError
from cellfrontier.job.errors import MissingDependencyError
from cellfrontier.job.result import JobResult
from cellfrontier.job.run.cluster import run_on_cluster
from cellfrontier.job.spec import JobSpec

__all__ = ["run_on_local_workers"]


def run_on_local_workers(
    spec: JobSpec, workers: int, *, shards: int | None = None, shard_retries: int = 2
) -> JobResult:
    """Run the job *spec* on a loopback cluster of *workers* single-thread processes (module doc)."""
    workers = as_count(workers, "workers", "run", 1)
    if spec.output_dir is None:
        raise InvalidArgumentError(
            "run(workers=...) needs output_dir: the worker processes write the row groups there, "
            "and the result reads them back"
        )
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "run(workers=...) needs dask.distributed, which is not installed: "
            "pip install 'cellfrontier[dask]'"
        ) from None
    cluster: Any = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # No dashboard; the scheduler's own HTTP routes (health) on a free loopback port rather
        # than 8787, which another cluster on the machine may hold.
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(workers)  # every worker's slots known before the caps are divided
            return run_on_cluster(spec, client, shards=shards, shard_retries=shard_retries)
    finally:
        cluster.close()
