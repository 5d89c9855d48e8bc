"""The one record of what became of a shard's tasks: completed, failed, retried, dropped.

Whichever way a call ran (inline, async, on the thread pool), its outcome is recorded here:
a completed task is marked in the tracker and counted (:meth:`TaskLedger.done`), a failed call
is retried later or its row dropped (:meth:`TaskLedger.failed`), and every group an outcome
touched is noted for the runner, which takes them (:meth:`TaskLedger.take_touched`) and
advances them.  An error that must stop the job (a malformed value an async call returned)
is kept until the runner raises it (:meth:`TaskLedger.check_errors`).  A cell is marked done
only after its value is in the group's buffer: the tracker never claims a value the buffers
lack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.errors import ErrorRateExceededError, GeneratorOutputError
from cellfrontier.job.result import GeneratorFailure
from cellfrontier.job.shard.awaitables import refuse_awaitable
from cellfrontier.job.shard.buffers import GroupBuffers
from cellfrontier.job.shard.failures import FailureBook, RetryPolicy
from cellfrontier.tracker import CompletionTracker

__all__ = ["TaskLedger"]


class TaskLedger:
    """What became of one shard's tasks, and the figures the runner reads from it.

    Figures: ``tasks`` (completed), ``calls`` (started; counted by whoever starts them),
    ``errors`` and ``error_samples`` (calls that raised), ``next_retry_at`` (when the next
    failed call is due again, or None).
    """

    def __init__(
        self,
        tracker: CompletionTracker,
        *,
        retry: RetryPolicy,
        keep_errors: int,
        max_error_rate: float,
        min_error_sample: int,
    ) -> None:
        self.failures = FailureBook(retry, keep_errors)
        self.attempts = self.failures.attempts
        self.max_error_rate = max_error_rate
        self.min_error_sample = min_error_sample
        self.touched: dict[int, GroupBuffers] = {}
        """Groups an outcome touched since the runner last took them."""
        self.fatal: BaseException | None = None
        self.tasks = 0
        self.calls = 0
        self.use_tracker(tracker)

    def use_tracker(self, tracker: CompletionTracker) -> None:
        """Record outcomes in *tracker* (a restored checkpoint replaces the fresh one)."""
        self.tracker = tracker
        self.mark_cells = tracker.mark_cells_complete
        self.mark_cell = tracker.mark_cell_complete

    # ------------------------------------------------------------------ what the runner reads

    @property
    def errors(self) -> int:
        """Generator calls that raised so far."""
        return self.failures.errors

    @property
    def error_samples(self) -> tuple[GeneratorFailure, ...]:
        """The first failures, with their tracebacks."""
        return tuple(self.failures.samples)

    @property
    def next_retry_at(self) -> float | None:
        """When the next failed call is due again (``time.monotonic``), or None."""
        heap = self.failures.heap
        return heap[0][0] if heap else None

    @property
    def has_touched(self) -> bool:
        """Some group was touched since :meth:`take_touched` last handed them over."""
        return bool(self.touched)

    def take_touched(self) -> dict[int, GroupBuffers]:
        """The groups whose tasks finished, failed or were dropped since the last call, by row group."""
        touched = self.touched
        if touched:
            self.touched = {}
        return touched

    def check_errors(self) -> None:
        """Raise the error a call ran into that must stop the job, if any."""
        if self.fatal is not None:
            raise self.fatal

    def check_error_rate(self) -> None:
        """Stop the job (:class:`ErrorRateExceededError`) once too many calls failed."""
        errors = self.failures.errors
        if self.calls >= self.min_error_sample and errors > self.max_error_rate * self.calls:
            samples = self.failures.samples
            first = f" The first: {samples[0]}" if samples else ""
            raise ErrorRateExceededError(
                f"{errors:,} of {self.calls:,} generator calls failed, more than max_error_rate="
                f"{self.max_error_rate:g}; the job stopped (its checkpoint is saved).{first}"
            )

    # ------------------------------------------------------------------ what the calls report

    def touch(self, group: GroupBuffers) -> None:
        """Note that an outcome touched *group*: the runner advances it next."""
        self.touched[group.row_group] = group

    def stop_with(self, error: BaseException) -> None:
        """Keep *error* (the first one only) for the runner to raise: the job must stop."""
        if self.fatal is None:
            self.fatal = error

    def done(self, column: ColumnSpec, group: GroupBuffers, rows: Any, queued: bool) -> None:
        """Tasks of *column* in *group* finished with their values stored: tell the tracker, count them.

        *rows* is None for the full-column task, an int64 array for several cells, an int for
        one.  *queued* tasks counted in ``group.outstanding`` (inline ones never do); a task
        that had failed before is forgotten.
        """
        rg = group.row_group
        if rows is None:
            self.tracker.mark_row_range_complete(column.name, rg, group.size)
            count = 1
        elif type(rows) is np.ndarray:
            self.mark_cells(column.name, rg, rows)
            count = len(rows)
        else:
            self.mark_cell(column.name, rg, rows)
            count = 1
        if queued:
            group.outstanding -= count
        self.tasks += count
        if self.attempts:
            index = column.index
            for row in rows.tolist() if type(rows) is np.ndarray else (rows,):
                self.attempts.pop((index, rg, row), None)

    def store_batch(
        self, column: ColumnSpec, group: GroupBuffers, live: Sequence[int], result: Any, queued: bool
    ) -> None:
        """Put a full-column result into the buffers (checked first) and record the task done."""
        by_output = _checked_batch_result(column, group, live, result)
        for name, values in by_output.items():
            buffer = group.columns[name]
            if len(live) == group.size:
                buffer[:] = values
            else:
                for row, value in zip(live, values, strict=True):
                    buffer[row] = value
        self.done(column, group, None, queued)

    def failed(self, column: ColumnSpec, group: GroupBuffers, row: int | None, exc: BaseException) -> None:
        """A call raised: retry it later, or drop its row(s) when its retries are spent (at once when
        the error says ``retryable = False``).

        A dropped row remembers *column* as its culprit (the group's file records it, so that a
        rerun keeps the drop only while that column is kept).  The task counts in
        ``group.outstanding`` until it is retried successfully or dropped.
        """
        if self.failures.record(column, group, row, exc):
            return
        group.outstanding -= 1
        rg = group.row_group
        if row is None:
            live = group.batch_rows(column.name)
            if live:
                self.tracker.drop_rows(rg, np.asarray(live, dtype=np.int64))
                group.dropped.update(live)
                group.culprits.update(dict.fromkeys(live, column.name))
        else:
            self.tracker.drop_row(rg, row)
            group.dropped.add(row)
            group.culprits[row] = column.name
        self.touched[rg] = group

    def due_retries(self, now: float) -> Iterator[tuple[int, GroupBuffers, int | None]]:
        """Pop the failed calls whose backoff expired by *now*: ``(column index, group, row)`` each."""
        return self.failures.due(now)

    def forget(self, index: int, row_group: int, row: int | None) -> None:
        """Forget the failures of a task that will not run again (its row was dropped meanwhile)."""
        self.attempts.pop((index, row_group, row), None)


def _checked_batch_result(
    column: ColumnSpec, group: GroupBuffers, live: Sequence[int], result: Any
) -> dict[str, Any]:
    """A full-column result as ``{output: values}``, refused unless it has one value per live row."""
    where = f"row group {group.row_group}"
    refuse_awaitable(column, result)
    if len(column.outputs) == 1:
        by_output = {column.name: result}
    else:
        if not isinstance(result, Mapping) or set(result) != set(column.outputs):
            got = sorted(result) if isinstance(result, Mapping) else type(result).__name__
            raise GeneratorOutputError(
                f"the generator of full column {column.name!r} must return a mapping with exactly the "
                f"keys {list(column.outputs)} (the column and its side-effect aliases) at {where}, "
                f"got {got}"
            )
        by_output = dict(result)
    for name, values in by_output.items():
        try:
            count = len(values)
        except TypeError:
            raise GeneratorOutputError(
                f"the generator of full column {column.name!r} returned {type(values).__name__} for "
                f"{name!r} at {where}; it must return a sequence with one value per live row"
            ) from None
        if count != len(live) or isinstance(values, (str, bytes)):
            raise GeneratorOutputError(
                f"the generator of full column {column.name!r} returned {count} values for {name!r} at "
                f"{where}, which has {len(live)} live rows; it must return one value per row, in order"
            )
    return by_output
