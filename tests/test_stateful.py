"""A Hypothesis state machine: the tracker against the set-based reference model.

Every public mutation and query, the bulk calls, hand-outs (``pop_ready``, ``ready_rows``,
``pop_ready_batch``, ``mark_enqueued``), compaction, and checkpoint round trips
(``to_bytes``/``from_bytes``, pickle, ``save``/``load``) run on both; invalid calls (unknown
names and groups, bad indices, wrong strategies, size mismatches, compacted groups) must raise
the exception class the model raises and leave the tracker equal to the model.  After a round
trip the tracker's frontier is the model's plus the tasks that were handed out and never
completed; the model is updated to match (see :meth:`StatefulTracker.round_trip`).
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from reference_model import ModelGraph, ReferenceTracker, as_tuple, as_tuples

from cellfrontier import CellFrontierError, CompletionTracker, ExecutionGraph, SliceRef, Task


def make_graph(columns, edges) -> ExecutionGraph:
    graph = ExecutionGraph()
    for name, strategy in columns:
        graph.add_column(name, strategy)
    for up, down in edges:
        graph.add_edge(up, down)
    return graph


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
BAD_INDICES = [-1, 2**63, 10**30, 1.0, True, None, "0", np.float64(1.0)]
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

    def data_rg(self, data):
        return data.draw(
            st.sampled_from([*self.sizes, 5, *BAD_INDICES])
            if data.draw(st.integers(0, 9)) == 0
            else st.sampled_from(list(self.sizes))
        )

    def data_row(self, data, rg):
        size = self.sizes.get(rg, 3) if isinstance(rg, int) and not isinstance(rg, bool) else 3
        if data.draw(st.integers(0, 9)) == 0:
            return data.draw(st.sampled_from([size, *BAD_INDICES]))
        return data.draw(st.integers(0, max(size - 1, 0)))

    def data_column(self, data, pool):
        if data.draw(st.integers(0, 11)) == 0:
            return data.draw(st.sampled_from(["nope", "", *self.columns]))  # wrong strategy included
        return data.draw(st.sampled_from(pool))

    def forget(self, tasks) -> None:
        done = {as_tuple(t) for t in tasks}
        self.handed_out = [t for t in self.handed_out if as_tuple(t) not in done]

    # -- mutations ----------------------------------------------------------------------

    @rule(data=st.data())
    def add_roots(self, data) -> None:
        rg = self.data_rg(data)
        size = (
            self.sizes.get(rg, 1)
            if data.draw(st.integers(0, 9))
            else data.draw(st.sampled_from([7, -1, 1.0]))
        )
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
        size = (
            self.sizes.get(rg, 1)
            if data.draw(st.integers(0, 9))
            else data.draw(st.sampled_from([7, -1, 1.0]))
        )
        self.both("mark_row_range_complete", self.data_column(data, self.batch_columns), rg, size)

    @rule(data=st.data())
    def drop(self, data) -> None:
        rg = self.data_rg(data)
        self.both("drop_row", rg, self.data_row(data, rg))

    def data_rows(self, data, rg):
        size = self.sizes.get(rg, 3) if isinstance(rg, int) and not isinstance(rg, bool) else 3
        if data.draw(st.integers(0, 9)) == 0:
            return data.draw(
                st.sampled_from([np.array([size]), np.array([1.5]), np.zeros((1, 1), int), 3, [-1]])
            )
        rows = data.draw(st.lists(st.integers(0, max(size - 1, 0)), max_size=8))
        return np.array(rows, dtype=np.int64) if data.draw(st.booleans()) else rows

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

    @rule(max_tasks=st.sampled_from([None, 0, 1, 2, 5, 40, -1, 1.5]))
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
            self.handed_out.extend(Task(column, rg, int(r), "cell") for r in got)

    @rule(data=st.data())
    def take_batch(self, data) -> None:
        rg = self.data_rg(data)
        column = self.data_column(data, self.batch_columns)
        if self.both("pop_ready_batch", column, rg):
            self.handed_out.append(Task(column, rg, None, self.model.task(column, rg, None)[3]))

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
        probes = [
            ("is_dropped", (rg, row), (rg, row)),
            ("is_column_complete_for_rg", (column, rg), (column, rg)),
            ("ready_columns", (rg,), (rg,)),
            (
                "is_row_group_complete",
                (rg, self.sizes.get(rg, 1), [column]),
                (rg, self.sizes.get(rg, 1), [column]),
            ),
        ]
        for name, real_args, model_args in probes:
            self.query(name, real_args, model_args)
        for r in (row, None):
            self.query("is_complete", (SliceRef(column, rg, r),), (column, rg, r))
        if isinstance(column, str) and column:
            task = Task(column, rg, row if column in self.cell_columns else None, "cell")
            self.query("is_frontier_task", (task,), (task,))

    def query(self, name, real_args, model_args) -> None:
        try:
            expected = getattr(self.model, name)(*model_args)
        except CellFrontierError as exc:
            try:
                getattr(self.real, name)(*real_args)
            except type(exc):
                return
            raise AssertionError(f"{name}{real_args!r} should raise {type(exc).__name__}") from None
        assert getattr(self.real, name)(*real_args) == expected, (name, real_args)

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "real"):
            return
        assert as_tuples(self.real.ready_frontier()) == self.model.ready_frontier()
        assert self.real.frontier_size() == len(self.model.frontier)
        assert {c: tuple(p) for c, p in self.real.progress().items()} == self.model.progress()
        assert self.real.active_row_groups() == self.model.active_row_groups()


TestStatefulTracker = StatefulTracker.TestCase
