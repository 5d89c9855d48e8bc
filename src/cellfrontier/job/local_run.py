"""Running a job in this process: one shard, or every shard its output directory holds, in turn.

Without ``output_dir`` a job is one shard over every row group, kept in memory.  With it, the
shards are those registered in the directory (:mod:`cellfrontier.job.sharding`) plus one new
shard per uncovered range: a fresh directory gets one shard over the whole job, and a
directory a cluster run left behind is finished shard by shard, each resuming from its own
checkpoint.  Shards already finished are skipped (their checkpoint header says so and their
files are all there).  Several shards show as one progress view.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cellfrontier.job.interrupts import StopSignals
from cellfrontier.job.manifest import job_digest, prepare_output_dir
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import JobProgress, ProgressBoard, ProgressReporter, shard_snapshot
from cellfrontier.job.runner import ShardRunner
from cellfrontier.job.sharding import (
    combine_results,
    finished_shards,
    plan_shards,
    shard_baselines,
)

if TYPE_CHECKING:
    from cellfrontier.job.job import Job, JobResult

__all__ = ["run_locally"]


async def run_locally(job: Job, requested: range | None, signals: StopSignals) -> JobResult:
    """Run *job* (or the one shard *requested*) to the end in this process."""
    if job.output_dir is None:
        return await ShardRunner(job, requested if requested is not None else range(job.num_row_groups)).run(
            signals
        )
    started = time.perf_counter()
    layout = OutputLayout(Path(job.output_dir))
    fingerprint = job.fingerprint()
    prepare_output_dir(layout, fingerprint)
    plan = plan_shards(layout, job.num_row_groups, requested=requested)
    written = set(layout.written_groups(0, job.num_row_groups))
    digest = job_digest(fingerprint)
    finished = finished_shards(layout, plan, digest, written)
    to_run = [shard for shard in plan if shard not in finished]
    if len(to_run) == 1 and not finished:
        return await ShardRunner(job, to_run[0]).run(signals)

    board = ProgressBoard(shard_baselines(job, plan, finished, written))
    reporter = ProgressReporter(
        job.progress, job.progress_bar, interval=job.progress_interval, log_interval=job.log_interval
    )
    results = []
    for shard in to_run:
        runner = ShardRunner(job, shard)
        runner.report = _reporting(board, plan.index(shard), runner, reporter)
        results.append(await runner.run(signals))
    if reporter.active:
        now = time.perf_counter()
        reporter.emit(board.progress(now), now, final=True)
    columns = tuple(name for plan_ in job.column_plans() for name in plan_.outputs)
    return combine_results(
        results,
        list(finished.values()),
        row_groups=requested if requested is not None else range(job.num_row_groups),
        seconds=time.perf_counter() - started,
        keep_errors=job.keep_errors,
        output_dir=layout.root,
        columns=columns,
    )


def _reporting(
    board: ProgressBoard, index: int, runner: ShardRunner, reporter: ProgressReporter
) -> Callable[[JobProgress], None]:
    """A shard's progress callback: update the board, and show the whole job when it is due."""

    def report(progress: JobProgress) -> None:
        board.update(index, shard_snapshot(progress, runner.store.epoch if runner.store else 0))
        now = time.perf_counter()
        if reporter.active and reporter.due(now):
            reporter.emit(board.progress(now), now)

    return report
