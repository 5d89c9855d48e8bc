"""Running a shard's generator calls: inline batches, async tasks and blocking thread-pool batches.

The scheduling loop (:mod:`cellfrontier.job.runner`) decides *what* is ready; a
:class:`CallDispatcher` runs it and records the outcome:

- ``inline`` columns run right away on the loop thread, a whole ready set per call through the
  column's generated loop (:mod:`cellfrontier.job.kernels`), then one ``mark_cells_complete``;
- ``async`` and ``blocking`` work waits in per-column queues until :meth:`CallDispatcher.launch`
  starts it under the caps: one asyncio task per async call (a small wrapper coroutine that
  stores the value and marks the cell itself), one pool hand-off per batch of blocking rows
  (the pool thread appends its outcome to a deque that the loop collects);
- a call that raises is retried later (a timer heap, never a sleep) or its row is dropped.

The caps are plain integers counted here at launch and at completion, so no semaphore is
touched per call.  Deeper columns launch first, so rows already started finish (and their
groups can be written) before new rows start.  A cell is marked done in the tracker only after
its value is in the group's buffer: the tracker never claims a value the buffers lack.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from cellfrontier.job.buffers import GroupBuffers
from cellfrontier.job.errors import ErrorRateExceededError, GeneratorOutputError
from cellfrontier.job.failures import FailureBook, RetryPolicy
from cellfrontier.job.generators import ASYNC, BLOCKING, INLINE, ColumnPlan
from cellfrontier.job.output import ROW_COLUMN
from cellfrontier.tracker import CompletionTracker

__all__ = ["CallDispatcher"]


class CallDispatcher:
    """Runs, queues, launches and retries the generator calls of one shard."""

    def __init__(
        self,
        plans: Sequence[ColumnPlan],
        tracker: CompletionTracker,
        dirty: dict[int, GroupBuffers],
        *,
        max_concurrency: int | None,
        retry: RetryPolicy,
        keep_errors: int,
        max_error_rate: float,
        min_error_sample: int,
    ) -> None:
        self.plans = list(plans)
        self.dirty = dirty
        """Groups an outcome touched, shared with the loop, which advances them next round."""
        off_loop = [p for p in self.plans if p.kind != INLINE]
        cap_sum = sum(p.cap for p in off_loop)
        self.global_cap = min(cap_sum, max_concurrency) if max_concurrency is not None else cap_sum
        self.launch_order = sorted(off_loop, key=lambda p: (-p.depth, -p.index))
        self.max_error_rate = max_error_rate
        self.min_error_sample = min_error_sample

        self.queues: list[deque[list[Any]]] = [deque() for _ in self.plans]
        self.queued_by: list[int] = [0] * len(self.plans)
        self.queued = 0
        self.inflight: list[int] = [0] * len(self.plans)
        self.inflight_total = 0
        self.async_tasks: set[asyncio.Task[None]] = set()
        self.finished_chunks: deque[tuple[Any, ...]] = deque()
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.failures = FailureBook(retry, keep_errors)
        self.retry_heap = self.failures.heap
        self.attempts = self.failures.attempts
        self.fatal: BaseException | None = None
        """An error an async call ran into (a malformed value); the loop raises it."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: Callable[[], None] = _nothing
        """Wakes the loop's wait; called on the loop thread when an async call finishes."""

        self.tasks = 0
        self.calls = 0
        self.use_tracker(tracker)

    def use_tracker(self, tracker: CompletionTracker) -> None:
        """Record outcomes in *tracker* (a restored checkpoint replaces the fresh one)."""
        self.tracker = tracker
        self.mark_cells = tracker.mark_cells_complete
        self.mark_cell = tracker.mark_cell_complete

    @property
    def errors(self) -> int:
        return self.failures.errors

    def start(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        """Bind to the running loop; start the thread pool when a column is blocking."""
        self.loop = loop
        self.wake = wake
        if any(p.kind == BLOCKING for p in self.plans):
            workers = max(1, min(sum(p.cap for p in self.plans if p.kind == BLOCKING), self.global_cap))
            self.pool = concurrent.futures.ThreadPoolExecutor(
                workers, thread_name_prefix="cellfrontier-blocking"
            )

    async def cancel(self) -> None:
        """Stop every call in flight (they run again on resume) and the pool's queued batches."""
        tasks = list(self.async_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ inline calls

    def run_cells_inline(self, plan: ColumnPlan, group: GroupBuffers, rows_array: np.ndarray) -> None:
        rows: list[int] = rows_array.tolist()
        failures: list[tuple[int, Exception]] = []

        def fail(row: int, exc: Exception) -> None:
            failures.append((row, exc))

        def bad(row: int, value: Any) -> None:
            raise _output_error(plan, group, row, value)

        assert plan.kernel is not None
        plan.kernel(plan.fn, rows, group.base, group.columns, fail, bad)
        self.calls += len(rows)
        if not plan.checked_result:
            _check_not_awaitable(plan, group, rows, failures)
        if not failures:
            self.mark_cells(plan.name, group.row_group, rows_array)
            self.tasks += len(rows)
            return
        failed = {row for row, _ in failures}
        done = [row for row in rows if row not in failed]
        if done:
            self.mark_cells(plan.name, group.row_group, np.asarray(done, dtype=np.int64))
            self.tasks += len(done)
            if self.attempts:
                for row in done:
                    self.attempts.pop((plan.index, group.row_group, row), None)
        for row, exc in failures:
            group.outstanding += 1
            self.failed(plan, group, row, exc)

    def _run_one_inline(self, plan: ColumnPlan, group: GroupBuffers, row: int) -> None:
        """A retried inline cell (one row)."""
        self.calls += 1
        try:
            value = plan.fn(plan.build_row(group.columns, row, group.base))
        except Exception as exc:
            group.outstanding += 1
            self.failed(plan, group, row, exc)
            return
        if not plan.store_row(group.columns, row, value):
            raise _output_error(plan, group, row, value)
        self.mark_cell(plan.name, group.row_group, row)
        self.tasks += 1
        if self.attempts:
            self.attempts.pop((plan.index, group.row_group, row), None)

    def run_batch_inline(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        batch, live = _batch_input(plan, group)
        self.calls += 1
        try:
            result = plan.fn(batch)
        except Exception as exc:
            group.outstanding += 1
            self.failed(plan, group, None, exc)
            return
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise GeneratorOutputError(
                f"the generator of {plan.name!r} returned an awaitable; declare it `async def` "
                "so that the job awaits it"
            )
        self._store_batch(plan, group, live, result)

    def _store_batch(self, plan: ColumnPlan, group: GroupBuffers, live: Sequence[int], result: Any) -> None:
        """Put a full-column result into the buffers (checked first) and mark the batch done."""
        by_output = _checked_batch_result(plan, group, live, result)
        for name, values in by_output.items():
            buffer = group.columns[name]
            if len(live) == group.size:
                buffer[:] = values
            else:
                for row, value in zip(live, values, strict=True):
                    buffer[row] = value
        self.tracker.mark_row_range_complete(plan.name, group.row_group, group.size)
        self.tasks += 1
        if self.attempts:
            self.attempts.pop((plan.index, group.row_group, None), None)

    # ------------------------------------------------------------------ failures and retries

    def failed(self, plan: ColumnPlan, group: GroupBuffers, row: int | None, exc: Exception) -> None:
        """A call raised: retry it later, or drop its row(s) when its retries are spent.

        The task counts in ``group.outstanding`` until it is retried successfully or dropped.
        """
        if self.failures.record(plan, group, row, exc):
            return
        group.outstanding -= 1
        rg = group.row_group
        if row is None:
            live = group.live_rows()
            if live:
                self.tracker.drop_rows(rg, np.asarray(live, dtype=np.int64))
                group.dropped.update(live)
        else:
            self.tracker.drop_row(rg, row)
            group.dropped.add(row)
        self.dirty[rg] = group

    def release_retries(self, now: float) -> None:
        """Run (inline) or queue again every failed call whose backoff has expired."""
        for index, group, row in self.failures.due(now):
            plan = self.plans[index]
            group.outstanding -= 1
            if row is not None and row in group.dropped:  # dropped meanwhile: nothing to retry
                self.attempts.pop((index, group.row_group, row), None)
            elif plan.kind is INLINE:
                if row is None:
                    self.run_batch_inline(plan, group)
                else:
                    self._run_one_inline(plan, group, row)
            else:
                self.enqueue(plan, group, None if row is None else [row])
            self.dirty[group.row_group] = group

    def check_error_rate(self) -> None:
        errors = self.failures.errors
        if self.calls >= self.min_error_sample and errors > self.max_error_rate * self.calls:
            samples = self.failures.samples
            first = f" The first: {samples[0]}" if samples else ""
            raise ErrorRateExceededError(
                f"{errors:,} of {self.calls:,} generator calls failed, more than max_error_rate="
                f"{self.max_error_rate:g}; the job stopped (its checkpoint is saved).{first}"
            )

    # ------------------------------------------------------------------ queueing and launching

    def enqueue(self, plan: ColumnPlan, group: GroupBuffers, rows: list[int] | None) -> None:
        count = 1 if rows is None else len(rows)
        self.queues[plan.index].append([group, rows, 0])
        self.queued_by[plan.index] += count
        self.queued += count
        group.outstanding += count

    def launch(self) -> None:
        """Start queued async and blocking work while the column caps and the global cap allow."""
        free = self.global_cap - self.inflight_total
        for plan in self.launch_order:
            if free <= 0:
                return
            queue = self.queues[plan.index]
            if not queue:
                continue
            room = plan.cap - self.inflight[plan.index]
            if room > free:
                room = free
            if room <= 0:
                continue
            started = (
                self._start_async(plan, queue, room)
                if plan.kind is ASYNC
                else self._start_blocking(plan, queue, room)
            )
            free -= started

    def _finish_call(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        self.inflight[plan.index] -= 1
        self.inflight_total -= 1
        self.dirty[group.row_group] = group
        self.wake()

    # ------------------------------------------------------------------ async calls

    def _start_async(self, plan: ColumnPlan, queue: deque[list[Any]], room: int) -> int:
        """Start up to *room* queued calls of an async column, one task each.

        A queued cell whose row was dropped meanwhile (another column's call failed for good)
        is skipped rather than called: its value would be discarded.
        """
        create = self.loop.create_task  # type: ignore[union-attr]
        add = self.async_tasks.add
        cell = self._async_cell
        started = taken = 0
        while started < room and queue:
            entry = queue[0]
            group, rows, pos = entry
            if rows is None:
                queue.popleft()
                add(create(self._async_batch(plan, group)))
                started += 1
                taken += 1
                continue
            take = min(room - started, len(rows) - pos)
            dropped = group.dropped
            for row in rows[pos : pos + take]:
                if dropped and row in dropped:
                    group.outstanding -= 1
                    self.dirty[group.row_group] = group
                    continue
                add(create(cell(plan, group, row)))
                started += 1
            taken += take
            if pos + take == len(rows):
                queue.popleft()
            else:
                entry[2] = pos + take
        self.inflight[plan.index] += started
        self.inflight_total += started
        self.queued_by[plan.index] -= taken
        self.queued -= taken
        self.calls += started
        return started

    async def _async_cell(self, plan: ColumnPlan, group: GroupBuffers, row: int) -> None:
        try:
            value = await plan.fn(plan.build_row(group.columns, row, group.base))
        except Exception as exc:
            self.failed(plan, group, row, exc)
        else:
            if plan.store_row(group.columns, row, value):
                self.mark_cell(plan.name, group.row_group, row)
                group.outstanding -= 1
                self.tasks += 1
                if self.attempts:
                    self.attempts.pop((plan.index, group.row_group, row), None)
            elif self.fatal is None:
                self.fatal = _output_error(plan, group, row, value)
        finally:
            self.async_tasks.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]
            self._finish_call(plan, group)

    async def _async_batch(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        try:
            batch, live = _batch_input(plan, group)
            try:
                result = await plan.fn(batch)
            except Exception as exc:
                self.failed(plan, group, None, exc)
                return
            try:
                self._store_batch(plan, group, live, result)
                group.outstanding -= 1
            except GeneratorOutputError as exc:
                if self.fatal is None:
                    self.fatal = exc
        finally:
            self.async_tasks.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]
            self._finish_call(plan, group)

    # ------------------------------------------------------------------ blocking calls

    def _start_blocking(self, plan: ColumnPlan, queue: deque[list[Any]], room: int) -> int:
        """Hand batches of queued rows to the pool: one slot per batch, rows spread over the free slots."""
        pool = self.pool
        assert pool is not None
        index = plan.index
        slots = 0
        while slots < room and queue:
            entry = queue[0]
            group, rows, pos = entry
            if rows is None:
                queue.popleft()
                size = 1
                pool.submit(self._blocking_batch, plan, group)
            else:
                want = -(-self.queued_by[index] // (room - slots))
                size = max(1, min(plan.blocking_batch, want, len(rows) - pos))
                pool.submit(self._blocking_cells, plan, group, rows[pos : pos + size])
                if pos + size == len(rows):
                    queue.popleft()
                else:
                    entry[2] = pos + size
            slots += 1
            self.queued_by[index] -= size
            self.queued -= size
            self.calls += size
        self.inflight[index] += slots
        self.inflight_total += slots
        return slots

    def _blocking_cells(self, plan: ColumnPlan, group: GroupBuffers, rows: list[int]) -> None:
        """Pool thread: run a batch of cells of a blocking column (values go straight to the buffers)."""
        failures: list[tuple[int, Exception]] = []
        error: BaseException | None = None

        def fail(row: int, exc: Exception) -> None:
            failures.append((row, exc))

        def bad(row: int, value: Any) -> None:
            raise _output_error(plan, group, row, value)

        try:
            assert plan.kernel is not None
            plan.kernel(plan.fn, rows, group.base, group.columns, fail, bad)
        except BaseException as exc:
            error = exc
        self.finished_chunks.append((plan, group, rows, failures, error, None))
        self._wake_from_thread()

    def _blocking_batch(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        """Pool thread: run the full-column task of a blocking column."""
        error: BaseException | None = None
        result: Any = None
        failures: list[tuple[int | None, Exception]] = []
        live: Sequence[int] = []
        try:
            batch, live = _batch_input(plan, group)
            result = plan.fn(batch)
        except Exception as exc:
            failures.append((None, exc))
        except BaseException as exc:
            error = exc
        self.finished_chunks.append((plan, group, None, failures, error, (live, result)))
        self._wake_from_thread()

    def _wake_from_thread(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (the job was stopping)
                loop.call_soon_threadsafe(self.wake)

    def collect_chunks(self) -> None:
        """Record the outcomes of the blocking batches the pool threads finished."""
        chunks = self.finished_chunks
        while chunks:
            plan, group, rows, failures, error, outcome = chunks.popleft()
            self._finish_call(plan, group)
            if error is not None:
                raise error
            if rows is None:
                if failures:
                    self.failed(plan, group, None, failures[0][1])
                    continue
                live, result = outcome
                self._store_batch(plan, group, live, result)
                group.outstanding -= 1
                continue
            failed = {row for row, _ in failures}
            done = [row for row in rows if row not in failed] if failed else rows
            if done:
                self.mark_cells(plan.name, group.row_group, np.asarray(done, dtype=np.int64))
                group.outstanding -= len(done)
                self.tasks += len(done)
                if self.attempts:
                    for row in done:
                        self.attempts.pop((plan.index, group.row_group, row), None)
            for row, exc in failures:
                self.failed(plan, group, row, exc)


# ---------------------------------------------------------------------- helpers


def _nothing() -> None:
    return None


def _batch_input(plan: ColumnPlan, group: GroupBuffers) -> tuple[dict[str, Any], Sequence[int]]:
    """A full-column call's argument (copies: the generator may keep or change its lists)."""
    if not group.dropped:
        batch: dict[str, Any] = {name: list(group.columns[name]) for name in plan.inputs}
        batch[ROW_COLUMN] = list(range(group.base, group.base + group.size))
        return batch, range(group.size)
    live = group.live_rows()
    batch = {name: group.live_values(name, live) for name in plan.inputs}
    batch[ROW_COLUMN] = [group.base + r for r in live]
    return batch, live


def _checked_batch_result(
    plan: ColumnPlan, group: GroupBuffers, live: Sequence[int], result: Any
) -> dict[str, Any]:
    """A full-column result as ``{output: values}``, refused unless it has one value per live row."""
    where = f"row group {group.row_group}"
    if len(plan.outputs) == 1:
        by_output = {plan.name: result}
    else:
        if not isinstance(result, Mapping) or set(result) != set(plan.outputs):
            got = sorted(result) if isinstance(result, Mapping) else type(result).__name__
            raise GeneratorOutputError(
                f"the generator of full column {plan.name!r} must return a mapping with exactly the "
                f"keys {list(plan.outputs)} (the column and its side-effect aliases) at {where}, "
                f"got {got}"
            )
        by_output = dict(result)
    for name, values in by_output.items():
        try:
            count = len(values)
        except TypeError:
            raise GeneratorOutputError(
                f"the generator of full column {plan.name!r} returned {type(values).__name__} for "
                f"{name!r} at {where}; it must return a sequence with one value per live row"
            ) from None
        if count != len(live) or isinstance(values, (str, bytes)):
            raise GeneratorOutputError(
                f"the generator of full column {plan.name!r} returned {count} values for {name!r} at "
                f"{where}, which has {len(live)} live rows; it must return one value per row, in order"
            )
    return by_output


def _check_not_awaitable(
    plan: ColumnPlan, group: GroupBuffers, rows: Sequence[int], failures: Sequence[tuple[int, Any]]
) -> None:
    """Refuse a plain generator that returned awaitables (checked on its first batch only)."""
    failed = {row for row, _ in failures}
    values = group.columns[plan.outputs[0]]
    for row in rows:
        if row in failed:
            continue
        if not inspect.isawaitable(values[row]):
            plan.checked_result = True
            return
        for other in rows:  # close them all, so none warns that it was never awaited
            if inspect.iscoroutine(values[other]):
                values[other].close()
        raise GeneratorOutputError(
            f"the generator of {plan.name!r} returned an awaitable; declare it `async def` "
            "so that the job awaits it"
        )


def _output_error(plan: ColumnPlan, group: GroupBuffers, row: int, value: Any) -> GeneratorOutputError:
    got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
    return GeneratorOutputError(
        f"the generator of {plan.name!r} must return a mapping with exactly the keys "
        f"{list(plan.outputs)} (the column and its side-effect aliases); at row {group.base + row} "
        f"it returned {got}"
    )
