"""Running a shard's generator calls: inline batches, async tasks and blocking thread-pool batches.

The scheduling loop (:mod:`cellfrontier.job.shard.runner`) decides *what* is ready; a
:class:`CallDispatcher` runs it and records the outcome:

- ``INLINE`` columns run right away on the loop thread, a whole ready set per call through the
  column's generated loop (:mod:`cellfrontier.job.shard.row_loops`), then one
  ``mark_cells_complete``;
- ``ASYNC`` and ``BLOCKING`` work waits in per-column queues until
  :meth:`CallDispatcher.launch` starts it under the caps: one asyncio task per async call
  (:mod:`cellfrontier.job.shard.async_calls`: a small wrapper coroutine that stores the value,
  marks the cell and applies the column's timeout), one pool hand-off per batch of blocking
  rows (the pool thread appends a :class:`PoolOutcome` to a deque that the loop collects);
- a call that raises is retried later (a timer heap, never a sleep) or its row is dropped; a
  plain generator's first values are checked not to be awaitables
  (:mod:`cellfrontier.job.shard.awaitables`).

Whatever the path, the outcome goes to the shard's :class:`~cellfrontier.job.shard.ledger.TaskLedger`,
the one record of finished and failed calls.  The caps are plain integers counted here at
launch and at completion, so no semaphore is touched per call.  Deeper columns launch first,
so rows already started finish (and their groups can be written) before new rows start.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellfrontier.job.columns import ColumnKind, ColumnSpec
from cellfrontier.job.shard.async_calls import AsyncCalls
from cellfrontier.job.shard.awaitables import check_first_values, output_error, refuse_awaitable
from cellfrontier.job.shard.buffers import GroupBuffers
from cellfrontier.job.shard.ledger import TaskLedger
from cellfrontier.job.shard.row_loops import CALL_FAILURES, ColumnLoops, compile_loops
from cellfrontier.job.shard.wakeup import Wakeup

__all__ = ["CallDispatcher", "PoolOutcome"]

_INLINE = ColumnKind.INLINE
_ASYNC = ColumnKind.ASYNC
_BLOCKING = ColumnKind.BLOCKING


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What a pool thread hands back for one batch of a blocking column.

    ``rows`` are the cells it ran (None: the column's full-column task), ``failures`` the
    calls that raised (``(row, exception)``; row None for the full-column task), ``error`` an
    exception that must stop the job (a malformed value, an interrupt), and ``live`` /
    ``result`` the full-column task's live rows and return value.
    """

    column: ColumnSpec
    group: GroupBuffers
    rows: list[int] | None
    failures: list[tuple[Any, BaseException]]
    error: BaseException | None = None
    live: Sequence[int] = ()
    result: Any = None


class CallDispatcher:
    """Runs, queues and launches the generator calls of one shard; *ledger* records their outcomes.

    The runner's interface (everything else is the dispatcher's own):

    - :meth:`submit_cells` / :meth:`submit_batch` hand over ready work (run now when inline,
      queued otherwise); :meth:`launch` starts queued work while the caps allow;
    - :meth:`collect_finished` records what the pool threads finished (``has_finished`` says
      whether there is any); :meth:`release_retries` runs again the failed calls whose
      backoff has expired;
    - :meth:`start`, :meth:`cancel` and :meth:`close` bind it to the running loop and stop it;
    - read-only figures: ``queued`` (tasks waiting for a slot), ``in_flight`` and
      ``total_slots`` (calls or batches running off the loop thread, and how many may),
      ``idle`` (nothing in flight and no retry waiting).
    """

    def __init__(
        self, columns: Sequence[ColumnSpec], ledger: TaskLedger, *, max_concurrency: int | None
    ) -> None:
        self.columns = tuple(columns)
        self.ledger = ledger
        self.loops: tuple[ColumnLoops, ...] = tuple(compile_loops(column) for column in self.columns)
        off_loop = [c for c in self.columns if c.kind is not _INLINE]
        cap_sum = sum(c.cap for c in off_loop)
        self.total_slots = min(cap_sum, max_concurrency) if max_concurrency is not None else cap_sum
        self.launch_order = sorted(off_loop, key=lambda c: (-c.depth, -c.index))

        self.queues: list[deque[list[Any]]] = [deque() for _ in self.columns]
        self.queued_by: list[int] = [0] * len(self.columns)
        self.queued = 0
        self.inflight: list[int] = [0] * len(self.columns)
        self.in_flight = 0
        self.unchecked = [c.kind is _BLOCKING or (c.kind is _INLINE and not c.batch) for c in self.columns]
        """Plain columns whose first values are still to be checked (not awaitables)."""
        self.async_calls: AsyncCalls | None = None
        self.pool_outcomes: deque[PoolOutcome] = deque()
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.wakeup: Wakeup | None = None
        self.wake: Callable[[], None] = _nothing
        """Wakes the loop's wait; called on the loop thread when an async call finishes."""

    # ------------------------------------------------------------------ the runner's interface

    @property
    def idle(self) -> bool:
        """Nothing runs off the loop thread and no failed call waits to be retried."""
        return not self.in_flight and self.ledger.next_retry_at is None

    @property
    def has_finished(self) -> bool:
        """Pool threads finished work that :meth:`collect_finished` has not recorded yet."""
        return bool(self.pool_outcomes)

    def start(self, wakeup: Wakeup) -> None:
        """Bind to the running loop (*wakeup*'s); start the thread pool when a column is blocking."""
        self.wakeup = wakeup
        self.wake = wakeup.wake
        self.async_calls = AsyncCalls(self.ledger, wakeup.loop, self._call_ended)
        blocking = [c for c in self.columns if c.kind is _BLOCKING]
        if blocking:
            workers = max(1, min(sum(c.cap for c in blocking), self.total_slots))
            self.pool = concurrent.futures.ThreadPoolExecutor(
                workers, thread_name_prefix="cellfrontier-blocking"
            )

    async def cancel(self) -> None:
        """Stop every call in flight (they run again on resume) and the pool's queued batches."""
        if self.async_calls is not None:
            await self.async_calls.cancel()
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def submit_cells(self, column: ColumnSpec, group: GroupBuffers, rows: np.ndarray) -> None:
        """Ready cells of *column* in *group* (taken from the tracker): run them now, or queue them."""
        if column.kind is _INLINE:
            self._run_cells_inline(column, group, rows)
        else:
            self._enqueue(column, group, rows.tolist())

    def submit_batch(self, column: ColumnSpec, group: GroupBuffers) -> None:
        """The ready full-column task of *column* in *group*: run it now, or queue it."""
        if column.kind is _INLINE:
            self._run_batch_inline(column, group)
        else:
            self._enqueue(column, group, None)

    def release_retries(self, now: float) -> None:
        """Run (inline) or queue again every failed call whose backoff has expired by *now*."""
        ledger = self.ledger
        for index, group, row in ledger.due_retries(now):
            column = self.columns[index]
            group.outstanding -= 1
            if row is not None and row in group.dropped:  # dropped meanwhile: nothing to retry
                ledger.forget(index, group.row_group, row)
            elif column.kind is _INLINE:
                if row is None:
                    self._run_batch_inline(column, group)
                else:
                    self._run_one_inline(column, group, row)
            else:
                self._enqueue(column, group, None if row is None else [row])
            ledger.touch(group)

    # ------------------------------------------------------------------ inline calls

    def _run_cells_inline(self, column: ColumnSpec, group: GroupBuffers, rows_array: np.ndarray) -> None:
        rows: list[int] = rows_array.tolist()
        failures: list[tuple[int, BaseException]] = []

        def fail(row: int, exc: BaseException) -> None:
            failures.append((row, exc))

        def bad(row: int, value: Any) -> None:
            raise output_error(column, group, row, value)

        kernel = self.loops[column.index].kernel
        assert kernel is not None
        ledger = self.ledger
        ledger.calls += len(rows)
        kernel(column.fn, rows, group.base, group.columns, fail, bad)
        if self.unchecked[column.index]:
            self._check_first_values(column, group, rows, failures)
        if not failures:
            ledger.done(column, group, rows_array, queued=False)
            return
        failed = {row for row, _ in failures}
        done = [row for row in rows if row not in failed]
        if done:
            ledger.done(column, group, np.asarray(done, dtype=np.int64), queued=False)
        for row, exc in failures:
            group.outstanding += 1
            ledger.failed(column, group, row, exc)

    def _run_one_inline(self, column: ColumnSpec, group: GroupBuffers, row: int) -> None:
        """A retried inline cell (one row)."""
        loops = self.loops[column.index]
        self.ledger.calls += 1
        try:
            value = column.fn(loops.build_row(group.columns, row, group.base))
        except CALL_FAILURES as exc:
            group.outstanding += 1
            self.ledger.failed(column, group, row, exc)
            return
        refuse_awaitable(column, value)
        if not loops.store_row(group.columns, row, value):
            raise output_error(column, group, row, value)
        self.ledger.done(column, group, row, queued=False)

    def _run_batch_inline(self, column: ColumnSpec, group: GroupBuffers) -> None:
        batch, live = group.batch_input(column.inputs, column.name)
        self.ledger.calls += 1
        try:
            result = column.fn(batch)
        except CALL_FAILURES as exc:
            group.outstanding += 1
            self.ledger.failed(column, group, None, exc)
            return
        self.ledger.store_batch(column, group, live, result, queued=False)

    def _check_first_values(
        self, column: ColumnSpec, group: GroupBuffers, rows: list[int], failures: list[tuple[Any, Any]]
    ) -> None:
        """Refuse a plain generator that returned awaitables (checked on its first values only)."""
        if check_first_values(column, group, rows, {row for row, _ in failures}):
            self.unchecked[column.index] = False

    # ------------------------------------------------------------------ queueing and launching

    def _enqueue(self, column: ColumnSpec, group: GroupBuffers, rows: list[int] | None) -> None:
        count = 1 if rows is None else len(rows)
        self.queues[column.index].append([group, rows, 0])
        self.queued_by[column.index] += count
        self.queued += count
        group.outstanding += count

    def launch(self) -> None:
        """Start queued async and blocking work while the column caps and the global cap allow."""
        free = self.total_slots - self.in_flight
        for column in self.launch_order:
            if free <= 0:
                return
            queue = self.queues[column.index]
            if not queue:
                continue
            room = column.cap - self.inflight[column.index]
            if room > free:
                room = free
            if room <= 0:
                continue
            started = (
                self._start_async(column, queue, room)
                if column.kind is _ASYNC
                else self._start_blocking(column, queue, room)
            )
            free -= started

    def _call_ended(self, column: ColumnSpec, group: GroupBuffers) -> None:
        self.inflight[column.index] -= 1
        self.in_flight -= 1
        self.ledger.touch(group)
        self.wake()

    # ------------------------------------------------------------------ async calls

    def _start_async(self, column: ColumnSpec, queue: deque[list[Any]], room: int) -> int:
        """Start up to *room* queued calls of an async column, one task each.

        A queued cell whose row was dropped meanwhile (another column's call failed for good)
        is skipped rather than called: its value would be discarded.
        """
        calls = self.async_calls
        assert calls is not None
        create, add, cell = calls.create, calls.tasks.add, calls.cell
        loops = self.loops[column.index]
        started = taken = 0
        while started < room and queue:
            entry = queue[0]
            group, rows, pos = entry
            if rows is None:
                queue.popleft()
                calls.start_batch(column, group)
                started += 1
                taken += 1
                continue
            take = min(room - started, len(rows) - pos)
            dropped = group.dropped
            for row in rows[pos : pos + take]:
                if dropped and row in dropped:
                    group.outstanding -= 1
                    self.ledger.touch(group)
                    continue
                add(create(cell(column, loops, group, row)))
                started += 1
            taken += take
            if pos + take == len(rows):
                queue.popleft()
            else:
                entry[2] = pos + take
        self.inflight[column.index] += started
        self.in_flight += started
        self.queued_by[column.index] -= taken
        self.queued -= taken
        self.ledger.calls += started
        return started

    # ------------------------------------------------------------------ blocking calls

    def _start_blocking(self, column: ColumnSpec, queue: deque[list[Any]], room: int) -> int:
        """Hand batches of queued rows to the pool: one slot per batch, rows spread over the free slots.

        Until a cell column's first values are checked (not awaitables), one batch runs alone,
        so that a refused column leaves no other batch's values behind in the buffers.
        """
        pool = self.pool
        assert pool is not None
        index = column.index
        if self.unchecked[index]:
            if self.inflight[index]:
                return 0
            room = 1
        slots = 0
        while slots < room and queue:
            entry = queue[0]
            group, rows, pos = entry
            if rows is None:
                queue.popleft()
                size = 1
                pool.submit(self._blocking_batch, column, group)
            else:
                want = -(-self.queued_by[index] // (room - slots))
                size = max(1, min(column.blocking_batch, want, len(rows) - pos))
                pool.submit(self._blocking_cells, column, group, rows[pos : pos + size])
                if pos + size == len(rows):
                    queue.popleft()
                else:
                    entry[2] = pos + size
            slots += 1
            self.queued_by[index] -= size
            self.queued -= size
            self.ledger.calls += size
        self.inflight[index] += slots
        self.in_flight += slots
        return slots

    def _blocking_cells(self, column: ColumnSpec, group: GroupBuffers, rows: list[int]) -> None:
        """Pool thread: run a batch of cells of a blocking column (values go straight to the buffers)."""
        failures: list[tuple[Any, BaseException]] = []
        error: BaseException | None = None

        def fail(row: int, exc: BaseException) -> None:
            failures.append((row, exc))

        def bad(row: int, value: Any) -> None:
            raise output_error(column, group, row, value)

        try:
            kernel = self.loops[column.index].kernel
            assert kernel is not None
            kernel(column.fn, rows, group.base, group.columns, fail, bad)
        except BaseException as exc:
            error = exc
        self.pool_outcomes.append(PoolOutcome(column, group, rows, failures, error))
        self.wakeup.wake_threadsafe()  # type: ignore[union-attr]

    def _blocking_batch(self, column: ColumnSpec, group: GroupBuffers) -> None:
        """Pool thread: run the full-column task of a blocking column."""
        error: BaseException | None = None
        result: Any = None
        failures: list[tuple[Any, BaseException]] = []
        live: Sequence[int] = []
        try:
            batch, live = group.batch_input(column.inputs, column.name)
            result = column.fn(batch)
        except CALL_FAILURES as exc:
            failures.append((None, exc))
        except BaseException as exc:
            error = exc
        self.pool_outcomes.append(PoolOutcome(column, group, None, failures, error, live, result))
        self.wakeup.wake_threadsafe()  # type: ignore[union-attr]

    def collect_finished(self) -> None:
        """Record the outcomes of the blocking batches the pool threads finished."""
        outcomes = self.pool_outcomes
        ledger = self.ledger
        while outcomes:
            outcome = outcomes.popleft()
            column, group, rows, failures = outcome.column, outcome.group, outcome.rows, outcome.failures
            self._call_ended(column, group)
            if outcome.error is not None:
                raise outcome.error
            if rows is None:
                if failures:
                    ledger.failed(column, group, None, failures[0][1])
                    continue
                ledger.store_batch(column, group, outcome.live, outcome.result, queued=True)
                self.unchecked[column.index] = False
                continue
            if self.unchecked[column.index]:
                self._check_first_values(column, group, rows, failures)
            failed = {row for row, _ in failures}
            done = [row for row in rows if row not in failed] if failed else rows
            if done:
                ledger.done(column, group, np.asarray(done, dtype=np.int64), queued=True)
            for row, exc in failures:
                ledger.failed(column, group, row, exc)


# ---------------------------------------------------------------------- helpers


def _nothing() -> None:
    return None
