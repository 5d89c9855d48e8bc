"""Shared measurement code for the pytest benchmarks and ``report.py``.

The workload runs themselves are :mod:`cellfrontier.simulate.drivers`; this module adds the sizes, the
MEM workload (a fully admitted wide run, measured with tracemalloc), the single-operation
micro-benchmarks and their two floors (an empty method call and a numpy copy of a bitmap of the
size the operation touches).
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cellfrontier import CompletionTracker, SliceRef, Task
from cellfrontier.simulate import drivers
from cellfrontier.testing.workloads import W10, W64, Workload, build_graph, row_groups

FULL = os.environ.get("CELLFRONTIER_BENCH_FULL", "") not in ("", "0")
"""``CELLFRONTIER_BENCH_FULL=1`` adds the 1,000,000-row sizes."""

ONE_MILLION = 1_000_000
GRAPHLIB_MAX_ROWS = 100_000
"""graphlib holds a Python object per cell: about 2 GB of W64 at 100k rows, 21 GB at 1M."""

DD_BACKEND = "data-designer"
ADAPTER_BACKEND = "data-designer-adapter"
"""cellfrontier's drop-in backend for DataDesigner, driven through DataDesigner's own API."""
BACKENDS = ("cellfrontier-tasks", "cellfrontier-bulk", ADAPTER_BACKEND, DD_BACKEND, "graphlib")
NEEDS_DATA_DESIGNER = (ADAPTER_BACKEND, DD_BACKEND)

MEM_COMPLETED_COLUMNS = 32
"""MEM completes ``c1`` .. ``c32`` for every row after ``seed``."""

NUMPY_TRACE_DOMAIN = 389047
"""The tracemalloc domain numpy reports its data buffers under."""


# --------------------------------------------------------------------------- availability


def data_designer_skip_reason() -> str | None:
    """Why DataDesigner's tracker cannot run here, or None when it can."""
    try:
        drivers.import_data_designer()
    except drivers.BackendUnavailable as exc:
        return str(exc)
    return None


def backend_rows(workload: str, backend: str, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The sizes a backend runs a workload at: graphlib never above 100k rows."""
    if backend == "graphlib":
        return tuple(r for r in sizes if r <= GRAPHLIB_MAX_ROWS)
    return sizes


# --------------------------------------------------------------------------- workload runs


def run_workload(backend: str, workload: str, rows: int) -> drivers.RunResult:
    """Run one backend on one reference workload; the driver checks the task count."""
    gc.collect()
    return drivers.BACKENDS[backend].run(workload, rows)


# --------------------------------------------------------------------------- MEM


@dataclass
class MemResult:
    """Memory held by a tracker in the MEM state (every group admitted, seed and c1..c32 done)."""

    backend: str
    rows: int
    tasks: int
    bytes: int
    python_bytes: int
    numpy_bytes: int
    seconds: float
    note: str = ""

    @property
    def mib(self) -> float:
        """Total bytes in MiB."""
        return self.bytes / 2**20

    def as_dict(self) -> dict[str, Any]:
        """Plain fields for JSON."""
        return {**asdict(self), "mib": self.mib}


def mem_expected_tasks(rows: int) -> int:
    """Tasks MEM completes: one seed task per group plus 32 cells per row."""
    return len(row_groups(rows, W64.buffer_size)) + MEM_COMPLETED_COLUMNS * rows


def _traced_by_domain() -> tuple[int, int]:
    """Currently traced bytes: (Python objects, numpy buffers)."""
    snapshot = tracemalloc.take_snapshot()
    numpy_filter = tracemalloc.DomainFilter(inclusive=True, domain=NUMPY_TRACE_DOMAIN)
    python_filter = tracemalloc.DomainFilter(inclusive=False, domain=NUMPY_TRACE_DOMAIN)
    numpy_bytes = sum(s.size for s in snapshot.filter_traces([numpy_filter]).statistics("filename"))
    python_bytes = sum(s.size for s in snapshot.filter_traces([python_filter]).statistics("filename"))
    return python_bytes, numpy_bytes


def _measure_held(
    build: Callable[[], tuple[Any, int]], finish: Callable[[Any], int] | None = None
) -> tuple[Any, int, int, int, float]:
    """Run ``build`` under tracemalloc; return (tracker, tasks, python bytes, numpy bytes, seconds).

    Only what is still allocated when ``build`` returns counts (the tracker it returns keeps it
    alive); the baseline is taken after a collection, before the tracker exists. ``finish``, if
    given, continues the build after tracing has stopped and returns the tasks it processed.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base_py, base_np = _traced_by_domain()
        start = time.perf_counter()
        tracker, tasks = build()
        seconds = time.perf_counter() - start
        gc.collect()
        py, npb = _traced_by_domain()
    finally:
        tracemalloc.stop()
    if finish is not None:
        start = time.perf_counter()
        tasks += finish(tracker)
        seconds += time.perf_counter() - start
    return tracker, tasks, max(py - base_py, 0), max(npb - base_np, 0), seconds


def mem_cellfrontier(rows: int, trace_all: bool = False) -> MemResult:
    """MEM on cellfrontier, completing through the bulk API (the state is the same as cell by cell).

    Memory is ``tracker.nbytes`` (its numpy state) plus the traced Python objects it holds.
    cellfrontier allocates all of a group's state when the group is admitted, so by default
    tracemalloc traces construction and admission only (tracing the completions would cost
    minutes at 1M rows, as the core churns through small transient objects); the result checks
    that ``nbytes`` did not change afterwards. ``trace_all`` traces the whole build instead.
    """
    graph = build_graph(W64)
    groups = row_groups(rows, W64.buffer_size)
    columns = [f"c{i}" for i in range(1, MEM_COMPLETED_COLUMNS + 1)]
    aranges = {size: np.arange(size, dtype=np.int64) for size in {s for _, s in groups}}

    def admit() -> tuple[Any, int]:
        tracker = CompletionTracker.with_graph(graph, groups)
        for rg, size in groups:
            tracker.add_root_tasks(rg, size)
        return tracker, 0

    def complete(tracker: Any) -> int:
        tasks = 0
        for rg, size in groups:
            if not tracker.pop_ready_batch("seed", rg):
                raise drivers.WorkloadMismatch(f"cellfrontier: seed of row group {rg} was not ready")
            tracker.mark_row_range_complete("seed", rg, size)
            tasks += 1
        for rg, size in groups:
            for column in columns:
                tracker.mark_cells_complete(column, rg, aranges[size])
                tasks += size
        return tasks

    def build_all() -> tuple[Any, int]:
        tracker, _ = admit()
        return tracker, complete(tracker)

    if trace_all:
        tracker, tasks, py, npb, seconds = _measure_held(build_all)
        admitted_nbytes = None
    else:
        tracker, tasks, py, npb, seconds = _measure_held(admit, finish=complete)
        admitted_nbytes = npb
    _check_mem(tracker.frontier_size(), "cellfrontier", rows, tasks)
    nbytes = int(tracker.nbytes)
    if abs(npb - nbytes) > max(4096, nbytes // 100):
        raise AssertionError(f"tracemalloc saw {npb:,} numpy bytes but tracker.nbytes is {nbytes:,}")
    traced = (
        "whole build traced" if trace_all else f"construction and admission traced ({admitted_nbytes:,} B)"
    )
    return MemResult(
        backend="cellfrontier",
        rows=rows,
        tasks=tasks,
        bytes=nbytes + py,
        python_bytes=py,
        numpy_bytes=nbytes,
        seconds=seconds,
        note=f"{traced}; completed through mark_cells_complete",
    )


def mem_data_designer(rows: int) -> MemResult:
    """MEM on DataDesigner's ``CompletionTracker``, one ``mark_cell_complete`` per cell."""
    dd = drivers.import_data_designer()
    graph = dd_graph(W64, dd)
    groups = row_groups(rows, W64.buffer_size)
    columns = [f"c{i}" for i in range(1, MEM_COMPLETED_COLUMNS + 1)]

    def build() -> tuple[Any, int]:
        tracker = dd["CompletionTracker"].with_graph(graph, groups)
        tasks = 0
        for rg, size in groups:
            tracker.add_root_tasks(rg, size)
        stable_task_id = dd["stable_task_id"]
        tracker.mark_enqueued([stable_task_id(t) for t in tracker.ready_frontier()])
        for rg, size in groups:
            tracker.mark_row_range_complete("seed", rg, size)
            tasks += 1
        mark = tracker.mark_cell_complete
        for rg, size in groups:
            for column in columns:
                for row in range(size):
                    mark(column, rg, row)
                tasks += size
        return tracker, tasks

    tracker, tasks, py, npb, seconds = _measure_held(build)
    _check_mem(len(tracker.ready_frontier()), DD_BACKEND, rows, tasks)
    return MemResult(
        backend=DD_BACKEND,
        rows=rows,
        tasks=tasks,
        bytes=py + npb,
        python_bytes=py,
        numpy_bytes=npb,
        seconds=seconds,
        note=f"data-designer-engine {dd['version']}",
    )


def _check_mem(frontier: int, backend: str, rows: int, tasks: int) -> None:
    """MEM must have completed the fixed task count and left c33..c63 ready for every row."""
    if tasks != mem_expected_tasks(rows):
        raise drivers.WorkloadMismatch(
            f"{backend}: MEM completed {tasks:,} tasks, expected {mem_expected_tasks(rows):,}"
        )
    expected_frontier = (63 - MEM_COMPLETED_COLUMNS) * rows
    if frontier != expected_frontier:
        raise drivers.WorkloadMismatch(
            f"{backend}: MEM left {frontier:,} ready tasks, expected {expected_frontier:,}"
        )


MEM_RUNNERS: dict[str, Callable[[int], MemResult]] = {
    "cellfrontier": mem_cellfrontier,
    DD_BACKEND: mem_data_designer,
}


# --------------------------------------------------------------------------- micro-benchmarks


def dd_graph(workload: Workload, dd: dict[str, Any] | None = None) -> Any:
    """DataDesigner's ``ExecutionGraph`` for a workload."""
    dd = dd or drivers.import_data_designer()
    strategy_of = dd["GenerationStrategy"]
    graph = dd["ExecutionGraph"]()
    for name, strategy, _ in workload.columns:
        graph.add_column(name, strategy_of(strategy))
    for name, _, upstream in workload.columns:
        for up in upstream:
            graph.add_edge(upstream=up, downstream=name)
    return graph


MICRO_GROUPS = 50
"""Row groups (1,000 rows of W10 each) in a micro-benchmark's tracker."""
MICRO_ROWS = W10.buffer_size
HANDOUT_N = 1000
HANDOUT_FRONTIER = 2 * MICRO_ROWS
"""Ready tasks after seed completes in one W10 group (topic and meta)."""
HANDOUT_SINGLES = 100


@dataclass
class MicroCase:
    """One single-operation benchmark: ``setup`` builds fresh state, ``run`` does ``ops`` operations."""

    op: str
    backend: str
    ops: int
    bitmap_rows: int
    setup: Callable[[], Any]
    run: Callable[[Any], int]
    description: str = ""


class _Noop:
    """The empty-method floor."""

    def call(self, *args: Any) -> None:
        return None


def _tracker(backend: str, dd: dict[str, Any] | None, admitted: int = MICRO_GROUPS) -> Any:
    groups = [(rg, MICRO_ROWS) for rg in range(admitted)]
    if backend == "cellfrontier":
        tracker = CompletionTracker.with_graph(build_graph(W10), groups)
    else:
        assert dd is not None
        tracker = dd["CompletionTracker"].with_graph(dd_graph(W10, dd), groups)
    for rg, size in groups:
        tracker.add_root_tasks(rg, size)
    return tracker


def _seeded(backend: str, dd: dict[str, Any] | None) -> Any:
    tracker = _tracker(backend, dd)
    for rg in range(MICRO_GROUPS):
        tracker.mark_row_range_complete("seed", rg, MICRO_ROWS)
    return tracker


def _one_seeded(backend: str, dd: dict[str, Any] | None) -> Any:
    """One admitted group with seed complete: a frontier of 2,000 tasks (topic and meta)."""
    tracker = _tracker(backend, dd, admitted=1)
    tracker.mark_row_range_complete("seed", 0, MICRO_ROWS)
    return tracker


def _topic_done(backend: str, dd: dict[str, Any] | None) -> Any:
    tracker = _seeded(backend, dd)
    for rg in range(MICRO_GROUPS):
        for row in range(MICRO_ROWS):
            tracker.mark_cell_complete("topic", rg, row)
    return tracker


def micro_cases(backend: str) -> list[MicroCase]:
    """The single-operation cases for ``backend`` ("cellfrontier" or "data-designer") on W10."""
    dd = drivers.import_data_designer() if backend == DD_BACKEND else None
    cells = [(rg, row) for rg in range(MICRO_GROUPS) for row in range(0, MICRO_ROWS, 10)]
    drop_rows = [(rg, row) for rg in range(MICRO_GROUPS) for row in range(0, MICRO_ROWS, 100)]

    def mark_cell(t: Any) -> int:
        mark = t.mark_cell_complete
        for rg, row in cells:
            mark("topic", rg, row)
        return len(cells)

    def mark_range(t: Any) -> int:
        mark = t.mark_row_range_complete
        for rg in range(MICRO_GROUPS):
            mark("seed", rg, MICRO_ROWS)
        return MICRO_GROUPS

    def drop(t: Any) -> int:
        drop_row = t.drop_row
        for rg, row in drop_rows:
            drop_row(rg, row)
        return len(drop_rows)

    if backend == "cellfrontier":
        ref_cls: Any = SliceRef
    else:
        assert dd is not None
        from data_designer.engine.dataset_builders.scheduling.task_model import SliceRef as ref_cls
    refs = [ref_cls(column="topic", row_group=rg, row_index=row) for rg, row in cells]

    def query(t: Any) -> int:
        is_complete = t.is_complete
        hits = 0
        for ref in refs:
            hits += is_complete(ref)
        if hits != len(refs):
            raise AssertionError(f"query: {hits} of {len(refs)} cells complete")
        return len(refs)

    if backend == "cellfrontier":

        def handout(t: Any, n: int, calls: int) -> int:
            got = 0
            for _ in range(calls):
                got += len(t.pop_ready(n))
            return got
    else:
        assert dd is not None
        stable_task_id = dd["stable_task_id"]

        def handout(t: Any, n: int, calls: int) -> int:
            got = 0
            for _ in range(calls):
                tasks = t.ready_frontier()[:n]
                t.mark_enqueued([stable_task_id(task) for task in tasks])
                got += len(tasks)
            return got

    def handout_check(n: int, calls: int) -> Callable[[Any], int]:
        def run(t: Any) -> int:
            got = handout(t, n, calls)
            if got != n * calls:
                raise AssertionError(f"handed out {got} tasks, expected {n * calls}")
            return calls

        return run

    return [
        MicroCase(
            "mark_cell",
            backend,
            len(cells),
            MICRO_ROWS,
            lambda: _seeded(backend, dd),
            mark_cell,
            "mark one topic cell complete (q becomes ready)",
        ),
        MicroCase(
            "mark_range",
            backend,
            MICRO_GROUPS,
            MICRO_ROWS,
            lambda: _tracker(backend, dd),
            mark_range,
            "complete seed over a 1,000-row group (topic and meta become ready)",
        ),
        MicroCase(
            "drop_row",
            backend,
            len(drop_rows),
            MICRO_ROWS,
            lambda: _topic_done(backend, dd),
            drop,
            "drop a row whose q cell is ready",
        ),
        MicroCase(
            "query_cell",
            backend,
            len(refs),
            MICRO_ROWS,
            lambda: _topic_done(backend, dd),
            query,
            "is_complete(SliceRef) on a completed cell",
        ),
        MicroCase(
            "handout_1",
            backend,
            HANDOUT_SINGLES,
            MICRO_ROWS,
            lambda: _one_seeded(backend, dd),
            handout_check(1, HANDOUT_SINGLES),
            f"hand out 1 ready task ({HANDOUT_SINGLES} times, from a frontier of {HANDOUT_FRONTIER:,})",
        ),
        MicroCase(
            f"handout_{HANDOUT_N}",
            backend,
            HANDOUT_FRONTIER // HANDOUT_N,
            MICRO_ROWS,
            lambda: _one_seeded(backend, dd),
            handout_check(HANDOUT_N, HANDOUT_FRONTIER // HANDOUT_N),
            f"hand out {HANDOUT_N:,} ready tasks at once (frontier of {HANDOUT_FRONTIER:,})",
        ),
    ]


def floor_cases(bitmap_rows: int = MICRO_ROWS, ops: int = 1000) -> list[MicroCase]:
    """The two floors, timed in the same loop shape as the operations."""
    noop = _Noop()
    args = [("topic", i % MICRO_GROUPS, i) for i in range(ops)]
    bitmap = np.zeros((bitmap_rows + 63) // 64, dtype=np.uint64)

    def call(_: Any) -> int:
        f = noop.call
        for column, rg, row in args:
            f(column, rg, row)
        return ops

    def copy(_: Any) -> int:
        c = bitmap.copy
        for _ in args:
            c()
        return ops

    return [
        MicroCase("floor_call", "floor", ops, bitmap_rows, lambda: None, call, "empty Python method call"),
        MicroCase(
            "floor_copy",
            "floor",
            ops,
            bitmap_rows,
            lambda: None,
            copy,
            f"numpy copy of a {bitmap_rows:,}-bit bitmap ({bitmap.nbytes} bytes)",
        ),
    ]


def time_case(case: MicroCase, rounds: int = 7) -> float:
    """Best seconds per operation over ``rounds`` fresh setups (setup is not timed)."""
    best = float("inf")
    for _ in range(rounds):
        state = case.setup()
        gc.disable()
        try:
            start = time.perf_counter()
            done = case.run(state)
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        best = min(best, elapsed / done)
    return best


@dataclass
class Floors:
    """Per-operation floor times in seconds, measured in the running process."""

    call: float
    copy: float
    extra: dict[str, float] = field(default_factory=dict)

    def ratios(self, seconds: float) -> dict[str, float]:
        """How many times each floor an operation takes."""
        return {"ratio_to_call": seconds / self.call, "ratio_to_copy": seconds / self.copy}


def measure_floors(rounds: int = 15) -> Floors:
    """Time both floors (best of ``rounds``)."""
    call, copy = (time_case(case, rounds) for case in floor_cases())
    return Floors(call=call, copy=copy)


# --------------------------------------------------------------------------- per-event scaling

SCALING_ROWS = (1_000, 65_536, 1_048_576)
"""Row-group sizes at which single events are timed: the cost must not grow with them."""


def scaling_cases(rows: int, ops: int = 500) -> list[MicroCase]:
    """Single events in one row group of *rows* rows (W10 graph), the same work at every size.

    The rows touched sit at the end of the group, where a scan from the first word would
    cost the most: a cell completion, a dropped row, and handing out one task at a time.
    """
    graph = build_graph(W10)
    targets = list(range(rows - ops, rows))

    def seeded() -> Any:
        tracker = CompletionTracker.with_graph(graph, [(0, rows)])
        tracker.add_root_tasks(0, rows)
        tracker.mark_row_range_complete("seed", 0, rows)
        return tracker

    def tail_ready() -> Any:
        """Only the last *ops* topic cells are ready (the rest handed out)."""
        tracker = seeded()
        tracker.ready_rows("topic", 0, take=True)
        tracker.ready_rows("meta", 0, take=True)
        tracker.add_ready_tasks([Task("topic", 0, r, "cell") for r in targets])
        return tracker

    def mark_cell(t: Any) -> int:
        f = t.mark_cell_complete
        for row in targets:
            f("topic", 0, row)
        return ops

    def drop_row(t: Any) -> int:
        f = t.drop_row
        for row in targets:
            f(0, row)
        return ops

    def handout_1(t: Any) -> int:
        f = t.pop_ready
        for _ in targets:
            f(1)
        return ops

    return [
        MicroCase(
            "mark_cell", "cellfrontier", ops, rows, seeded, mark_cell, f"mark a cell ({rows:,}-row group)"
        ),
        MicroCase(
            "drop_row", "cellfrontier", ops, rows, seeded, drop_row, f"drop a row ({rows:,}-row group)"
        ),
        MicroCase(
            "handout_1",
            "cellfrontier",
            ops,
            rows,
            tail_ready,
            handout_1,
            f"hand out 1 task ({rows:,}-row group)",
        ),
    ]
