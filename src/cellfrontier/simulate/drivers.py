"""The reference driver, run against several trackers side by side.

The driver plays a scheduler whose generators finish instantly, so that only the tracker's own
cost is measured:

1. Row groups are ``(id, size)`` pairs of ``buffer_size`` rows (the last one shorter); at most
   ``window`` of them are active at once, and admitting one adds its root tasks to the frontier.
2. One tick takes every task in the frontier, acknowledges them (they leave the frontier), then
   completes each one in order: a full-column task marks its whole row range complete; a cell of
   the drop column whose global row (``row_group * buffer_size + row_index``) is divisible by
   ``drop_every`` drops the row; any other cell is marked complete.
3. After the tick, every active group whose non-dropped rows have every column done is compacted
   and leaves the window; pending groups take its place.
4. The run stops when no group is pending or active. An empty frontier while groups are active
   is a tracker bug and raises :class:`FrontierStall`.

:func:`drive` is that loop, written once; a :class:`Backend` supplies the hooks that differ
(how a tracker is built, how a tick takes and completes its tasks, how a group is checked and
compacted).  Every run counts the tasks it processed (dropped cells included) and checks the
count against :func:`~cellfrontier.testing.workloads.expected_task_count`, so that a fast but
wrong tracker cannot report a figure.  Timings cover the tracker's whole life (construction
included), not the column graph, which every backend builds once in microseconds.  Quote them
as ratios between backends run in the same process, never as lone absolute times.

``graphlib`` is the one comparison that is not this driver: it has neither an admission window
nor dropped rows, so :func:`run_graphlib` builds every cell as a node up front and drains it.
"""

from __future__ import annotations

import gc
import itertools
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from cellfrontier.simulate.reporting import Throughput
from cellfrontier.testing.workloads import (
    CELL_BY_CELL,
    FULL_COLUMN,
    Workload,
    build_graph,
    column_depths,
    expected_task_count,
    get_workload,
    row_groups,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendInfo",
    "BackendUnavailable",
    "FrontierStall",
    "ProgressCallback",
    "RunResult",
    "WorkloadMismatch",
    "drive",
    "import_data_designer",
    "run_cellfrontier_bulk",
    "run_cellfrontier_tasks",
    "run_data_designer",
    "run_data_designer_adapter",
    "run_graphlib",
    "run_null",
]

ProgressCallback = Callable[[int], None]
"""Called with the number of tasks processed so far, at most once per tick."""


class BackendUnavailable(ImportError):
    """The backend's package is not installed; callers skip the backend and say why."""


class WorkloadMismatch(AssertionError):
    """A backend processed a different number of tasks than the workload fixes."""


class FrontierStall(RuntimeError):
    """The frontier was empty while row groups were still active: the run can never finish."""


@dataclass(frozen=True)
class RunResult(Throughput):
    """One backend's run of one workload."""

    backend: str
    workload: str
    rows: int
    tasks: int
    seconds: float
    peak_bytes: int | None
    note: str = ""


# --------------------------------------------------------------------------- the driver


class _Window:
    """The admission window: which row groups are pending, active and finished."""

    def __init__(self, workload: Workload, rows: int) -> None:
        self.groups = row_groups(rows, workload.buffer_size)
        self.sizes = dict(self.groups)
        self.limit = workload.effective_window(len(self.groups))
        self.active: list[int] = []
        self._next = 0

    def admit(self) -> list[tuple[int, int]]:
        """Move pending groups into the window while it has room; return the admitted ones."""
        admitted: list[tuple[int, int]] = []
        while len(self.active) < self.limit and self._next < len(self.groups):
            group = self.groups[self._next]
            self._next += 1
            self.active.append(group[0])
            admitted.append(group)
        return admitted

    def release(self, finished: list[int]) -> None:
        """Let compacted groups leave the window."""
        if finished:
            gone = set(finished)
            self.active = [rg for rg in self.active if rg not in gone]


@dataclass(frozen=True)
class DropRule:
    """Which cells drop their row: the drop column's cells at global rows divisible by ``every``."""

    column: str | None
    every: int
    buffer: int

    @classmethod
    def of(cls, workload: Workload) -> DropRule:
        # The period is a harmless 1 when nothing is dropped (no cell is of column None).
        return cls(workload.drop_column, workload.drop_every or 1, workload.buffer_size)


class Backend(Protocol):
    """The hooks of one tracker API; :func:`drive` calls them in the driver's order.

    ``start`` builds the tracker (inside the timed block); ``tick`` takes the whole frontier of
    the active groups, completes it and returns how many tasks it processed (0 means none was
    ready); ``sample`` returns the bytes the tracker holds, or None when it cannot say.
    """

    name: str
    note: str

    def start(self, groups: list[tuple[int, int]]) -> None: ...
    def admit(self, row_group: int, size: int) -> None: ...
    def tick(self, active: list[int]) -> int: ...
    def is_complete(self, row_group: int, size: int) -> bool: ...
    def compact(self, row_group: int) -> None: ...
    def sample(self) -> int | None: ...


def drive(
    workload: Workload | str,
    rows: int,
    make_backend: Callable[[Workload, dict[int, int]], Backend],
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Run *workload* at *rows* rows through the backend *make_backend* builds (the driver loop).

    Without ``measure_memory`` the peak reported is the largest :meth:`Backend.sample` seen at
    the end of a tick, before compaction; with it, the traced peak of the whole run.
    """
    wl = get_workload(workload) if isinstance(workload, str) else workload
    window = _Window(wl, rows)
    sizes = window.sizes
    backend = make_backend(wl, sizes)  # graphs and schedules are built outside the timed block
    done = 0
    held: int | None = None
    with _peak_memory(measure_memory) as memory:
        start = time.perf_counter()
        backend.start(window.groups)
        for rg, size in window.admit():
            backend.admit(rg, size)
        while window.active:
            processed = backend.tick(window.active)
            if not processed:
                raise FrontierStall(
                    f"{backend.name}: empty frontier while row groups {window.active} are still active"
                )
            done += processed
            if not measure_memory:
                sample = backend.sample()
                if sample is not None:
                    held = sample if held is None else max(held, sample)
            finished = [rg for rg in window.active if backend.is_complete(rg, sizes[rg])]
            for rg in finished:
                backend.compact(rg)
            window.release(finished)
            for rg, size in window.admit():
                backend.admit(rg, size)
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - start
    _check_count(backend.name, wl, rows, done, expected_task_count(wl, rows))
    if measure_memory:
        peak, note = memory.peak, "tracemalloc on: timing inflated"
    else:
        peak, note = held, ("peak = largest tracker.nbytes" if held is not None else "")
    return RunResult(
        backend=backend.name,
        workload=wl.name,
        rows=rows,
        tasks=done,
        seconds=seconds,
        peak_bytes=peak,
        note="; ".join(n for n in (backend.note, note) if n),
    )


def complete_tasks(tracker: Any, tasks: Iterable[Any], sizes: dict[int, int], drops: DropRule) -> None:
    """Complete handed-out tasks in order, as the driver does (the per-task hot loop)."""
    drop_column, every, buffer = drops.column, drops.every, drops.buffer
    for task in tasks:
        rg = task.row_group
        row = task.row_index
        if row is None:
            tracker.mark_row_range_complete(task.column, rg, sizes[rg])
        elif task.column == drop_column and (rg * buffer + row) % every == 0:
            tracker.drop_row(rg, row)
        else:
            tracker.mark_cell_complete(task.column, rg, row)


class _TrackerBackend:
    """The hooks shared by trackers with the common tracker API (construction aside)."""

    name = ""
    note = ""

    def __init__(self, workload: Workload, sizes: dict[int, int]) -> None:
        self.sizes = sizes
        self.drops = DropRule.of(workload)
        self.columns = list(workload.column_names)
        self.tracker: Any = None

    def admit(self, row_group: int, size: int) -> None:
        self.tracker.add_root_tasks(row_group, size)

    def is_complete(self, row_group: int, size: int) -> bool:
        return bool(self.tracker.is_row_group_complete(row_group, size, self.columns))

    def compact(self, row_group: int) -> None:
        self.tracker.compact_row_group(row_group)

    def sample(self) -> int | None:
        return None


# --------------------------------------------------------------------------- cellfrontier


def _import_cellfrontier_tracker() -> Any:
    try:
        from cellfrontier import CompletionTracker
    except ImportError as exc:
        raise BackendUnavailable(
            f"cellfrontier's tracker is not importable ({exc}); build the package with `pip install .`"
        ) from exc
    return CompletionTracker


class _CellfrontierTasks(_TrackerBackend):
    """cellfrontier one task at a time: ``pop_ready`` then one call per task."""

    name = "cellfrontier-tasks"

    def __init__(self, workload: Workload, sizes: dict[int, int]) -> None:
        super().__init__(workload, sizes)
        self.tracker_class = _import_cellfrontier_tracker()
        self.graph = build_graph(workload)

    def start(self, groups: list[tuple[int, int]]) -> None:
        self.tracker = self.tracker_class.with_graph(self.graph, groups)

    def tick(self, active: list[int]) -> int:
        tasks = self.tracker.pop_ready()
        complete_tasks(self.tracker, tasks, self.sizes, self.drops)
        return len(tasks)

    def sample(self) -> int | None:
        return int(self.tracker.nbytes)


class _CellfrontierBulk(_CellfrontierTasks):
    """cellfrontier through its numpy API: one call per (column, row group) per tick.

    The tick's whole frontier is taken (``ready_rows(..., take=True)`` / ``pop_ready_batch``)
    before anything completes, exactly as the task-at-a-time driver does, so both process the
    same tasks in the same ticks.
    """

    name = "cellfrontier-bulk"

    def __init__(self, workload: Workload, sizes: dict[int, int]) -> None:
        super().__init__(workload, sizes)
        self.is_full = {name: kind == FULL_COLUMN for name, kind, _ in workload.columns}

    def tick(self, active: list[int]) -> int:
        tracker, drops = self.tracker, self.drops
        taken: list[tuple[int, str, Any]] = []
        for rg in active:
            for column in tracker.ready_columns(rg):
                if self.is_full[column]:
                    if tracker.pop_ready_batch(column, rg):
                        taken.append((rg, column, None))
                else:
                    ready = tracker.ready_rows(column, rg, take=True)
                    if len(ready):
                        taken.append((rg, column, ready))
        done = 0
        for rg, column, ready in taken:
            if ready is None:
                tracker.mark_row_range_complete(column, rg, self.sizes[rg])
                done += 1
                continue
            done += len(ready)
            if column == drops.column:
                drop = (ready + rg * drops.buffer) % drops.every == 0
                if drop.any():
                    tracker.drop_rows(rg, ready[drop])
                    ready = ready[np.logical_not(drop)]
            if len(ready):
                tracker.mark_cells_complete(column, rg, ready)
        return done


def run_cellfrontier_tasks(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive cellfrontier one task at a time: ``pop_ready`` then one call per task."""
    return drive(workload, rows, _CellfrontierTasks, progress=progress, measure_memory=measure_memory)


def run_cellfrontier_bulk(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive cellfrontier through its numpy API (see :class:`_CellfrontierBulk`)."""
    return drive(workload, rows, _CellfrontierBulk, progress=progress, measure_memory=measure_memory)


# --------------------------------------------------------------------------- NVIDIA DataDesigner


def import_data_designer() -> dict[str, Any]:
    """Import DataDesigner's tracker pieces, or explain how to get them."""
    try:
        from data_designer.config.column_configs import GenerationStrategy
        from data_designer.engine.dataset_builders.scheduling.completion import CompletionTracker
        from data_designer.engine.dataset_builders.scheduling.resources import stable_task_id
        from data_designer.engine.dataset_builders.utils.execution_graph import ExecutionGraph
    except ImportError as exc:
        raise BackendUnavailable(
            "NVIDIA DataDesigner's tracker is not installed; install it with "
            "`pip install 'cellfrontier[datadesigner]'` (data-designer-engine>=0.9.6,<0.10)"
        ) from exc
    try:
        from importlib.metadata import version

        dd_version = version("data-designer-engine")
    except Exception:  # version metadata is informative only
        dd_version = "unknown version"
    return {
        "GenerationStrategy": GenerationStrategy,
        "CompletionTracker": CompletionTracker,
        "stable_task_id": stable_task_id,
        "ExecutionGraph": ExecutionGraph,
        "version": dd_version,
    }


class _DataDesignerAPI(_TrackerBackend):
    """DataDesigner's tracker API: ``ready_frontier``, then ``mark_enqueued`` with stable ids.

    ``mark_enqueued`` with stable task ids is how DataDesigner's scheduler takes tasks off the
    frontier, so its cost belongs to the tracker's cost per task.
    """

    def __init__(
        self,
        workload: Workload,
        sizes: dict[int, int],
        tracker_class: Any,
        task_id: Callable[[Any], str],
        name: str,
        dd: dict[str, Any],
    ) -> None:
        super().__init__(workload, sizes)
        self.tracker_class = tracker_class
        self.task_id = task_id
        self.name = name
        self.note = f"data-designer-engine {dd['version']}"
        strategy_of = dd["GenerationStrategy"]
        self.graph = dd["ExecutionGraph"]()
        for column, strategy, _ in workload.columns:
            self.graph.add_column(column, strategy_of(strategy))
        for column, _, upstream in workload.columns:
            for up in upstream:
                self.graph.add_edge(upstream=up, downstream=column)
        self.graph.get_topological_order()  # validates the graph outside the timed block

    def start(self, groups: list[tuple[int, int]]) -> None:
        self.tracker = self.tracker_class.with_graph(self.graph, groups)

    def tick(self, active: list[int]) -> int:
        tasks = self.tracker.ready_frontier()
        if tasks:
            task_id = self.task_id
            self.tracker.mark_enqueued([task_id(t) for t in tasks])
            complete_tasks(self.tracker, tasks, self.sizes, self.drops)
        return len(tasks)


def run_data_designer(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive DataDesigner's own ``CompletionTracker``."""
    dd = import_data_designer()

    def backend(wl: Workload, sizes: dict[int, int]) -> Backend:
        return _DataDesignerAPI(wl, sizes, dd["CompletionTracker"], dd["stable_task_id"], "data-designer", dd)

    return drive(workload, rows, backend, progress=progress, measure_memory=measure_memory)


def run_data_designer_adapter(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
    installed: bool = True,
) -> RunResult:
    """The same driver, with cellfrontier's drop-in backend for DataDesigner in its place.

    DataDesigner's own graph, task types, ``ready_frontier`` and ``mark_enqueued`` with stable
    ids, exactly as for :func:`run_data_designer`.  With ``installed`` (the configuration
    ``cellfrontier.integrations.data_designer.install()`` gives DataDesigner's scheduler), task
    ids come from the memoising ``stable_task_id`` that ``install()`` puts in DataDesigner's
    modules; without it, from DataDesigner's own function.
    """
    dd = import_data_designer()
    from cellfrontier.integrations import data_designer as adapter

    task_id = adapter.memoized_stable_task_id if installed else dd["stable_task_id"]
    name = "data-designer-adapter" + ("" if installed else "-uninstalled")

    def backend(wl: Workload, sizes: dict[int, int]) -> Backend:
        return _DataDesignerAPI(wl, sizes, adapter.CompletionTracker, task_id, name, dd)

    return drive(workload, rows, backend, progress=progress, measure_memory=measure_memory)


# --------------------------------------------------------------------------- the floor


class _NullTracker:
    """Accepts every completion call and does nothing, so only the driver's own work is left."""

    def mark_cell_complete(self, column: str, row_group: int, row_index: int) -> None:
        return None

    def mark_row_range_complete(self, column: str, row_group: int, row_group_size: int) -> None:
        return None

    def drop_row(self, row_group: int, row_index: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _ScheduledTask:
    column: str
    row_group: int
    row_index: int | None


class _Null(_TrackerBackend):
    """The driver's own floor: the same loop and calls, against a tracker that does nothing.

    The frontier comes from a static schedule worked out before the clock starts, one per
    distinct group shape (size, and where the group starts in the drop period), so what is
    timed is the loop, the drop test and the method calls: no tracker can make a task-at-a-time
    driver cheaper than this.  A shape's tasks name one representative group of that shape;
    every drop decision is the same for all groups of the shape, and the null tracker ignores
    the group anyway.  The bulk driver does no Python work per task, so it can go below this.
    """

    name = "null"
    note = "driver floor: tracker calls do nothing"

    def __init__(self, workload: Workload, sizes: dict[int, int]) -> None:
        super().__init__(workload, sizes)
        drops = self.drops
        shapes: dict[tuple[int, int], tuple[tuple[_ScheduledTask, ...], ...]] = {}
        self.schedule: dict[int, tuple[tuple[_ScheduledTask, ...], ...]] = {}
        for rg, size in sizes.items():
            key = (size, (rg * drops.buffer) % drops.every)
            if key not in shapes:
                shapes[key] = _static_schedule(workload, rg, size, drops)
            self.schedule[rg] = shapes[key]
        self.position: dict[int, int] = {}

    def start(self, groups: list[tuple[int, int]]) -> None:
        self.tracker = _NullTracker()

    def admit(self, row_group: int, size: int) -> None:
        self.position[row_group] = 0

    def tick(self, active: list[int]) -> int:
        ticks = [self.schedule[rg][self.position[rg]] for rg in active]
        complete_tasks(self.tracker, itertools.chain.from_iterable(ticks), self.sizes, self.drops)
        for rg in active:
            self.position[rg] += 1
        return sum(len(tasks) for tasks in ticks)

    def is_complete(self, row_group: int, size: int) -> bool:
        return self.position[row_group] == len(self.schedule[row_group])

    def compact(self, row_group: int) -> None:
        del self.position[row_group]


def _static_schedule(
    wl: Workload, rg: int, size: int, drops: DropRule
) -> tuple[tuple[_ScheduledTask, ...], ...]:
    """The ticks group *rg* goes through under the driver, worked out from column depths.

    A column runs in tick ``depth``; cells deeper than the drop column skip dropped rows, which
    is the same reasoning :func:`expected_task_count` documents.
    """
    depths = column_depths(wl)
    drop_depth = depths[drops.column] if drops.column is not None else None
    start_row = rg * drops.buffer
    ticks: list[list[_ScheduledTask]] = [[] for _ in range(max(depths.values(), default=0))]
    for name, kind, _ in wl.columns:
        tick = ticks[depths[name] - 1]
        if kind == FULL_COLUMN:
            tick.append(_ScheduledTask(name, rg, None))
        elif drop_depth is not None and depths[name] > drop_depth:
            tick.extend(_ScheduledTask(name, rg, r) for r in range(size) if (start_row + r) % drops.every)
        else:
            tick.extend(_ScheduledTask(name, rg, r) for r in range(size))
    return tuple(tuple(t) for t in ticks if t)


def run_null(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """The driver's floor (see :class:`_Null`)."""
    return drive(workload, rows, _Null, progress=progress, measure_memory=measure_memory)


# --------------------------------------------------------------------------- graphlib


def run_graphlib(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive ``graphlib.TopologicalSorter`` with every cell and every batch as an explicit node.

    This is the generic tool a user might reach for. It knows neither dropped rows nor an
    admission window, so every row group is built up front and no row is dropped; on a workload
    with drops the task count then differs from the reference one and the note says so (the
    count is still checked, against the same workload without drops).
    """
    from graphlib import TopologicalSorter

    wl = get_workload(workload) if isinstance(workload, str) else workload
    nodrop = replace(wl, drop_column=None, drop_every=None, admit_all=True)
    notes = ["no admission window: every row group built up front"]
    if wl.drop_column is not None:
        notes.append(
            f"no drops (graphlib cannot drop a row): {expected_task_count(nodrop, rows):,} tasks "
            f"instead of the reference {expected_task_count(wl, rows):,}"
        )
    if measure_memory:
        notes.append("tracemalloc on: timing inflated")
    strategy = {name: s for name, s, _ in wl.columns}
    groups = row_groups(rows, wl.buffer_size)
    done = 0
    with _peak_memory(measure_memory) as memory:
        start = time.perf_counter()
        sorter: TopologicalSorter[tuple[str, int, int | None]] = TopologicalSorter()
        for rg, size in groups:
            for name, kind, upstream in wl.columns:
                batch_ups = [(up, rg, None) for up in upstream if strategy[up] == FULL_COLUMN]
                cell_ups = [up for up in upstream if strategy[up] == CELL_BY_CELL]
                if kind == FULL_COLUMN:
                    cells = [(up, rg, r) for up in cell_ups for r in range(size)]
                    sorter.add((name, rg, None), *batch_ups, *cells)
                else:
                    for r in range(size):
                        sorter.add((name, rg, r), *batch_ups, *[(up, rg, r) for up in cell_ups])
        sorter.prepare()
        while sorter.is_active():
            ready = sorter.get_ready()
            if not ready:
                raise FrontierStall("graphlib: no ready node while the sorter is still active")
            sorter.done(*ready)
            done += len(ready)
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - start
    _check_count("graphlib", nodrop, rows, done, expected_task_count(nodrop, rows))
    return RunResult(
        backend="graphlib",
        workload=wl.name,
        rows=rows,
        tasks=done,
        seconds=seconds,
        peak_bytes=memory.peak,
        note="; ".join(notes),
    )


# --------------------------------------------------------------------------- measuring


class _PeakMemory:
    """Peak traced allocation over a block, when asked for; tracemalloc slows the block down."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.peak: int | None = None


@contextmanager
def _peak_memory(enabled: bool) -> Iterator[_PeakMemory]:
    """Measure a run's peak memory (when *enabled*) and settle the heap around it.

    Every object alive before the run (imported libraries, earlier runs' results) is frozen
    out of the garbage collector's view for the run's duration, so that no backend pays for
    rescanning what the process held before it: importing DataDesigner alone adds about
    80,000 long-lived objects, which doubles the cost of every later allocation-heavy loop.
    """
    gc.collect()
    gc.freeze()
    try:
        with _traced(enabled) as probe:
            yield probe
    finally:
        gc.unfreeze()


@contextmanager
def _traced(enabled: bool) -> Iterator[_PeakMemory]:
    probe = _PeakMemory(enabled)
    if not enabled:
        yield probe
        return
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        yield probe
    finally:
        probe.peak = max(tracemalloc.get_traced_memory()[1] - baseline, 0)
        if started:
            tracemalloc.stop()


def _check_count(backend: str, workload: Workload, rows: int, tasks: int, expected: int) -> None:
    if tasks != expected:
        raise WorkloadMismatch(
            f"{backend} processed {tasks:,} tasks on {workload.name} at {rows:,} rows; "
            f"the workload fixes {expected:,}"
        )


# --------------------------------------------------------------------------- the registry


class Driver(Protocol):
    def __call__(
        self,
        workload: Workload | str,
        rows: int,
        *,
        progress: ProgressCallback | None = None,
        measure_memory: bool = False,
    ) -> RunResult: ...


@dataclass(frozen=True)
class BackendInfo:
    """One backend: its name in results, its ``--backend`` option, its labels and its runner."""

    name: str
    option: str | None  # None: not offered by ``cellfrontier simulate``
    label: str
    short: str
    run: Driver


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo(
            "cellfrontier-tasks", "tasks", "cellfrontier (task-at-a-time)", "tasks", run_cellfrontier_tasks
        ),
        BackendInfo("cellfrontier-bulk", "bulk", "cellfrontier (bulk numpy)", "bulk", run_cellfrontier_bulk),
        BackendInfo(
            "data-designer-adapter",
            "adapter",
            "cellfrontier DataDesigner backend",
            "DD backend",
            run_data_designer_adapter,
        ),
        BackendInfo("data-designer", "datadesigner", "DataDesigner tracker", "DD", run_data_designer),
        BackendInfo("graphlib", "graphlib", "graphlib.TopologicalSorter", "graphlib", run_graphlib),
        BackendInfo("null", None, "driver floor (no-op tracker)", "floor", run_null),
    )
}
"""Every backend, by the name results and benchmarks use (the one registry)."""
