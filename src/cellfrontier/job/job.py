"""``Job``: the public API of a whole generation job over the tracker.

``Job()`` checks its arguments; each run builds a frozen :class:`~cellfrontier.job.spec.JobSpec`
from the job as it is then and hands it to the run layer (this process, or a Dask cluster).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cellfrontier._validate import as_count, check_group_size
from cellfrontier.errors import InvalidArgumentError
from cellfrontier.graph import ExecutionGraph
from cellfrontier.job.columns import ColumnSpec, resolve_columns
from cellfrontier.job.errors import OutputDirError, RunningLoopError
from cellfrontier.job.progress import JobProgress
from cellfrontier.job.result import JobResult
from cellfrontier.job.run.cluster import run_on_cluster
from cellfrontier.job.run.local_run import run_locally
from cellfrontier.job.run.preview import JobPreview, preview_job
from cellfrontier.job.run.rerun_plan import RerunPlan, plan_rerun
from cellfrontier.job.run.workers import run_on_local_workers
from cellfrontier.job.shard.interrupts import StopSignals
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.generations import version_request

__all__ = ["Job"]


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidArgumentError(f"Job() needs a number >= 0 for {what}, got {value!r}")
    return float(value)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _output_path(output_dir: str | os.PathLike[str] | None) -> Path | None:
    """*output_dir* as a path; a URL would otherwise become a local folder named ``s3:``."""
    if output_dir is None:
        return None
    if isinstance(output_dir, str) and _URL.match(output_dir):
        raise OutputDirError(
            f"output_dir must be a filesystem path (local, or shared by every worker), got the URL "
            f"{output_dir!r}: a job's checkpoints and row-group files need exclusive creation and "
            "atomic renames, which object stores do not offer; mount the storage and pass its path"
        )
    return Path(output_dir)


class Job:
    """A generation job: a graph, one generator per column, and how many rows to make.

    ``generators`` maps every column of *graph* to a callable.  A ``cell_by_cell`` column's
    generator is called as ``fn(row)``, where ``row`` maps each upstream column (and its
    side-effect aliases) to that row's value and ``"_row"`` to the global row index; it returns
    the value, or a mapping ``{column: value, alias: value}`` when the column has side-effect
    aliases.  A ``full_column`` generator is called as ``fn(batch)``, where ``batch`` maps each
    upstream column to the list of its values on the group's live rows and ``"_row"`` to their
    global indices (a root column gets only ``"_row"``); it returns one value per live row, in
    order (or a mapping of column to such a sequence).  Plain functions run inline on the
    event-loop thread, in batches; ``async def`` functions run concurrently under the caps;
    plain functions that wait on I/O should be marked with :func:`cellfrontier.blocking` so
    they run on a thread pool.

    A call fails when its generator raises (``asyncio.CancelledError`` included, unless the job
    itself cancelled it) or, for an async call, runs past its timeout.  A failed call is
    retried (``retries``), then its row is dropped; an exception whose ``retryable`` attribute
    is ``False`` (a model column's refused request) drops the row at once.  A plain generator
    that returns an awaitable is refused (:class:`GeneratorOutputError`) before any of its
    values is stored.

    Generator objects may offer hooks, which the job calls by name (it imports no generator
    library): ``check_inputs(column, inputs)`` when the job is made (refuse what the column
    will not get in its row: a model column's template field); ``usage`` (an object with
    ``as_dict()`` of int counters) and ``usage_group`` (a model name): counted per column and
    per model, checkpointed, in :attr:`JobResult.usage` and as calls/s and tokens/s on the
    progress bar; ``share_caps(share)``: told what part of a per-process cap its process may
    use while the job runs on a cluster; an async ``aclose_loop()``: awaited at the end of each
    shard on its event loop (close the loop's connections; the generator stays usable).

    Options (keyword-only):

    - ``buffer_size``: rows per row group (the unit of admission, output and release).
    - ``max_active_row_groups``: a fixed admission window; by default admission is adaptive
      (groups are admitted while the caps have idle slots, bounded by ``memory_budget``).
    - ``concurrency``: column -> most calls in flight (async) or batches in flight (blocking);
      defaults: 64 per async column, 4 per blocking column.  ``max_concurrency`` caps the
      whole job.  Inline columns run one call at a time by construction.  On a cluster
      (``run(client=...)`` or ``run(workers=N)``) they stay the whole job's numbers: each
      shard gets its part, the parts of the shards running at once adding up to them (so
      while fewer shards run, at the job's end, the job uses less than its caps).
    - ``call_timeout`` / ``timeouts``: seconds an async call may run (the job's default, and
      column -> seconds or None); past it the call is cancelled and fails with
      :class:`GeneratorTimeoutError`.  Plain and blocking calls cannot be cancelled, so a
      timeout applies to async columns only (naming another column in ``timeouts`` is
      refused).  None (the default) sets no limit.
    - ``retries`` / ``retry_backoff`` / ``max_retry_backoff``: a failing call is retried up to
      ``retries`` times, ``retry_backoff * 2**(n-1)`` seconds apart (0 retries at once), then
      its row is dropped (all live rows of the group for a full column).
    - ``max_error_rate`` / ``min_error_sample``: once at least ``min_error_sample`` calls ran,
      a share of failed calls above ``max_error_rate`` stops the job with
      :class:`ErrorRateExceededError` (after checkpointing).  ``keep_errors`` failures are kept
      with their tracebacks in the result.
    - ``output_dir``: finished row groups are written there as Parquet (needs pyarrow), the
      job checkpoints every ``checkpoint_interval`` seconds (and every ``checkpoint_every``
      completed tasks when set) and on Ctrl-C / SIGTERM, and running the same job on the same
      directory resumes it.  Without it, the output stays in memory.  ``run(client=...)``
      runs the job on a Dask cluster (``output_dir`` then required, on storage the workers
      share).  It is a filesystem path: URLs (``s3://...``) are refused, since resuming and
      fencing need exclusive creation and atomic renames, which object stores do not offer.
    - ``progress``: a callback receiving :class:`JobProgress` every ``progress_interval``
      seconds; ``progress_bar``: True/False forces the stderr bar on or off, None (default)
      draws it on a terminal and logs to ``cellfrontier.job`` every ``log_interval`` seconds
      otherwise.
    - ``tune_gc``: while the job runs, freeze the objects that exist at its start and raise the
      collector's young-generation threshold (see :mod:`cellfrontier.job.shard.gctuning`);
      restored when it returns.
    """

    def __init__(
        self,
        graph: ExecutionGraph,
        generators: Mapping[str, Callable[..., Any]],
        num_records: int,
        *,
        buffer_size: int = 1000,
        max_active_row_groups: int | None = None,
        concurrency: Mapping[str, int] | None = None,
        max_concurrency: int | None = None,
        call_timeout: float | None = None,
        timeouts: Mapping[str, float | None] | None = None,
        retries: int = 0,
        retry_backoff: float = 0.5,
        max_retry_backoff: float = 30.0,
        max_error_rate: float = 0.25,
        min_error_sample: int = 200,
        keep_errors: int = 5,
        output_dir: str | os.PathLike[str] | None = None,
        checkpoint_interval: float = 5.0,
        checkpoint_every: int | None = None,
        memory_budget: int = 512 * 2**20,
        progress: Callable[[JobProgress], None] | None = None,
        progress_bar: bool | None = None,
        progress_interval: float = 0.5,
        log_interval: float = 10.0,
        tune_gc: bool = True,
    ) -> None:
        if not isinstance(graph, ExecutionGraph):
            raise InvalidArgumentError(
                f"Job() needs a cellfrontier ExecutionGraph, got {type(graph).__name__}"
            )
        self.graph = graph
        self.num_records = as_count(num_records, "num_records", "Job")
        self.buffer_size = check_group_size(buffer_size, "Job", "buffer_size", 1)
        self.max_active_row_groups = (
            None
            if max_active_row_groups is None
            else as_count(max_active_row_groups, "max_active_row_groups", "Job", 1)
        )
        self.max_concurrency = (
            None if max_concurrency is None else as_count(max_concurrency, "max_concurrency", "Job", 1)
        )
        self.retries = as_count(retries, "retries", "Job")
        self.retry_backoff = _non_negative(retry_backoff, "retry_backoff")
        self.max_retry_backoff = _non_negative(max_retry_backoff, "max_retry_backoff")
        self.max_error_rate = _non_negative(max_error_rate, "max_error_rate")
        self.min_error_sample = as_count(min_error_sample, "min_error_sample", "Job")
        self.keep_errors = as_count(keep_errors, "keep_errors", "Job")
        self.output_dir = _output_path(output_dir)
        self.checkpoint_interval = _non_negative(checkpoint_interval, "checkpoint_interval")
        self.checkpoint_every = (
            None if checkpoint_every is None else as_count(checkpoint_every, "checkpoint_every", "Job", 1)
        )
        self.memory_budget = as_count(memory_budget, "memory_budget", "Job", 1)
        if progress is not None and not callable(progress):
            raise InvalidArgumentError(
                f"Job() needs a callable progress callback, got {type(progress).__name__}"
            )
        self.progress = progress
        self.progress_bar = progress_bar
        self.progress_interval = _non_negative(progress_interval, "progress_interval")
        self.log_interval = _non_negative(log_interval, "log_interval")
        self.tune_gc = bool(tune_gc)
        self.generators = dict(generators) if isinstance(generators, Mapping) else generators
        self.concurrency = dict(concurrency or {})
        self.call_timeout = call_timeout
        self.timeouts = dict(timeouts or {})
        self._columns: tuple[ColumnSpec, ...] = resolve_columns(
            graph, self.generators, self.concurrency, self.timeouts, call_timeout
        )

    # -- shape of the job ----------------------------------------------------------------

    @property
    def num_row_groups(self) -> int:
        """Row groups of the job: ids ``0 .. num_row_groups - 1``."""
        return -(-self.num_records // self.buffer_size)

    def spec(self) -> JobSpec:
        """The job as it is now, frozen: what a run hands to the layers that run it.

        The columns are resolved once, when the job is made (every generator checked then).
        """
        return JobSpec(
            graph=self.graph,
            columns=self._columns,
            num_records=self.num_records,
            buffer_size=self.buffer_size,
            max_active_row_groups=self.max_active_row_groups,
            max_concurrency=self.max_concurrency,
            retries=self.retries,
            retry_backoff=self.retry_backoff,
            max_retry_backoff=self.max_retry_backoff,
            max_error_rate=self.max_error_rate,
            min_error_sample=self.min_error_sample,
            keep_errors=self.keep_errors,
            output_dir=self.output_dir,
            checkpoint_interval=self.checkpoint_interval,
            checkpoint_every=self.checkpoint_every,
            memory_budget=self.memory_budget,
            progress=self.progress,
            progress_bar=self.progress_bar,
            progress_interval=self.progress_interval,
            log_interval=self.log_interval,
            tune_gc=self.tune_gc,
        )

    def replace(self, **changes: Any) -> Job:
        """A copy of the job with some of ``num_records`` and its keyword options changed.

        The copy is checked as ``Job()`` checks a new job; the graph and generators are the
        same objects.  (What ``cellfrontier run --rows/--output-dir`` uses.)
        """
        parameters = inspect.signature(Job.__init__).parameters
        options = {name: getattr(self, name) for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
        unknown = sorted(set(changes) - set(options) - {"num_records"})
        if unknown:
            raise InvalidArgumentError(
                f"Job.replace() got unknown option(s) {unknown}; it takes {sorted(options)}"
            )
        num_records = changes.pop("num_records", self.num_records)
        return type(self)(self.graph, self.generators, num_records, **{**options, **changes})

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the job in its output directory: its job version's record, unnumbered.

        Each column's generator print and strategy, the graph and the sizes (see
        :mod:`cellfrontier.job.store.generations`).
        """
        return version_request(self.spec())

    def _requested(self, row_groups: range | None) -> range | None:
        total = self.num_row_groups
        if row_groups is None:
            return None
        if not isinstance(row_groups, range) or row_groups.step != 1:
            raise InvalidArgumentError(f"run() needs row_groups as a range with step 1, got {row_groups!r}")
        if not 0 <= row_groups.start <= row_groups.stop <= total:
            raise InvalidArgumentError(f"run() got row_groups {row_groups!r} outside range(0, {total})")
        return row_groups

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        *,
        row_groups: range | None = None,
        client: Any = None,
        workers: int | None = None,
        shards: int | None = None,
        shard_retries: int = 2,
    ) -> JobResult:
        """Run the job to the end (or only the shard ``row_groups``, a contiguous range of row groups).

        Blocks.  From inside a running event loop use ``await job.run_async()`` instead.

        With ``client`` (a ``distributed.Client``) the job runs on that Dask cluster: its row
        groups are cut into ``shards`` contiguous ranges (by default four per worker thread),
        each a Dask task running the shard on a worker, resumable from its own checkpoint under
        ``output_dir`` (required, and visible to every worker and to this process).  A shard
        attempt that raises is retried ``shard_retries`` times by Dask; a worker lost while it
        runs a shard counts against the scheduler's ``distributed.scheduler.allowed-failures``
        instead.  See :func:`cellfrontier.job.run.cluster.run_on_cluster`.

        With ``workers=N`` the job runs the same way on a cluster of N single-thread worker
        processes on this machine (127.0.0.1 only), started for the run and closed after it,
        even on failure: the way to use N cores.  It needs ``output_dir`` too.
        """
        if workers is not None:
            if client is not None or row_groups is not None:
                raise InvalidArgumentError(
                    "run(workers=...) starts its own cluster and runs the whole job; it takes neither "
                    "client= nor row_groups="
                )
            return run_on_local_workers(self.spec(), workers, shards=shards, shard_retries=shard_retries)
        if client is not None:
            if row_groups is not None:
                raise InvalidArgumentError(
                    "run(client=...) runs the whole job; row_groups= is for local runs"
                )
            return run_on_cluster(self.spec(), client, shards=shards, shard_retries=shard_retries)
        if shards is not None:
            raise InvalidArgumentError(
                "run(shards=...) cuts a job for a cluster and needs client=; a local run runs the shards "
                "its output_dir holds, or one over the whole job"
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RunningLoopError(
                "Job.run() cannot be called from a running event loop; use `await job.run_async()`"
            )
        shard = self._requested(row_groups)
        spec = self.spec()
        with StopSignals() as signals:
            return asyncio.run(run_locally(spec, shard, signals))

    async def run_async(self, *, row_groups: range | None = None) -> JobResult:
        """Run the job on the current event loop (see :meth:`run`).

        Ctrl-C / SIGTERM (when running in the main thread): the job checkpoints, then hands
        the signal to the handler that was installed before it; if that handler returns
        (asyncio's own Ctrl-C handler cancels the main task and returns), the job raises
        :class:`JobInterruptedError`.
        """
        shard = self._requested(row_groups)
        spec = self.spec()
        with StopSignals() as signals:
            return await run_locally(spec, shard, signals)

    def plan_rerun(self) -> RerunPlan:
        """What running the job on its ``output_dir`` will do, before any work (nothing is written).

        Which columns the directory's files keep, which are computed again and why (changed,
        upstream changed, volatile, the Python version), which are added and removed, the rows
        added and how many tasks the run will compute.  Raises what the run would refuse
        (:class:`RerunRefusedError`: fewer rows, another ``buffer_size``).
        """
        if self.output_dir is None:
            raise InvalidArgumentError(
                "plan_rerun() needs output_dir: without it every run computes everything"
            )
        return plan_rerun(self.spec())

    def preview(self, n: int = 10) -> JobPreview:
        """Compute the job's first *n* rows in memory and return them, writing nothing.

        The rows (``.table``, a pyarrow Table when pyarrow is installed, and ``.data``, a dict
        of lists) and the failures (``.error_samples``), whatever ``output_dir`` says: to read a
        few rows after an edit before running the job.  Blocks; not from a running event loop.
        """
        count = as_count(n, "n", "preview", 1)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RunningLoopError("Job.preview() cannot be called from a running event loop")
        return preview_job(self.spec(), count)

    def __repr__(self) -> str:
        return (
            f"Job(columns={len(self.graph.columns)}, num_records={self.num_records:,}, "
            f"buffer_size={self.buffer_size}, output_dir={self.output_dir and str(self.output_dir)!r})"
        )
