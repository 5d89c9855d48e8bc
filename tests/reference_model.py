"""A small, set-based reference tracker: the semantics of the design notes, written for clarity.

Nothing here is fast.  Readiness is recomputed from scratch for the whole row group after
every mutation, straight from the rules:

* a ``cell`` task ``(d, rg, r)`` of a non-root column is *satisfiable* when every
  cell-by-cell upstream has row ``r`` done, every full-column upstream has its batch done,
  row ``r`` is not dropped and ``(d, r)`` is not done;
* a ``batch`` task ``(d, rg)`` of a non-root column is satisfiable when every full-column
  upstream has its batch done, every cell-by-cell upstream is done or dropped on every row,
  and ``d``'s batch is not done.

Satisfiability is monotone (dependencies never un-finish; done and dropped are permanent), so
a task is satisfiable on one interval of time.  A task *enters* the frontier once, at the
start of that interval (the event that finished its last dependency); handing it out
(``pop_ready``, ``mark_enqueued``, ``ready_rows(take=True)``, ``pop_ready_batch``) removes it;
completing it or dropping its row removes it.  Root tasks (columns without upstreams) enter
only through ``add_root_tasks``, once per (group, root column).

Row groups with zero rows: every cell-by-cell column is vacuously resolved, so a non-root
full-column task whose upstreams are all cell-by-cell is satisfiable from the start; it enters
when the group is first touched by a call that succeeds.

Tasks are plain tuples ``(column, row_group, row_index, task_type)``.  Errors are raised with
the library's exception classes, checked in the order the library documents (column, then
strategy, then row group, then compaction, then row / size), and a call that raises changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cellfrontier.errors import (
    IndexTypeError,
    InvalidArgumentError,
    RowGroupCompactedError,
    RowIndexError,
    SizeMismatchError,
    StrategyMismatchError,
    UnknownColumnError,
    UnknownRowGroupError,
)

TaskTuple = tuple[str, int, "int | None", str]


@dataclass
class ModelGraph:
    """Just what the model needs from a graph: topological order, strategies and upstreams."""

    order: list[str]
    is_batch: dict[str, bool]
    cell_ups: dict[str, list[str]]
    batch_ups: dict[str, list[str]]

    @classmethod
    def from_graph(cls, graph) -> ModelGraph:
        order = graph.get_topological_order()
        is_batch = {c: graph.get_strategy(c).value == "full_column" for c in order}
        cell_ups, batch_ups = {}, {}
        for c in order:
            ups = graph.get_upstream_columns(c)
            cell_ups[c] = sorted(u for u in ups if not is_batch[u])
            batch_ups[c] = sorted(u for u in ups if is_batch[u])
        return cls(order, is_batch, cell_ups, batch_ups)

    def is_root(self, column: str) -> bool:
        return not self.cell_ups[column] and not self.batch_ups[column]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass
class ReferenceTracker:
    graph: ModelGraph
    sizes: dict[int, int]
    done: set[tuple[str, int, int]] = field(default_factory=set)
    batch_done: set[tuple[str, int]] = field(default_factory=set)
    dropped: set[tuple[int, int]] = field(default_factory=set)
    frontier: set[TaskTuple] = field(default_factory=set)
    entered: set[TaskTuple] = field(default_factory=set)
    roots_added: set[tuple[int, str]] = field(default_factory=set)
    active: set[int] = field(default_factory=set)
    compacted: dict[int, frozenset[int]] = field(default_factory=dict)
    compacted_completed: dict[str, int] = field(default_factory=dict)
    compacted_dropped: dict[str, int] = field(default_factory=dict)

    # -- helpers ------------------------------------------------------------------------

    def task(self, column: str, rg: int, row: int | None) -> TaskTuple:
        if row is not None:
            return (column, rg, row, "cell")
        return (column, rg, None, "from_scratch" if self.graph.is_root(column) else "batch")

    def _column(self, column) -> str:
        if not isinstance(column, str) or column not in self.graph.is_batch:
            raise UnknownColumnError(column)
        return column

    def _rg(self, rg) -> int:
        if not _is_int(rg):
            raise IndexTypeError(rg)
        rg = int(rg)
        if rg not in self.sizes:
            raise UnknownRowGroupError(rg)
        return rg

    def _live_rg(self, rg) -> int:
        rg = self._rg(rg)
        if rg in self.compacted:
            raise RowGroupCompactedError(rg)
        return rg

    def _row(self, rg: int, row) -> int:
        if not _is_int(row):
            raise IndexTypeError(row)
        row = int(row)
        if not 0 <= row < self.sizes[rg]:
            raise RowIndexError(row)
        return row

    def _size(self, rg: int, size) -> None:
        if not _is_int(size):
            raise IndexTypeError(size)
        if int(size) != self.sizes[rg]:
            raise SizeMismatchError(size)

    def _rows(self, rg: int, rows) -> list[int]:
        if isinstance(rows, np.ma.MaskedArray):  # its mask would be ignored
            raise IndexTypeError(rows)
        try:
            arr = np.asarray(rows)
        except (TypeError, ValueError):  # ragged
            raise IndexTypeError(rows) from None
        if arr.ndim != 1:
            raise IndexTypeError(rows)
        if arr.size == 0 and not isinstance(rows, np.ndarray):
            return []  # an empty list or tuple has no dtype; an empty array does
        if arr.dtype.kind not in "iu":
            raise IndexTypeError(rows)
        values = [int(v) for v in arr.tolist()]
        for v in values:
            if not 0 <= v < self.sizes[rg]:
                raise RowIndexError(v)
        return values

    def _satisfiable(self, t: TaskTuple) -> bool:
        column, rg, row, _ = t
        if any((u, rg) not in self.batch_done for u in self.graph.batch_ups[column]):
            return False
        if row is None:
            if (column, rg) in self.batch_done:
                return False
            return all(
                (u, rg, r) in self.done or (rg, r) in self.dropped
                for u in self.graph.cell_ups[column]
                for r in range(self.sizes[rg])
            )
        if (rg, row) in self.dropped or (column, rg, row) in self.done:
            return False
        return all((u, rg, row) in self.done for u in self.graph.cell_ups[column])

    def _tasks_of_group(self, rg: int) -> Iterable[TaskTuple]:
        for column in self.graph.order:
            if self.graph.is_batch[column]:
                yield self.task(column, rg, None)
            else:
                for r in range(self.sizes[rg]):
                    yield self.task(column, rg, r)

    def _settle(self, rg: int) -> None:
        """Let every non-root task of *rg* whose dependencies just finished enter the frontier."""
        self.active.add(rg)
        for t in self._tasks_of_group(rg):
            column = t[0]
            if self.graph.is_root(column) or t in self.entered:
                continue
            if self._satisfiable(t):
                self.entered.add(t)
                self.frontier.add(t)

    def _mutation(self, rg: int, change) -> tuple[set[TaskTuple], set[TaskTuple]]:
        before = set(self.frontier)
        change()
        self._settle(rg)
        after = self.frontier
        return after - before, before - after

    def _complete_cell(self, column: str, rg: int, row: int) -> None:
        self.done.add((column, rg, row))
        self.frontier.discard(self.task(column, rg, row))

    def _drop(self, rg: int, row: int) -> None:
        self.dropped.add((rg, row))
        for t in [t for t in self.frontier if t[1] == rg and t[2] == row]:
            self.frontier.discard(t)

    # -- mutations ----------------------------------------------------------------------

    def mark_cell_complete(self, column, rg, row):
        column = self._column(column)
        if self.graph.is_batch[column]:
            raise StrategyMismatchError(column)
        rg = self._live_rg(rg)
        row = self._row(rg, row)
        return self._mutation(rg, lambda: self._complete_cell(column, rg, row))

    def mark_cells_complete(self, column, rg, rows):
        column = self._column(column)
        if self.graph.is_batch[column]:
            raise StrategyMismatchError(column)
        rg = self._live_rg(rg)
        values = self._rows(rg, rows)

        def change() -> None:
            for row in values:
                self._complete_cell(column, rg, row)

        return self._mutation(rg, change)

    def mark_row_range_complete(self, column, rg, size):
        column = self._column(column)
        if not self.graph.is_batch[column]:
            raise StrategyMismatchError(column)
        rg = self._live_rg(rg)
        self._size(rg, size)

        def change() -> None:
            self.batch_done.add((column, rg))
            for row in range(self.sizes[rg]):
                self.done.add((column, rg, row))
            self.frontier.discard(self.task(column, rg, None))

        return self._mutation(rg, change)

    def drop_row(self, rg, row):
        rg = self._live_rg(rg)
        row = self._row(rg, row)
        return self._mutation(rg, lambda: self._drop(rg, row))

    def drop_rows(self, rg, rows):
        rg = self._live_rg(rg)
        values = self._rows(rg, rows)

        def change() -> None:
            for row in values:
                self._drop(rg, row)

        return self._mutation(rg, change)

    def prefill_row_group(self, rg, size, *, dropped=(), cell_columns=(), rows=(), full_columns=()):
        """Drop *dropped*, complete *rows* of *cell_columns* and the batches of *full_columns*: one event."""
        cells = [self._column(c) for c in cell_columns]
        batches = [self._column(c) for c in full_columns]
        for column in cells:
            if self.graph.is_batch[column]:
                raise StrategyMismatchError(column)
        for column in batches:
            if not self.graph.is_batch[column]:
                raise StrategyMismatchError(column)
        rg = self._live_rg(rg)
        self._size(rg, size)
        drop_values = self._rows(rg, dropped)
        row_values = self._rows(rg, rows)

        def change() -> None:
            for row in drop_values:
                self._drop(rg, row)
            for column in cells:
                for row in row_values:
                    self._complete_cell(column, rg, row)
            for column in batches:
                self.batch_done.add((column, rg))
                for row in range(self.sizes[rg]):
                    self.done.add((column, rg, row))
                self.frontier.discard(self.task(column, rg, None))

        self._mutation(rg, change)

    def add_root_tasks(self, rg, size, columns: Sequence[str] | None = None):
        if columns is None:
            roots = [c for c in self.graph.order if self.graph.is_root(c)]
        else:
            if isinstance(columns, str):
                raise InvalidArgumentError(columns)
            roots = []
            for c in columns:
                c = self._column(c)
                if not self.graph.is_root(c):
                    raise InvalidArgumentError(c)
                roots.append(c)
        rg = self._live_rg(rg)
        self._size(rg, size)

        def change() -> None:
            for c in roots:
                if (rg, c) in self.roots_added:
                    continue
                self.roots_added.add((rg, c))
                if self.graph.is_batch[c]:
                    if (c, rg) not in self.batch_done:
                        self.frontier.add(self.task(c, rg, None))
                else:
                    for r in range(self.sizes[rg]):
                        if (c, rg, r) not in self.done and (rg, r) not in self.dropped:
                            self.frontier.add(self.task(c, rg, r))

        return self._mutation(rg, change)

    def seed_frontier(self):
        added: set[TaskTuple] = set()
        for rg in sorted(self.sizes):
            if rg in self.compacted:
                raise RowGroupCompactedError(rg)
        for rg in self.sizes:
            added |= self.add_root_tasks(rg, self.sizes[rg])[0]
        return added, set()

    def _check_task(self, t) -> None:
        column, rg, row = t.column, t.row_group, t.row_index
        column = self._column(column)
        if self.graph.is_batch[column] != (row is None):
            raise StrategyMismatchError(column)
        rg = self._rg(rg)
        if row is not None:
            self._row(rg, row)
        if t.task_type != self.task(column, rg, row)[3]:
            raise InvalidArgumentError(t.task_type)

    def mark_enqueued(self, tasks) -> None:
        tasks = list(tasks)
        for t in tasks:
            self._check_task(t)
        for t in tasks:
            self.frontier.discard(self.task(t.column, int(t.row_group), t.row_index))

    def add_ready_tasks(self, tasks):
        tasks = list(tasks)
        for t in tasks:
            self._check_task(t)
            if int(t.row_group) in self.compacted:
                raise RowGroupCompactedError(t.row_group)
        before = set(self.frontier)
        for t in tasks:
            rg = int(t.row_group)
            self.frontier.add(self.task(t.column, rg, t.row_index))
            self._settle(rg)
        return self.frontier - before, set()

    def compact_row_group(self, rg, *, abandon=False) -> None:
        rg = self._rg(rg)
        if rg in self.compacted:
            return
        n = self.sizes[rg]
        open_rows = [
            r
            for r in range(n)
            if (rg, r) not in self.dropped and not all((c, rg, r) in self.done for c in self.graph.order)
        ]
        if open_rows:
            if not abandon:
                raise InvalidArgumentError(f"row group {rg} has {len(open_rows)} open rows")
            for r in open_rows:  # abandoned rows are dropped first
                self._drop(rg, r)
        dropped = frozenset(r for r in range(n) if (rg, r) in self.dropped)
        for c in self.graph.order:
            completed = sum((c, rg, r) in self.done for r in range(n))
            lost = sum((c, rg, r) not in self.done for r in dropped)
            self.compacted_completed[c] = self.compacted_completed.get(c, 0) + completed
            self.compacted_dropped[c] = self.compacted_dropped.get(c, 0) + lost
        self.compacted[rg] = dropped
        self.active.discard(rg)
        self.done = {k for k in self.done if k[1] != rg}
        self.batch_done = {k for k in self.batch_done if k[1] != rg}
        self.dropped = {k for k in self.dropped if k[0] != rg}
        self.frontier = {t for t in self.frontier if t[1] != rg}
        self.entered = {t for t in self.entered if t[1] != rg}

    # -- handing out ----------------------------------------------------------------------

    def _sort_key(self, t: TaskTuple):
        return (t[1], self.graph.order.index(t[0]), -1 if t[2] is None else t[2])

    def ready_frontier(self) -> list[TaskTuple]:
        return sorted(self.frontier, key=self._sort_key)

    def pop_ready(self, max_tasks: int | None = None) -> list[TaskTuple]:
        if max_tasks is not None:
            if not _is_int(max_tasks):
                raise IndexTypeError(max_tasks)
            if max_tasks < 0:
                raise InvalidArgumentError(max_tasks)
        out = self.ready_frontier()
        if max_tasks is not None:
            out = out[:max_tasks]
        self.frontier -= set(out)
        return out

    def ready_rows(self, column, rg, take: bool = False) -> list[int]:
        column = self._column(column)
        if self.graph.is_batch[column]:
            raise StrategyMismatchError(column)
        rg = self._rg(rg)
        tasks = sorted((t for t in self.frontier if t[0] == column and t[1] == rg), key=self._sort_key)
        if take:
            self.frontier -= set(tasks)
        return [t[2] for t in tasks]

    def pop_ready_batch(self, column, rg) -> bool:
        column = self._column(column)
        if not self.graph.is_batch[column]:
            raise StrategyMismatchError(column)
        rg = self._rg(rg)
        t = self.task(column, rg, None)
        if t in self.frontier:
            self.frontier.discard(t)
            return True
        return False

    def ready_columns(self, rg) -> list[str]:
        rg = self._rg(rg)
        present = {t[0] for t in self.frontier if t[1] == rg}
        return [c for c in self.graph.order if c in present]

    def get_ready_tasks(self, dispatched, admitted_rgs=None) -> list[TaskTuple]:
        """Ready tasks not in *dispatched* (tuples), of the admitted groups if given; nothing changes."""
        try:
            skip = set(dispatched)
            allowed = None if admitted_rgs is None else set(admitted_rgs)
        except TypeError:  # unhashable or not iterable
            raise IndexTypeError(dispatched) from None
        return [t for t in self.ready_frontier() if t not in skip and (allowed is None or t[1] in allowed)]

    def active_row_groups(self) -> list[int]:
        return sorted(self.active)

    # -- queries --------------------------------------------------------------------------

    def is_complete(self, column, rg, row) -> bool:
        column = self._column(column)
        rg = self._rg(rg)
        if row is not None:
            row = self._row(rg, row)
        if rg in self.compacted:
            if row is None:  # complete when compacted: a batch is done unless every row was dropped
                return self.sizes[rg] == 0 or len(self.compacted[rg]) < self.sizes[rg]
            return row not in self.compacted[rg]
        if row is None:
            return (column, rg) in self.batch_done
        return (column, rg, row) in self.done

    def is_all_complete(self, refs) -> bool:
        """``is_complete`` over *refs* in order, stopping at the first incomplete one."""
        if isinstance(refs, (str, bytes)):
            raise InvalidArgumentError(refs)
        try:
            refs = list(refs)
        except TypeError:
            raise InvalidArgumentError(refs) from None
        for ref in refs:
            if not all(hasattr(ref, a) for a in ("column", "row_group", "row_index")):
                raise InvalidArgumentError(ref)
            if not self.is_complete(ref.column, ref.row_group, ref.row_index):
                return False
        return True

    def is_dropped(self, rg, row) -> bool:
        rg = self._rg(rg)
        row = self._row(rg, row)
        if rg in self.compacted:
            return row in self.compacted[rg]
        return (rg, row) in self.dropped

    def _resolved(self, column: str, rg: int) -> bool:
        return all((column, rg, r) in self.done or (rg, r) in self.dropped for r in range(self.sizes[rg]))

    def is_column_complete_for_rg(self, column, rg) -> bool:
        column = self._column(column)
        rg = self._rg(rg)
        return rg in self.compacted or (column, rg) in self.batch_done or self._resolved(column, rg)

    def is_row_group_complete(self, rg, size, columns) -> bool:
        columns = [self._column(c) for c in columns]
        rg = self._rg(rg)
        self._size(rg, size)
        return rg in self.compacted or all(self._resolved(c, rg) for c in columns)

    def is_frontier_task(self, t) -> bool:
        column = self._column(t.column)
        rg = self._rg(t.row_group)
        if t.row_index is not None:
            if self.graph.is_batch[column]:
                return False
            self._row(rg, t.row_index)
        return (column, rg, t.row_index, t.task_type) in self.frontier

    def progress(self) -> dict[str, tuple[int, int, int]]:
        total = sum(self.sizes.values())
        out = {}
        for c in self.graph.order:
            completed = self.compacted_completed.get(c, 0) + sum(1 for k in self.done if k[0] == c)
            lost = self.compacted_dropped.get(c, 0) + sum(
                1 for (rg, r) in self.dropped if (c, rg, r) not in self.done
            )
            out[c] = (completed, lost, total)
        return out


def as_tuple(task) -> TaskTuple:
    """A library ``Task`` as the model's tuple."""
    return (task.column, task.row_group, task.row_index, task.task_type)


def as_tuples(tasks) -> list[TaskTuple]:
    return [as_tuple(t) for t in tasks]
