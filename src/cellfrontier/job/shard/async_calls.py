"""One async generator call's life: its task, its timeout, and its outcome in the ledger.

The dispatcher decides when a call starts (under the caps); :class:`AsyncCalls` runs it as one
asyncio task, a small wrapper coroutine that stores the value and records the outcome itself:

- a value: stored in the group's buffer, the cell marked done;
- an exception: a failed call, retried or its row dropped (:meth:`TaskLedger.failed`);
- past the column's ``timeout``: the call is cancelled and fails with
  :class:`~cellfrontier.job.errors.GeneratorTimeoutError` (one timer per call, set only for
  columns with a timeout, so the others pay nothing);
- ``asyncio.CancelledError`` that the job did not cause (a generator that raises it, or
  cancels something it awaits and lets that escape): a failure of that call like any other.
  Only the job's own cancellation (:meth:`AsyncCalls.cancel`, when it stops) and its timeouts
  are treated as cancellation, so such a generator never stalls the job.

A malformed value (the wrong keys for a column with side-effect aliases, a batch of the wrong
length) stops the job: the error is kept in the ledger for the runner to raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.errors import GeneratorOutputError, GeneratorTimeoutError
from cellfrontier.job.shard.awaitables import output_error
from cellfrontier.job.shard.buffers import GroupBuffers
from cellfrontier.job.shard.ledger import TaskLedger
from cellfrontier.job.shard.row_loops import ColumnLoops

__all__ = ["AsyncCalls"]


class AsyncCalls:
    """Runs async generator calls as tasks on *loop*; *ended* is told when each one is over."""

    def __init__(
        self,
        ledger: TaskLedger,
        loop: asyncio.AbstractEventLoop,
        ended: Callable[[ColumnSpec, GroupBuffers], None],
    ) -> None:
        self.ledger = ledger
        self.loop = loop
        self.ended = ended
        self.tasks: set[asyncio.Task[None]] = set()
        self.expired: set[asyncio.Task[Any]] = set()
        """Tasks the job cancelled because their call ran past its timeout."""
        self.stopping = False
        self.create = loop.create_task

    def start_batch(self, column: ColumnSpec, group: GroupBuffers) -> None:
        self.tasks.add(self.create(self._batch(column, group)))

    async def cancel(self) -> None:
        """Cancel every call in flight (the job is stopping: they run again on resume)."""
        self.stopping = True
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ the calls

    def _timer(self, timeout: float) -> asyncio.TimerHandle:
        return self.loop.call_later(timeout, self._expire, asyncio.current_task())

    def _expire(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None and not task.done():
            self.expired.add(task)
            task.cancel()

    def _cancelled(self, column: ColumnSpec, exc: asyncio.CancelledError) -> BaseException:
        """What a CancelledError out of a call means: the call's failure, unless the job is stopping."""
        task = asyncio.current_task()
        if task in self.expired:
            self.expired.discard(task)
            uncancel = getattr(task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            if not self.stopping:
                return GeneratorTimeoutError(
                    f"the call of {column.name!r} ran past its timeout of {column.timeout:g} s and was "
                    "cancelled (set a longer one in timeouts= or call_timeout=)"
                )
        if self.stopping:
            raise exc
        return exc

    def _over(self, timer: asyncio.TimerHandle | None, column: ColumnSpec, group: GroupBuffers) -> None:
        """The call is over, whatever its outcome: forget its task and timer, tell the dispatcher."""
        task = asyncio.current_task()
        if timer is not None:
            timer.cancel()
            self.expired.discard(task)  # type: ignore[arg-type,unused-ignore]  # it swallowed the cancel
        self.tasks.discard(task)  # type: ignore[arg-type,unused-ignore]
        self.ended(column, group)

    async def cell(self, column: ColumnSpec, loops: ColumnLoops, group: GroupBuffers, row: int) -> None:
        """The call of *column* for *row* of *group*, its outcome recorded.

        Run it as a task of ``create`` kept in ``tasks`` (the dispatcher binds the three once
        per launch: a frame less per call than a method that starts one).
        """
        timer = None if column.timeout is None else self._timer(column.timeout)
        ledger = self.ledger
        try:
            value = await column.fn(loops.build_row(group.columns, row, group.base))
        except Exception as exc:
            ledger.failed(column, group, row, exc)
        except asyncio.CancelledError as exc:
            ledger.failed(column, group, row, self._cancelled(column, exc))
        else:
            if loops.store_row(group.columns, row, value):
                ledger.done(column, group, row, queued=True)
            else:
                ledger.stop_with(output_error(column, group, row, value))
        finally:
            self._over(timer, column, group)

    async def _batch(self, column: ColumnSpec, group: GroupBuffers) -> None:
        timer = None if column.timeout is None else self._timer(column.timeout)
        ledger = self.ledger
        try:
            batch, live = group.batch_input(column.inputs, column.name)
            try:
                result = await column.fn(batch)
            except Exception as exc:
                ledger.failed(column, group, None, exc)
                return
            except asyncio.CancelledError as exc:
                ledger.failed(column, group, None, self._cancelled(column, exc))
                return
            try:
                ledger.store_batch(column, group, live, result, queued=True)
            except GeneratorOutputError as exc:
                ledger.stop_with(exc)
        finally:
            self._over(timer, column, group)
