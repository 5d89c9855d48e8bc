"""``JobSpec``: the frozen description of a job that every layer below ``Job`` takes.

``Job`` is the public API: it checks its arguments and may be changed by its user between
runs.  Each run starts from a :class:`JobSpec` built from it then (``Job.spec()``), so what
runs a shard, stores it or runs many shards never sees the ``Job`` object and cannot reach
back up to it.  The spec is plain data and pickles by value (generators by reference, as
pickle does), so a cluster ships it to its workers as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cellfrontier.graph import ExecutionGraph
from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.progress import JobProgress, ProgressReporter
from cellfrontier.tracker import ColumnProgress

__all__ = ["CapShare", "JobSpec"]


@dataclass(frozen=True)
class CapShare:
    """A shard's part of the job's caps when ``slots`` shards run at once (a cluster run).

    The running shards hold distinct slots ``0 .. slots - 1``; slot ``s`` gets
    ``cap // slots``, plus one while ``s < cap % slots``, so the parts of the shards running
    at once add up to the job's number exactly (and never less than 1 each).
    """

    slot: int
    slots: int

    def of(self, cap: int) -> int:
        """This slot's part of *cap*."""
        base, extra = divmod(cap, self.slots)
        return max(1, base + (1 if self.slot < extra else 0))


@dataclass(frozen=True, eq=False)
class JobSpec:
    """What a job computes and how it runs, as checked by ``Job()`` (see its options)."""

    graph: ExecutionGraph
    columns: tuple[ColumnSpec, ...]
    """Every column of the graph, in topological order."""
    num_records: int
    buffer_size: int
    max_active_row_groups: int | None
    max_concurrency: int | None
    retries: int
    retry_backoff: float
    max_retry_backoff: float
    max_error_rate: float
    min_error_sample: int
    keep_errors: int
    output_dir: Path | None
    checkpoint_interval: float
    checkpoint_every: int | None
    memory_budget: int
    progress: Callable[[JobProgress], None] | None
    progress_bar: bool | None
    progress_interval: float
    log_interval: float
    tune_gc: bool
    generation: int | None = None
    """The job version of ``output_dir`` this run works on, once its run has resolved it
    (:mod:`cellfrontier.job.store.generations`); None before, and without ``output_dir``."""
    cap_share: CapShare | None = None
    """Set per shard by a cluster run: the shard's part of every cap (None: the whole caps)."""

    @property
    def num_row_groups(self) -> int:
        """Row groups of the job: ids ``0 .. num_row_groups - 1``."""
        return -(-self.num_records // self.buffer_size)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The output's columns: each column, then its side-effect aliases, in topological order."""
        return tuple(name for column in self.columns for name in column.outputs)

    def estimate_tasks(self, rows: int, row_groups: int) -> int:
        """Tasks of *rows* rows in *row_groups* groups: a task per cell and per full-column batch.

        An estimate where rows are dropped (a dropped row's later cells never run).
        """
        cells = sum(1 for column in self.columns if not column.batch)
        return rows * cells + row_groups * (len(self.columns) - cells)

    def estimate_tasks_done(self, progress: Mapping[str, ColumnProgress]) -> int:
        """Tasks a tracker's *progress* counts as done or dropped (full-column batches counted by rows)."""
        size = max(1, self.buffer_size)
        done = 0
        for column in self.columns:
            counts = progress[column.name]
            finished = counts.completed + counts.dropped
            done += finished // size if column.batch else finished
        return done

    def progress_reporter(self) -> ProgressReporter:
        """The reporter this job's options ask for: its callback, its bar or its log lines."""
        return ProgressReporter(
            self.progress, self.progress_bar, interval=self.progress_interval, log_interval=self.log_interval
        )

    def at_generation(self, generation: int) -> JobSpec:
        """A copy bound to job version *generation* of its ``output_dir``."""
        return dataclasses.replace(self, generation=generation)

    def without_progress_display(self, progress_interval: float) -> JobSpec:
        """A copy that reports progress only every *progress_interval* seconds, drawing nothing.

        Shipped to cluster workers, where the client shows the job's one progress view.
        """
        return dataclasses.replace(
            self, progress=None, progress_bar=False, progress_interval=progress_interval
        )
