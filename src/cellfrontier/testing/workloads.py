"""The reference tracker workloads W10 and W64: column DAGs and how a driver plays them.

Every throughput or memory figure the project quotes is measured on one of these workloads (or
on the job workloads of :mod:`cellfrontier.testing.j12`), so that figures from different places
measure the same work; a user's own tests and benchmarks can run them too.

A workload is a column DAG plus the way the driver plays it: row groups of ``buffer_size`` rows,
at most ``window`` of them active at once, and optionally one ``cell_by_cell`` column whose cells
drop their row instead of completing it when the row's global index is divisible by
``drop_every``.  :func:`expected_task_count` says how many tasks a correct driver processes.
:mod:`cellfrontier.simulate.drivers` holds the reference driver itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cellfrontier.graph import ExecutionGraph

__all__ = [
    "CELL_BY_CELL",
    "FULL_COLUMN",
    "W10",
    "W64",
    "WORKLOADS",
    "Workload",
    "WorkloadColumn",
    "build_graph",
    "column_depths",
    "dropped_row_count",
    "expected_task_count",
    "get_workload",
    "graph_from_columns",
    "row_groups",
]

CELL_BY_CELL = "cell_by_cell"
FULL_COLUMN = "full_column"

WorkloadColumn = tuple[str, str, tuple[str, ...]]
"""``(name, strategy, upstream names)``; strategies are plain strings so no enum import is needed."""


@dataclass(frozen=True)
class Workload:
    """A reference workload: the column DAG and how the driver plays it.

    ``columns`` are listed in a valid topological order. ``admit_all`` admits every row group at
    once (``window`` is then ignored), which is how memory is measured on a fully admitted run.
    """

    name: str
    columns: tuple[WorkloadColumn, ...]
    buffer_size: int
    window: int
    drop_column: str | None = None
    drop_every: int | None = None
    admit_all: bool = False

    def __post_init__(self) -> None:
        # Checked here so that a malformed workload fails when defined, not halfway through a run.
        if self.buffer_size <= 0:
            raise ValueError(f"buffer_size must be positive, got {self.buffer_size}")
        if self.window <= 0 and not self.admit_all:
            raise ValueError(f"window must be positive, got {self.window}")
        seen: set[str] = set()
        for name, strategy, upstream in self.columns:
            if strategy not in (CELL_BY_CELL, FULL_COLUMN):
                raise ValueError(f"column {name!r}: unknown strategy {strategy!r}")
            if name in seen:
                raise ValueError(f"column {name!r} is listed twice")
            missing = [up for up in upstream if up not in seen]
            if missing:
                raise ValueError(f"column {name!r} depends on {missing}, which are not listed before it")
            seen.add(name)
        if (self.drop_column is None) != (self.drop_every is None):
            raise ValueError("drop_column and drop_every must be given together")
        if self.drop_column is not None:
            if self.strategy(self.drop_column) != CELL_BY_CELL:
                raise ValueError(f"drop column {self.drop_column!r} must be a cell_by_cell column")
            if self.drop_every is None or self.drop_every <= 0:
                raise ValueError(f"drop_every must be positive, got {self.drop_every}")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in the workload's (topological) order."""
        return tuple(name for name, _, _ in self.columns)

    def strategy(self, column: str) -> str:
        """The strategy string of ``column``."""
        for name, strategy, _ in self.columns:
            if name == column:
                return strategy
        raise KeyError(column)

    def upstream(self, column: str) -> tuple[str, ...]:
        """The direct upstream columns of ``column``."""
        for name, _, upstream in self.columns:
            if name == column:
                return upstream
        raise KeyError(column)

    def effective_window(self, num_groups: int) -> int:
        """How many row groups may be active at once for a run of ``num_groups`` groups."""
        return max(num_groups, 1) if self.admit_all else self.window


W10 = Workload(
    name="W10",
    columns=(
        ("seed", FULL_COLUMN, ()),
        ("topic", CELL_BY_CELL, ("seed",)),
        ("q", CELL_BY_CELL, ("topic",)),
        ("a", CELL_BY_CELL, ("q", "topic")),
        ("judge", FULL_COLUMN, ("q", "a")),
        ("score", CELL_BY_CELL, ("judge",)),
        ("fix", CELL_BY_CELL, ("a", "score")),
        ("meta", CELL_BY_CELL, ("seed",)),
        ("agg", FULL_COLUMN, ("fix", "meta")),
        ("final", CELL_BY_CELL, ("agg", "fix")),
    ),
    buffer_size=1000,
    window=3,
    drop_column="q",
    drop_every=100,
)
"""Ten mixed columns: fan-out, fan-in, three barriers and dropped rows."""

W64 = Workload(
    name="W64",
    columns=(("seed", FULL_COLUMN, ()), *((f"c{i}", CELL_BY_CELL, ("seed",)) for i in range(1, 64))),
    buffer_size=1000,
    window=4,
)
"""Sixty-four wide columns, the shape of a large LLM job: one seed barrier, then 63 cell columns."""

WORKLOADS: dict[str, Workload] = {"W10": W10, "W64": W64}


def get_workload(name: str) -> Workload:
    """Look a workload up by name, with an error that lists the known ones."""
    try:
        return WORKLOADS[name.upper()]
    except KeyError:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}") from None


def row_groups(rows: int, buffer: int) -> list[tuple[int, int]]:
    """Split ``rows`` into ``(id, size)`` groups of ``buffer`` rows, the last one shorter."""
    if rows < 0:
        raise ValueError(f"rows must be non-negative, got {rows}")
    if buffer <= 0:
        raise ValueError(f"buffer must be positive, got {buffer}")
    return [(rg, min(buffer, rows - start)) for rg, start in enumerate(range(0, rows, buffer))]


def dropped_row_count(workload: Workload, rows: int) -> int:
    """How many global rows in ``0..rows-1`` the drop column drops (multiples of ``drop_every``)."""
    if workload.drop_every is None or rows <= 0:
        return 0
    return (rows - 1) // workload.drop_every + 1


def column_depths(workload: Workload) -> dict[str, int]:
    """The driver tick (1-based, counted from a row group's admission) at which each column runs.

    Roots run in the first tick; any other column runs one tick after its last upstream, since a
    tick completes everything it took and a task becomes ready as soon as its last dependency
    finishes. All rows of a group move in lockstep, so one number per column is exact.
    """
    depths: dict[str, int] = {}
    for name, _, upstream in workload.columns:
        depths[name] = 1 + max((depths[up] for up in upstream), default=0)
    return depths


def expected_task_count(workload: Workload, rows: int) -> int:
    """The number of tasks the driver processes, derived from the workload's structure.

    Each ``full_column`` column runs once per row group, whatever was dropped (a batch is ready
    once every cell upstream is done or dropped). A ``cell_by_cell`` column runs once per row,
    except on dropped rows, and a row only counts as dropped for the columns whose tasks had not
    yet been handed out when the drop happened. The drop column's cell for row r is what drops r,
    in tick ``depth(drop)``; a cell task of column c for that row is handed out in tick
    ``depth(c)``. So c processes dropped rows exactly when ``depth(c) <= depth(drop)`` (it ran
    in an earlier tick, or in the same tick, whose tasks were all taken before any completed),
    and skips them when ``depth(c) > depth(drop)``: its task never becomes ready, or is removed
    from the frontier by the drop. Every column downstream of the drop column is deeper than it
    and so skips dropped rows; a column off that path skips them only if it is deeper as well.
    The drop column's own cells count, dropped ones included.

    In W10 the drop column ``q`` runs in tick 3; ``topic`` (tick 2) and ``meta`` (tick 2, it only
    needs ``seed``) process every row, while ``a``, ``score``, ``fix`` and ``final`` (all
    downstream of ``q``) skip the dropped rows: at 10,000 rows that is 3 x 10,000 + 4 x 9,900 +
    3 batches x 10 groups = 69,630.
    """
    groups = len(row_groups(rows, workload.buffer_size))
    dropped = dropped_row_count(workload, rows)
    depths = column_depths(workload)
    drop_depth = depths[workload.drop_column] if workload.drop_column is not None else None
    total = 0
    for name, strategy, _ in workload.columns:
        if strategy == FULL_COLUMN:
            total += groups
        elif drop_depth is not None and depths[name] > drop_depth:
            total += rows - dropped
        else:
            total += rows
    return total


def graph_from_columns(columns: Iterable[tuple[str, str, Iterable[str]]]) -> ExecutionGraph:
    """An :class:`~cellfrontier.ExecutionGraph` from ``(name, strategy, upstream names)`` triples.

    Upstream columns must come before the columns that read them.  A new graph each call:
    graphs freeze once a tracker uses them.
    """
    listed = list(columns)
    graph = ExecutionGraph()
    for name, strategy, _ in listed:
        graph.add_column(name, strategy)
    for name, _, upstream in listed:
        for up in upstream:
            graph.add_edge(up, name)
    return graph


def build_graph(workload: Workload) -> ExecutionGraph:
    """The workload's :class:`~cellfrontier.ExecutionGraph` (a new one each call)."""
    return graph_from_columns(workload.columns)
