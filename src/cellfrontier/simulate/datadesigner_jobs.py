"""NVIDIA DataDesigner running the whole-job workloads J12 and J12-LAT through its own engine.

This is the comparison side of the job benchmarks and of ``cellfrontier simulate --workload
J12 --backend datadesigner``: the same twelve-column job that cellfrontier's runner executes,
built as a DataDesigner config and run by DataDesigner's ``DatasetBuilder.build()`` (the async
task-queue engine, writing one Parquet file per row group), with no model calls.  The job's
columns, generators, latency and checks are J12's own
(:mod:`cellfrontier.testing.j12`); what is here is what DataDesigner needs around
them.  DataDesigner is imported lazily (nothing imports this module at package import) and
never copied; without it every entry point raises :class:`DataDesignerUnavailable` with an
install hint (``dd_skip_reason()`` tells beforehand).

    from cellfrontier.simulate.datadesigner_jobs import run_dd_j12
    run = run_dd_j12(20_000)                                   # DataDesigner's own tracker
    run = run_dd_j12(20_000, cellfrontier_backend=True)        # with install() in effect
    run = run_dd_j12(36_000, latency=True)                     # J12-LAT
    print(run.summary())

    python -m cellfrontier.simulate.datadesigner_jobs 20000 --buffer 1000 10000 --compare

How the job is expressed in DataDesigner
----------------------------------------
* **Root columns** (``region``, ``price``, ``order_id``, ``row_key``) are custom
  ``full_column`` generators with no required columns.  DataDesigner runs such a root as one
  from-scratch task per row group and hands it a DataFrame with one row per row of the group,
  indexed ``0 .. size - 1``.  A custom generator is not told its row group, but the async
  scheduler sets ``data_designer.engine.context.current_row_group_start_offset`` (a
  ``ContextVar``: the group's planned first row in the whole dataset) around every task, and
  the variable follows the call into the worker thread.  So a root computes the global row
  indices as ``start_offset + df.index`` and hands them to J12's generator as ``"_row"``.
* **Cell columns** (``h``, ``bucket``, ``code``, ``label``, ``total``, ``sig``, ``final``) are
  custom ``cell_by_cell`` generators.  A cell generator receives only its row's values (no
  index, no row group), which is all J12's cell generators read; J12-LAT's latency seed ``i``
  is read from the row's ``row_key``, a root
  column whose value is ``i`` and that every cell column depends on (directly or through
  ``h``), so it is always in the row.  Plain ``def`` generators run on DataDesigner's worker
  threads (``asyncio.to_thread``, one hand-off per cell); ``async def`` ones run on its event
  loop.
* ``summary`` is a custom ``full_column`` generator over ``code``, ``label`` and ``total``,
  handed to J12's generator as lists.
* **One sampler column.**  DataDesigner needs at least one sampler or seed column to start a
  row group: without one it adds a UUID sampler named ``_internal_row_id`` and a processor
  that drops it.  The job carries its own instead, ``tier``, a category sampler kept in the
  output; its values are checked for membership.  None of J12's twelve columns can be a
  sampler, since a sampler draws at random and every J12 value is a function of the row index.
  DataDesigner runs all sampler columns of a row group as one from-scratch task.

Settings (``RunConfig``): ``buffer_size`` is the row-group size (1,000 by default);
``max_concurrent_row_groups`` bounds the active row groups (DataDesigner's default, 3, is
kept); ``max_in_flight_tasks`` bounds the tasks holding an admission lease at once, the whole
job's cap (default 1,024, the J12-LAT figure).  DataDesigner (0.9.6, 0.9.7) has no setting that caps one
non-model column: per-group caps exist only for model-backed columns (``max_parallel_requests``
of the model, or twice the alias count of a custom column that declares models, which would
also make it ping the model endpoints at start).  J12-LAT's per-column cap of 256 is therefore
enforced inside each generator by an ``asyncio.Semaphore(256)``; a call waiting on it holds its
lease as a model call waiting for a request slot does, and the peak calls past the semaphore
are counted per column and reported.

What a run measures (:class:`JobRun`): wall and CPU seconds (``time.process_time``: every
thread of the process) of building the builder and running ``build()``, the tasks the
generators saw, the peak RSS growth over the run (Linux: the high-water mark reset through
``/proc/self/clear_refs`` before the run; elsewhere a sampling thread), and a checksum of the
output.  The output is read back from the Parquet files after the clock stops and checked cell
by cell against J12 (:func:`check_j12_table`); a run that produced anything else
raises :class:`J12Mismatch`.  The time the garbage collector ran is recorded too
(``gc.callbacks``): nothing is frozen out of its view by default, as in a real DataDesigner
process, whose imports leave over 150,000 objects for every full collection to walk.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellfrontier.simulate.reporting import PeakRss
from cellfrontier.testing.j12 import (
    CELL_COLUMNS,
    FULL_COLUMNS,
    J12,
    J12_COLUMNS,
    LAT_CEILING_PER_SECOND,
    LAT_COLUMN_CAP,
    LAT_JOB_CAP,
    LAT_MEAN_SECONDS,
    J12Column,
    j12_differences,
    j12_generators,
    j12_lat_delay,
)

__all__ = [
    "DD_DEFAULT_MAX_ACTIVE_ROW_GROUPS",
    "LAT_DEFAULT_ROWS",
    "SAMPLER_COLUMN",
    "SAMPLER_VALUES",
    "BackendComparison",
    "DataDesignerUnavailable",
    "J12Mismatch",
    "JobRun",
    "build_j12_config",
    "check_j12_table",
    "compare_tracker_backends",
    "dd_skip_reason",
    "run_dd_j12",
    "table_checksum",
    "warm_up",
]

SAMPLER_COLUMN = "tier"
SAMPLER_VALUES = ("gold", "silver", "bronze")
"""The job's one sampler column (DataDesigner needs one to start a row group)."""

LAT_DEFAULT_ROWS = 36_000
"""J12-LAT rows for DataDesigner: 252,000 cell tasks, over 60 s at the 2,700-3,400 cells/s it
reaches (a faster run would need more rows to last the 60 s the workload asks for)."""

DD_DEFAULT_MAX_ACTIVE_ROW_GROUPS = 3
"""DataDesigner's default ``RunConfig.max_concurrent_row_groups``, kept for both workloads."""


# --------------------------------------------------------------------------- availability


class DataDesignerUnavailable(RuntimeError):
    """NVIDIA DataDesigner (``data-designer-engine``) cannot be imported here."""


class J12Mismatch(AssertionError):
    """A job's output differs from J12's formulas."""


INSTALL_HINT = (
    "NVIDIA DataDesigner is not installed: pip install 'cellfrontier[datadesigner]' "
    "(or this project's 'datadesigner' extra)"
)


def dd_skip_reason() -> str | None:
    """Why the DataDesigner job cannot run here (a message with an install hint), or None."""
    try:
        _import_engine()
    except DataDesignerUnavailable as exc:
        return str(exc)
    return None


def _import_engine() -> dict[str, Any]:
    """DataDesigner's engine entry points, or :class:`DataDesignerUnavailable`."""
    try:
        import pyarrow.parquet as pq
        from data_designer.config.column_configs import (
            CustomColumnConfig,
            GenerationStrategy,
            SamplerColumnConfig,
        )
        from data_designer.config.custom_column import custom_column_generator
        from data_designer.config.data_designer_config import DataDesignerConfig
        from data_designer.config.models import ModelProvider
        from data_designer.config.run_config import RunConfig
        from data_designer.config.sampler_params import CategorySamplerParams, SamplerType
        from data_designer.engine import context as dd_context
        from data_designer.engine.dataset_builders import dataset_builder as dd_builder
        from data_designer.engine.model_provider import resolve_model_provider_registry
        from data_designer.engine.resources.resource_provider import create_resource_provider
        from data_designer.engine.resources.seed_reader import SeedReaderRegistry
        from data_designer.engine.secret_resolver import PlaintextResolver
        from data_designer.engine.storage.artifact_storage import ArtifactStorage
    except ImportError as exc:
        raise DataDesignerUnavailable(f"{INSTALL_HINT}; import failed: {exc}") from exc
    return {
        "pq": pq,
        "CustomColumnConfig": CustomColumnConfig,
        "GenerationStrategy": GenerationStrategy,
        "SamplerColumnConfig": SamplerColumnConfig,
        "custom_column_generator": custom_column_generator,
        "DataDesignerConfig": DataDesignerConfig,
        "ModelProvider": ModelProvider,
        "RunConfig": RunConfig,
        "CategorySamplerParams": CategorySamplerParams,
        "SamplerType": SamplerType,
        "context": dd_context,
        "builder_module": dd_builder,
        "resolve_model_provider_registry": resolve_model_provider_registry,
        "create_resource_provider": create_resource_provider,
        "SeedReaderRegistry": SeedReaderRegistry,
        "PlaintextResolver": PlaintextResolver,
        "ArtifactStorage": ArtifactStorage,
    }


# --------------------------------------------------------------------------- the job as a config


class JobProbe:
    """What the generators saw: calls per column, and (with latency) calls in flight.

    Plain generators run on several worker threads at once, so the counters take a lock; its
    cost (well under a microsecond) is noise beside DataDesigner's hundreds per task.
    """

    def __init__(self, column_cap: int = LAT_COLUMN_CAP) -> None:
        self.column_cap = column_cap
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {c.name: 0 for c in J12_COLUMNS}
        self.in_flight: dict[str, int] = dict.fromkeys(CELL_COLUMNS, 0)
        self.peak_in_flight: dict[str, int] = dict.fromkeys(CELL_COLUMNS, 0)
        self.total_in_flight = 0
        self.peak_total_in_flight = 0
        self.row_groups_in_flight: dict[int, int] = {}
        self.peak_row_groups_in_flight = 0
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.latency_asked = 0.0
        self.latency_taken = 0.0

    def total_calls(self) -> int:
        """Generator calls so far, every column (read without the lock: a progress figure)."""
        return sum(list(self.calls.values()))

    def count(self, column: str) -> None:
        """One call of *column*'s generator."""
        with self._lock:
            self.calls[column] += 1

    def enter(self, column: str, row_group: int) -> None:
        """A latency call starts (only ever called on the event loop, so no lock)."""
        self.calls[column] += 1
        self.in_flight[column] += 1
        self.peak_in_flight[column] = max(self.peak_in_flight[column], self.in_flight[column])
        self.total_in_flight += 1
        self.peak_total_in_flight = max(self.peak_total_in_flight, self.total_in_flight)
        self.row_groups_in_flight[row_group] = self.row_groups_in_flight.get(row_group, 0) + 1
        self.peak_row_groups_in_flight = max(self.peak_row_groups_in_flight, len(self.row_groups_in_flight))

    def leave(self, column: str, row_group: int) -> None:
        """A latency call ends."""
        self.in_flight[column] -= 1
        self.total_in_flight -= 1
        left = self.row_groups_in_flight[row_group] - 1
        if left:
            self.row_groups_in_flight[row_group] = left
        else:
            del self.row_groups_in_flight[row_group]

    def slept(self, asked: float, taken: float) -> None:
        """A latency call asked to sleep *asked* seconds and got its result back after *taken*."""
        self.latency_asked += asked
        self.latency_taken += taken

    def semaphore(self, column: str) -> asyncio.Semaphore:
        """The per-column cap, created on first use inside DataDesigner's event loop."""
        sem = self.semaphores.get(column)
        if sem is None:
            sem = self.semaphores[column] = asyncio.Semaphore(self.column_cap)
        return sem


def build_j12_config(
    probe: JobProbe | None = None,
    *,
    latency: bool = False,
    mean_latency: float | None = None,
    async_cells: bool = False,
    sampler_column: bool = True,
) -> Any:
    """J12 as a DataDesigner ``DataDesignerConfig``: custom columns calling J12's generators.

    *latency* makes every cell generator ``async`` and await J12-LAT's latency (mean
    *mean_latency* seconds, 50 ms by default) under a per-column
    ``asyncio.Semaphore(probe.column_cap)`` (256 by default) first.  *async_cells*
    makes them ``async`` without latency (DataDesigner then runs them on its event loop instead
    of handing each call to a worker thread).
    *sampler_column* adds the ``tier`` category sampler; without it DataDesigner adds its own
    UUID sampler and a processor that drops it.  *probe*, if given, counts the calls.
    """
    dd = _import_engine()
    custom = dd["custom_column_generator"]
    column_config = dd["CustomColumnConfig"]
    full = dd["GenerationStrategy"].FULL_COLUMN
    start_offset = dd["context"].current_row_group_start_offset
    current_row_group = dd["context"].current_row_group
    counter = probe if probe is not None else JobProbe()
    columns: list[Any] = []
    if sampler_column:
        columns.append(
            dd["SamplerColumnConfig"](
                name=SAMPLER_COLUMN,
                sampler_type=dd["SamplerType"].CATEGORY,
                params=dd["CategorySamplerParams"](values=list(SAMPLER_VALUES)),
            )
        )

    generators = j12_generators()
    mean = LAT_MEAN_SECONDS if mean_latency is None else mean_latency

    def full_column_generator(column: J12Column) -> Callable[..., Any]:
        name, value, upstream = column.name, generators[column.name], column.depends_on

        def generate(df: Any) -> Any:
            counter.count(name)
            offset = start_offset.get()
            if offset is None:
                raise RuntimeError("DataDesigner did not set the row group's start offset")
            batch: dict[str, Any] = {up: df[up].tolist() for up in upstream}
            batch["_row"] = [offset + local for local in df.index]
            df[name] = value(batch)
            return df

        generate.__name__ = f"j12_{name}"
        return custom(required_columns=list(upstream))(generate) if upstream else custom()(generate)

    def cell_generator(column: J12Column) -> Callable[..., Any]:
        name, value = column.name, generators[column.name]
        if latency:

            async def generate_late(row: dict[str, Any]) -> dict[str, Any]:
                group = current_row_group.get()
                row_group = group[0] if group is not None else -1
                async with counter.semaphore(name):
                    counter.enter(name, row_group)
                    try:
                        delay = j12_lat_delay(row["row_key"], mean)
                        slept_from = time.perf_counter()
                        await asyncio.sleep(delay)
                        counter.slept(delay, time.perf_counter() - slept_from)
                        row[name] = value(row)
                    finally:
                        counter.leave(name, row_group)
                return row

            generate: Callable[..., Any] = generate_late
        elif async_cells:

            async def generate_async(row: dict[str, Any]) -> dict[str, Any]:
                counter.count(name)
                row[name] = value(row)
                return row

            generate = generate_async
        else:

            def generate_plain(row: dict[str, Any]) -> dict[str, Any]:
                counter.count(name)
                row[name] = value(row)
                return row

            generate = generate_plain
        generate.__name__ = f"j12_{name}"
        return custom(required_columns=list(column.depends_on))(generate)

    for column in J12_COLUMNS:
        if column.strategy == "full_column":
            columns.append(
                column_config(
                    name=column.name,
                    generator_function=full_column_generator(column),
                    generation_strategy=full,
                )
            )
        else:
            columns.append(column_config(name=column.name, generator_function=cell_generator(column)))
    return dd["DataDesignerConfig"](columns=columns)


# --------------------------------------------------------------------------- checking the output


def check_j12_table(table: Any, rows: int, *, start: int = 0, limit: int = 5) -> list[str]:
    """Compare a table (pyarrow ``Table`` or pandas ``DataFrame``) with J12, cell by cell.

    Row ``k`` of the table must be global row ``start + k``. Returns the differences found
    (:func:`~cellfrontier.testing.j12.j12_differences`: at most *limit* per column,
    plus a count), empty when every cell is right. The sampler column, when present, must hold
    one of its category values.
    """
    names = list(table.column_names) if hasattr(table, "column_names") else list(table.columns)
    if len(table) != rows:
        return [f"{len(table):,} rows, expected {rows:,}"]
    data = {c.name: _column_values(table, c.name) for c in J12_COLUMNS if c.name in names}
    problems = j12_differences(data, rows, start=start, limit=limit)
    if SAMPLER_COLUMN in names:
        odd = [v for v in _column_values(table, SAMPLER_COLUMN) if v not in SAMPLER_VALUES]
        if odd:
            problems.append(
                f"{SAMPLER_COLUMN}: {len(odd):,} values outside {SAMPLER_VALUES}, e.g. {odd[0]!r}"
            )
    return problems


def _column_values(table: Any, name: str) -> list[Any]:
    column = table[name]
    return column.to_pylist() if hasattr(column, "to_pylist") else column.tolist()


def table_checksum(table: Any) -> str:
    """SHA-256 over J12's columns in row order (sampler values left out: they are random)."""
    digest = hashlib.sha256()
    for column in J12_COLUMNS:
        digest.update(column.name.encode())
        digest.update(repr(_column_values(table, column.name)).encode())
    return digest.hexdigest()


def _read_output(pq: Any, dataset_dir: Path) -> tuple[Any, int]:
    """The row-group files under *dataset_dir* concatenated in row-group order, and their count."""
    import pyarrow as pa

    files = sorted(dataset_dir.glob("batch_*.parquet"), key=lambda p: int(p.stem.split("_", 1)[1]))
    if not files:
        raise J12Mismatch(f"DataDesigner wrote no row-group file under {dataset_dir}")
    tables = [pq.read_table(p) for p in files]
    order = tables[0].column_names  # each file lists its columns in the order they finished
    return pa.concat_tables([t.select(order) for t in tables]), len(files)


# --------------------------------------------------------------------------- measuring a run


@dataclass
class JobRun:
    """One DataDesigner run of J12 or J12-LAT.

    ``seconds`` and ``cpu_seconds`` cover building the ``DatasetBuilder`` and its ``build()``
    (which writes every row group to Parquet); reading the output back and checking it are
    not timed.  Task counts are what the generators saw, plus one sampler task per row group.
    """

    workload: str
    backend: str
    rows: int
    buffer_size: int
    max_active_row_groups: int
    seconds: float
    cpu_seconds: float
    cell_tasks: int
    full_column_tasks: int
    row_groups: int
    peak_rss_growth: int
    gc_seconds: float
    """Wall time the garbage collector ran during the job (part of ``seconds``)."""
    gc_collections: int
    checksum: str
    tracker: str
    """The tracker class DataDesigner's builder used (module-qualified)."""
    calls: dict[str, int] = field(default_factory=dict)
    peak_in_flight: int = 0
    """J12-LAT: the most latency calls past their column's semaphore at once."""
    peak_in_flight_by_column: dict[str, int] = field(default_factory=dict)
    peak_row_groups_in_flight: int = 0
    """J12-LAT: the most row groups with a latency call in flight at once (active groups
    waiting only on full-column work are not counted, so this is a lower bound)."""
    latency_asked_seconds: float = 0.0
    """J12-LAT: the latencies the calls asked for, summed (about 50 ms a call)."""
    latency_taken_seconds: float = 0.0
    """J12-LAT: how long those sleeps really took until the call resumed, summed: an event loop
    too busy to run a timer's callback on time stretches every call."""
    ceiling_per_second: float = LAT_CEILING_PER_SECOND
    """J12-LAT: the cell tasks per second the caps allow at the run's mean latency (20,480)."""
    dataset: Any = None
    """The output as a pyarrow Table in row order, when asked for with ``keep_dataset``."""

    @property
    def tasks(self) -> int:
        """Every task: cells plus full-column (including sampler) tasks."""
        return self.cell_tasks + self.full_column_tasks

    @property
    def us_per_row(self) -> float:
        """Wall microseconds per row (compare jobs per row: DataDesigner's task count differs)."""
        return self.seconds / self.rows * 1e6

    @property
    def cpu_us_per_task(self) -> float:
        """CPU microseconds per task, every thread of the process counted."""
        return self.cpu_seconds / self.tasks * 1e6

    @property
    def cell_tasks_per_second(self) -> float:
        """Cell tasks finished per second of wall time."""
        return self.cell_tasks / self.seconds

    @property
    def mean_calls_in_flight(self) -> float:
        """J12-LAT: latency calls in flight, averaged over the run (their summed duration / wall)."""
        return self.latency_taken_seconds / self.seconds

    @property
    def utilization(self) -> float:
        """Cell tasks per second over J12-LAT's ceiling, 20,480 at 50 ms (meaningful with latency)."""
        return self.cell_tasks_per_second / self.ceiling_per_second

    def as_dict(self) -> dict[str, Any]:
        """Plain fields and derived figures, for JSON (the dataset left out)."""
        out = {k: v for k, v in self.__dict__.items() if k != "dataset"}
        out.update(
            tasks=self.tasks,
            us_per_row=self.us_per_row,
            cpu_us_per_task=self.cpu_us_per_task,
            cell_tasks_per_second=self.cell_tasks_per_second,
            utilization=self.utilization,
            mean_calls_in_flight=self.mean_calls_in_flight,
        )
        return out

    def summary(self) -> str:
        """One line for logs."""
        line = (
            f"{self.workload} {self.backend} rows={self.rows:,} buffer={self.buffer_size:,}: "
            f"{self.seconds:.2f} s wall, {self.cpu_seconds:.2f} s CPU, {self.us_per_row:,.0f} us/row, "
            f"{self.cpu_us_per_task:,.0f} us CPU/task, {self.tasks:,} tasks "
            f"({self.cell_tasks:,} cell), gc {self.gc_seconds:.2f} s, "
            f"peak RSS +{self.peak_rss_growth / 2**20:,.1f} MiB"
        )
        if self.workload == "J12-LAT":
            line += (
                f", {self.cell_tasks_per_second:,.0f} cells/s = {self.utilization:.1%} of "
                f"{self.ceiling_per_second:,.0f}/s, peak {self.peak_in_flight} in flight "
                f"(mean {self.mean_calls_in_flight:,.0f}), a call's latency "
                f"{self.latency_asked_seconds / max(1, self.cell_tasks) * 1e3:.0f} ms asked, "
                f"{self.latency_taken_seconds / max(1, self.cell_tasks) * 1e3:.0f} ms taken"
            )
        return line


@contextlib.contextmanager
def _quiet_data_designer(quiet: bool) -> Iterator[None]:
    """Raise DataDesigner's loggers to WARNING for the block (its INFO lines are per row group)."""
    if not quiet:
        yield
        return
    logger = logging.getLogger("data_designer")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


class GcClock:
    """Time the garbage collector spends inside a block, on any thread (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


@contextlib.contextmanager
def _settled_gc(freeze: bool) -> Iterator[None]:
    """Collect, then (when *freeze*) hide everything alive from the collector for the block.

    By default nothing is frozen: a process that runs DataDesigner pays for the collector
    walking the objects its imports leave behind (about 200,000), and so does this job.  The
    tracker benchmarks freeze them instead (no backend should pay for what earlier runs left);
    ``freeze_gc=True`` measures the job that way.
    """
    gc.collect()
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()


@contextlib.contextmanager
def _reporting_calls(probe: JobProbe, progress: Callable[[int], None] | None) -> Iterator[None]:
    """Call *progress* with the probe's call count every 0.25 s from a thread, for the block."""
    if progress is None:
        yield
        return
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(0.25):
            progress(probe.total_calls())

    reporter = threading.Thread(target=report, name="j12-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        stop.set()
        reporter.join()
        progress(probe.total_calls())


@contextlib.contextmanager
def _tracker_backend(cellfrontier_backend: bool) -> Iterator[None]:
    if not cellfrontier_backend:
        yield
        return
    from cellfrontier.integrations import data_designer as cf_dd

    with cf_dd.installed():
        yield


def run_dd_j12(
    rows: int,
    buffer_size: int = J12.buffer_size,
    *,
    cellfrontier_backend: bool = False,
    latency: bool = False,
    mean_latency: float | None = None,
    async_cells: bool = False,
    sampler_column: bool = True,
    max_active_row_groups: int = DD_DEFAULT_MAX_ACTIVE_ROW_GROUPS,
    max_in_flight_tasks: int = LAT_JOB_CAP,
    column_cap: int = LAT_COLUMN_CAP,
    verify: bool = True,
    keep_dataset: bool = False,
    freeze_gc: bool = False,
    quiet: bool = True,
    artifact_dir: str | os.PathLike[str] | None = None,
    on_started: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> JobRun:
    """Run J12 (or J12-LAT with *latency*) through DataDesigner's ``DatasetBuilder.build()``.

    *cellfrontier_backend* runs it with ``cellfrontier.integrations.data_designer`` installed
    (DataDesigner's scheduler then uses cellfrontier's tracker).  *mean_latency* scales
    J12-LAT's delays (50 ms by default; tests use milliseconds).  *buffer_size* is the
    row-group size, *max_active_row_groups* DataDesigner's ``max_concurrent_row_groups`` and
    *max_in_flight_tasks* its whole-job task cap; *column_cap* is J12-LAT's per-column cap.
    With *verify* the output is checked cell by cell against J12 (:class:`J12Mismatch` if any
    cell differs).  The Parquet output goes to a temporary directory removed afterwards, or
    under *artifact_dir* (kept).  *freeze_gc* hides every object alive before the run from the
    garbage collector (DataDesigner's imports leave over 150,000); by default they stay visible,
    as in any process that runs DataDesigner.  *quiet* raises DataDesigner's loggers to WARNING
    for the run.  *on_started* is called just before the clock starts (a profiler hook).
    *progress*, if given, is called about four times a second with the generator calls made so
    far, from a thread that reads the call counters (the generators pay nothing for it).
    """
    if rows <= 0 or buffer_size <= 0:
        raise ValueError(f"rows and buffer_size must be positive, got {rows} and {buffer_size}")
    dd = _import_engine()
    probe = JobProbe(column_cap)
    mean = LAT_MEAN_SECONDS if mean_latency is None else mean_latency
    config = build_j12_config(
        probe, latency=latency, mean_latency=mean, async_cells=async_cells, sampler_column=sampler_column
    )
    run_config = dd["RunConfig"](
        buffer_size=buffer_size,
        max_concurrent_row_groups=max_active_row_groups,
        max_in_flight_tasks=max_in_flight_tasks,
        # J12 never fails; keep a stray error from stopping the job early and hiding it.
        disable_early_shutdown=True,
    )
    workdir = Path(artifact_dir) if artifact_dir is not None else Path(tempfile.mkdtemp(prefix="dd-j12-"))
    try:
        provider = dd["create_resource_provider"](
            artifact_storage=dd["ArtifactStorage"](artifact_path=workdir, dataset_name="j12"),
            model_configs=[],
            secret_resolver=dd["PlaintextResolver"](),
            # A provider is mandatory; it is never contacted because no column uses a model.
            model_provider_registry=dd["resolve_model_provider_registry"](
                [dd["ModelProvider"](name="offline", endpoint="http://127.0.0.1:9/v1")]
            ),
            seed_reader_registry=dd["SeedReaderRegistry"]([]),
            run_config=run_config,
        )
        builder_module = dd["builder_module"]
        with _quiet_data_designer(quiet), _tracker_backend(cellfrontier_backend):
            tracker = (
                f"{builder_module.CompletionTracker.__module__}.{builder_module.CompletionTracker.__name__}"
            )
            with (
                _settled_gc(freeze_gc),
                PeakRss() as rss,
                GcClock() as gc_clock,
                _reporting_calls(probe, progress),
            ):
                if on_started is not None:
                    on_started()
                wall0, cpu0 = time.perf_counter(), time.process_time()
                builder = builder_module.DatasetBuilder(config, provider)
                output_dir = builder.build(num_records=rows)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if builder.actual_num_records != rows:
            raise J12Mismatch(f"DataDesigner wrote {builder.actual_num_records:,} of {rows:,} records")
        table, files = _read_output(dd["pq"], Path(output_dir))
        if verify:
            problems = check_j12_table(table, rows)
            if problems:
                raise J12Mismatch(
                    "DataDesigner's J12 output differs from the formulas: " + "; ".join(problems)
                )
        checksum = table_checksum(table)
    finally:
        if artifact_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    groups = math.ceil(rows / buffer_size)
    sampler_tasks = groups  # every sampler column of a row group is one from-scratch task
    return JobRun(
        workload="J12-LAT" if latency else "J12",
        backend="datadesigner+cellfrontier" if cellfrontier_backend else "datadesigner",
        rows=rows,
        buffer_size=buffer_size,
        max_active_row_groups=max_active_row_groups,
        seconds=wall,
        cpu_seconds=cpu,
        cell_tasks=sum(probe.calls[c] for c in CELL_COLUMNS),
        full_column_tasks=sum(probe.calls[c] for c in FULL_COLUMNS) + sampler_tasks,
        row_groups=files,
        peak_rss_growth=rss.growth,
        gc_seconds=gc_clock.seconds,
        gc_collections=gc_clock.collections,
        checksum=checksum,
        tracker=tracker,
        calls=dict(probe.calls),
        peak_in_flight=probe.peak_total_in_flight,
        peak_in_flight_by_column=dict(probe.peak_in_flight) if latency else {},
        peak_row_groups_in_flight=probe.peak_row_groups_in_flight,
        latency_asked_seconds=probe.latency_asked,
        latency_taken_seconds=probe.latency_taken,
        ceiling_per_second=LAT_JOB_CAP / mean,
        dataset=table if keep_dataset else None,
    )


def warm_up() -> None:
    """One tiny run with each tracker, so that the first measured run pays no lazy import."""
    for cellfrontier_backend in (False, True):
        run_dd_j12(300, 100, cellfrontier_backend=cellfrontier_backend)


@dataclass
class BackendComparison:
    """The same DataDesigner job with its own tracker and with cellfrontier's, side by side."""

    data_designer: JobRun
    cellfrontier: JobRun

    @property
    def buffer_size(self) -> int:
        """The row-group size both runs used."""
        return self.data_designer.buffer_size

    @property
    def speedup(self) -> float:
        """Wall time with DataDesigner's tracker over wall time with cellfrontier's."""
        return self.data_designer.seconds / self.cellfrontier.seconds

    @property
    def cpu_speedup(self) -> float:
        """CPU time with DataDesigner's tracker over CPU time with cellfrontier's."""
        return self.data_designer.cpu_seconds / self.cellfrontier.cpu_seconds

    def as_dict(self) -> dict[str, Any]:
        """Both runs and the ratios, for JSON."""
        return {
            "buffer_size": self.buffer_size,
            "rows": self.data_designer.rows,
            "speedup": self.speedup,
            "cpu_speedup": self.cpu_speedup,
            "data_designer": self.data_designer.as_dict(),
            "cellfrontier": self.cellfrontier.as_dict(),
        }


def compare_tracker_backends(
    rows: int,
    buffer_sizes: Sequence[int] = (1_000, 10_000),
    *,
    rounds: int = 1,
    log: Callable[[str], None] | None = None,
    **run_options: Any,
) -> list[BackendComparison]:
    """J12 on DataDesigner with and without ``install()``, per buffer size, in one process.

    Each round runs both trackers back to back, alternating which goes first (so a drift in
    the machine's load hits both); with several rounds the faster run of each is kept.
    *run_options* go to :func:`run_dd_j12`.
    """
    warm_up()
    out: list[BackendComparison] = []
    for buffer_size in buffer_sizes:
        best: dict[bool, JobRun] = {}
        for round_number in range(rounds):
            order = (False, True) if round_number % 2 == 0 else (True, False)
            for cellfrontier_backend in order:
                run = run_dd_j12(rows, buffer_size, cellfrontier_backend=cellfrontier_backend, **run_options)
                if log is not None:
                    log(run.summary())
                kept = best.get(cellfrontier_backend)
                if kept is None or run.seconds < kept.seconds:
                    best[cellfrontier_backend] = run
        comparison = BackendComparison(data_designer=best[False], cellfrontier=best[True])
        if log is not None:
            log(
                f"buffer {buffer_size:,}: install() makes the job {comparison.speedup:.2f}x as fast "
                f"({comparison.cpu_speedup:.2f}x CPU)"
            )
        out.append(comparison)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: one run, or ``--compare`` for both trackers side by side."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Run J12 or J12-LAT through NVIDIA DataDesigner's engine (DatasetBuilder.build())."
    )
    parser.add_argument("rows", type=int, nargs="?", default=20_000)
    parser.add_argument("--buffer", type=int, nargs="+", default=[J12.buffer_size], help="row-group size(s)")
    parser.add_argument("--latency", action="store_true", help="J12-LAT instead of J12")
    parser.add_argument("--cellfrontier", action="store_true", help="with cellfrontier's tracker installed")
    parser.add_argument(
        "--compare", action="store_true", help="both trackers side by side at each --buffer size"
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --compare: rounds, fastest kept")
    args = parser.parse_args(argv)
    reason = dd_skip_reason()
    if reason:
        print(reason)
        return 2
    if args.compare:
        compare_tracker_backends(args.rows, args.buffer, rounds=args.rounds, log=print)
        return 0
    for buffer_size in args.buffer:
        run = run_dd_j12(args.rows, buffer_size, cellfrontier_backend=args.cellfrontier, latency=args.latency)
        print(run.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
