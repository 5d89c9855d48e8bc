"""Running a job in this process: one shard, or every shard its output directory holds, in turn.

Without ``output_dir`` a job is one shard over every row group, kept in memory.  With it, the
shards are those registered in the directory plus one new shard per uncovered range: a fresh
directory gets one shard over the whole job, and a directory a cluster run left behind is
finished shard by shard, each resuming from its own checkpoint.  Shards already finished are
skipped (their checkpoint header says so and their files are all there).  Several shards show
as one progress view.
"""

from __future__ import annotations

from collections.abc import Callable

from cellfrontier.job.progress import JobProgress
from cellfrontier.job.result import JobResult
from cellfrontier.job.run.progress_board import shard_snapshot
from cellfrontier.job.run.setup import RunOfShards, open_run
from cellfrontier.job.shard.interrupts import StopSignals
from cellfrontier.job.shard.runner import ShardRunner
from cellfrontier.job.spec import JobSpec

__all__ = ["run_locally"]


async def run_locally(spec: JobSpec, requested: range | None, signals: StopSignals) -> JobResult:
    """Run the job *spec* (or the one shard *requested*) to the end in this process."""
    if spec.output_dir is None:
        whole = requested if requested is not None else range(spec.num_row_groups)
        return await ShardRunner(spec, whole).run(signals)
    run = open_run(spec, requested=requested)
    spec = run.spec  # bound to the job version the run resolved
    to_run = run.to_run
    if len(to_run) == 1 and not run.finished:
        return await ShardRunner(spec, to_run[0]).run(signals)

    run.show_progress()
    results = []
    for shard in to_run:
        runner = ShardRunner(spec, shard)
        runner.report = _reporting(run, run.shards.index(shard), runner)
        results.append(await runner.run(signals))
    run.emit_progress(final=True)
    return run.result(results, row_groups=requested if requested is not None else range(spec.num_row_groups))


def _reporting(run: RunOfShards, index: int, runner: ShardRunner) -> Callable[[JobProgress], None]:
    """A shard's progress callback: update the board, and show the whole job when it is due."""
    board = run.board
    assert board is not None

    def report(progress: JobProgress) -> None:
        board.update(index, shard_snapshot(progress, runner.epoch))
        run.emit_progress()

    return report
