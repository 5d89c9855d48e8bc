"""Setting up a run of a job's shards, the same way in this process and on a cluster.

:func:`open_run` prepares ``output_dir`` (its manifest), cuts the job into shards (keeping
the registered ones, :mod:`cellfrontier.job.run.shard_cut`) and finds the finished ones;
:class:`RunOfShards` then holds the one progress view over the shards and combines their
results into one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import ProgressReporter
from cellfrontier.job.result import JobResult, ShardSummary, combine_results
from cellfrontier.job.run.progress_board import ProgressBoard, shard_baselines
from cellfrontier.job.run.shard_cut import cut_shards
from cellfrontier.job.shard.usage import usage_group
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.generations import resolve_version
from cellfrontier.job.store.shard_dirs import FinishedShard, finished_shards, register_shards
from cellfrontier.job.usage import JobUsage

__all__ = ["RunOfShards", "open_run"]


@dataclass
class RunOfShards:
    """A run's shards: the cut, the finished ones and what runs; one progress view over them."""

    spec: JobSpec
    layout: OutputLayout
    shards: list[range]
    """Every shard of the run, in row-group order (finished ones included)."""
    finished: dict[range, FinishedShard]
    written: set[int]
    """Row groups whose files existed when the run started."""
    started: float = field(default_factory=time.perf_counter)
    board: ProgressBoard | None = None
    reporter: ProgressReporter | None = None

    @property
    def to_run(self) -> list[range]:
        """The shards that are not finished, in row-group order."""
        return [shard for shard in self.shards if shard not in self.finished]

    def show_progress(self) -> ProgressBoard:
        """Start the one progress view over the shards (the job's callback, bar or log lines)."""
        self.board = ProgressBoard(shard_baselines(self.spec, self.shards, self.finished, self.written))
        self.reporter = self.spec.progress_reporter()
        return self.board

    def emit_progress(self, *, final: bool = False) -> None:
        """Show the whole job's progress now if it is due (or at the end, *final*)."""
        reporter, board = self.reporter, self.board
        if reporter is None or board is None or not reporter.active:
            return
        now = time.perf_counter()
        if final or reporter.due(now):
            reporter.emit(board.progress(now), now, final=final)

    def result(
        self, results: Sequence[JobResult], *, row_groups: range, workers: Sequence[str | None] | None = None
    ) -> JobResult:
        """One result for the run: the shards' results plus the finished shards, skipped."""
        groups = {c.name: g for c in self.spec.columns if (g := usage_group(c.fn)) is not None}
        skipped = [
            ShardSummary(
                f.shard,
                f.epoch,
                f.records,
                f.dropped,
                0,
                0.0,
                0.0,
                resumed=True,
                skipped=True,
                usage=JobUsage.from_columns(f.usage, groups),
            )
            for f in self.finished.values()
        ]
        return combine_results(
            results,
            skipped,
            row_groups=row_groups,
            seconds=time.perf_counter() - self.started,
            keep_errors=self.spec.keep_errors,
            output_dir=self.layout.root,
            columns=self.spec.output_names,
            workers=workers,
        )


def open_run(
    spec: JobSpec,
    *,
    requested: range | None = None,
    new_shards: int | Callable[[], int] = 1,
    register: bool = False,
) -> RunOfShards:
    """Prepare ``output_dir`` for a run of *spec* and find its shards.

    The job version is resolved first (the current one, or a switch to a new one): the run's
    ``spec`` is bound to it, and its shards are those of that version.

    *requested* restricts the run to one shard (``job.run(row_groups=...)``); otherwise the
    uncovered row groups are cut into about *new_shards* shards (a callable is asked once the
    directory is known to be this job's: a cluster's thread count).  With *register* the new
    shards' directories are created now (a cluster run, so that every worker sees the same
    cut); a local run registers each shard when it starts it.
    """
    started = time.perf_counter()
    root = spec.output_dir
    assert root is not None
    version = resolve_version(spec)
    spec = spec.at_generation(version.generation)
    layout = OutputLayout(root, version.generation)
    count = new_shards() if callable(new_shards) else new_shards
    shards = cut_shards(layout, spec.num_row_groups, requested=requested, new_shards=count)
    if register:
        register_shards(layout, shards)
    written = set(layout.written_groups(0, spec.num_row_groups))
    finished = finished_shards(layout, shards, version.accepted_digests, written)
    return RunOfShards(spec, layout, shards, finished, written, started)
