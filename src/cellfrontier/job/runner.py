"""The scheduling loop: one shard (a contiguous range of row groups) of a job, on one event loop.

A local ``Job.run()`` is one shard covering every row group; a distributed run executes the
same :class:`ShardRunner` per shard on its workers, each with its own checkpoint file under
the shared ``output_dir`` and the same file layout.

How a round of the loop goes (one thread; nothing here takes a lock):

1. Collect what finished meanwhile: blocking batches (a deque the pool threads append to),
   row-group files written by the writer thread (their groups are then compacted in the
   tracker and their buffers released), retries whose backoff expired.
2. Advance every group an event touched (``dirty``): ask the tracker which columns have ready
   tasks; run inline columns right away, a whole ready set per call
   (``ready_rows(take=True)`` -> generated loop -> one ``mark_cells_complete``); hand async and
   blocking work to per-column queues.  Repeat until the group has no ready column; a group
   with nothing outstanding whose every column is done is finished and goes to the writer.
3. Launch queued async and blocking work while slots are free: per-column caps and the
   global cap are plain integers counted here, at launch and at completion, so no semaphore
   is touched per call.  Deeper columns launch first, so rows already started finish (and
   their groups can be written) before new rows start.
4. Ask the admission policy whether to admit groups; checkpoint and report progress when due.
5. Wait (only if nothing is left to do now) until a completion, a write, a retry's time, a
   checkpoint's time or a signal wakes the loop.

Async calls run as one asyncio task per call (a small wrapper coroutine that stores the value
and marks the cell itself, so a completion costs one tracker call and no extra callback).

Consistency: a cell is marked done in the tracker only after its value is in the group's
buffer, and checkpoints are taken between rounds on the loop thread, so the saved tracker
state never claims a value the saved buffers lack.  A group's file is durable before the
group is compacted, so a checkpoint stops holding a group's values only once its file exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import inspect
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellfrontier.errors import CheckpointError
from cellfrontier.job.admission import (
    AdmissionPolicy,
    AdmissionView,
    CapsAdmission,
    FixedAdmission,
    MemoryBoundAdmission,
)
from cellfrontier.job.buffers import GroupBuffers
from cellfrontier.job.errors import (
    ErrorRateExceededError,
    GeneratorOutputError,
    JobInterruptedError,
    OutputDirError,
    StaleShardError,
)
from cellfrontier.job.failures import GeneratorFailure, RetryPolicy
from cellfrontier.job.gctuning import tuned_gc
from cellfrontier.job.generators import ASYNC, BLOCKING, INLINE, ColumnPlan
from cellfrontier.job.interrupts import StopSignals
from cellfrontier.job.manifest import prepare_output_dir
from cellfrontier.job.output import (
    ROW_COLUMN,
    OutputLayout,
    read_group_row_ids,
    read_group_rows,
    write_group_file,
)
from cellfrontier.job.progress import JobProgress, ProgressReporter
from cellfrontier.job.state import ShardCheckpoint, load_checkpoint, read_checkpoint_header, save_checkpoint
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.tracker import CompletionTracker

if TYPE_CHECKING:
    from cellfrontier.job.job import Job, JobResult

__all__ = ["ShardRunner"]

_MAX_QUEUED_WRITES = 4
"""Finished groups waiting for the writer thread before admission pauses (bounds memory)."""
_WRITER_THREADS = 2
"""Threads writing finished groups: a write is mostly Parquet encoding and fsync, which release
the GIL, so two overlap one another's disk waits and the loop's computing."""
_DEFAULT_CELL_BYTES = 64
"""Bytes per value assumed before the first group has been measured."""


class _Stopped(Exception):
    """A stop signal arrived: leave the loop, checkpoint, deliver the signal."""


class ShardRunner:
    """Runs the row groups ``row_groups`` (a contiguous range) of *job* to completion."""

    def __init__(self, job: Job, row_groups: range) -> None:
        self.job = job
        self.first, self.stop = row_groups.start, row_groups.stop
        self.plans: list[ColumnPlan] = job._column_plans()
        self.by_name: dict[str, ColumnPlan] = {p.name: p for p in self.plans}
        self.column_names: list[str] = [p.name for p in self.plans]
        self.output_names: list[str] = [name for p in self.plans for name in p.outputs]
        self.row_plan = RowGroupPlan.uniform(job.num_records, job.buffer_size)
        self.layout = OutputLayout(Path(job.output_dir)) if job.output_dir is not None else None
        self.rows_total = max(
            0, min(job.num_records, self.stop * job.buffer_size) - self.first * job.buffer_size
        )
        self.retry = RetryPolicy(job.retries, job.retry_backoff, job.max_retry_backoff)

        off_loop = [p for p in self.plans if p.kind != INLINE]
        cap_sum = sum(p.cap for p in off_loop)
        self.global_cap = min(cap_sum, job.max_concurrency) if job.max_concurrency is not None else cap_sum
        self.launch_order = sorted(off_loop, key=lambda p: (-p.depth, -p.index))
        self.policy: AdmissionPolicy = (
            FixedAdmission(job.max_active_row_groups)
            if job.max_active_row_groups is not None
            else MemoryBoundAdmission(CapsAdmission(), job.memory_budget)
        )

        self.tracker: CompletionTracker = CompletionTracker.with_graph(job.graph, self.row_plan)
        self.groups: dict[int, GroupBuffers] = {}
        self.computing = 0
        self.pending: deque[int] = deque()
        self.dirty: dict[int, GroupBuffers] = {}
        self.queues: list[deque[list[Any]]] = [deque() for _ in self.plans]
        self.queued_by: list[int] = [0] * len(self.plans)
        self.queued = 0
        self.inflight: list[int] = [0] * len(self.plans)
        self.inflight_total = 0
        self.async_tasks: set[asyncio.Task[None]] = set()
        self.retry_heap: list[tuple[float, int, int, GroupBuffers, int | None]] = []
        self.retry_seq = 0
        self.attempts: dict[tuple[int, int, int | None], int] = {}
        self.finished_chunks: deque[tuple[Any, ...]] = deque()
        self.writes: dict[int, concurrent.futures.Future[int]] = {}
        self.writer: concurrent.futures.ThreadPoolExecutor | None = None
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.memory: dict[int, dict[str, list[Any]]] = {}
        self.fatal: BaseException | None = None
        self.stop_signal: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0

        self.tasks = 0
        self.calls = 0
        self.errors = 0
        self.error_samples: list[GeneratorFailure] = []
        self.records = 0
        self.dropped = 0
        self.peak_active = 0
        self.peak_held = 0
        self.bytes_per_group = 0
        self.resumed = False
        self.tasks_at_start = 0

        self.attempt = uuid.uuid4().hex
        self.checkpoint_owner: tuple[str, int] | None = None
        self.checkpoint_seq = 0
        self.next_checkpoint_at = 0.0
        self.next_checkpoint_tasks = 0

        self.mark_cells = self.tracker.mark_cells_complete
        self.mark_cell = self.tracker.mark_cell_complete

    # ------------------------------------------------------------------ public entry

    async def run(self, signals: StopSignals) -> JobResult:
        """Run the shard; returns its result.  Checkpoints before re-raising any failure.

        *signals* records SIGINT/SIGTERM (installed by the caller); the runner stops at the
        next round, checkpoints, and re-delivers the signal to the previous handler.
        """
        job = self.job
        self.loop = asyncio.get_running_loop()
        started, cpu_started = time.perf_counter(), time.process_time()
        self.started = started
        self._open()
        reporter = ProgressReporter(
            job.progress, job.progress_bar, interval=job.progress_interval, log_interval=job.log_interval
        )
        self.reporter = reporter
        signals.on_signal = self._on_signal
        self.stop_signal = signals.received
        try:
            with tuned_gc(job.tune_gc):
                await self._loop(reporter)
        except BaseException as exc:
            await self._abort(exc)
            if isinstance(exc, _Stopped):
                signals.redeliver()
                raise JobInterruptedError(
                    f"the job stopped on signal {self.stop_signal}; its checkpoint is saved, run it "
                    "again to resume"
                ) from None
            raise
        finally:
            signals.on_signal = None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self._close_pools()
        self._checkpoint(final=True)
        now = time.perf_counter()
        if reporter.active:
            reporter.emit(self._progress(now), now, final=True)
        return self._result(now - started, time.process_time() - cpu_started)

    # ------------------------------------------------------------------ setup and resume

    def _open(self) -> None:
        """Prepare the output directory and restore this shard's state from it."""
        job = self.job
        all_groups = range(self.first, self.stop)
        written: dict[int, Path] = {}
        if self.layout is not None:
            layout = self.layout
            prepare_output_dir(layout, job._fingerprint())
            layout.remove_temporaries(self.first, self.stop)
            written = layout.written_groups(self.first, self.stop)
            own = (self.first, self.stop)
            for first, stop in layout.checkpoints():
                if (first, stop) != own and first < self.stop and self.first < stop:
                    raise OutputDirError(
                        f"output_dir holds a checkpoint of row groups [{first}, {stop}), which overlaps "
                        f"this run's [{self.first}, {self.stop}); run the same ranges to resume"
                    )
            checkpoint = load_checkpoint(layout.checkpoint_path(*own))
            if checkpoint is not None:
                self._restore(checkpoint, written)
            active = set(self.tracker.active_row_groups())
            for rg in sorted(written):
                self._settle_written(rg, written[rg], self._finished_in_tracker(rg, active))
        active = set(self.tracker.active_row_groups())
        compacted_untracked = [
            rg
            for rg in all_groups
            if rg not in written and rg not in self.groups and self._finished_in_tracker(rg, active)
        ]
        if compacted_untracked:
            raise OutputDirError(
                f"the checkpoint reports row group(s) {compacted_untracked[:5]} finished, but their files "
                f"are missing from {self.layout.data_dir if self.layout else 'memory'}"
            )
        self.pending = deque(rg for rg in all_groups if rg not in written and rg not in self.groups)
        self.tasks_at_start = self._tasks_done_in_tracker()
        self.next_checkpoint_tasks = (job.checkpoint_every or 0) + self.tasks
        self.next_checkpoint_at = time.monotonic() + job.checkpoint_interval
        if self.plans and any(p.kind == BLOCKING for p in self.plans):
            workers = max(1, min(sum(p.cap for p in self.plans if p.kind == BLOCKING), self.global_cap))
            self.pool = concurrent.futures.ThreadPoolExecutor(
                workers, thread_name_prefix="cellfrontier-blocking"
            )
        if self.layout is not None:
            self.writer = concurrent.futures.ThreadPoolExecutor(
                _WRITER_THREADS, thread_name_prefix="cellfrontier-writer"
            )

    def _finished_in_tracker(self, rg: int, active: set[int]) -> bool:
        """Whether the tracker holds *rg* as compacted (finished and released)."""
        if rg in active:
            return False
        size = self.row_plan.row_group_size(rg)
        return size > 0 and bool(self.tracker.is_row_group_complete(rg, size, self.column_names))

    def _restore(self, checkpoint: ShardCheckpoint, written: Mapping[int, Path]) -> None:
        """Load the shard's checkpoint: tracker state and the active groups' buffered values."""
        path = self.layout.checkpoint_path(self.first, self.stop) if self.layout else None
        if (checkpoint.first, checkpoint.stop) != (self.first, self.stop):
            raise CheckpointError(f"{path} holds row groups [{checkpoint.first}, {checkpoint.stop})")
        self.tracker = CompletionTracker.from_bytes(checkpoint.tracker, self.job.graph)
        plan = self.tracker.row_group_plan
        if getattr(plan, "num_records", None) != self.job.num_records:
            raise CheckpointError(f"{path} was written for another number of records")
        self.mark_cells = self.tracker.mark_cells_complete
        self.mark_cell = self.tracker.mark_cell_complete
        self.checkpoint_owner = (checkpoint.attempt, checkpoint.seq)
        self.checkpoint_seq = checkpoint.seq
        self.resumed = True
        is_dropped = self.tracker.is_dropped
        for rg, columns in sorted(checkpoint.groups.items()):
            if rg in written:
                continue
            size = self.row_plan.row_group_size(rg)
            group = GroupBuffers(rg, size, rg * self.job.buffer_size, self.output_names, columns)
            group.dropped = {r for r in range(size) if is_dropped(rg, r)}
            self.groups[rg] = group
            self.computing += 1
            self.dirty[rg] = group
        self.peak_active = self.peak_held = len(self.groups)

    def _settle_written(self, rg: int, path: Path, already_compacted: bool) -> None:
        """A group whose file exists is done: make the tracker say so, truthfully, and compact it.

        The file is authoritative even when the checkpoint predates it: its surviving rows are
        marked done in every column, the others dropped.
        """
        size = self.row_plan.row_group_size(rg)
        rows = read_group_rows(path)
        self.records += rows
        self.dropped += size - rows
        if already_compacted:
            return
        base = rg * self.job.buffer_size
        if rows == size:
            survivors = np.arange(size, dtype=np.int64)
        else:
            survivors = np.asarray(read_group_row_ids(path), dtype=np.int64) - base
            lost = np.setdiff1d(np.arange(size, dtype=np.int64), survivors)
            self.tracker.drop_rows(rg, lost)
        for plan in self.plans:
            if plan.batch:
                self.tracker.mark_row_range_complete(plan.name, rg, size)
            elif survivors.size:
                self.tracker.mark_cells_complete(plan.name, rg, survivors)
        self.tracker.compact_row_group(rg)

    def _tasks_done_in_tracker(self) -> int:
        """Tasks already done in this shard's range (an estimate for progress: batches by rows)."""
        counts = self.tracker.progress()
        size = max(1, self.job.buffer_size)
        done = 0
        for plan in self.plans:
            c = counts[plan.name]
            done += (c.completed + c.dropped) // size if plan.batch else c.completed + c.dropped
        return done

    # ------------------------------------------------------------------ the loop

    def _on_signal(self, signum: int) -> None:
        self.stop_signal = signum
        loop = self.loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _loop(self, reporter: ProgressReporter) -> None:
        clock = time.monotonic
        job = self.job
        checkpoint_every = job.checkpoint_every
        while True:
            if self.stop_signal is not None:
                raise _Stopped()
            if self.fatal is not None:
                raise self.fatal
            if self.finished_chunks:
                self._collect_chunks()
            if self.writes:
                self._collect_writes()
            if self.retry_heap and self.retry_heap[0][0] <= clock():
                self._release_retries(clock())
            dirty = self.dirty
            while dirty:
                self._advance(dirty.pop(min(dirty)))
            if self.fatal is not None:
                raise self.fatal
            if self.queued:
                self._launch()
            if self.errors:
                self._check_error_rate()
            if self.pending and self._admit():
                continue
            now = clock()
            if self.layout is not None and (
                now >= self.next_checkpoint_at
                or (checkpoint_every is not None and self.tasks >= self.next_checkpoint_tasks)
            ):
                self._checkpoint()
            if reporter.active and reporter.due(now):
                reporter.emit(self._progress(time.perf_counter()), now)
            if not self.groups and not self.pending:
                return
            if self.dirty or self.finished_chunks:
                continue
            if not (self.inflight_total or self.writes or self.retry_heap):
                if self.queued:
                    continue
                raise RuntimeError(self._stall_message())
            await self._wait(self._timeout(now))

    def _timeout(self, now: float) -> float:
        timeout = self.next_checkpoint_at - now if self.layout is not None else 3600.0
        if self.retry_heap:
            timeout = min(timeout, self.retry_heap[0][0] - now)
        if self.reporter.active:
            timeout = min(timeout, self.reporter.next_due - now)
        return max(0.0, timeout)

    async def _wait(self, timeout: float) -> None:
        """Sleep until a completion, a write, a signal, or *timeout* seconds (a due timer).

        The timer is kept across waits while it is due no later than needed: re-arming one
        per wait would push a timer into the loop's heap per round, next to the thousands of
        sleeps of the calls in flight.  A timer that fires early only wakes a round early.
        """
        loop = self.loop
        assert loop is not None
        due = loop.time() + timeout
        if self.timer is None or self.timer_due > due:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(due, self._timer_fired)
            self.timer_due = due
        waiter = loop.create_future()
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None

    def _timer_fired(self) -> None:
        self.timer = None
        self._wake()

    def _stall_message(self) -> str:
        stuck = {
            rg: (self.tracker.ready_columns(rg), g.outstanding, g.finished)
            for rg, g in sorted(self.groups.items())
        }
        return f"the job cannot progress: nothing is ready or running, but row groups remain: {stuck}"

    # ------------------------------------------------------------------ admission

    def _admit(self) -> int:
        writing = len(self.groups) - self.computing
        if writing >= _MAX_QUEUED_WRITES:
            return 0
        view = AdmissionView(
            active_groups=self.computing,
            writing_groups=writing,
            pending_groups=len(self.pending),
            total_slots=self.global_cap,
            free_slots=self.global_cap - self.inflight_total,
            queued_tasks=self.queued,
            bytes_per_group=self.bytes_per_group
            or self.job.buffer_size * len(self.output_names) * _DEFAULT_CELL_BYTES,
        )
        count = min(self.policy.admit_count(view), len(self.pending))
        buffer_size = self.job.buffer_size
        for _ in range(count):
            rg = self.pending.popleft()
            size = self.row_plan.row_group_size(rg)
            group = GroupBuffers(rg, size, rg * buffer_size, self.output_names)
            self.groups[rg] = group
            self.computing += 1
            self.tracker.add_root_tasks(rg, size)
            self.dirty[rg] = group
        if self.computing > self.peak_active:
            self.peak_active = self.computing
        if len(self.groups) > self.peak_held:
            self.peak_held = len(self.groups)
        return count

    # ------------------------------------------------------------------ advancing a group

    def _advance(self, group: GroupBuffers) -> None:
        """Run or queue every ready task of *group* until it has none; finish it when done."""
        if group.finished:
            return
        tracker = self.tracker
        rg = group.row_group
        by_name = self.by_name
        while True:
            names = tracker.ready_columns(rg)
            if not names:
                break
            for name in names:
                plan = by_name[name]
                if plan.batch:
                    if not tracker.pop_ready_batch(name, rg):
                        continue
                    if plan.kind is INLINE:
                        self._run_batch_inline(plan, group)
                    else:
                        self._enqueue(plan, group, None)
                else:
                    rows = tracker.ready_rows(name, rg, take=True)
                    if not rows.size:
                        continue
                    if plan.kind is INLINE:
                        self._run_cells_inline(plan, group, rows)
                    else:
                        self._enqueue(plan, group, rows.tolist())
        if group.outstanding == 0:
            self._finish_if_done(group)

    def _finish_if_done(self, group: GroupBuffers) -> None:
        rg = group.row_group
        if not self.tracker.is_row_group_complete(rg, group.size, self.column_names):
            if not self.tracker.ready_columns(rg) and not self.retry_heap:
                raise RuntimeError(self._stall_message())
            return
        group.finished = True
        self.computing -= 1
        estimate = group.estimate_bytes()
        if estimate > self.bytes_per_group:
            self.bytes_per_group = estimate
        live: Sequence[int] = range(group.size)
        if group.dropped:
            live = group.live_rows()
            data = {name: group.live_values(name, live) for name in self.output_names}
            data[ROW_COLUMN] = [group.base + r for r in live]
        else:  # the group's buffers are final: hand them over as they are
            data = dict(group.columns)
            data[ROW_COLUMN] = list(range(group.base, group.base + group.size))
        if self.writer is not None and self.layout is not None:
            self.writes[rg] = self.writer.submit(write_group_file, self.layout, rg, self.output_names, data)
            self.writes[rg].add_done_callback(self._write_done)
        else:
            self.memory[rg] = data
            self._release(rg, len(live))

    def _write_done(self, future: concurrent.futures.Future[int]) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake)

    def _collect_writes(self) -> None:
        for rg in [rg for rg, future in self.writes.items() if future.done()]:
            rows = self.writes.pop(rg).result()
            self._release(rg, rows)

    def _release(self, rg: int, live: int) -> None:
        """A finished group's output is safe: compact it in the tracker and drop its buffers."""
        self.tracker.compact_row_group(rg)
        group = self.groups.pop(rg)
        self.records += live
        self.dropped += group.size - live

    # ------------------------------------------------------------------ inline execution

    def _run_cells_inline(self, plan: ColumnPlan, group: GroupBuffers, rows_array: np.ndarray) -> None:
        rows: list[int] = rows_array.tolist()
        failures: list[tuple[int, Exception]] = []

        def fail(row: int, exc: Exception) -> None:
            failures.append((row, exc))

        def bad(row: int, value: Any) -> None:
            raise self._output_error(plan, group, row, value)

        assert plan.kernel is not None
        plan.kernel(plan.fn, rows, group.base, group.columns, fail, bad)
        self.calls += len(rows)
        if not plan.checked_result:
            self._check_not_awaitable(plan, group, rows, failures)
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
            self._failed(plan, group, row, exc)

    def _check_not_awaitable(
        self, plan: ColumnPlan, group: GroupBuffers, rows: Sequence[int], failures: Sequence[tuple[int, Any]]
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

    def _run_one_inline(self, plan: ColumnPlan, group: GroupBuffers, row: int) -> None:
        """A retried inline cell (one row)."""
        self.calls += 1
        try:
            value = plan.fn(plan.build_row(group.columns, row, group.base))
        except Exception as exc:
            group.outstanding += 1
            self._failed(plan, group, row, exc)
            return
        self._store_cell(plan, group, row, value)

    def _store_cell(self, plan: ColumnPlan, group: GroupBuffers, row: int, value: Any) -> None:
        if not plan.store_row(group.columns, row, value):
            raise self._output_error(plan, group, row, value)
        self.mark_cell(plan.name, group.row_group, row)
        self.tasks += 1
        if self.attempts:
            self.attempts.pop((plan.index, group.row_group, row), None)

    def _batch_input(self, plan: ColumnPlan, group: GroupBuffers) -> tuple[dict[str, Any], Sequence[int]]:
        """A full-column call's argument (copies: the generator may keep or change its lists)."""
        if not group.dropped:
            batch: dict[str, Any] = {name: list(group.columns[name]) for name in plan.inputs}
            batch[ROW_COLUMN] = list(range(group.base, group.base + group.size))
            return batch, range(group.size)
        live = group.live_rows()
        batch = {name: group.live_values(name, live) for name in plan.inputs}
        batch[ROW_COLUMN] = [group.base + r for r in live]
        return batch, live

    def _run_batch_inline(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        batch, live = self._batch_input(plan, group)
        self.calls += 1
        try:
            result = plan.fn(batch)
        except Exception as exc:
            group.outstanding += 1
            self._failed(plan, group, None, exc)
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

    def _output_error(
        self, plan: ColumnPlan, group: GroupBuffers, row: int, value: Any
    ) -> GeneratorOutputError:
        got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        return GeneratorOutputError(
            f"the generator of {plan.name!r} must return a mapping with exactly the keys "
            f"{list(plan.outputs)} (the column and its side-effect aliases); at row {group.base + row} "
            f"it returned {got}"
        )

    # ------------------------------------------------------------------ failures

    def _failed(self, plan: ColumnPlan, group: GroupBuffers, row: int | None, exc: Exception) -> None:
        """A call raised: retry it later, or drop its row(s) when its retries are spent.

        The task counts in ``group.outstanding`` until it is retried successfully or dropped.
        """
        self.errors += 1
        key = (plan.index, group.row_group, row)
        attempt = self.attempts.get(key, 0) + 1
        if len(self.error_samples) < self.job.keep_errors:
            global_row = None if row is None else group.base + row
            self.error_samples.append(
                GeneratorFailure.from_exception(plan.name, group.row_group, global_row, attempt, exc)
            )
        if attempt <= self.retry.retries:
            self.attempts[key] = attempt
            self.retry_seq += 1
            due = time.monotonic() + self.retry.delay(attempt)
            heapq.heappush(self.retry_heap, (due, self.retry_seq, plan.index, group, row))
            return
        self.attempts.pop(key, None)
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

    def _release_retries(self, now: float) -> None:
        heap = self.retry_heap
        while heap and heap[0][0] <= now:
            _, _, index, group, row = heapq.heappop(heap)
            plan = self.plans[index]
            group.outstanding -= 1
            if row is not None and row in group.dropped:  # dropped meanwhile: nothing to retry
                self.attempts.pop((index, group.row_group, row), None)
            elif plan.kind is INLINE:
                if row is None:
                    self._run_batch_inline(plan, group)
                else:
                    self._run_one_inline(plan, group, row)
            else:
                self._enqueue(plan, group, None if row is None else [row])
            self.dirty[group.row_group] = group

    def _check_error_rate(self) -> None:
        job = self.job
        if self.calls >= job.min_error_sample and self.errors > job.max_error_rate * self.calls:
            first = f" The first: {self.error_samples[0]}" if self.error_samples else ""
            raise ErrorRateExceededError(
                f"{self.errors:,} of {self.calls:,} generator calls failed, more than max_error_rate="
                f"{job.max_error_rate:g}; the job stopped (its checkpoint is saved).{first}"
            )

    # ------------------------------------------------------------------ async and blocking work

    def _enqueue(self, plan: ColumnPlan, group: GroupBuffers, rows: list[int] | None) -> None:
        count = 1 if rows is None else len(rows)
        self.queues[plan.index].append([group, rows, 0])
        self.queued_by[plan.index] += count
        self.queued += count
        group.outstanding += count

    def _launch(self) -> None:
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

    def _finish_call(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        self.inflight[plan.index] -= 1
        self.inflight_total -= 1
        self.dirty[group.row_group] = group
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _async_cell(self, plan: ColumnPlan, group: GroupBuffers, row: int) -> None:
        try:
            value = await plan.fn(plan.build_row(group.columns, row, group.base))
        except Exception as exc:
            self._failed(plan, group, row, exc)
        else:
            if plan.store_row(group.columns, row, value):
                self.mark_cell(plan.name, group.row_group, row)
                group.outstanding -= 1
                self.tasks += 1
                if self.attempts:
                    self.attempts.pop((plan.index, group.row_group, row), None)
            elif self.fatal is None:
                self.fatal = self._output_error(plan, group, row, value)
        finally:
            self.async_tasks.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]
            self._finish_call(plan, group)

    async def _async_batch(self, plan: ColumnPlan, group: GroupBuffers) -> None:
        try:
            batch, live = self._batch_input(plan, group)
            try:
                result = await plan.fn(batch)
            except Exception as exc:
                self._failed(plan, group, None, exc)
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
            raise self._output_error(plan, group, row, value)

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
            batch, live = self._batch_input(plan, group)
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
                loop.call_soon_threadsafe(self._wake)

    def _collect_chunks(self) -> None:
        chunks = self.finished_chunks
        while chunks:
            plan, group, rows, failures, error, outcome = chunks.popleft()
            self._finish_call(plan, group)
            if error is not None:
                raise error
            if rows is None:
                if failures:
                    self._failed(plan, group, None, failures[0][1])
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
                self._failed(plan, group, row, exc)

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, *, final: bool = False) -> None:
        """Save the tracker and the active groups' values as one atomic file."""
        layout = self.layout
        if layout is None:
            return
        path = layout.checkpoint_path(self.first, self.stop)
        header = read_checkpoint_header(path)
        found = None if header is None else (str(header.get("attempt")), int(header.get("seq", -1)))
        if found != self.checkpoint_owner:
            raise StaleShardError(
                f"another run wrote {path} (attempt {found[0] if found else None}) since this one started; "
                "this run stops without writing"
            )
        seq = self.checkpoint_seq + 1
        checkpoint = ShardCheckpoint(
            first=self.first,
            stop=self.stop,
            seq=seq,
            attempt=self.attempt,
            tracker=self.tracker.to_bytes(),
            groups={rg: group.columns for rg, group in self.groups.items()},
            stats={"records": self.records, "dropped": self.dropped, "final": int(final)},
        )
        save_checkpoint(path, checkpoint)
        self.checkpoint_seq = seq
        self.checkpoint_owner = (self.attempt, seq)
        self.next_checkpoint_at = time.monotonic() + self.job.checkpoint_interval
        if self.job.checkpoint_every is not None:
            self.next_checkpoint_tasks = self.tasks + self.job.checkpoint_every

    async def _abort(self, exc: BaseException) -> None:
        """Stop everything in flight, keep what is durable, then checkpoint (unless stale)."""
        tasks = list(self.async_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        for rg, future in list(self.writes.items()):
            try:
                rows = future.result()
            except Exception:
                continue
            del self.writes[rg]
            self._release(rg, rows)
        if isinstance(exc, (StaleShardError, OutputDirError, CheckpointError)):
            return
        with contextlib.suppress(StaleShardError):
            self._checkpoint()

    def _close_pools(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.writer is not None:
            self.writer.shutdown(wait=True)

    # ------------------------------------------------------------------ reporting

    def _progress(self, now: float) -> JobProgress:
        elapsed = max(1e-9, now - self.started)
        cells = sum(1 for p in self.plans if not p.batch)
        batches = len(self.plans) - cells
        rows_total = self.rows_total
        estimate = rows_total * cells + (self.stop - self.first) * batches
        done = self.tasks_at_start + self.tasks
        rate = self.tasks / elapsed
        eta = (max(0, estimate - done) / rate) if rate > 0 else None
        return JobProgress(
            rows_total=rows_total,
            rows_done=self.records,
            rows_dropped=self.dropped,
            tasks=done,
            tasks_total_estimate=estimate,
            tasks_per_second=rate,
            elapsed_seconds=elapsed,
            eta_seconds=eta,
            active_row_groups=len(self.groups),
            errors=self.errors,
        )

    def _result(self, seconds: float, cpu_seconds: float) -> JobResult:
        from cellfrontier.job.job import JobResult

        return JobResult(
            records=self.records,
            dropped=self.dropped,
            tasks=self.tasks,
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            errors=self.errors,
            error_samples=tuple(self.error_samples),
            peak_active_row_groups=self.peak_active,
            peak_held_row_groups=self.peak_held,
            row_groups=range(self.first, self.stop),
            resumed=self.resumed,
            output_dir=self.layout.root if self.layout is not None else None,
            columns=tuple(self.output_names),
            memory=self.memory if self.layout is None else None,
        )
