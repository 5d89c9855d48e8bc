"""Differential property tests: the compiled tracker against the set-based reference model.

Random DAGs (1-12 columns, mixed strategies), row groups of awkward sizes (0, 1, 63, 64, 65,
a few hundred) with non-contiguous ids, and random event sequences that include invalid
calls.  After every step the frontier (as a set and in pop order), the delta of the step and
every query answer must agree; a call the model rejects must raise the same exception class
in the tracker and change nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from reference_model import ModelGraph, ReferenceTracker, as_tuples

from cellfrontier import CompletionTracker, ExecutionGraph, RowGroupPlan, SliceRef, Task

SIZES = [0, 1, 2, 3, 5, 63, 64, 65, 130, 257]
INT_TYPES = [int, np.int64, np.int32, np.int16, np.intp]


@st.composite
def graphs(draw) -> ExecutionGraph:
    n = draw(st.integers(1, 12))
    names = [f"c{i}" for i in range(n)]
    strategies = draw(st.lists(st.sampled_from(["cell_by_cell", "full_column"]), min_size=n, max_size=n))
    # Edges respect a random order; columns are registered in another random order.
    order = draw(st.permutations(names))
    density = draw(st.sampled_from([0.0, 0.2, 0.4, 0.8]))
    edges = []
    for j in range(n):
        for i in range(j):
            if draw(st.floats(0, 1)) < density:
                edges.append((order[i], order[j]))
    graph = ExecutionGraph()
    for name in draw(st.permutations(names)):
        graph.add_column(name, strategies[names.index(name)])
    for up, down in draw(st.permutations(edges)):
        graph.add_edge(up, down)
    return graph


@st.composite
def row_group_pairs(draw) -> list[tuple[int, int]]:
    ids = draw(st.lists(st.integers(-3, 40), min_size=1, max_size=4, unique=True))
    return [(rg, draw(st.sampled_from(SIZES))) for rg in ids]


def _delta_sets(delta) -> tuple[set, set]:
    return set(as_tuples(delta.added)), set(as_tuples(delta.removed))


class Harness:
    """Runs every call on the model and on the tracker and compares the outcomes."""

    def __init__(self, graph: ExecutionGraph, pairs, use_plan: bool) -> None:
        self.graph = graph
        self.sizes = dict(pairs)
        self.model = ReferenceTracker(ModelGraph.from_graph(graph), dict(pairs))
        plan = RowGroupPlan.explicit(pairs) if use_plan else list(pairs)
        self.tracker = CompletionTracker.with_graph(graph, plan)
        self.handed_out: list[tuple] = []  # tasks given to a "worker", not yet completed
        self.check_every_call = True  # False: deltas after every call, full comparison on demand

    # -- running calls ------------------------------------------------------------------

    def call(self, name: str, *args, **kwargs):
        """Call *name* on both; on a model error the tracker must raise the same class."""
        try:
            expected = getattr(self.model, name)(*args, **kwargs)
        except Exception as exc:
            with pytest.raises(type(exc)):
                getattr(self.tracker, name)(*args, **kwargs)
            self.check()
            return None, None
        actual = getattr(self.tracker, name)(*args, **kwargs)
        return expected, actual

    def mutate(self, name: str, *args) -> None:
        expected, delta = self.call(name, *args)
        if expected is not None:
            assert _delta_sets(delta) == expected, name
            assert delta.empty == (not expected[0] and not expected[1])
        self.check()

    def pop(self, max_tasks) -> None:
        expected, actual = self.call("pop_ready", max_tasks)
        if expected is not None:
            assert as_tuples(actual) == expected
            self.handed_out.extend(expected)
        self.check()

    def complete(self, task: tuple) -> None:
        column, rg, row, _ = task
        if row is None:
            self.mutate("mark_row_range_complete", column, rg, self.sizes[rg])
        else:
            self.mutate("mark_cell_complete", column, rg, row)

    # -- comparing ------------------------------------------------------------------------

    def probe_rows(self, rg: int) -> list[int]:
        n = self.sizes[rg]
        return sorted({r for r in (0, 1, n // 2, n - 2, n - 1, 63, 64) if 0 <= r < n})

    def check(self, force: bool = False) -> None:
        model, tracker = self.model, self.tracker
        if not (force or self.check_every_call):
            assert tracker.frontier_size() == len(model.frontier)
            return
        frontier = as_tuples(tracker.ready_frontier())
        assert frontier == model.ready_frontier()
        assert tracker.frontier_size() == len(model.frontier)
        assert tracker.active_row_groups() == model.active_row_groups()
        progress = tracker.progress()
        assert {c: tuple(p) for c, p in progress.items()} == model.progress()
        all_columns = model.graph.order
        for rg, n in self.sizes.items():
            assert tracker.ready_columns(rg) == model.ready_columns(rg)
            assert tracker.is_row_group_complete(rg, n, all_columns) == model.is_row_group_complete(
                rg, n, all_columns
            )
            for column in all_columns:
                assert tracker.is_column_complete_for_rg(column, rg) == model.is_column_complete_for_rg(
                    column, rg
                ), (column, rg)
                batch = model.graph.is_batch[column]
                if batch:
                    assert tracker.is_complete(SliceRef(column, rg)) == model.is_complete(column, rg, None)
                    task = Task(column, rg, None, model.task(column, rg, None)[3])
                    assert tracker.is_frontier_task(task) == model.is_frontier_task(task)
                else:
                    ready = tracker.ready_rows(column, rg)
                    assert ready.dtype == np.int64
                    assert ready.tolist() == model.ready_rows(column, rg)
            for r in self.probe_rows(rg):
                assert tracker.is_dropped(rg, r) == model.is_dropped(rg, r)
                for column in all_columns:
                    assert tracker.is_complete(SliceRef(column, rg, r)) == model.is_complete(column, rg, r)
                    if not model.graph.is_batch[column]:
                        task = Task(column, rg, r, "cell")
                        assert tracker.is_frontier_task(task) == model.is_frontier_task(task)

    # -- random steps -------------------------------------------------------------------

    def step(self, data) -> None:
        model = self.model
        rgs = sorted(self.sizes)
        columns = model.graph.order
        cell_columns = [c for c in columns if not model.graph.is_batch[c]]
        batch_columns = [c for c in columns if model.graph.is_batch[c]]
        action = data.draw(
            st.sampled_from(
                [
                    "complete_ready",
                    "complete_ready",
                    "complete_handed_out",
                    "complete_handed_out",
                    "cell",
                    "range",
                    "bulk",
                    "drop",
                    "drop_bulk",
                    "prefill",
                    "roots",
                    "roots",
                    "seed",
                    "pop",
                    "pop",
                    "advance",
                    "advance",
                    "advance",
                    "enqueue",
                    "take_rows",
                    "take_batch",
                    "compact",
                    "abandon",
                    "invalid",
                ]
            )
        )
        draw_int = data.draw(st.sampled_from(INT_TYPES))
        rg = data.draw(st.sampled_from(rgs))
        n = self.sizes[rg]
        if action == "complete_ready" and model.frontier:
            self.complete(data.draw(st.sampled_from(model.ready_frontier())))
        elif action == "advance" and model.frontier:
            self.advance(data)
        elif action == "complete_handed_out" and self.handed_out:
            task = self.handed_out.pop(data.draw(st.integers(0, len(self.handed_out) - 1)))
            if task[1] not in model.compacted:
                self.complete(task)
        elif action == "cell" and cell_columns and n:
            row = data.draw(st.integers(0, n - 1))
            self.mutate(
                "mark_cell_complete", data.draw(st.sampled_from(cell_columns)), draw_int(rg), draw_int(row)
            )
        elif action == "range" and batch_columns:
            self.mutate("mark_row_range_complete", data.draw(st.sampled_from(batch_columns)), rg, n)
        elif action == "bulk" and cell_columns:
            rows = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=min(n, 80))) if n else []
            dtype = data.draw(st.sampled_from([np.int64, np.int32, np.uint32, np.int16]))
            self.mutate(
                "mark_cells_complete",
                data.draw(st.sampled_from(cell_columns)),
                rg,
                np.array(rows, dtype=dtype),
            )
        elif action == "drop" and n:
            self.mutate("drop_row", rg, draw_int(data.draw(st.integers(0, n - 1))))
        elif action == "prefill":
            self.prefill(data, rg, n, cell_columns, batch_columns)
        elif action == "drop_bulk":
            rows = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=min(n, 40))) if n else []
            self.mutate("drop_rows", rg, np.array(rows, dtype=np.int64))
        elif action == "roots":
            roots = [c for c in columns if model.graph.is_root(c)]
            subset = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(roots), max_size=3)))
            self.mutate("add_root_tasks", rg, n, subset)
        elif action == "seed":
            self.mutate("seed_frontier")
        elif action == "pop":
            self.pop(data.draw(st.one_of(st.none(), st.integers(0, 12))))
        elif action == "enqueue" and model.frontier:
            chosen = data.draw(st.lists(st.sampled_from(model.ready_frontier()), max_size=5))
            tasks = [Task(*t) for t in chosen]
            self.call("mark_enqueued", tasks)
            self.handed_out.extend(chosen)
            self.check()
        elif action == "take_rows" and cell_columns:
            column = data.draw(st.sampled_from(cell_columns))
            expected, actual = self.call("ready_rows", column, rg, take=True)
            assert actual.tolist() == expected
            self.handed_out.extend(model.task(column, rg, r) for r in expected)
            self.check()
        elif action == "take_batch" and batch_columns:
            column = data.draw(st.sampled_from(batch_columns))
            expected, actual = self.call("pop_ready_batch", column, rg)
            assert actual is expected
            if expected:
                self.handed_out.append(model.task(column, rg, None))
            self.check()
        elif action == "compact":
            self.call("compact_row_group", rg)
            self.check()
        elif action == "abandon":
            self.call("compact_row_group", rg, abandon=True)
            self.check()
        elif action == "invalid":
            self.invalid(data, rg, n, cell_columns, batch_columns)

    def advance(self, data) -> None:
        """Move one column of one group forward at once: finish its ready tasks, dropping a few rows."""
        column, rg, _, _ = data.draw(st.sampled_from(self.model.ready_frontier()))
        if self.model.graph.is_batch[column]:
            self.mutate("mark_row_range_complete", column, rg, self.sizes[rg])
            return
        rows = self.model.ready_rows(column, rg)
        dropped = data.draw(st.lists(st.sampled_from(rows), max_size=2, unique=True))
        if dropped:
            self.mutate("drop_rows", rg, np.array(dropped, dtype=np.int64))
        self.mutate("mark_cells_complete", column, rg, [r for r in rows if r not in dropped])

    def prefill(self, data, rg, n, cell_columns, batch_columns) -> None:
        """``prefill_row_group``, valid or with one defect: the model's state, or its error and no change."""
        rows = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=min(n, 80))) if n else []
        dropped = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=min(n, 20))) if n else []
        cells = data.draw(st.lists(st.sampled_from(cell_columns), unique=True)) if cell_columns else []
        batches = data.draw(st.lists(st.sampled_from(batch_columns), unique=True)) if batch_columns else []
        size = n
        defect = data.draw(st.sampled_from(["none", "none", "none", "strategy", "row", "size", "column"]))
        if defect == "strategy" and batch_columns:
            cells = [*cells, batch_columns[0]]
        elif defect == "row":
            rows = [*rows, n]
        elif defect == "size":
            size = n + 1
        elif defect == "column":
            batches = [*batches, "no such column"]
        arguments = {"dropped": np.array(dropped, dtype=np.int64), "cell_columns": cells, "rows": rows}
        arguments["full_columns"] = batches
        before = self.tracker.to_bytes()
        try:
            self.model.prefill_row_group(rg, size, **arguments)
        except Exception as exc:
            with pytest.raises(type(exc)):
                self.tracker.prefill_row_group(rg, size, **arguments)
            assert self.tracker.to_bytes() == before  # all or nothing
        else:
            assert self.tracker.prefill_row_group(rg, size, **arguments) is None
        self.check()

    def invalid(self, data, rg, n, cell_columns, batch_columns) -> None:
        """A call with one defect; the model names the exception class the tracker must raise."""
        kind = data.draw(
            st.sampled_from(
                [
                    "unknown_column",
                    "unknown_rg",
                    "row_high",
                    "row_negative",
                    "row_huge",
                    "row_float",
                    "row_bool",
                    "row_none",
                    "row_str",
                    "size",
                    "strategy",
                    "bulk_2d",
                    "bulk_float",
                    "bulk_out_of_range",
                    "rg_float",
                    "non_root",
                    "pop_negative",
                    "enqueue_bad",
                ]
            )
        )
        column = data.draw(st.sampled_from(cell_columns)) if cell_columns else None
        bad_rows = {
            "row_high": n,
            "row_negative": -1,
            "row_huge": 2**70,
            "row_float": 0.0,
            "row_bool": True,
            "row_none": None,
            "row_str": "0",
        }
        unknown_rg = max(self.sizes) + 1
        if kind == "unknown_column":
            self.mutate("mark_cell_complete", "no such column", rg, 0)
        elif kind == "unknown_rg":
            self.mutate("drop_row", unknown_rg, 0)
        elif kind in bad_rows:
            if column is not None and data.draw(st.booleans()):
                self.mutate("mark_cell_complete", column, rg, bad_rows[kind])
            else:
                self.mutate("drop_row", rg, bad_rows[kind])
        elif kind == "size" and batch_columns:
            self.mutate(
                "mark_row_range_complete", batch_columns[0], rg, n + data.draw(st.sampled_from([1, -1]))
            )
        elif kind == "strategy":
            if batch_columns:
                self.mutate("mark_cell_complete", batch_columns[0], rg, 0)
            if column is not None:
                self.mutate("mark_row_range_complete", column, rg, n)
        elif kind == "bulk_2d":
            self.mutate("drop_rows", rg, np.zeros((1, 1), dtype=np.int64))
        elif kind == "bulk_float" and column is not None:
            self.mutate("mark_cells_complete", column, rg, np.array([0.0]))
        elif kind == "bulk_out_of_range":
            self.mutate("drop_rows", rg, np.array([0, n], dtype=np.int64))
        elif kind == "rg_float":
            self.mutate("drop_row", float(rg), 0)
        elif kind == "non_root":
            non_roots = [c for c in self.model.graph.order if not self.model.graph.is_root(c)]
            if non_roots:
                self.mutate("add_root_tasks", rg, n, [non_roots[0]])
        elif kind == "pop_negative":
            self.pop(-1)
        elif kind == "enqueue_bad":
            ok = [Task(*t) for t in self.model.ready_frontier()[:2]]
            self.call("mark_enqueued", [*ok, Task("no such column", rg, 0, "cell")])
            self.check()


@given(graph=graphs(), pairs=row_group_pairs(), use_plan=st.booleans(), data=st.data())
def test_tracker_matches_the_reference_model(graph, pairs, use_plan, data) -> None:
    harness = Harness(graph, pairs, use_plan)
    harness.check()
    for _ in range(data.draw(st.integers(1, 40))):
        harness.step(data)


small_row_groups = st.lists(
    st.tuples(st.integers(0, 9), st.sampled_from([0, 1, 5, 64, 65])),
    min_size=1,
    max_size=3,
    unique_by=lambda p: p[0],
)


@given(graph=graphs(), pairs=small_row_groups, data=st.data())
def test_driving_to_the_end_completes_every_group(graph, pairs, data) -> None:
    """A scheduler that pops and completes everything (with some drops) finishes every group."""
    harness = Harness(graph, pairs, use_plan=True)
    harness.check_every_call = False
    harness.mutate("seed_frontier")
    for _ in range(10_000):
        harness.check(force=True)
        if not harness.model.frontier:
            break
        harness.pop(data.draw(st.sampled_from([None, 1, 7])))
        while harness.handed_out:
            task = harness.handed_out.pop(0)
            if task[2] is not None and data.draw(st.integers(0, 9)) == 0:
                harness.mutate("drop_row", task[1], task[2])
            else:
                harness.complete(task)
    assert not harness.model.frontier
    columns = harness.model.graph.order
    for rg, n in pairs:
        assert harness.tracker.is_row_group_complete(rg, n, columns)
    for column, progress in harness.tracker.progress().items():
        assert progress.remaining == 0, column


class TrackerMachine(RuleBasedStateMachine):
    """The same comparison as a Hypothesis state machine (shrinks to minimal event sequences)."""

    harness: Harness

    @initialize(graph=graphs(), pairs=row_group_pairs())
    def start(self, graph, pairs) -> None:
        self.harness = Harness(graph, pairs, use_plan=False)

    def _rg(self, data) -> int:
        return data.draw(st.sampled_from(sorted(self.harness.sizes)))

    @rule(data=st.data())
    def admit(self, data) -> None:
        rg = self._rg(data)
        self.harness.mutate("add_root_tasks", rg, self.harness.sizes[rg])

    @precondition(lambda self: bool(self.harness.model.frontier))
    @rule(data=st.data())
    def complete_ready(self, data) -> None:
        self.harness.complete(data.draw(st.sampled_from(self.harness.model.ready_frontier())))

    @rule(max_tasks=st.one_of(st.none(), st.integers(0, 5)))
    def pop(self, max_tasks) -> None:
        self.harness.pop(max_tasks)

    @precondition(lambda self: bool(self.harness.handed_out))
    @rule(data=st.data())
    def complete_handed_out(self, data) -> None:
        task = self.harness.handed_out.pop(data.draw(st.integers(0, len(self.harness.handed_out) - 1)))
        if task[1] not in self.harness.model.compacted:
            self.harness.complete(task)

    @rule(data=st.data())
    def drop(self, data) -> None:
        rg = self._rg(data)
        n = self.harness.sizes[rg]
        if n:
            self.harness.mutate("drop_row", rg, data.draw(st.integers(0, n - 1)))

    @rule(data=st.data())
    def anything(self, data) -> None:
        self.harness.step(data)

    @rule(data=st.data())
    def compact(self, data) -> None:
        self.harness.call("compact_row_group", self._rg(data))

    @rule(data=st.data())
    def abandon(self, data) -> None:
        self.harness.call("compact_row_group", self._rg(data), abandon=True)

    @invariant()
    def agrees(self) -> None:
        if hasattr(self, "harness"):
            self.harness.check()


TestTrackerMachine = TrackerMachine.TestCase
