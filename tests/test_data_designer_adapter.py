"""The DataDesigner drop-in adapter against DataDesigner's own tracker, step by step.

Hypothesis builds random graphs (names whose alphabetical, insertion and topological orders
differ, side-effect aliases), row-group plans (compact, resumed, explicit, plain lists) and
event sequences (valid and invalid) and applies each event to both trackers; after every step
the deltas (in DataDesigner's order where that order is deterministic), the frontier, every
query and the exception type of an invalid call must agree.  The same is done without a graph.
"""

# ruff: noqa: E402 - DataDesigner is imported once the module knows it is installed

from __future__ import annotations

import dataclasses
import functools
import pickle
import subprocess
import sys
import textwrap
from collections import Counter
from typing import Any

import pytest
from dd_e2e_support import require_data_designer
from graph_support import make_graph

require_data_designer("data_designer.engine.dataset_builders.scheduling.completion")

from data_designer.config.column_configs import GenerationStrategy as DDStrategy
from data_designer.engine.dataset_builders.row_group_plan import (
    CompactRowGroupPlan,
    ExplicitRowGroupPlan,
)
from data_designer.engine.dataset_builders.scheduling.completion import (
    CompletionTracker as ReferenceTracker,
)
from data_designer.engine.dataset_builders.scheduling.completion import FrontierDelta
from data_designer.engine.dataset_builders.scheduling.resources import stable_task_id
from data_designer.engine.dataset_builders.scheduling.task_model import SliceRef, Task
from data_designer.engine.dataset_builders.utils.errors import DAGCircularDependencyError
from data_designer.engine.dataset_builders.utils.execution_graph import ExecutionGraph
from hypothesis import given
from hypothesis import strategies as st

from cellfrontier.integrations import data_designer as adapter

CELL, FULL = DDStrategy.CELL_BY_CELL, DDStrategy.FULL_COLUMN
# Alphabetical order differs from any insertion or topological order drawn from this pool.
NAME_POOL = ("topic", "a", "Z", "c10", "c9", "judge", "_x", "score", "b", "final", "meta", "q")
TASK_TYPES = ("cell", "batch", "from_scratch", "cell", "post_batch_processor")


# -- comparing ---------------------------------------------------------------------------


def _key(task: Task) -> tuple[Any, ...]:
    return (task.column, task.row_group, -1 if task.row_index is None else task.row_index, task.task_type)


def _bag(tasks: Any) -> list[tuple[Any, ...]]:
    return sorted(Counter(_key(t) for t in tasks).items())


def _call(tracker: Any, method: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", getattr(tracker, method)(*args, **kwargs)
    except Exception as exc:  # compared by type
        return "error", exc


def _agree(expected: tuple[str, Any], actual: tuple[str, Any], what: Any) -> None:
    """Same outcome: equal results, or an error of DataDesigner's type (or a subclass) on both."""
    assert actual[0] == expected[0], (what, expected, actual)
    if expected[0] == "error":
        assert isinstance(actual[1], type(expected[1])), (what, expected, actual)
    else:
        assert actual[1] == expected[1], (what, expected, actual)


def _query(reference: Any, ours: Any, method: str, *args: Any) -> None:
    _agree(_call(reference, method, *args), _call(ours, method, *args), (method, args))


def _agree_delta(method: str, args: Any, expected: FrontierDelta, actual: Any) -> None:
    """Deltas agree in order where DataDesigner's order is deterministic, else as multisets.

    Only the tasks a drop adds (full-column tasks re-checked in DataDesigner's topological
    order, which depends on string hashing) have no fixed order.
    """
    assert isinstance(actual, FrontierDelta), (method, args, actual)
    if method == "drop_row":
        assert _bag(actual.added) == _bag(expected.added), (method, args, expected, actual)
        assert actual.removed == expected.removed, (method, args, expected, actual)
    else:
        assert (actual.added, actual.removed) == (expected.added, expected.removed), (
            method,
            args,
            expected,
            actual,
        )
    assert actual.empty == expected.empty


# -- graphs and plans ----------------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[ExecutionGraph, list[str], list[str]]:
    """A random DAG of 1-10 columns with mixed strategies and a few side-effect aliases.

    Edges go from earlier to later names in a drawn order; columns are inserted in another
    drawn order, so insertion, topological and alphabetical orders all differ.
    """
    n = draw(st.integers(1, 10))
    names = list(draw(st.permutations(NAME_POOL)))[:n]
    strategies = {name: draw(st.sampled_from([CELL, FULL])) for name in names}
    graph = ExecutionGraph()
    for name in draw(st.permutations(names)):
        graph.add_column(name, strategies[name])
    aliases = []
    for name in names:
        if draw(st.booleans()):
            graph.set_side_effect(f"{name}__trace", name)
            aliases.append(f"{name}__trace")
    for j in range(1, n):
        for i in draw(st.sets(st.integers(0, j - 1), max_size=3)):
            graph.add_edge(names[i], names[j])
    return graph, names, aliases


@st.composite
def plans(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["fresh", "resume", "explicit", "list"]))
    if kind == "fresh":
        return CompactRowGroupPlan.fresh(
            num_records=draw(st.integers(1, 150)), buffer_size=draw(st.integers(1, 70))
        )
    if kind == "resume":
        target, extension, buffer = (
            draw(st.integers(1, 100)),
            draw(st.integers(0, 50)),
            draw(st.integers(1, 30)),
        )
        total = -(-target // buffer) + -(-extension // buffer)
        completed = draw(st.sets(st.integers(0, total - 1), max_size=total - 1))
        return CompactRowGroupPlan.resume(
            original_target=target,
            num_records=target + extension,
            buffer_size=buffer,
            completed_ids=completed,
        )
    ids = draw(st.lists(st.integers(-2, 12), min_size=1, max_size=4, unique=True))
    pairs = tuple((rg, draw(st.sampled_from([0, 1, 2, 5, 63, 64, 65, 100]))) for rg in ids)
    return ExplicitRowGroupPlan(pairs) if kind == "explicit" else list(pairs)


# -- the differential run ------------------------------------------------------------------


class _Run:
    """Both trackers, the graph's names and every task seen so far (for stale ids and probes)."""

    def __init__(
        self, data: st.DataObject, graph: ExecutionGraph, names: list[str], aliases: list[str]
    ) -> None:
        self.data = data
        self.graph = graph
        self.names = names
        self.aliases = aliases
        self.foreign = [*aliases, "nope"]
        self.seen: list[Task] = []

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.data.draw(strategy)

    def column(self) -> str:
        """A graph column or, as often, an alias or unknown name."""
        return self.draw(st.sampled_from(self.names if self.draw(st.booleans()) else self.foreign))

    def random_task(self, groups: list[int], sizes: dict[int, int]) -> Task:
        rg = self.draw(st.sampled_from(groups))
        task_type = self.draw(st.sampled_from(TASK_TYPES))
        size = sizes.get(rg, 3)
        # Mostly rows the other events touch too; ``size`` is outside the group.
        row = None if task_type != "cell" else self.draw(st.one_of(st.integers(0, 2), st.integers(0, size)))
        return Task(self.column(), rg, row, task_type)


def _snapshot_queries(run: _Run, reference: Any, ours: Any, groups: list[int], sizes: dict[int, int]) -> None:
    names, foreign = run.names, run.foreign
    assert _bag(ours.ready_frontier()) == _bag(reference.ready_frontier())
    for task in reference.ready_frontier():
        assert ours.is_frontier_task(task), task
    for task in run.seen[-12:]:
        _query(reference, ours, "is_frontier_task", task)
    for rg in groups:
        size = sizes.get(rg, 3)
        subset = [c for c in names if run.draw(st.booleans())]
        for columns, given_size in [
            (names, size),
            (subset, size),
            ([*subset, *foreign[:1]], size),
            (names, size + 1),
        ]:
            _query(reference, ours, "is_row_group_complete", rg, given_size, columns)
        _query(reference, ours, "is_row_group_complete", rg, max(size - 1, 0), names)
        rows = sorted({0, 1, size // 2, size - 1} & set(range(size)))
        for column in [*names, *foreign[-3:]]:
            _query(reference, ours, "is_column_complete_for_rg", column, rg)
            _query(reference, ours, "is_all_complete", [SliceRef(column, rg, None)])
            for row in [*rows, -1, size, None, 1.0]:
                _query(reference, ours, "is_complete", SliceRef(column, rg, row))
        refs = [SliceRef(c, rg, r) for c in names for r in rows[:2]] + [
            SliceRef(c, rg, None) for c in names[:2]
        ]
        _query(reference, ours, "is_all_complete", refs)
        _query(reference, ours, "is_all_complete", refs[::2])
        for row in [*rows, -1, size, size + 70, None, 1.0]:
            _query(reference, ours, "is_dropped", rg, row)
        dispatched = set(run.seen[-6:])
        expected = reference.get_ready_tasks(dispatched, {rg})
        assert _bag(ours.get_ready_tasks(dispatched, {rg})) == _bag(expected)
    assert _bag(ours.get_ready_tasks(set(run.seen), None)) == _bag(
        reference.get_ready_tasks(set(run.seen), None)
    )


def _step(run: _Run, reference: Any, ours: Any, groups: list[int], sizes: dict[int, int]) -> None:
    """Draw one event, apply it to both trackers and compare the outcome."""
    known = sorted(sizes)
    unknown = max(known) + 1
    rg = run.draw(st.sampled_from(known))
    size = sizes[rg]
    row = run.draw(st.integers(0, max(size - 1, 0)))
    column = run.draw(st.sampled_from(run.names))
    call: tuple[str, tuple[Any, ...], dict[str, Any]] | None = None
    kind = run.draw(
        st.sampled_from(
            ["work"] * 6
            + ["cell"] * 3
            + ["range"] * 2
            + ["drop"] * 2
            + ["roots"] * 2
            + ["enqueue"] * 2
            + ["ready"] * 2
            + ["compact", "seed", "complete", "bad_group", "bad_column", "partial_roots"]
        )
    )
    if kind == "work":
        # What a scheduler does: complete a task of the frontier (rows outside their group,
        # which add_ready_tasks may have put there, are a documented difference).
        frontier = [
            t
            for t in sorted(reference.ready_frontier(), key=_key)
            if t.row_index is None or 0 <= t.row_index < sizes.get(t.row_group, 0)
        ]
        if not frontier:
            kind = "roots"
        else:
            task = run.draw(st.sampled_from(frontier))
            if task.row_index is None:
                args = (task.column, task.row_group, sizes.get(task.row_group, 0))
                call = ("mark_row_range_complete", args, {})
            else:
                call = ("mark_cell_complete", (task.column, task.row_group, task.row_index), {})
    if kind == "cell" and size:
        call = ("mark_cell_complete", (column, rg, row), {})
    elif kind == "range":
        call = (
            "mark_row_range_complete",
            (column, rg, run.draw(st.sampled_from([size, size, size + 1]))),
            {},
        )
    elif kind == "drop" and size:
        # Often a row that has cell tasks in the frontier, of other names first.
        cells = [t for t in reference.ready_frontier() if t.row_group == rg and t.task_type == "cell"]
        foreign = [t for t in cells if t.column not in run.names]
        rows = sorted({t.row_index for t in foreign or cells} & set(range(size)))
        if rows and run.draw(st.booleans()):
            row = run.draw(st.sampled_from(rows))
        call = ("drop_row", (rg, row), {})
    if kind == "roots":
        columns = run.draw(
            st.one_of(
                st.none(),
                st.just(()),
                st.lists(st.sampled_from(run.names), min_size=1, max_size=3).map(tuple),
            )
        )
        given_rg = run.draw(st.sampled_from([rg, rg, rg, unknown]))
        given_size = run.draw(st.sampled_from([size, size, size + 1]))
        call = ("add_root_tasks", (given_rg, given_size), {"columns": columns})
    elif kind == "enqueue":
        frontier = sorted(reference.ready_frontier(), key=_key)
        chosen = [t for t in frontier if run.draw(st.booleans())]
        chosen += run.draw(st.lists(st.sampled_from(run.seen), max_size=3)) if run.seen else []
        ids = [stable_task_id(t) for t in chosen]
        ids += [
            stable_task_id(run.random_task([*known, unknown], sizes))
            for _ in range(run.draw(st.integers(0, 2)))
        ]
        ids += run.draw(st.lists(st.sampled_from(["task-0000000000000000", "garbage"]), max_size=1))
        call = ("mark_enqueued", (run.draw(st.sampled_from([list, set, tuple]))(ids),), {})
    elif kind == "ready":
        pool = run.seen[-8:] + sorted(reference.ready_frontier(), key=_key)[:4]
        tasks = [run.random_task([*known, unknown], sizes) for _ in range(run.draw(st.integers(1, 3)))]
        tasks += run.draw(st.lists(st.sampled_from(pool), max_size=2)) if pool else []
        call = ("add_ready_tasks", (run.draw(st.sampled_from([list, tuple]))(tasks),), {})
    elif kind == "compact":
        call = ("compact_row_group", (run.draw(st.sampled_from([rg, rg, unknown])),), {})
    elif kind == "seed":
        call = ("seed_frontier", (), {})
    elif kind == "complete":
        call = ("mark_complete", (run.random_task(known, sizes),), {})
    elif kind == "bad_group":
        method = run.draw(st.sampled_from(["mark_cell_complete", "mark_row_range_complete", "drop_row"]))
        args = {
            "mark_cell_complete": (column, unknown, 0),
            "mark_row_range_complete": (column, unknown, 3),
            "drop_row": (unknown, 0),
        }[method]
        call = (method, args, {})
    elif kind == "bad_column" and size:
        name = run.draw(st.sampled_from(run.foreign))
        method = run.draw(
            st.sampled_from(["mark_cell_complete", "mark_row_range_complete", "add_root_tasks"])
        )
        args = {
            "mark_cell_complete": (name, rg, row),
            "mark_row_range_complete": (name, rg, size),
            "add_root_tasks": (rg, size),
        }[method]
        call = (method, args, {"columns": (name,)} if method == "add_root_tasks" else {})
    elif kind == "partial_roots":
        _partial_roots(run, reference, ours, rg, size)
        return
    if call is None:
        return
    method, args, kwargs = call
    expected = _call(reference, method, *args, **kwargs)
    actual = _call(ours, method, *args, **kwargs)
    if expected[0] == "ok" and isinstance(expected[1], FrontierDelta):
        assert actual[0] == "ok", (method, args, kwargs, actual)
        _agree_delta(method, (args, kwargs), expected[1], actual[1])
        run.seen.extend([*expected[1].added, *expected[1].removed][:8])
    else:
        _agree(expected, actual, (method, args, kwargs))


def _partial_roots(run: _Run, reference: Any, ours: Any, rg: int, size: int) -> None:
    """The documented difference: DataDesigner adds the columns listed before an unknown one.

    Both raise ``KeyError``; ours adds nothing.  Ours is then given the columns DataDesigner
    did add, so that the run goes on from equal states.
    """
    prefix = run.draw(st.lists(st.sampled_from(run.names), min_size=1, max_size=2))
    columns = (*prefix, run.draw(st.sampled_from(run.foreign)), *run.names[:1])
    before = _bag(ours.ready_frontier())
    with pytest.raises(KeyError):
        reference.add_root_tasks(rg, size, columns=columns)
    with pytest.raises(KeyError):
        ours.add_root_tasks(rg, size, columns=columns)
    assert _bag(ours.ready_frontier()) == before
    ours.add_root_tasks(rg, size, columns=tuple(prefix))


@given(data=st.data())
def test_adapter_matches_data_designer_step_by_step(data: st.DataObject) -> None:
    graph, names, aliases = data.draw(graphs())
    plan = data.draw(plans())
    reference = ReferenceTracker.with_graph(graph, plan)
    ours = adapter.CompletionTracker.with_graph(graph, plan)
    sizes = dict(iter(reference._row_group_plan))
    if not sizes:
        return
    groups = [*sorted(sizes)[:3], max(sizes) + 1]
    run = _Run(data, graph, names, aliases)
    for _ in range(data.draw(st.integers(1, 25))):
        _step(run, reference, ours, groups, sizes)
        _snapshot_queries(run, reference, ours, groups, sizes)


# -- without a graph -----------------------------------------------------------------------


@given(data=st.data(), with_plan=st.booleans())
def test_graphless_adapter_matches_data_designer_step_by_step(data: st.DataObject, with_plan: bool) -> None:
    """Without a graph (optionally with a plan, which only the column query reads)."""
    if with_plan:
        plan = [(0, 5), (1, 64), (2, 0), (3, 70)]
        reference, ours = (
            ReferenceTracker.with_graph(None, plan),
            adapter.CompletionTracker.with_graph(None, plan),
        )
    else:
        reference, ours = ReferenceTracker(), adapter.CompletionTracker()
    groups = [-1, 0, 1, 2, 3]
    columns = ["a", "b", "c"]
    seen: list[Task] = []
    for _ in range(data.draw(st.integers(1, 30))):
        rg = data.draw(st.sampled_from(groups))
        row = data.draw(st.integers(0, 70))
        column = data.draw(st.sampled_from(columns))
        kind = data.draw(
            st.sampled_from(["cell", "cell", "range", "drop", "compact", "ready", "enqueue", "roots", "seed"])
        )
        if kind == "cell":
            call: tuple[str, tuple[Any, ...]] = ("mark_cell_complete", (column, rg, row))
        elif kind == "range":
            call = (
                "mark_row_range_complete",
                (column, rg, data.draw(st.sampled_from([-1, 0, 1, 5, 64, 65]))),
            )
        elif kind == "drop":
            call = ("drop_row", (rg, row))
        elif kind == "compact":
            call = ("compact_row_group", (rg,))
        elif kind == "ready":
            task_type = data.draw(st.sampled_from(["cell", "batch", "from_scratch"]))
            call = ("add_ready_tasks", ([Task(column, rg, row if task_type == "cell" else None, task_type)],))
        elif kind == "enqueue":
            chosen = [t for t in sorted(reference.ready_frontier(), key=_key) if data.draw(st.booleans())]
            chosen += data.draw(st.lists(st.sampled_from(seen), max_size=2)) if seen else []
            call = ("mark_enqueued", ([stable_task_id(t) for t in chosen] + ["unknown-id"],))
        elif kind == "roots":
            call = ("add_root_tasks", (rg, 5))
        else:
            call = ("seed_frontier", ())
        method, args = call
        expected, actual = _call(reference, method, *args), _call(ours, method, *args)
        if expected[0] == "ok" and isinstance(expected[1], FrontierDelta):
            _agree_delta(method, args, expected[1], actual[1])
        else:
            _agree(expected, actual, (method, args))
        seen.extend(reference.ready_frontier()[:3])
        assert _bag(ours.ready_frontier()) == _bag(reference.ready_frontier())
        for task in seen[-10:]:
            _query(reference, ours, "is_frontier_task", task)
        assert _bag(ours.get_ready_tasks(set(seen[-3:]), {rg})) == _bag(
            reference.get_ready_tasks(set(seen[-3:]), {rg})
        )
        for qrg in [*groups, 9]:
            for size in (0, 3, 65):
                for cols in (["a"], ["a", "b"], []):
                    _query(reference, ours, "is_row_group_complete", qrg, size, cols)
            for qcol in columns:
                _query(reference, ours, "is_column_complete_for_rg", qcol, qrg)
                _query(
                    reference, ours, "is_all_complete", [SliceRef(qcol, qrg, None), SliceRef(qcol, qrg, 1)]
                )
                for qrow in (0, 1, 5, 64, 70, -1, None, 1.0, True):
                    _query(reference, ours, "is_complete", SliceRef(qcol, qrg, qrow))
            for qrow in (0, 1, 5, 64, 70, 200, -1, None, 1.0, True, "x"):
                _query(reference, ours, "is_dropped", qrg, qrow)


def test_graphless_compaction_takes_the_groups_tasks_out_of_the_frontier() -> None:
    for tracker in (ReferenceTracker(), adapter.CompletionTracker()):
        kept = Task("b", 1, None, "batch")
        tracker.add_ready_tasks([Task("a", 0, 1, "cell"), Task("a", 0, None, "from_scratch"), kept])
        tracker.compact_row_group(0)
        assert tracker.ready_frontier() == (kept,)
        assert not tracker.is_frontier_task(Task("a", 0, 1, "cell"))
        assert tracker.add_ready_tasks([Task("a", 0, 1, "cell")]).added == (Task("a", 0, 1, "cell"),)


def test_graphless_queries_with_odd_indices_answer_like_data_designer() -> None:
    reference, ours = ReferenceTracker(), adapter.CompletionTracker()
    for tracker in (reference, ours):
        tracker.mark_cell_complete("a", 0, 3)
        tracker.drop_row(0, 1)
        tracker.drop_row(5, 9)
        tracker.compact_row_group(5)
    for index in (-1, None, "x", 3.0, 1.0, True, 2**70):
        for row_group in (0, 5, 7):
            _query(reference, ours, "is_dropped", row_group, index)
        _query(reference, ours, "is_complete", SliceRef("a", 0, index))
    assert ours.is_complete(SliceRef("a", 0, 3.0)) and not ours.is_dropped(0, -1)


# -- targeted differences and agreements --------------------------------------------------


_graph = functools.partial(make_graph, graph_type=ExecutionGraph)
"""A DataDesigner graph from ``[(name, strategy)]``, ``[(up, down)]`` and ``[(alias, producer)]``."""


def test_drop_row_keeps_foreign_tasks_and_removes_graph_cells_in_column_order() -> None:
    graph = _graph([("c", CELL), ("b", FULL), ("a", CELL)], [("a", "b")], [("a__t", "a")])
    trackers = [
        tracker.with_graph(graph, [(0, 4)]) for tracker in (ReferenceTracker, adapter.CompletionTracker)
    ]
    foreign = [
        Task("zzz", 0, 1, "cell"),
        Task("a__t", 0, 1, "cell"),
        Task("b", 0, 1, "cell"),
        Task("a", 0, 1, "weird"),
    ]
    deltas = []
    for tracker in trackers:
        tracker.add_root_tasks(0, 4)
        tracker.add_ready_tasks(foreign)
        deltas.append(tracker.drop_row(0, 1))
    assert (
        deltas[1].removed
        == deltas[0].removed
        == (
            Task("c", 0, 1, "cell"),
            Task("b", 0, 1, "cell"),
            Task("a", 0, 1, "cell"),
        )
    )
    assert _bag(trackers[1].ready_frontier()) == _bag(trackers[0].ready_frontier())
    assert {Task("zzz", 0, 1, "cell"), Task("a__t", 0, 1, "cell")} <= set(trackers[1].ready_frontier())


def test_deltas_list_tasks_in_data_designers_order() -> None:
    """Completions add by column name, drops remove in insertion order, roots as listed.

    The graph is inserted so that topological, alphabetical and insertion orders all differ.
    """
    graph = _graph(
        [("c2", CELL), ("b", CELL), ("s", FULL), ("c10", CELL), ("z", FULL), ("a", CELL)],
        [("s", "c2"), ("s", "c10"), ("s", "z"), ("a", "b"), ("s", "b")],
    )
    steps: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("add_root_tasks", (0, 3), {}),
        ("add_root_tasks", (0, 3), {"columns": ("a", "s")}),
        ("mark_cell_complete", ("a", 0, 1), {}),
        ("mark_row_range_complete", ("s", 0, 3), {}),
        ("drop_row", (0, 1), {}),
        (
            "add_ready_tasks",
            ((Task("b", 0, 2, "cell"), Task("a", 0, 0, "cell"), Task("c10", 0, 2, "cell")),),
            {},
        ),
        ("drop_row", (0, 2), {}),
    ]
    reference = ReferenceTracker.with_graph(graph, [(0, 3)])
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 3)])
    for method, args, kwargs in steps:
        expected = getattr(reference, method)(*args, **kwargs)
        actual = getattr(ours, method)(*args, **kwargs)
        assert (actual.added, actual.removed) == (expected.added, expected.removed), method
    fresh = adapter.CompletionTracker.with_graph(graph, [(0, 3)])
    listed = fresh.add_root_tasks(0, 3, columns=("s", "a"))
    assert [t.column for t in listed.added] == ["s", "a", "a", "a"]


def test_column_query_for_names_outside_the_graph_counts_dropped_rows() -> None:
    graph = _graph([("a", CELL)], side_effects=[("a__se", "a")])
    trackers = [
        tracker.with_graph(graph, [(0, 2)]) for tracker in (ReferenceTracker, adapter.CompletionTracker)
    ]
    for tracker in trackers:
        tracker.drop_row(0, 0)
        assert not tracker.is_column_complete_for_rg("a__se", 0)
        tracker.drop_row(0, 1)
        for name in ("a__se", "zz", "a"):
            assert tracker.is_column_complete_for_rg(name, 0)


def test_acknowledging_a_re_added_task_does_not_scan_the_frontier() -> None:
    """The scheduler's retry path: add_ready_tasks, then mark_enqueued with the task's id."""
    graph = _graph([("a", CELL)])
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 50_000)])
    ours.add_root_tasks(0, 50_000)
    assert ours._core is not None
    retried = Task("a", 0, 5, "cell")
    ours.mark_enqueued([stable_task_id(retried)])
    calls = 0
    ready_tasks = ours._core.ready_tasks

    class CountingCore:
        def __getattr__(self, name: str) -> Any:
            return getattr(core, name)

        def ready_tasks(self) -> Any:
            nonlocal calls
            calls += 1
            return ready_tasks()

    core = ours._core
    ours._core = CountingCore()  # type: ignore[assignment]
    try:
        for _ in range(50):
            assert ours.add_ready_tasks((Task("a", 0, 5, "cell"),)).added
            ours.mark_enqueued([stable_task_id(retried)])
            assert not ours.is_frontier_task(retried)
        for task_type in ("from_scratch", "batch"):
            ours.add_ready_tasks((Task("nope", 0, None, task_type),))
        ours.mark_enqueued([stable_task_id(Task("nope", 0, None, "batch"))])
    finally:
        ours._core = core
    assert calls == 0
    assert ours.ready_frontier()[-1] == Task("nope", 0, None, "from_scratch")
    assert len(ours.ready_frontier()) == 50_000


def test_with_graph_without_a_graph_behaves_like_data_designer() -> None:
    plan = [(0, 2), (1, 3)]
    reference, ours = (
        ReferenceTracker.with_graph(None, plan),
        adapter.CompletionTracker.with_graph(None, plan),
    )
    for tracker in (reference, ours):
        assert tracker.mark_cell_complete("a", 0, 0).empty
        tracker.drop_row(0, 1)
        tracker.mark_cell_complete("a", 9, 4)  # no validation without a graph
        assert tracker.is_column_complete_for_rg("a", 0)
        assert not tracker.is_column_complete_for_rg("a", 1)
        assert not tracker.is_column_complete_for_rg("a", 9)
        for method, args in [("add_root_tasks", (0, 2)), ("seed_frontier", ())]:
            with pytest.raises(RuntimeError):
                getattr(tracker, method)(*args)


def test_graphs_data_designer_cannot_order_are_refused_with_its_error() -> None:
    unknown_upstream = _graph([("a", CELL)], [("x", "a")])
    unknown_downstream = _graph([("a", CELL)], [("a", "y")])
    cycle = _graph([("a", CELL), ("b", CELL)], [("a", "b"), ("b", "a")])
    for graph in (unknown_upstream, cycle):
        reference = ReferenceTracker.with_graph(graph, [(0, 2)])
        with pytest.raises(DAGCircularDependencyError):
            reference.add_root_tasks(0, 2)
    for graph in (unknown_upstream, unknown_downstream, cycle):
        with pytest.raises(DAGCircularDependencyError):
            adapter.CompletionTracker.with_graph(graph, [(0, 2)])


def test_deltas_survive_dataclass_replace_pickle_and_copy() -> None:
    graph = _graph([("a", CELL), ("b", FULL), ("c", CELL)], [("a", "b"), ("a", "c")])
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 3)])
    delta = ours.add_root_tasks(0, 3)
    replaced = dataclasses.replace(delta, removed=(Task("x", 0, 0, "cell"),))
    assert replaced.added == delta.added and replaced.removed == (Task("x", 0, 0, "cell"),)
    assert not replaced.empty
    assert dataclasses.replace(delta, added=()).empty
    assert pickle.loads(pickle.dumps(delta)) == delta
    reference = ReferenceTracker.with_graph(graph, [(0, 3)]).add_root_tasks(0, 3)
    assert dataclasses.astuple(delta) == dataclasses.astuple(reference)
    assert dataclasses.asdict(delta) == dataclasses.asdict(reference)
    completed = ours.mark_cell_complete("a", 0, 0)
    assert dataclasses.replace(completed) == completed
    with pytest.raises(dataclasses.FrozenInstanceError):
        delta.added = ()  # type: ignore[misc]


def test_rows_outside_the_group_are_refused_instead_of_stored() -> None:
    graph = _graph([("a", CELL)])
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 10)])
    before = ours.ready_frontier()
    with pytest.raises(ValueError):
        ours.mark_cell_complete("a", 0, 10)
    with pytest.raises(TypeError):
        ours.mark_cell_complete("a", 0, 1.0)
    assert ours.ready_frontier() == before
    graphless = adapter.CompletionTracker()
    with pytest.raises(ValueError):
        graphless.drop_row(0, -1)
    with pytest.raises(TypeError):
        graphless.mark_cell_complete("a", 0, True)


def test_unknown_row_group_is_data_designers_value_error_and_a_key_error() -> None:
    ours = adapter.CompletionTracker.with_graph(_graph([("a", CELL)]), [(0, 2)])
    with pytest.raises(ValueError) as caught:
        ours.mark_cell_complete("a", 7, 0)
    assert isinstance(caught.value, KeyError)


# -- install / ids / registry ---------------------------------------------------------------


def test_install_patches_every_module_that_bound_the_tracker_and_uninstall_restores() -> None:
    from data_designer.engine.dataset_builders import async_scheduler, dataset_builder
    from data_designer.engine.dataset_builders.scheduling import completion

    assert not adapter.is_installed()
    with adapter.installed():
        assert adapter.is_installed()
        for module in (completion, async_scheduler, dataset_builder):
            assert module.CompletionTracker is adapter.CompletionTracker
        adapter.install()  # idempotent
        assert completion.CompletionTracker is adapter.CompletionTracker
    for module in (completion, async_scheduler, dataset_builder):
        assert module.CompletionTracker is adapter.ORIGINAL_TRACKER
    assert not adapter.is_installed()


def test_memoized_stable_task_id_returns_data_designers_ids() -> None:
    task = Task("a", 3, 7, "cell")
    assert adapter.memoized_stable_task_id(task) == stable_task_id(Task("a", 3, 7, "cell"))
    assert adapter.memoized_stable_task_id(task) == stable_task_id(task)


def test_installed_version_is_in_the_tested_range() -> None:
    version = adapter.installed_data_designer_version()
    assert version is not None
    assert adapter.is_tested_version(version)
    assert adapter.check_version() == version


@pytest.mark.parametrize(
    ("version", "tested"),
    [
        ("0.9.6", True),
        ("0.9.7", True),
        ("0.9.12", True),
        ("0.9.6.post1", True),
        ("0.9.5", False),
        ("0.8.0", False),
        ("0.10.0", False),
        ("0.10.0rc1", False),
        ("1.0", False),
        ("garbage", False),
    ],
)
def test_tested_version_range(version: str, tested: bool) -> None:
    assert adapter.is_tested_version(version) is tested


def test_install_refuses_an_untested_version_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_designer.engine.dataset_builders.scheduling import completion

    monkeypatch.setattr(adapter, "installed_data_designer_version", lambda: "0.10.1")
    with pytest.raises(adapter.UnsupportedDataDesignerError) as raised:
        adapter.install()
    message = str(raised.value)
    assert "0.10.1" in message and ">=0.9.6,<0.10" in message and "force=True" in message
    assert isinstance(raised.value, RuntimeError)
    assert not adapter.is_installed()
    assert completion.CompletionTracker is adapter.ORIGINAL_TRACKER
    with pytest.raises(adapter.UnsupportedDataDesignerError), adapter.installed():
        pass
    assert not adapter.is_installed()


def test_install_force_installs_an_untested_version_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_designer.engine.dataset_builders.scheduling import completion

    monkeypatch.setattr(adapter, "installed_data_designer_version", lambda: "0.9.5")
    with pytest.warns(RuntimeWarning, match=r"0\.9\.5.*force=True"), adapter.installed(force=True):
        assert adapter.is_installed()
        assert completion.CompletionTracker is adapter.CompletionTracker
    assert not adapter.is_installed()
    assert completion.CompletionTracker is adapter.ORIGINAL_TRACKER


def test_uninstall_restores_modules_imported_while_installed() -> None:
    import types

    with adapter.installed():
        late = types.ModuleType("data_designer.late_plugin_for_test")
        sys.modules[late.__name__] = late
        exec(
            "from data_designer.engine.dataset_builders.scheduling.completion import CompletionTracker",
            late.__dict__,
        )
        assert late.CompletionTracker is adapter.CompletionTracker
    try:
        assert late.CompletionTracker is adapter.ORIGINAL_TRACKER
    finally:
        del sys.modules[late.__name__]


@given(
    column=st.text(max_size=90),
    row_group=st.one_of(st.integers(), st.integers(-(2**80), 2**80)),
    row_index=st.one_of(st.none(), st.integers(0, 2**70)),
    task_type=st.sampled_from(["cell", "batch", "from_scratch", "", "é" * 40]),
)
def test_compiled_stable_task_id_equals_data_designers(
    column: str, row_group: int, row_index: int | None, task_type: str
) -> None:
    """The core's C SHA-1 id matches DataDesigner's hashlib id, across block boundaries too."""
    from cellfrontier.integrations._task_id import stable_task_id as compiled_id

    task = Task(column, row_group, row_index, task_type)
    assert compiled_id(column, row_group, row_index, task_type) == stable_task_id(task)
    assert adapter.memoized_stable_task_id(task) == stable_task_id(task)


def test_handed_out_tasks_carry_their_ids_and_are_acknowledged_by_them() -> None:
    graph = _graph([("a", CELL), ("b", FULL)], [("a", "b")])
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 3), (1, 2)])
    for rg, size in [(0, 3), (1, 2)]:
        ours.add_root_tasks(rg, size)
    frontier = ours.ready_frontier()
    assert len(frontier) == 5
    ids = [stable_task_id(t) for t in frontier]  # DataDesigner's own function, not the memoised one
    assert [adapter.memoized_stable_task_id(t) for t in frontier] == ids
    ours.mark_enqueued(ids[:2])
    assert ours.ready_frontier() == frontier[2:]
    ours.mark_enqueued(set(ids))  # already acknowledged ids are harmless
    assert ours.ready_frontier() == ()


def test_registry_stays_bounded_when_built_tasks_are_never_acknowledged() -> None:
    """Tasks listed but completed without acknowledgement do not accumulate across groups."""
    graph = _graph([("a", CELL)])
    plan = CompactRowGroupPlan.fresh(num_records=400_000, buffer_size=1_000)
    ours = adapter.CompletionTracker.with_graph(graph, plan)
    for rg, size in plan:
        ours.add_root_tasks(rg, size)
        ours.ready_frontier()  # builds (and registers) 1,000 tasks, never acknowledged
        for row in range(size):
            ours.mark_cell_complete("a", rg, row)
        ours.compact_row_group(rg)
    from cellfrontier.integrations._dd_core import REGISTRY_PRUNE_MIN

    assert ours._core is not None
    assert len(ours._core.registry) <= 2 * REGISTRY_PRUNE_MIN


def test_unready_ids_never_trusts_registry_entries() -> None:
    """A registry the core did not fill (or that was tampered with) cannot reach the bitmaps."""
    graph = _graph([("a", CELL)])
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 3)])
    ours.add_root_tasks(0, 3)
    core = ours._core
    assert core is not None
    registry: dict[str, Any] = {
        "bad-shape": (0, 0),
        "bad-column": (0, 99, 1),
        "bad-row": (0, 0, 3),
        "huge-row": (0, 0, 2**70),
        "batch-of-cell-column": (0, 0, -1),
        "negative": (0, 0, -3),
        "not-int": (0, "a", 1),
        "unknown-group": (7, 0, 1),
        "good": (0, 0, 1),
    }
    core.registry.update(registry)
    missing = core.unready_ids(list(registry))
    assert sorted(missing) == sorted(
        ["bad-shape", "bad-column", "bad-row", "huge-row", "batch-of-cell-column", "negative", "not-int"]
    )
    assert [t.row_index for t in ours.ready_frontier()] == [0, 2]


# -- without DataDesigner ---------------------------------------------------------------------

_HIDE_DATA_DESIGNER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class HideDataDesigner(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "data_designer" or name.startswith("data_designer."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideDataDesigner())
    import cellfrontier  # the library itself needs no DataDesigner

    try:
        import cellfrontier.integrations.data_designer
    except ImportError as exc:
        print(exc)
    else:
        sys.exit("the adapter imported without DataDesigner")
    """
)


@pytest.mark.process
def test_import_without_data_designer_says_which_extra_to_install() -> None:
    # The timeout is a safety net against a hung interpreter only: the import takes a second.
    result = subprocess.run(
        [sys.executable, "-c", _HIDE_DATA_DESIGNER], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    message = result.stdout
    assert "pip install 'cellfrontier[datadesigner]'" in message
    assert "pip install '.[datadesigner]'" in message


def test_a_data_designer_plan_goes_through_the_cores_row_limit() -> None:
    """DataDesigner's plans allow any size; the core refuses a group it cannot count, unallocated."""
    graph = _graph([("a", CELL)])
    huge = adapter.CompletionTracker.with_graph(
        graph, CompactRowGroupPlan.fresh(num_records=2**31, buffer_size=2**31)
    )
    with pytest.raises(ValueError, match=r"size of row group 0 < 2\*\*31"):
        huge.mark_cell_complete("a", 0, 0)
    assert huge.ready_frontier() == ()
    largest = CompactRowGroupPlan.fresh(num_records=2**31 - 1, buffer_size=2**31 - 1)
    assert not adapter.CompletionTracker.with_graph(graph, largest).is_column_complete_for_rg("a", 0)
