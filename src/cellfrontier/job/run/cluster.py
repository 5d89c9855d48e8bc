"""Running a job on a Dask cluster: each shard a Dask task, one progress view on the client.

``job.run(client=client)`` calls :func:`run_on_cluster`:

1. The client prepares ``output_dir`` (the manifest), cuts the job into shards (the ones the
   directory already holds are kept, the rest of the row groups are cut into about four per
   worker thread) and registers them, so every worker and any later run sees the same cut.
2. Each unfinished shard becomes one Dask task, :func:`run_shard_task`, which runs the shard's
   :class:`~cellfrontier.job.shard.runner.ShardRunner` on the worker: its own event loop, its
   part of the job's caps (:mod:`cellfrontier.job.run.caps`: the parts of the shards running
   at once add up to the job's numbers), its own admission, its own checkpoints (fenced by
   attempt epochs, see :mod:`cellfrontier.job.store.fencing`), row-group files written once
   into the shared layout.
3. Shards send their progress as small events (``Worker.log_event``) through the scheduler;
   the client keeps the latest per shard in a
   :class:`~cellfrontier.job.run.progress_board.ProgressBoard` and draws one bar (or calls the
   job's progress callback) for the whole job.
4. The client gathers each shard's result into one :class:`~cellfrontier.job.result.JobResult`.

Failures, and the Dask settings that govern them:

- A worker that dies while running a shard (killed, out of memory, its machine lost): the
  scheduler reschedules the shard on another worker, where the new attempt resumes from the
  shard's newest checkpoint.  Dask counts such deaths against the scheduler's
  ``distributed.scheduler.allowed-failures`` (default 3), not against ``retries``; past it the
  shard fails with :class:`ShardLostError`.  Shards run for minutes, so raise it on clusters
  whose workers come and go (preemptible machines), in the scheduler's configuration.
- A shard attempt that raises an unexpected error (an I/O error on the shared storage, say) is
  retried by Dask ``shard_retries`` times (``client.submit(..., retries=shard_retries)``), each
  retry resuming from the checkpoint.  The job's own errors (a malformed generator value, too
  many failed calls, a foreign directory, a newer attempt holding the shard) are returned
  rather than raised, so Dask does not retry what would fail the same way again.
- A shard whose task is cancelled (the client died or stopped waiting) notices it at its next
  progress report (about once a second), checkpoints and stops.  Rerunning the job, on the
  cluster or locally, resumes every shard from its checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cellfrontier._validate import as_count
from cellfrontier.errors import CellFrontierError, InvalidArgumentError
from cellfrontier.job.errors import JobCancelledError, MissingDependencyError, ShardLostError
from cellfrontier.job.progress import JobProgress
from cellfrontier.job.result import JobResult
from cellfrontier.job.run.caps import SlotPlan, local_slot
from cellfrontier.job.run.progress_board import shard_snapshot
from cellfrontier.job.run.setup import RunOfShards, open_run
from cellfrontier.job.shard.interrupts import StopSignals
from cellfrontier.job.shard.runner import ShardRunner
from cellfrontier.job.spec import JobSpec

__all__ = ["DEFAULT_SHARDS_PER_THREAD", "ShardOutcome", "run_on_cluster", "run_shard_task"]

logger = logging.getLogger("cellfrontier.job")

DEFAULT_SHARDS_PER_THREAD = 4
"""Shards per worker thread when ``shards`` is not given: enough for the scheduler to even out
workers of unequal speed (the last shard to finish is at most a quarter of a worker's share),
few enough that each shard's fixed cost (claiming, resuming, its checkpoint file) stays small."""
WORKER_PROGRESS_INTERVAL = 1.0
"""Seconds between a shard's progress events at least (and its checks for cancellation)."""


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "run(client=...) needs dask.distributed, which is not installed: pip install 'cellfrontier[dask]'"
        ) from None
    return distributed


@dataclass(frozen=True)
class ShardOutcome:
    """What a shard task returns: its result, or the job error it stopped with (not retried)."""

    first: int
    stop: int
    worker: str | None
    result: JobResult | None = None
    error: BaseException | None = None
    error_traceback: str = ""
    progress: dict[str, Any] | None = None
    """The shard's last progress snapshot (its final one when it finished)."""


# ---------------------------------------------------------------------- on the worker


class _ShardProgressSender:
    """The runner's progress callback on a worker: send an event, and stop if the task was cancelled."""

    def __init__(self, worker: Any, key: Any, topic: str, index: int) -> None:
        self.worker, self.key, self.topic, self.index = worker, key, topic, index
        self.runner: ShardRunner | None = None
        self.last: dict[str, Any] | None = None

    def __call__(self, progress: JobProgress) -> None:
        snapshot = shard_snapshot(progress, self.runner.epoch if self.runner is not None else 0)
        snapshot["shard"] = self.index
        self.last = snapshot
        if self.worker is None:
            return
        with contextlib.suppress(Exception):  # progress is best effort: never fail a shard over it
            self.worker.log_event(self.topic, snapshot)
        if self._cancelled():
            raise JobCancelledError(
                f"the task of row groups {self.runner.first if self.runner else '?'}.. was cancelled "
                "(its client stopped waiting); the shard checkpointed and stopped"
            )

    def _cancelled(self) -> bool:
        task = self.worker.state.tasks.get(self.key)
        return task is None or task.state in ("cancelled", "released", "forgotten")


def run_shard_task(
    spec: JobSpec,
    first: int,
    stop: int,
    index: int,
    topic: str,
    plan: SlotPlan | None = None,
    position: int = 0,
) -> ShardOutcome:
    """Dask task: run the shard ``[first, stop)`` of *spec* on this worker, resuming from its checkpoint.

    With *plan*, the shard runs with its part of the caps: its slot comes from its *position*
    among the shards to run, or from its worker and the slots free in this process.
    """
    distributed = _require_distributed()
    try:
        worker = distributed.get_worker()
        key = distributed.worker.thread_state.key
    except (ValueError, AttributeError):  # run outside a worker (a test calling it directly)
        worker, key = None, None
    address = getattr(worker, "address", None)
    with local_slot() as local:
        if plan is not None:
            name = None if worker is None else str(worker.name)
            spec = dataclasses.replace(spec, cap_share=plan.share(position, name, local))
        sender = _ShardProgressSender(worker, key, topic, index)
        runner = ShardRunner(spec, range(first, stop), report=sender)
        sender.runner = runner
        try:
            result = asyncio.run(runner.run(StopSignals()))
        except CellFrontierError as exc:  # the job's own errors: a retry would meet them again
            return ShardOutcome(first, stop, address, error=exc, error_traceback=traceback.format_exc())
    return ShardOutcome(first, stop, address, result=result, progress=sender.last)


# ---------------------------------------------------------------------- on the client


def run_on_cluster(
    spec: JobSpec, client: Any, *, shards: int | None = None, shard_retries: int = 2
) -> JobResult:
    """Run the job *spec* on the Dask cluster of *client*; returns the whole job's result (module doc)."""
    _require_distributed()
    if spec.output_dir is None:
        raise InvalidArgumentError(
            "run(client=...) needs output_dir: a directory that every worker and this process can reach"
        )
    if shards is not None:
        shards = as_count(shards, "shards", "run", 1)
    shard_retries = as_count(shard_retries, "shard_retries", "run")

    def per_thread() -> int:  # asked once the directory is known to be this job's
        return DEFAULT_SHARDS_PER_THREAD * max(1, sum(client.nthreads().values()))

    run = open_run(spec, new_shards=per_thread if shards is None else shards, register=True)
    board = run.show_progress()
    token = uuid.uuid4().hex[:12]
    topic = f"cellfrontier-progress-{token}"

    def on_event(event: tuple[float, Mapping[str, Any]]) -> None:
        message = event[1]
        board.update(int(message["shard"]), message)

    logger.info(
        "job on %d shards (%d already finished); Dask retries per shard %d, scheduler allowed-failures %s",
        len(run.shards),
        len(run.finished),
        shard_retries,
        _allowed_failures(client),
    )
    client.subscribe_topic(topic, on_event)
    worker_spec = run.spec.without_progress_display(max(spec.progress_interval, WORKER_PROGRESS_INTERVAL))
    to_run = [(index, shard) for index, shard in enumerate(run.shards) if shard not in run.finished]
    plan = SlotPlan.for_cluster(client.scheduler_info()["workers"], len(to_run))
    done_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
    futures: dict[Any, range] = {}
    try:
        for position, (index, shard) in enumerate(to_run):
            future = client.submit(
                run_shard_task,
                worker_spec,
                shard.start,
                shard.stop,
                index,
                topic,
                plan,
                position,
                key=f"cellfrontier-shard-{shard.start:08d}-{shard.stop:08d}-{token}",
                retries=shard_retries,
                pure=False,
            )
            futures[future] = shard
            future.add_done_callback(done_queue.put)
        outcomes = _gather(futures, done_queue, run)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)
    run.emit_progress(final=True)
    ordered = sorted(outcomes, key=lambda o: o.first)
    results = [o.result for o in ordered if o.result is not None]
    return run.result(results, row_groups=range(spec.num_row_groups), workers=[o.worker for o in ordered])


def _allowed_failures(client: Any) -> int | str:
    """The scheduler's ``allowed-failures`` (worker deaths a task survives), for the log."""
    try:
        return int(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures))
    except Exception:  # a scheduler that does not run client functions: the log says so
        return "unknown"


def _gather(
    futures: Mapping[Any, range], done_queue: queue.SimpleQueue[Any], run: RunOfShards
) -> list[ShardOutcome]:
    """Wait for every shard, showing progress meanwhile; raise the first failure."""
    board, reporter = run.board, run.reporter
    assert board is not None and reporter is not None
    outcomes: list[ShardOutcome] = []
    remaining = len(futures)
    while remaining:
        run.emit_progress()
        wait = max(0.01, reporter.next_due - time.perf_counter()) if reporter.active else 1.0
        try:
            future = done_queue.get(timeout=wait)
        except queue.Empty:
            continue
        remaining -= 1
        outcome = _outcome(future, futures[future])
        if outcome.progress is not None:  # exact final figures, whatever events are still under way
            board.update(int(outcome.progress["shard"]), outcome.progress)
        outcomes.append(outcome)
    return outcomes


def _outcome(future: Any, shard: range) -> ShardOutcome:
    distributed = _require_distributed()
    try:
        outcome: ShardOutcome = future.result()
    except distributed.KilledWorker as exc:
        raise ShardLostError(
            f"the shard of row groups [{shard.start}, {shard.stop}) lost {exc.allowed_failures + 1} workers "
            "while running, more than the scheduler's distributed.scheduler.allowed-failures="
            f"{exc.allowed_failures} allows; its checkpoint is saved: run the job again to resume it "
            "(and consider raising allowed-failures)"
        ) from exc
    if outcome.error is not None:
        raise outcome.error from _RemoteTraceback(outcome.error_traceback)
    return outcome


class _RemoteTraceback(Exception):
    """Carries the worker's traceback of a shard's error as the cause of the re-raised error."""

    def __str__(self) -> str:
        return f"\n(on the worker)\n{self.args[0]}"
