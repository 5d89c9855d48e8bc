"""A Hypothesis state machine: the tracker against the set-based reference model.

Every public mutation and query, the bulk calls, hand-outs (``pop_ready``, ``ready_rows``,
``pop_ready_batch``, ``mark_enqueued``, ``get_ready_tasks``), compaction, and checkpoint round
trips (``to_bytes``/``from_bytes``, pickle, ``save``/``load``) run on both; invalid calls
(unknown names and groups, bad indices, wrong strategies, size mismatches, bad bulk arrays,
wrong task types, compacted groups) must raise the exception class the model raises and leave
the tracker equal to the model.  Numpy integer scalars are valid indices everywhere.  After
every step the frontier, progress, active groups, ``nbytes`` bounds and, cell by cell, the done
and dropped state agree with the model.  After a round trip the tracker's frontier is the
model's plus the tasks that were handed out and never completed; the model is updated to match
(see :meth:`StatefulTracker.round_trip`).
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from graph_support import make_graph
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from reference_model import ModelGraph, ReferenceTracker, as_tuple, as_tuples

from cellfrontier import CellFrontierError, CompletionTracker, SliceRef, Task

GRAPHS = {
    "diamond": (
        [
            ("seed", "full_column"),
            ("a", "cell_by_cell"),
            ("b", "cell_by_cell"),
            ("judge", "full_column"),
            ("final", "cell_by_cell"),
        ],
        [("seed", "a"), ("seed", "b"), ("a", "judge"), ("b", "judge"), ("judge", "final"), ("a", "final")],
    ),
    "two_roots": (
        [("topic", "cell_by_cell"), ("seed", "full_column"), ("q", "cell_by_cell"), ("agg", "full_column")],
        [("topic", "q"), ("seed", "q"), ("q", "agg")],
    ),
}
PLANS = [[(0, 3), (4, 70), (9, 0)], [(-2, 64), (1, 1), (2, 65)]]
BAD_INDICES = [-1, 2**63, 10**30, 1.0, True, None, "0", np.float64(1.0), np.bool_(False)]
BAD_SIZES = [5.0, True, "5", None, np.float64(3.0), -1, 2**64]
# Bulk row arrays that are refused whatever the group: not 1-D, not integers, out of range.
BAD_ROWS = [
    np.array([True, False]),
    np.array([], dtype=bool),
    np.array([2**63], dtype=np.uint64),
    np.array([2**64 - 1, 0], dtype=np.uint64),
    np.array([1, 2], dtype=object),
    np.array([1, "x"], dtype=object),
    [2**70],
    [1, 2**70],
    np.zeros((1, 1), dtype=np.int64),
    np.zeros((2, 0), dtype=np.int64),
    [[0], [0, 1]],
    np.array([1.5]),
    np.array([0.0, 1.0]),
    np.array([], dtype=float),
    np.ma.masked_array([0, 1], mask=[False, True]),
    np.array([0, -1]),
    [-1],
    3,
    np.int64(0),
    "0",
    None,
]
SCALARS = [np.int64, np.int32, np.int16, np.uint64, np.uint16, np.uint8]
_TMP = Path(tempfile.mkdtemp(prefix="cf-stateful-"))


class StatefulTracker(RuleBasedStateMachine):
    @initialize(graph=st.sampled_from(sorted(GRAPHS)), plan=st.sampled_from(range(len(PLANS))))
    def start(self, graph, plan) -> None:
        self.graph = make_graph(*GRAPHS[graph])
        self.pairs = PLANS[plan]
        self.sizes = dict(self.pairs)
        self.columns = self.graph.get_topological_order()
        self.cell_columns = [c for c in self.columns if self.graph.get_strategy(c).value == "cell_by_cell"]
        self.batch_columns = [c for c in self.columns if c not in self.cell_columns]
        self.real = CompletionTracker.with_graph(self.graph, self.pairs)
        self.model = ReferenceTracker(ModelGraph.from_graph(self.graph), dict(self.sizes))
        self.handed_out: list[Task] = []

    # -- helpers ------------------------------------------------------------------------

    def state(self):
        return self.real.to_bytes(), self.real.ready_frontier()

    def both(self, name: str, *args, compare=True):
        """Call *name* on the model and the tracker; same outcome, or the same exception class."""
        try:
            expected = getattr(self.model, name)(*args)
        except CellFrontierError as exc:
            before = self.state()
            try:
                getattr(self.real, name)(*args)
            except type(exc):
                pass
            else:
                raise AssertionError(f"{name}{args!r} should raise {type(exc).__name__}")
            assert self.state() == before, f"failed {name}{args!r} changed the state"
            return None
        result = getattr(self.real, name)(*args)
        if compare and isinstance(expected, tuple) and len(expected) == 2:
            added, removed = set(as_tuples(result.added)), set(as_tuples(result.removed))
            assert added - removed == expected[0] and removed - added == expected[1], name
        return result

    def both_kw(self, name: str, *args, **kwargs) -> None:
        """Like :meth:`both` for a call with keyword arguments and no delta."""
        try:
            getattr(self.model, name)(*args, **kwargs)
        except CellFrontierError as exc:
            before = self.state()
            with pytest.raises(type(exc)):
                getattr(self.real, name)(*args, **kwargs)
            assert self.state() == before, f"failed {name}{args!r} changed the state"
            return
        getattr(self.real, name)(*args, **kwargs)

    def as_numpy(self, data, value: int):
        """*value* as a numpy integer scalar of a type that holds it, now and then."""
        if data.draw(st.integers(0, 3)):
            return value
        kind = data.draw(st.sampled_from(SCALARS))
        info = np.iinfo(kind)
        return kind(value) if info.min <= value <= info.max else np.int64(value)

    def data_rg(self, data):
        if data.draw(st.integers(0, 9)) == 0:
            return data.draw(st.sampled_from([*self.sizes, 5, *BAD_INDICES]))
        return self.as_numpy(data, data.draw(st.sampled_from(list(self.sizes))))

    def data_row(self, data, rg):
        size = self.size_of(rg, 3)
        if data.draw(st.integers(0, 9)) == 0:
            return data.draw(st.sampled_from([size, *BAD_INDICES]))
        return self.as_numpy(data, data.draw(st.integers(0, max(size - 1, 0))))

    def data_size(self, data, rg):
        """The group's size (maybe a numpy scalar), now and then a wrong or ill-typed one."""
        if data.draw(st.integers(0, 9)):
            return self.as_numpy(data, self.size_of(rg, 1))
        return data.draw(st.sampled_from([self.size_of(rg, 1) + 1, 7, *BAD_SIZES]))

    def size_of(self, rg, default: int) -> int:
        valid = isinstance(rg, (int, np.integer)) and not isinstance(rg, (bool, np.bool_))
        return self.sizes.get(int(rg), default) if valid else default

    def data_column(self, data, pool):
        if data.draw(st.integers(0, 11)) == 0:
            return data.draw(st.sampled_from(["nope", "", *self.columns]))  # wrong strategy included
        return data.draw(st.sampled_from(pool))

    def task_type(self, column: str, row) -> str:
        if row is not None:
            return "cell"
        return "from_scratch" if not self.graph.get_upstream_columns(column) else "batch"

    def forget(self, tasks) -> None:
        done = {as_tuple(t) for t in tasks}
        self.handed_out = [t for t in self.handed_out if as_tuple(t) not in done]

    # -- mutations ----------------------------------------------------------------------

    @rule(data=st.data())
    def add_roots(self, data) -> None:
        rg = self.data_rg(data)
        size = self.data_size(data, rg)
        columns = data.draw(st.sampled_from([None, None, [self.columns[0]], [self.columns[-1]], "seed"]))
        self.both("add_root_tasks", rg, size, columns)

    @rule()
    def seed_frontier(self) -> None:
        self.both("seed_frontier")

    @rule(data=st.data())
    def mark_cell(self, data) -> None:
        rg = self.data_rg(data)
        self.both(
            "mark_cell_complete", self.data_column(data, self.cell_columns), rg, self.data_row(data, rg)
        )

    @rule(data=st.data())
    def mark_range(self, data) -> None:
        rg = self.data_rg(data)
        size = self.data_size(data, rg)
        self.both("mark_row_range_complete", self.data_column(data, self.batch_columns), rg, size)

    @rule(data=st.data())
    def drop(self, data) -> None:
        rg = self.data_rg(data)
        self.both("drop_row", rg, self.data_row(data, rg))

    def data_rows(self, data, rg):
        size = self.size_of(rg, 3)
        if data.draw(st.integers(0, 6)) == 0:
            return data.draw(st.sampled_from([np.array([size]), [size], *BAD_ROWS]))
        rows = data.draw(st.lists(st.integers(0, max(size - 1, 0)), max_size=8))
        how = data.draw(st.sampled_from(["list", "tuple", "int64", "uint8", "int16", "uint64", "scalars"]))
        if how == "list":
            return rows
        if how == "tuple":
            return tuple(rows)
        if how == "scalars":
            return [np.int64(r) for r in rows]
        kind = np.dtype(how)
        if rows and max(rows) > np.iinfo(kind).max:
            kind = np.dtype(np.int64)
        return np.array(rows, dtype=kind)

    @rule(data=st.data())
    def mark_cells(self, data) -> None:
        rg = self.data_rg(data)
        self.both(
            "mark_cells_complete", self.data_column(data, self.cell_columns), rg, self.data_rows(data, rg)
        )

    @rule(data=st.data())
    def drop_rows(self, data) -> None:
        rg = self.data_rg(data)
        self.both("drop_rows", rg, self.data_rows(data, rg))

    @rule(data=st.data())
    def compact(self, data) -> None:
        self.both("compact_row_group", self.data_rg(data))

    @rule(data=st.data())
    def abandon(self, data) -> None:
        rg = self.data_rg(data)
        self.both_kw("compact_row_group", rg, abandon=True)

    # -- handing out ----------------------------------------------------------------------

    @rule(
        max_tasks=st.sampled_from(
            [None, 0, 1, 2, 5, 40, -1, 1.5, True, "3", np.int64(3), np.uint8(2), np.int32(-1), 2**70]
        )
    )
    def pop(self, max_tasks) -> None:
        got = self.both("pop_ready", max_tasks)
        if got is not None:
            self.handed_out.extend(got)

    @rule(data=st.data())
    def take_rows(self, data) -> None:
        rg = self.data_rg(data)
        column = self.data_column(data, self.cell_columns)
        take = data.draw(st.booleans())
        try:
            expected = self.model.ready_rows(column, rg, take)
        except CellFrontierError as exc:
            before = self.state()
            try:
                self.real.ready_rows(column, rg, take=take)
            except type(exc):
                pass
            else:
                raise AssertionError("ready_rows() should raise") from None
            assert self.state() == before
            return
        got = self.real.ready_rows(column, rg, take=take)
        assert got.tolist() == expected
        if take:
            self.handed_out.extend(Task(column, int(rg), int(r), "cell") for r in got)

    @rule(data=st.data())
    def take_batch(self, data) -> None:
        rg = self.data_rg(data)
        column = self.data_column(data, self.batch_columns)
        if self.both("pop_ready_batch", column, rg):
            self.handed_out.append(Task(column, int(rg), None, self.model.task(column, int(rg), None)[3]))

    @rule(data=st.data())
    def complete_handed_out(self, data) -> None:
        """The scheduler finishes a task it was handed (a drop on some cells)."""
        if not self.handed_out:
            return
        task = data.draw(st.sampled_from(self.handed_out))
        if task.row_group in self.model.compacted:
            return
        if task.row_index is None:
            self.both("mark_row_range_complete", task.column, task.row_group, self.sizes[task.row_group])
        elif data.draw(st.integers(0, 4)) == 0:
            self.both("drop_row", task.row_group, task.row_index)
        else:
            self.both("mark_cell_complete", task.column, task.row_group, task.row_index)
        self.forget([task])

    @rule(data=st.data())
    def enqueue_or_return(self, data) -> None:
        ready = self.real.ready_frontier()
        pool = list(ready[:5]) + self.handed_out[:3]
        tasks = data.draw(st.lists(st.sampled_from(pool), max_size=3)) if pool else []
        if data.draw(st.integers(0, 5)) == 0:
            rg = self.data_rg(data)
            tasks.append(Task(self.data_column(data, self.columns), rg, self.data_row(data, rg), "cell"))
        if data.draw(st.booleans()):
            self.both("mark_enqueued", tasks, compare=False)
            if all(isinstance(t, Task) for t in tasks):
                self.handed_out.extend(t for t in tasks if t in ready)
        else:
            self.both("add_ready_tasks", tasks, compare=False)

    # -- checkpoints ----------------------------------------------------------------------

    @rule(how=st.sampled_from(["bytes", "pickle", "file", "file+graph"]))
    def round_trip(self, how) -> None:
        real = self.real
        if how == "bytes":
            self.real = CompletionTracker.from_bytes(real.to_bytes())
        elif how == "pickle":
            self.real = pickle.loads(pickle.dumps(real))
        else:
            path = _TMP / "machine.ckpt"
            real.save(path)
            self.real = CompletionTracker.load(path, self.graph if how == "file+graph" else None)
        # Handed out but never completed: ready again.  The model learns what came back.
        m = self.model
        for rg in list(m.active):
            for t in m._tasks_of_group(rg):
                column = t[0]
                if m.graph.is_root(column):
                    if (rg, column) not in m.roots_added:
                        continue
                    if t[2] is None:
                        back = (column, rg) not in m.batch_done
                    else:
                        back = (column, rg, t[2]) not in m.done and (rg, t[2]) not in m.dropped
                else:
                    back = m._satisfiable(t)
                if back:
                    m.frontier.add(t)
                    m.entered.add(t)
        self.handed_out.clear()

    # -- queries --------------------------------------------------------------------------

    @rule(data=st.data())
    def queries(self, data) -> None:
        rg = self.data_rg(data)
        row = self.data_row(data, rg)
        column = self.data_column(data, self.columns)
        size = self.data_size(data, rg)
        probes = [
            ("is_dropped", (rg, row), (rg, row)),
            ("is_column_complete_for_rg", (column, rg), (column, rg)),
            ("ready_columns", (rg,), (rg,)),
            ("is_row_group_complete", (rg, size, [column]), (rg, size, [column])),
        ]
        for name, real_args, model_args in probes:
            self.query(name, real_args, model_args)
        for r in (row, None):
            self.query("is_complete", (SliceRef(column, rg, r),), (column, rg, r))

    @rule(data=st.data())
    def frontier_task(self, data) -> None:
        """``is_frontier_task`` for ready tasks, their near misses and malformed ones."""
        ready = self.real.ready_frontier()
        if ready and data.draw(st.booleans()):
            task = data.draw(st.sampled_from(ready))
            column, rg, row = task.column, task.row_group, task.row_index
        else:
            rg = self.data_rg(data)
            column = data.draw(st.sampled_from([*self.columns, "nope"]))
            row = self.data_row(data, rg) if column in self.cell_columns else None
        if data.draw(st.integers(0, 3)) == 0:  # the row present on a batch column or missing on a cell one
            row = None if row is not None else self.data_row(data, rg)
        right = self.task_type(column, row) if column in self.columns else "cell"
        kind = data.draw(st.sampled_from([right, right, "cell", "batch", "from_scratch", "nope"]))
        task = Task(column, rg, row, kind)
        self.query("is_frontier_task", (task,), (task,))

    @rule(data=st.data())
    def ready_tasks(self, data) -> None:
        """``get_ready_tasks``: the frontier less what was dispatched, of the admitted groups."""
        pool = list(self.real.ready_frontier()) + self.handed_out
        dispatched = data.draw(st.lists(st.sampled_from(pool), max_size=6)) if pool else []
        if data.draw(st.booleans()):
            rgs = data.draw(st.lists(st.sampled_from([*self.sizes, 5, "0", -7]), max_size=3))
            admitted = [self.as_numpy(data, rg) if isinstance(rg, int) else rg for rg in rgs]
        else:
            admitted = None
        real_dispatched, model_dispatched = dispatched, [as_tuple(t) for t in dispatched]
        shape = data.draw(st.integers(0, 9))
        if shape == 0:
            real_dispatched = model_dispatched = data.draw(st.sampled_from([None, 5, [[1]], [{}]]))
        elif shape == 1:
            admitted = data.draw(st.sampled_from([5, [[0]], [{}]]))
        elif shape == 2:
            real_dispatched, model_dispatched = set(dispatched), set(model_dispatched)
        before = self.state()
        try:
            expected = self.model.get_ready_tasks(model_dispatched, admitted)
        except CellFrontierError as exc:
            with pytest.raises(type(exc)):
                self.real.get_ready_tasks(real_dispatched, admitted)
        else:
            assert as_tuples(self.real.get_ready_tasks(real_dispatched, admitted)) == expected
        assert self.state() == before, "get_ready_tasks() changed the state"

    @rule(data=st.data())
    def all_complete(self, data) -> None:
        """``is_all_complete`` over a list of cells and batches (bad refs included)."""
        refs = []
        for _ in range(data.draw(st.integers(0, 4))):
            rg = self.data_rg(data)
            column = self.data_column(data, self.columns)
            refs.append(SliceRef(column, rg, None if data.draw(st.booleans()) else self.data_row(data, rg)))
        if data.draw(st.integers(0, 9)) == 0:
            refs = data.draw(
                st.sampled_from([[(self.columns[0], 0, None)], "seed", 5, None, SliceRef("a", 0, 0)])
            )
        self.query("is_all_complete", (refs,), (refs,))

    def query(self, name, real_args, model_args) -> None:
        before = self.state()
        try:
            expected = getattr(self.model, name)(*model_args)
        except CellFrontierError as exc:
            try:
                getattr(self.real, name)(*real_args)
            except type(exc):
                pass
            else:
                raise AssertionError(f"{name}{real_args!r} should raise {type(exc).__name__}") from None
        else:
            assert getattr(self.real, name)(*real_args) == expected, (name, real_args)
        assert self.state() == before, f"the query {name}{real_args!r} changed the state"

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "real"):
            return
        assert as_tuples(self.real.ready_frontier()) == self.model.ready_frontier()
        assert self.real.frontier_size() == len(self.model.frontier)
        assert {c: tuple(p) for c, p in self.real.progress().items()} == self.model.progress()
        assert self.real.active_row_groups() == self.model.active_row_groups()
        # The frontier queries on a few tasks every step (their rules also probe bad input).
        ready = self.real.ready_frontier()
        for task in [*ready[:3], *ready[-2:], *self.handed_out[:3]]:
            assert self.real.is_frontier_task(task) == (as_tuple(task) in self.model.frontier), task
        first = self.pairs[0][0]
        got = self.real.get_ready_tasks(ready[:2], [first])
        assert as_tuples(got) == self.model.get_ready_tasks(as_tuples(ready[:2]), [first])

    @invariant()
    def cells_agree(self) -> None:
        """Done and dropped, cell by cell: every row of small groups, a rotating sample of big ones."""
        if not hasattr(self, "real"):
            return
        self.checks = getattr(self, "checks", 0) + 1
        real, model = self.real, self.model
        for rg, n in self.pairs:
            rows = range(n) if n <= 8 else sorted({0, n - 1, *range(self.checks % 11, n, 11)})
            compacted = rg in model.compacted
            for row in rows:
                dropped = model.is_dropped(rg, row) if compacted else (rg, row) in model.dropped
                assert real.is_dropped(rg, row) == dropped, (rg, row)
                for column in self.columns:
                    done = (
                        model.is_complete(column, rg, row) if compacted else (column, rg, row) in model.done
                    )
                    assert real.is_complete(SliceRef(column, rg, row)) == done, (column, rg, row)
                refs = [SliceRef(column, rg, row) for column in self.columns]
                assert real.is_all_complete(refs) == model.is_all_complete(refs), (rg, row)
            for column in self.columns:
                assert real.is_complete(SliceRef(column, rg, None)) == model.is_complete(column, rg, None)

    @invariant()
    def nbytes_bounded(self) -> None:
        """A few bits per cell of the active groups, a bit per row of compacted ones, no more."""
        if not hasattr(self, "real"):
            return
        c = len(self.columns)
        bound = 16 * c  # the per-column totals of compacted groups
        for rg in self.model.active:
            words = max((self.sizes[rg] + 63) // 64, 1)
            bound += 8 * (2 * c + 1) * words + 5 * 4 * c  # bit planes, counters and flags
        bound += sum((self.sizes[rg] + 7) // 8 for rg in self.model.compacted)
        assert 0 < self.real.nbytes <= bound, (self.real.nbytes, bound)


TestStatefulTracker = StatefulTracker.TestCase


@pytest.mark.parametrize(
    ("row_group", "error"), [(5, "UnknownRowGroupError"), (1.0, "IndexTypeError"), ("0", "IndexTypeError")]
)
def test_is_frontier_task_validates_the_group_of_a_batch_task_with_a_row(row_group, error) -> None:
    """Every query refuses a bad row group, this one included (the model raises here too)."""
    graph = make_graph(*GRAPHS["diamond"])
    tracker = CompletionTracker.with_graph(graph, PLANS[0])
    model = ReferenceTracker(ModelGraph.from_graph(graph), dict(PLANS[0]))
    task = Task("seed", row_group, 0, "cell")
    with pytest.raises(CellFrontierError) as expected:
        model.is_frontier_task(task)
    assert type(expected.value).__name__ == error
    with pytest.raises(type(expected.value)):
        tracker.is_frontier_task(task)
