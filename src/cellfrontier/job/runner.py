"""The scheduling loop: one shard (a contiguous range of row groups) of a job, on one event loop.

A local ``Job.run()`` is one shard covering every row group; a distributed run executes the
same :class:`ShardRunner` per shard on its workers, each with its own checkpoint file under
the shared ``output_dir`` and the same file layout.

The runner decides what to do next; two collaborators do it: a
:class:`~cellfrontier.job.execution.CallDispatcher` runs the generator calls (inline, async,
blocking, retries) and a :class:`~cellfrontier.job.shard_store.ShardStore` resumes from and
checkpoints into ``output_dir``.  How a round of the loop goes (one thread; nothing here takes
a lock):

1. Collect what finished meanwhile: blocking batches (a deque the pool threads append to),
   row-group files written by the writer thread (their groups are then compacted in the
   tracker and their buffers released), retries whose backoff expired.
2. Advance every group an event touched (``dirty``): ask the tracker which columns have ready
   tasks; run inline columns right away, a whole ready set per call
   (``ready_rows(take=True)`` -> generated loop -> one ``mark_cells_complete``); hand async and
   blocking work to per-column queues.  Repeat until the group has no ready column; a group
   with nothing outstanding whose every column is done is finished and goes to the writer.
3. Launch queued async and blocking work while slots are free (deeper columns first).
4. Ask the admission policy whether to admit groups; checkpoint and report progress when due.
5. Wait (only if nothing is left to do now) until a completion, a write, a retry's time, a
   checkpoint's time or a signal wakes the loop.

Consistency: a cell is marked done in the tracker only after its value is in the group's
buffer, and checkpoints are taken between rounds on the loop thread, so the saved tracker
state never claims a value the saved buffers lack.  A group's file is durable before the
group is compacted, so a checkpoint stops holding a group's values only once its file exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellfrontier.errors import CheckpointError
from cellfrontier.job.admission import (
    AdmissionPolicy,
    AdmissionView,
    CapsAdmission,
    FixedAdmission,
    MemoryBoundAdmission,
)
from cellfrontier.job.buffers import GroupBuffers
from cellfrontier.job.errors import JobInterruptedError, OutputDirError, StaleShardError
from cellfrontier.job.execution import CallDispatcher
from cellfrontier.job.failures import RetryPolicy
from cellfrontier.job.gctuning import tuned_gc
from cellfrontier.job.generators import INLINE, ColumnPlan
from cellfrontier.job.interrupts import StopSignals
from cellfrontier.job.output import ROW_COLUMN, OutputLayout, write_group_file
from cellfrontier.job.progress import JobProgress, ProgressReporter
from cellfrontier.job.shard_store import ShardStore, finished_in_tracker
from cellfrontier.job.sharding import ShardSummary
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
_MAX_SECONDS_WITHOUT_YIELD = 0.02
"""Longest stretch of inline work before the loop lets other coroutines of the event loop run."""


class _Stopped(Exception):
    """A stop signal arrived: leave the loop, checkpoint, deliver the signal."""


class ShardRunner:
    """Runs the row groups ``row_groups`` (a contiguous range) of *job* to completion."""

    def __init__(
        self, job: Job, row_groups: range, *, report: Callable[[JobProgress], None] | None = None
    ) -> None:
        """*report*, when given, receives the shard's progress instead of the job's own reporting
        (a run of several shards combines them into one view)."""
        self.job = job
        self.report = report
        self.first, self.stop = row_groups.start, row_groups.stop
        self.plans: list[ColumnPlan] = job.column_plans()
        self.by_name: dict[str, ColumnPlan] = {p.name: p for p in self.plans}
        self.column_names: list[str] = [p.name for p in self.plans]
        self.output_names: list[str] = [name for p in self.plans for name in p.outputs]
        self.row_plan = RowGroupPlan.uniform(job.num_records, job.buffer_size)
        self.layout = OutputLayout(Path(job.output_dir)) if job.output_dir is not None else None
        self.store = ShardStore(job, self.layout, self.first, self.stop) if self.layout is not None else None
        self.rows_total = max(
            0, min(job.num_records, self.stop * job.buffer_size) - self.first * job.buffer_size
        )
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
        self.dispatch = CallDispatcher(
            self.plans,
            self.tracker,
            self.dirty,
            max_concurrency=job.max_concurrency,
            retry=RetryPolicy(job.retries, job.retry_backoff, job.max_retry_backoff),
            keep_errors=job.keep_errors,
            max_error_rate=job.max_error_rate,
            min_error_sample=job.min_error_sample,
        )
        self.writes: dict[int, concurrent.futures.Future[int]] = {}
        self.writer: concurrent.futures.ThreadPoolExecutor | None = None
        self.memory: dict[int, dict[str, list[Any]]] = {}
        self.stop_signal: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0

        self.records = 0
        self.dropped = 0
        self.peak_active = 0
        self.peak_held = 0
        self.bytes_per_group = 0
        self.resumed = False
        self.tasks_at_start = 0

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
        if self.report is not None:
            reporter = ProgressReporter(self.report, False, interval=job.progress_interval)
        else:
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

    # ------------------------------------------------------------------ setup

    def _open(self) -> None:
        """Restore this shard's state from the output directory and start the pools."""
        all_groups = range(self.first, self.stop)
        written: set[int] = set()
        if self.store is not None:
            state = self.store.resume(self.tracker, self.plans, self.output_names)
            self.tracker = state.tracker
            self.dispatch.use_tracker(state.tracker)
            self.records, self.dropped, self.resumed = state.records, state.dropped, state.resumed
            written = state.written
            for rg, group in state.groups.items():
                self.groups[rg] = group
                self.computing += 1
                self.dirty[rg] = group
            self.peak_active = self.peak_held = len(self.groups)
        active = set(self.tracker.active_row_groups())
        compacted_untracked = [
            rg
            for rg in all_groups
            if rg not in written
            and rg not in self.groups
            and finished_in_tracker(self.tracker, self.row_plan, self.column_names, rg, active)
        ]
        if compacted_untracked:
            raise OutputDirError(
                f"the checkpoint reports row group(s) {compacted_untracked[:5]} finished, but their files "
                f"are missing from {self.layout.data_dir if self.layout else 'memory'}"
            )
        self.pending = deque(rg for rg in all_groups if rg not in written and rg not in self.groups)
        self.tasks_at_start = self._tasks_done_in_tracker()
        if self.store is not None:
            self.store.schedule_next(self.dispatch.tasks)
        assert self.loop is not None
        self.dispatch.start(self.loop, self._wake)
        if self.layout is not None:
            self.writer = concurrent.futures.ThreadPoolExecutor(
                _WRITER_THREADS, thread_name_prefix="cellfrontier-writer"
            )

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
        dispatch = self.dispatch
        store = self.store
        checkpoint_every = self.job.checkpoint_every
        retry_heap = dispatch.retry_heap
        yielded_at = clock()
        while True:
            if self.stop_signal is not None:
                raise _Stopped()
            if dispatch.fatal is not None:
                raise dispatch.fatal
            if dispatch.finished_chunks:
                dispatch.collect_chunks()
            if self.writes:
                self._collect_writes()
            if retry_heap and retry_heap[0][0] <= clock():
                dispatch.release_retries(clock())
            dirty = self.dirty
            while dirty:
                self._advance(dirty.pop(min(dirty)))
            if dispatch.fatal is not None:
                raise dispatch.fatal
            if dispatch.queued:
                dispatch.launch()
            if dispatch.failures.errors:
                dispatch.check_error_rate()
            admitted = bool(self.pending) and self._admit() > 0
            now = clock()
            # Checked on every round, admitting or not: a job of inline generators admits
            # a group on almost every round and would otherwise never reach its checkpoint.
            if store is not None and (
                now >= store.next_at or (checkpoint_every is not None and dispatch.tasks >= store.next_tasks)
            ):
                self._checkpoint()
            if reporter.active and reporter.due(now):
                reporter.emit(self._progress(time.perf_counter()), now)
            if admitted or self.dirty or dispatch.finished_chunks:
                if now - yielded_at >= _MAX_SECONDS_WITHOUT_YIELD:
                    # Inline work never awaits: hand the event loop over now and then so
                    # that ``run_async()`` leaves the caller's other coroutines running.
                    await asyncio.sleep(0)
                    yielded_at = clock()
                continue
            if not self.groups and not self.pending:
                return
            if not (dispatch.inflight_total or self.writes or retry_heap):
                if dispatch.queued:
                    continue
                raise RuntimeError(self._stall_message())
            await self._wait(self._timeout(now))

    def _timeout(self, now: float) -> float:
        timeout = self.store.next_at - now if self.store is not None else 3600.0
        retry_heap = self.dispatch.retry_heap
        if retry_heap:
            timeout = min(timeout, retry_heap[0][0] - now)
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
        dispatch = self.dispatch
        view = AdmissionView(
            active_groups=self.computing,
            writing_groups=writing,
            pending_groups=len(self.pending),
            total_slots=dispatch.global_cap,
            free_slots=dispatch.global_cap - dispatch.inflight_total,
            queued_tasks=dispatch.queued,
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
        dispatch = self.dispatch
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
                        dispatch.run_batch_inline(plan, group)
                    else:
                        dispatch.enqueue(plan, group, None)
                else:
                    rows = tracker.ready_rows(name, rg, take=True)
                    if not rows.size:
                        continue
                    if plan.kind is INLINE:
                        dispatch.run_cells_inline(plan, group, rows)
                    else:
                        dispatch.enqueue(plan, group, rows.tolist())
        if group.outstanding == 0:
            self._finish_if_done(group)

    def _finish_if_done(self, group: GroupBuffers) -> None:
        rg = group.row_group
        if not self.tracker.is_row_group_complete(rg, group.size, self.column_names):
            if not self.tracker.ready_columns(rg) and not self.dispatch.retry_heap:
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
            epoch = self.store.epoch if self.store is not None else 0
            self.writes[rg] = self.writer.submit(
                write_group_file, self.layout, rg, self.output_names, data, epoch
            )
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
            try:
                rows = self.writes.pop(rg).result()
            except OSError:
                if self.store is not None:  # a newer attempt removed this one's temporary file
                    self.store.refuse_if_superseded("while writing a row group")
                raise
            self._release(rg, rows)

    def _release(self, rg: int, live: int) -> None:
        """A finished group's output is safe: compact it in the tracker and drop its buffers."""
        self.tracker.compact_row_group(rg)
        group = self.groups.pop(rg)
        self.records += live
        self.dropped += group.size - live

    # ------------------------------------------------------------------ checkpoints and stopping

    def _checkpoint(self, *, final: bool = False) -> None:
        """Save the tracker and the active groups' values as one atomic file."""
        if self.store is None:
            return
        stats = {"records": self.records, "dropped": self.dropped, "final": int(final)}
        self.store.save(self.tracker, self.groups, stats, self.dispatch.tasks)

    async def _abort(self, exc: BaseException) -> None:
        """Stop everything in flight, keep what is durable, then checkpoint (unless stale)."""
        await self.dispatch.cancel()
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
        self.dispatch.close()
        if self.writer is not None:
            self.writer.shutdown(wait=True)

    # ------------------------------------------------------------------ reporting

    def _progress(self, now: float) -> JobProgress:
        elapsed = max(1e-9, now - self.started)
        cells = sum(1 for p in self.plans if not p.batch)
        batches = len(self.plans) - cells
        rows_total = self.rows_total
        estimate = rows_total * cells + (self.stop - self.first) * batches
        tasks = self.dispatch.tasks
        done = self.tasks_at_start + tasks
        rate = tasks / elapsed
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
            errors=self.dispatch.failures.errors,
        )

    def _result(self, seconds: float, cpu_seconds: float) -> JobResult:
        from cellfrontier.job.job import JobResult

        summary = ShardSummary(
            row_groups=range(self.first, self.stop),
            epoch=self.store.epoch if self.store is not None else 0,
            records=self.records,
            dropped=self.dropped,
            tasks=self.dispatch.tasks,
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            resumed=self.resumed,
        )
        return JobResult(
            records=self.records,
            dropped=self.dropped,
            tasks=self.dispatch.tasks,
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            errors=self.dispatch.failures.errors,
            error_samples=tuple(self.dispatch.failures.samples),
            peak_active_row_groups=self.peak_active,
            peak_held_row_groups=self.peak_held,
            row_groups=range(self.first, self.stop),
            resumed=self.resumed,
            output_dir=self.layout.root if self.layout is not None else None,
            columns=tuple(self.output_names),
            memory=self.memory if self.layout is None else None,
            shards=(summary,),
        )
