"""The scheduling loop: one shard (a contiguous range of row groups) of a job, on one event loop.

A local ``Job.run()`` is one shard covering every row group; a distributed run executes the
same :class:`ShardRunner` per shard on its workers, each with its own checkpoint file under
the shared ``output_dir`` and the same file layout.

The runner decides what to do next; its collaborators do it: a
:class:`~cellfrontier.job.shard.dispatch.CallDispatcher` runs the generator calls (inline,
async, blocking, retries) and a :class:`~cellfrontier.job.shard.ledger.TaskLedger` records
what became of them, a :class:`~cellfrontier.job.shard.group_writer.GroupWriter` writes
finished groups, and a :class:`~cellfrontier.job.store.shard_store.ShardStore` resumes from
and checkpoints into ``output_dir``.  How a round of the loop goes (one thread; nothing here
takes a lock):

1. Collect what finished meanwhile: blocking batches (the pool threads' outcomes), row-group
   files written by the writer (their groups are then compacted in the tracker and their
   buffers released), retries whose backoff expired.
2. Advance every group an event touched (admitted here, or touched by an outcome the
   ledger recorded): ask the tracker which columns have ready tasks and hand them to the
   dispatcher, which runs inline columns right away, a whole ready set per call
   (``ready_rows(take=True)`` -> generated loop -> one ``mark_cells_complete``), and queues
   async and blocking work.  Repeat until the group has no ready column; a group with nothing
   outstanding whose every column is done is finished and goes to the writer.
3. Launch queued async and blocking work while slots are free (deeper columns first).
4. Ask the admission policy whether to admit groups; checkpoint and report progress when due.
5. Wait (only if nothing is left to do now) until a completion, a write, a retry's time, a
   checkpoint's time or a signal wakes the loop.

A rerun of an edited job on the same ``output_dir`` goes through the same loop: the store
tells which written groups stand (settled) and which to upgrade; an upgraded group is
admitted like a new one, but first its kept columns are read back and its tracker state
prefilled (:mod:`cellfrontier.job.shard.reuse`), so only the computed columns' tasks (and the
new rows') ever become ready; its new file then replaces the old one.

Consistency: a cell is marked done in the tracker only after its value is in the group's
buffer, and checkpoints are taken between rounds on the loop thread, so the saved tracker
state never claims a value the saved buffers lack.  A group's file is durable before the
group is compacted, so a checkpoint stops holding a group's values only once its file exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cellfrontier.errors import CheckpointError
from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.errors import JobInterruptedError, OutputDirError, StaleShardError
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import JobProgress, ProgressReporter
from cellfrontier.job.result import JobResult
from cellfrontier.job.shard.admission import (
    AdmissionPolicy,
    AdmissionView,
    CapsAdmission,
    FixedAdmission,
    MemoryBoundAdmission,
)
from cellfrontier.job.shard.buffers import GroupBuffers
from cellfrontier.job.shard.caps import process_share, shared_cap, shared_columns
from cellfrontier.job.shard.closing import close_generators
from cellfrontier.job.shard.dispatch import CallDispatcher
from cellfrontier.job.shard.failures import RetryPolicy
from cellfrontier.job.shard.gctuning import tuned_gc
from cellfrontier.job.shard.group_ranges import GroupRanges
from cellfrontier.job.shard.group_writer import GroupWriter
from cellfrontier.job.shard.interrupts import StopSignals
from cellfrontier.job.shard.ledger import TaskLedger
from cellfrontier.job.shard.reuse import UpgradedGroups
from cellfrontier.job.shard.shard_report import checkpoint_stats, shard_progress, shard_result
from cellfrontier.job.shard.usage import UsageMeter
from cellfrontier.job.shard.wakeup import Wakeup
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.group_files import GroupStamp
from cellfrontier.job.store.shard_store import ShardStore
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.tracker import CompletionTracker

__all__ = ["ShardRunner"]

_MAX_QUEUED_WRITES = 4
"""Finished groups waiting for the writer before admission pauses (bounds memory)."""
_DEFAULT_CELL_BYTES = 64
"""Bytes per value assumed before the first group has been measured."""
_MAX_SECONDS_WITHOUT_YIELD = 0.02
"""Longest stretch of inline work before the loop lets other coroutines of the event loop run."""


class _Stopped(Exception):
    """A stop signal arrived: leave the loop, checkpoint, deliver the signal."""


class ShardRunner:
    """Runs the row groups ``row_groups`` (a contiguous range) of the job *spec* to completion.

    What a run of many shards may read: ``first`` and ``stop`` (the range), ``epoch`` (of this
    attempt, 0 before it claimed the shard or without ``output_dir``) and :meth:`run`.
    """

    def __init__(
        self, spec: JobSpec, row_groups: range, *, report: Callable[[JobProgress], None] | None = None
    ) -> None:
        """*report*, when given, receives the shard's progress instead of the job's own reporting
        (a run of several shards combines them into one view)."""
        self.spec = spec
        self.report = report
        self.first, self.stop = row_groups.start, row_groups.stop
        self.columns: tuple[ColumnSpec, ...] = shared_columns(spec.columns, spec.cap_share)
        self.by_name: dict[str, ColumnSpec] = {c.name: c for c in self.columns}
        self.column_names: list[str] = [c.name for c in self.columns]
        self.output_names: list[str] = list(spec.output_names)
        self.row_plan = RowGroupPlan.uniform(spec.num_records, spec.buffer_size)
        self.layout = OutputLayout(spec.output_dir) if spec.output_dir is not None else None
        self.store = ShardStore(spec, self.layout, self.first, self.stop) if self.layout is not None else None
        self.rows_total = max(
            0, min(spec.num_records, self.stop * spec.buffer_size) - self.first * spec.buffer_size
        )
        self.policy: AdmissionPolicy = (
            FixedAdmission(spec.max_active_row_groups)
            if spec.max_active_row_groups is not None
            else MemoryBoundAdmission(CapsAdmission(), spec.memory_budget)
        )

        self.tracker: CompletionTracker = CompletionTracker.with_graph(spec.graph, self.row_plan)
        self.groups: dict[int, GroupBuffers] = {}
        self.computing = 0
        self.pending: deque[int] = deque()
        self.dirty: dict[int, GroupBuffers] = {}
        """Groups to advance next: admitted or resumed here, or touched by an outcome."""
        self.ledger = TaskLedger(
            self.tracker,
            retry=RetryPolicy(spec.retries, spec.retry_backoff, spec.max_retry_backoff),
            keep_errors=spec.keep_errors,
            max_error_rate=spec.max_error_rate,
            min_error_sample=spec.min_error_sample,
        )
        self.dispatch = CallDispatcher(
            self.columns, self.ledger, max_concurrency=shared_cap(spec.max_concurrency, spec.cap_share)
        )
        self.usage = UsageMeter(self.columns)
        self.writer: GroupWriter | None = None
        self.memory: dict[int, dict[str, list[Any]]] = {}
        self.upgrades = UpgradedGroups({}, self.by_name, self.output_names, spec.buffer_size)
        """Written groups this run upgrades (a rerun of an edited job; set from the store)."""
        self.stop_signal: int | None = None
        self.wakeup: Wakeup | None = None

        self.records = 0
        self.dropped = 0
        self.peak_active = 0
        self.peak_held = 0
        self.bytes_per_group = 0
        self.resumed = False
        self.tasks_at_start = 0
        self.started_wall = 0.0
        self.counted = GroupRanges()
        """The groups whose rows ``records`` and ``dropped`` count (written, and released or settled)."""

    @property
    def epoch(self) -> int:
        """The epoch this attempt claimed (0 before it did, or without ``output_dir``)."""
        return self.store.epoch if self.store is not None else 0

    # ------------------------------------------------------------------ public entry

    async def run(self, signals: StopSignals) -> JobResult:
        """Run the shard; returns its result.  Checkpoints before re-raising any failure.

        *signals* records SIGINT/SIGTERM (installed by the caller); the runner stops at the
        next round, checkpoints, and re-delivers the signal to the previous handler.
        """
        spec = self.spec
        self.wakeup = Wakeup(asyncio.get_running_loop())
        started, cpu_started = time.perf_counter(), time.process_time()
        self.started = started
        self.started_wall = time.time()  # the checkpoints' clock: a reader elsewhere compares it to its own
        self._open()
        if self.report is not None:
            reporter = ProgressReporter(self.report, False, interval=spec.progress_interval)
        else:
            reporter = spec.progress_reporter()
        self.reporter = reporter
        signals.on_signal = self._on_signal
        self.stop_signal = signals.received
        try:
            with tuned_gc(spec.tune_gc), process_share(self.columns, spec.cap_share):
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
            self.wakeup.close()
            self._close_pools()
            await close_generators(self.columns)
        self._checkpoint(final=True)
        now = time.perf_counter()
        if reporter.active:
            reporter.emit(self._progress(now), now, final=True)
        return self._result(now - started, time.process_time() - cpu_started)

    # ------------------------------------------------------------------ setup

    def _open(self) -> None:
        """Restore this shard's state from the output directory and start the pools."""
        written: set[int] = set()
        if self.store is not None:
            state = self.store.resume(self.tracker)
            self.tracker = state.tracker
            self.ledger.use_tracker(state.tracker)
            self.records, self.dropped, self.resumed = state.records, state.dropped, state.resumed
            self.usage.restore(state.usage)
            written = state.written
            self.upgrades.waiting = state.reuse
            for rg in written:
                self.counted.add(rg)
            for rg, values in state.groups.items():
                size = self.row_plan.row_group_size(rg)
                group = GroupBuffers.restored(rg, size, rg * self.spec.buffer_size, values, self.tracker)
                group.culprits = state.drops.get(rg, {})
                self.upgrades.resume(group)  # an upgrade under way: kept values from the file again
                self.groups[rg] = group
                self.computing += 1
                self.dirty[rg] = group
            self.peak_active = self.peak_held = len(self.groups)
        all_groups = range(self.first, self.stop)
        self.pending = deque(rg for rg in all_groups if rg not in written and rg not in self.groups)
        self.tasks_at_start = self.spec.estimate_tasks_done(self.tracker.progress())
        if self.store is not None:
            self.store.schedule_next(self.ledger.tasks)
        assert self.wakeup is not None
        self.dispatch.start(self.wakeup)
        if self.layout is not None:
            assert self.store is not None
            self.writer = GroupWriter(
                self.store.layout,
                self.output_names,
                self.epoch,
                self.wakeup.wake_threadsafe,
                generation=self.store.generation,
            )

    # ------------------------------------------------------------------ the loop

    def _on_signal(self, signum: int) -> None:
        self.stop_signal = signum
        if self.wakeup is not None:
            self.wakeup.wake_threadsafe()

    async def _loop(self, reporter: ProgressReporter) -> None:
        clock = time.monotonic
        dispatch = self.dispatch
        ledger = self.ledger
        writer = self.writer
        wakeup = self.wakeup
        assert wakeup is not None
        store = self.store
        checkpoint_every = self.spec.checkpoint_every
        yielded_at = clock()
        while True:
            if self.stop_signal is not None:
                raise _Stopped()
            ledger.check_errors()
            if dispatch.has_finished:
                dispatch.collect_finished()
            if writer is not None and writer.busy:
                self._collect_writes(writer)
            retry_at = ledger.next_retry_at
            if retry_at is not None and retry_at <= clock():
                dispatch.release_retries(clock())
            self._advance_touched()
            ledger.check_errors()
            if dispatch.queued:
                dispatch.launch()
            if ledger.errors:
                ledger.check_error_rate()
            admitted = bool(self.pending) and self._admit() > 0
            now = clock()
            # Checked on every round, admitting or not: a job of inline generators admits
            # a group on almost every round and would otherwise never reach its checkpoint.
            if store is not None and (
                now >= store.next_at or (checkpoint_every is not None and ledger.tasks >= store.next_tasks)
            ):
                self._checkpoint()
            if reporter.active and reporter.due(now):
                reporter.emit(self._progress(time.perf_counter()), now)
            if admitted or self.dirty or ledger.has_touched or dispatch.has_finished:
                if now - yielded_at >= _MAX_SECONDS_WITHOUT_YIELD:
                    # Inline work never awaits: hand the event loop over now and then so
                    # that ``run_async()`` leaves the caller's other coroutines running.
                    await asyncio.sleep(0)
                    yielded_at = clock()
                continue
            if not self.groups and not self.pending:
                return
            if dispatch.idle and not (writer is not None and writer.busy):
                if dispatch.queued:
                    continue
                raise RuntimeError(self._stall_message())
            await wakeup.wait(self._timeout(now))

    def _advance_touched(self) -> None:
        """Advance every group to advance, lowest row group first, until none is left."""
        dirty = self.dirty
        take_touched = self.ledger.take_touched
        while True:
            touched = take_touched()
            if touched:
                dirty.update(touched)
            if not dirty:
                return
            self._advance(dirty.pop(min(dirty)))

    def _timeout(self, now: float) -> float:
        timeout = self.store.next_at - now if self.store is not None else 3600.0
        retry_at = self.ledger.next_retry_at
        if retry_at is not None:
            timeout = min(timeout, retry_at - now)
        if self.reporter.active:
            timeout = min(timeout, self.reporter.next_due - now)
        return max(0.0, timeout)

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
            total_slots=dispatch.total_slots,
            free_slots=dispatch.total_slots - dispatch.in_flight,
            queued_tasks=dispatch.queued,
            bytes_per_group=self.bytes_per_group
            or self.spec.buffer_size * len(self.output_names) * _DEFAULT_CELL_BYTES,
        )
        count = min(self.policy.admit_count(view), len(self.pending))
        buffer_size = self.spec.buffer_size
        for _ in range(count):
            rg = self.pending.popleft()
            size = self.row_plan.row_group_size(rg)
            group = self.upgrades.start(rg, size, self.tracker) or GroupBuffers(
                rg, size, rg * buffer_size, self.output_names
            )
            self.groups[rg] = group
            self.computing += 1
            self.tracker.add_root_tasks(rg, size)
            self.dirty[rg] = group
        if self.upgrades:
            self.upgrades.prefetch(self.pending)
        if self.computing > self.peak_active:
            self.peak_active = self.computing
        if len(self.groups) > self.peak_held:
            self.peak_held = len(self.groups)
        return count

    # ------------------------------------------------------------------ advancing a group

    def _advance(self, group: GroupBuffers) -> None:
        """Hand every ready task of *group* to the dispatcher until it has none; finish it when done."""
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
                column = by_name[name]
                if column.batch:
                    if tracker.pop_ready_batch(name, rg):
                        if group.partial and group.lacks_nothing(name):  # kept, and no row to add
                            self.ledger.done(column, group, None, queued=False)
                        else:
                            dispatch.submit_batch(column, group)
                else:
                    rows = tracker.ready_rows(name, rg, take=True)
                    if rows.size:
                        dispatch.submit_cells(column, group, rows)
        if group.outstanding == 0:
            self._finish_if_done(group)

    def _finish_if_done(self, group: GroupBuffers) -> None:
        rg = group.row_group
        if not self.tracker.is_row_group_complete(rg, group.size, self.column_names):
            if not self.tracker.ready_columns(rg) and self.ledger.next_retry_at is None:
                raise RuntimeError(self._stall_message())
            return
        group.finished = True
        self.computing -= 1
        estimate = group.estimate_bytes()
        if estimate > self.bytes_per_group:
            self.bytes_per_group = estimate
        data, live = group.final_values(self.output_names)
        if self.writer is not None:
            self.writer.submit(self._stamp(group, live), data, self.upgrades.replaced_version(rg))
        else:
            self.memory[rg] = data
            self._release(rg, live)

    def _stamp(self, group: GroupBuffers, live: int) -> GroupStamp:
        """What the finished *group*'s file records: its version, fingerprints and drops."""
        assert self.store is not None and self.store.version is not None
        fingerprints = self.store.version.fingerprints
        return GroupStamp(
            row_group=group.row_group,
            generation=self.store.generation,
            size=group.size,
            rows=live,
            columns={c.name: (fingerprints[c.name], c.outputs) for c in self.columns},
            dropped=group.drop_culprits(),
        )

    def _collect_writes(self, writer: GroupWriter) -> None:
        try:
            writer.collect(self._release)
        except OSError:
            if self.store is not None:  # a newer attempt removed this one's temporary file
                self.store.refuse_if_superseded("while writing a row group")
            raise

    def _release(self, rg: int, live: int) -> None:
        """A finished group's output is safe: compact it in the tracker and drop its buffers."""
        self.tracker.compact_row_group(rg)
        self.counted.add(rg)
        group = self.groups.pop(rg)
        self.records += live
        self.dropped += group.size - live

    # ------------------------------------------------------------------ checkpoints and stopping

    def _checkpoint(self, *, final: bool = False) -> None:
        """Save the tracker and the active groups' values as one atomic file."""
        if self.store is None:
            return
        if self.writer is not None:
            self.writer.sync()
        stats = checkpoint_stats(self, final=final)
        values = {rg: group.columns for rg, group in self.groups.items()}
        drops = {rg: dict(group.culprits) for rg, group in self.groups.items() if group.culprits}
        self.store.save(self.tracker, values, stats, self.ledger.tasks, drops)

    async def _abort(self, exc: BaseException) -> None:
        """Stop everything in flight, keep what is durable, then checkpoint (unless stale)."""
        await self.dispatch.cancel()
        if self.writer is not None:
            self.writer.settle(self._release)
        if isinstance(exc, (StaleShardError, OutputDirError, CheckpointError)):
            return
        with contextlib.suppress(StaleShardError):
            self._checkpoint()

    def _close_pools(self) -> None:
        self.dispatch.close()
        self.upgrades.close()
        if self.writer is not None:
            self.writer.close()

    # ------------------------------------------------------------------ reporting

    def _progress(self, now: float) -> JobProgress:
        return shard_progress(self, now)

    def _result(self, seconds: float, cpu_seconds: float) -> JobResult:
        return shard_result(self, seconds, cpu_seconds, self.layout.root if self.layout is not None else None)
