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

Every backend counts the tasks it processed (dropped cells included) and checks the count
against :func:`cellfrontier.workloads.expected_task_count`, so that a fast but wrong tracker
cannot report a figure. Timings cover the tracker's whole life (construction included), not the
column graph, which every backend builds once in microseconds. Quote them as ratios between
backends run in the same process, never as lone absolute times.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from cellfrontier.workloads import (
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
    "BackendUnavailable",
    "FrontierStall",
    "ProgressCallback",
    "RunResult",
    "WorkloadMismatch",
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
class RunResult:
    """One backend's run of one workload."""

    backend: str
    workload: str
    rows: int
    tasks: int
    seconds: float
    peak_bytes: int | None
    note: str = ""

    @property
    def us_per_task(self) -> float:
        """Microseconds per processed task, the figure that compares across sizes."""
        return self.seconds * 1e6 / self.tasks if self.tasks else 0.0

    @property
    def tasks_per_second(self) -> float:
        """Processed tasks per second of wall time."""
        return self.tasks / self.seconds if self.seconds > 0 else 0.0


class _Driver(Protocol):
    def __call__(
        self,
        workload: Workload | str,
        rows: int,
        *,
        progress: ProgressCallback | None = None,
        measure_memory: bool = False,
    ) -> RunResult: ...


# --------------------------------------------------------------------------- shared pieces


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


def _resolve(workload: Workload | str) -> Workload:
    return get_workload(workload) if isinstance(workload, str) else workload


def _drop_params(workload: Workload) -> tuple[str | None, int]:
    """The drop column and its period; the period is a harmless 1 when nothing is dropped."""
    return workload.drop_column, workload.drop_every or 1


def _check_count(backend: str, workload: Workload, rows: int, tasks: int, expected: int) -> None:
    if tasks != expected:
        raise WorkloadMismatch(
            f"{backend} processed {tasks:,} tasks on {workload.name} at {rows:,} rows; "
            f"the workload fixes {expected:,}"
        )


def _stall(backend: str, active: list[int]) -> FrontierStall:
    return FrontierStall(f"{backend}: empty frontier while row groups {active} are still active")


def _memory_note(measure_memory: bool) -> str:
    return "tracemalloc on: timing inflated" if measure_memory else ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


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
            "`pip install 'cellfrontier[compare]'` (data-designer-engine==0.9.6)"
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


def run_data_designer(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive DataDesigner's own ``CompletionTracker``, acknowledging through ``mark_enqueued``.

    ``mark_enqueued`` with stable task ids is how DataDesigner's scheduler takes tasks off the
    frontier, so its cost belongs to the tracker's cost per task.
    """
    dd = import_data_designer()
    return _drive_data_designer_api(
        workload,
        rows,
        dd,
        dd["CompletionTracker"],
        dd["stable_task_id"],
        "data-designer",
        progress,
        measure_memory,
    )


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
    backend = "data-designer-adapter" + ("" if installed else "-uninstalled")
    return _drive_data_designer_api(
        workload, rows, dd, adapter.CompletionTracker, task_id, backend, progress, measure_memory
    )


def _drive_data_designer_api(
    workload: Workload | str,
    rows: int,
    dd: dict[str, Any],
    tracker_class: Any,
    stable_task_id: Callable[[Any], str],
    backend: str,
    progress: ProgressCallback | None,
    measure_memory: bool,
) -> RunResult:
    wl = _resolve(workload)
    strategy_of = dd["GenerationStrategy"]
    graph = dd["ExecutionGraph"]()
    for name, strategy, _ in wl.columns:
        graph.add_column(name, strategy_of(strategy))
    for name, _, upstream in wl.columns:
        for up in upstream:
            graph.add_edge(upstream=up, downstream=name)
    graph.get_topological_order()  # validates the graph outside the timed block

    window = _Window(wl, rows)
    sizes = window.sizes
    columns = list(wl.column_names)
    buffer = wl.buffer_size
    drop_column, drop_every = _drop_params(wl)
    done = 0
    with _peak_memory(measure_memory) as memory:
        start = time.perf_counter()
        tracker = tracker_class.with_graph(graph, window.groups)
        for rg, size in window.admit():
            tracker.add_root_tasks(rg, size)
        while window.active:
            tasks = tracker.ready_frontier()
            if not tasks:
                raise _stall(backend, window.active)
            tracker.mark_enqueued([stable_task_id(t) for t in tasks])
            for task in tasks:
                rg = task.row_group
                row = task.row_index
                if row is None:
                    tracker.mark_row_range_complete(task.column, rg, sizes[rg])
                elif task.column == drop_column and (rg * buffer + row) % drop_every == 0:
                    tracker.drop_row(rg, row)
                else:
                    tracker.mark_cell_complete(task.column, rg, row)
            done += len(tasks)
            finished = [rg for rg in window.active if tracker.is_row_group_complete(rg, sizes[rg], columns)]
            for rg in finished:
                tracker.compact_row_group(rg)
            window.release(finished)
            for rg, size in window.admit():
                tracker.add_root_tasks(rg, size)
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - start
    _check_count(backend, wl, rows, done, expected_task_count(wl, rows))
    return RunResult(
        backend=backend,
        workload=wl.name,
        rows=rows,
        tasks=done,
        seconds=seconds,
        peak_bytes=memory.peak,
        note=_join(f"data-designer-engine {dd['version']}", _memory_note(measure_memory)),
    )


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

    wl = _resolve(workload)
    nodrop = replace(wl, drop_column=None, drop_every=None, admit_all=True)
    notes = ["no admission window: every row group built up front"]
    if wl.drop_column is not None:
        notes.append(
            f"no drops (graphlib cannot drop a row): {expected_task_count(nodrop, rows):,} tasks "
            f"instead of the reference {expected_task_count(wl, rows):,}"
        )
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
        note=_join(*notes, _memory_note(measure_memory)),
    )


# --------------------------------------------------------------------------- cellfrontier


def _import_cellfrontier_tracker() -> Any:
    try:
        from cellfrontier import CompletionTracker
    except ImportError as exc:
        raise BackendUnavailable(
            f"cellfrontier's tracker is not importable ({exc}); build the package with `pip install .`"
        ) from exc
    return CompletionTracker


def _nbytes(tracker: Any) -> int | None:
    nbytes = getattr(tracker, "nbytes", None)
    return int(nbytes) if nbytes is not None else None


def _peak(current: int | None, sample: int | None) -> int | None:
    if sample is None:
        return current
    return sample if current is None else max(current, sample)


def run_cellfrontier_tasks(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive cellfrontier one task at a time: ``pop_ready`` then one call per task.

    Without ``measure_memory`` the peak reported is the largest ``tracker.nbytes`` (the numpy
    state it holds) seen at the end of a tick, before compaction.
    """
    wl = _resolve(workload)
    tracker_cls = _import_cellfrontier_tracker()
    graph = build_graph(wl)
    window = _Window(wl, rows)
    sizes = window.sizes
    columns = list(wl.column_names)
    buffer = wl.buffer_size
    drop_column, drop_every = _drop_params(wl)
    done = 0
    held: int | None = None
    with _peak_memory(measure_memory) as memory:
        start = time.perf_counter()
        tracker = tracker_cls.with_graph(graph, window.groups)
        for rg, size in window.admit():
            tracker.add_root_tasks(rg, size)
        while window.active:
            tasks = tracker.pop_ready()
            if not tasks:
                raise _stall("cellfrontier-tasks", window.active)
            for task in tasks:
                rg = task.row_group
                row = task.row_index
                if row is None:
                    tracker.mark_row_range_complete(task.column, rg, sizes[rg])
                elif task.column == drop_column and (rg * buffer + row) % drop_every == 0:
                    tracker.drop_row(rg, row)
                else:
                    tracker.mark_cell_complete(task.column, rg, row)
            done += len(tasks)
            if not measure_memory:
                held = _peak(held, _nbytes(tracker))
            finished = [rg for rg in window.active if tracker.is_row_group_complete(rg, sizes[rg], columns)]
            for rg in finished:
                tracker.compact_row_group(rg)
            window.release(finished)
            for rg, size in window.admit():
                tracker.add_root_tasks(rg, size)
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - start
    _check_count("cellfrontier-tasks", wl, rows, done, expected_task_count(wl, rows))
    return RunResult(
        backend="cellfrontier-tasks",
        workload=wl.name,
        rows=rows,
        tasks=done,
        seconds=seconds,
        peak_bytes=memory.peak if measure_memory else held,
        note=_memory_note(measure_memory) if measure_memory else "peak = largest tracker.nbytes",
    )


def run_cellfrontier_bulk(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """Drive cellfrontier through its numpy API: one call per (column, row group) per tick.

    The tick's whole frontier is taken (``ready_rows(..., take=True)`` / ``pop_ready_batch``)
    before anything completes, exactly as the task-at-a-time driver does, so both process the
    same tasks in the same ticks.
    """
    import numpy as np

    wl = _resolve(workload)
    tracker_cls = _import_cellfrontier_tracker()
    graph = build_graph(wl)
    window = _Window(wl, rows)
    sizes = window.sizes
    columns = list(wl.column_names)
    is_full = {name: kind == FULL_COLUMN for name, kind, _ in wl.columns}
    buffer = wl.buffer_size
    drop_column, drop_every = _drop_params(wl)
    done = 0
    held: int | None = None
    with _peak_memory(measure_memory) as memory:
        start = time.perf_counter()
        tracker = tracker_cls.with_graph(graph, window.groups)
        for rg, size in window.admit():
            tracker.add_root_tasks(rg, size)
        while window.active:
            taken: list[tuple[int, str, Any]] = []
            for rg in window.active:
                for column in tracker.ready_columns(rg):
                    if is_full[column]:
                        if tracker.pop_ready_batch(column, rg):
                            taken.append((rg, column, None))
                    else:
                        ready = tracker.ready_rows(column, rg, take=True)
                        if len(ready):
                            taken.append((rg, column, ready))
            if not taken:
                raise _stall("cellfrontier-bulk", window.active)
            for rg, column, ready in taken:
                if ready is None:
                    tracker.mark_row_range_complete(column, rg, sizes[rg])
                    done += 1
                    continue
                done += len(ready)
                if column == drop_column:
                    drop = (ready + rg * buffer) % drop_every == 0
                    if drop.any():
                        tracker.drop_rows(rg, ready[drop])
                        ready = ready[np.logical_not(drop)]
                if len(ready):
                    tracker.mark_cells_complete(column, rg, ready)
            if not measure_memory:
                held = _peak(held, _nbytes(tracker))
            finished = [rg for rg in window.active if tracker.is_row_group_complete(rg, sizes[rg], columns)]
            for rg in finished:
                tracker.compact_row_group(rg)
            window.release(finished)
            for rg, size in window.admit():
                tracker.add_root_tasks(rg, size)
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - start
    _check_count("cellfrontier-bulk", wl, rows, done, expected_task_count(wl, rows))
    return RunResult(
        backend="cellfrontier-bulk",
        workload=wl.name,
        rows=rows,
        tasks=done,
        seconds=seconds,
        peak_bytes=memory.peak if measure_memory else held,
        note=_memory_note(measure_memory) if measure_memory else "peak = largest tracker.nbytes",
    )


# --------------------------------------------------------------------------- the floor


class _NullTracker:
    """Accepts every completion call and does nothing, so only the driver's own work is left."""

    def mark_cell_complete(self, column: str, row_group: int, row_index: int) -> None:
        return None

    def mark_row_range_complete(self, column: str, row_group: int, row_group_size: int) -> None:
        return None

    def drop_row(self, row_group: int, row_index: int) -> None:
        return None

    def compact_row_group(self, row_group: int) -> None:
        return None


_Schedule = tuple[tuple[tuple[str, int | None], ...], ...]
"""Per tick, the ``(column, row_index or None)`` tasks a row group hands out."""


def _static_schedule(wl: Workload, size: int, start_row: int) -> _Schedule:
    """The ticks a row group goes through under the driver, worked out from column depths.

    A column runs in tick ``depth``; cells deeper than the drop column skip dropped rows, which
    is the same reasoning :func:`expected_task_count` documents.
    """
    depths = column_depths(wl)
    drop_column, drop_every = _drop_params(wl)
    drop_depth = depths[drop_column] if drop_column is not None else None
    ticks: list[list[tuple[str, int | None]]] = [[] for _ in range(max(depths.values(), default=0))]
    for name, kind, _ in wl.columns:
        tick = ticks[depths[name] - 1]
        if kind == FULL_COLUMN:
            tick.append((name, None))
        elif drop_depth is not None and depths[name] > drop_depth:
            tick.extend((name, r) for r in range(size) if (start_row + r) % drop_every != 0)
        else:
            tick.extend((name, r) for r in range(size))
    return tuple(tuple(t) for t in ticks if t)


def run_null(
    workload: Workload | str,
    rows: int,
    *,
    progress: ProgressCallback | None = None,
    measure_memory: bool = False,
) -> RunResult:
    """The driver's own floor: the same loop and calls, against a tracker that does nothing.

    The frontier comes from a static schedule worked out before the clock starts (one per
    distinct group shape), so what is timed is the loop, the drop test and the method calls:
    no tracker can make a task-at-a-time driver cheaper than this. The bulk driver does no
    Python work per task, so it can go below this floor.
    """
    wl = _resolve(workload)
    window = _Window(wl, rows)
    sizes = window.sizes
    buffer = wl.buffer_size
    drop_column, drop_every = _drop_params(wl)
    shapes: dict[tuple[int, int], _Schedule] = {}
    schedule: dict[int, _Schedule] = {}
    for rg, size in window.groups:
        key = (size, (rg * buffer) % drop_every)
        if key not in shapes:
            shapes[key] = _static_schedule(wl, size, rg * buffer)
        schedule[rg] = shapes[key]
    done = 0
    with _peak_memory(measure_memory) as memory:
        start = time.perf_counter()
        tracker = _NullTracker()
        position: dict[int, int] = {}
        for rg, _ in window.admit():
            position[rg] = 0
        while window.active:
            taken = [(rg, schedule[rg][position[rg]]) for rg in window.active]
            if not any(tasks for _, tasks in taken):
                raise _stall("null", window.active)
            for rg, tasks in taken:
                for column, row in tasks:
                    if row is None:
                        tracker.mark_row_range_complete(column, rg, sizes[rg])
                    elif column == drop_column and (rg * buffer + row) % drop_every == 0:
                        tracker.drop_row(rg, row)
                    else:
                        tracker.mark_cell_complete(column, rg, row)
                done += len(tasks)
            finished = []
            for rg in window.active:
                position[rg] += 1
                if position[rg] == len(schedule[rg]):
                    finished.append(rg)
            for rg in finished:
                tracker.compact_row_group(rg)
            window.release(finished)
            for rg, _ in window.admit():
                position[rg] = 0
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - start
    _check_count("null", wl, rows, done, expected_task_count(wl, rows))
    return RunResult(
        backend="null",
        workload=wl.name,
        rows=rows,
        tasks=done,
        seconds=seconds,
        peak_bytes=memory.peak,
        note=_join("driver floor: tracker calls do nothing", _memory_note(measure_memory)),
    )


BACKENDS: dict[str, _Driver] = {
    "cellfrontier-tasks": run_cellfrontier_tasks,
    "cellfrontier-bulk": run_cellfrontier_bulk,
    "data-designer": run_data_designer,
    "data-designer-adapter": run_data_designer_adapter,
    "graphlib": run_graphlib,
    "null": run_null,
}
"""Backends by the name the ``simulate`` command and the benchmarks print."""
