"""The DataDesigner drop-in adapter against DataDesigner's own tracker, step by step.

Hypothesis builds random graphs, row-group plans and event sequences (valid and invalid) and
applies each event to both trackers; after every step the deltas, the frontier, every query
and the exception type of an invalid call must agree.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("data_designer.engine.dataset_builders.scheduling.completion")

from data_designer.config.column_configs import GenerationStrategy as DDStrategy
from data_designer.engine.dataset_builders.row_group_plan import CompactRowGroupPlan
from data_designer.engine.dataset_builders.scheduling.completion import (
    CompletionTracker as ReferenceTracker,
)
from data_designer.engine.dataset_builders.scheduling.completion import FrontierDelta
from data_designer.engine.dataset_builders.scheduling.resources import stable_task_id
from data_designer.engine.dataset_builders.scheduling.task_model import SliceRef, Task
from data_designer.engine.dataset_builders.utils.execution_graph import ExecutionGraph
from hypothesis import given
from hypothesis import strategies as st

from cellfrontier.integrations import data_designer as adapter


@st.composite
def graphs(draw: st.DrawFn) -> ExecutionGraph:
    """A random DAG of 1-10 columns with mixed strategies and a few side-effect aliases."""
    n = draw(st.integers(1, 10))
    graph = ExecutionGraph()
    names = [f"c{i}" for i in range(n)]
    for name in names:
        strategy = draw(st.sampled_from([DDStrategy.CELL_BY_CELL, DDStrategy.FULL_COLUMN]))
        graph.add_column(name, strategy)
        if draw(st.booleans()):
            graph.set_side_effect(f"{name}__trace", name)
    for j in range(1, n):
        for i in draw(st.sets(st.integers(0, j - 1), max_size=3)):
            graph.add_edge(names[i], names[j])
    return graph


@st.composite
def plans(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        num_records, buffer_size = draw(st.integers(1, 150)), draw(st.integers(1, 70))
        return CompactRowGroupPlan.fresh(num_records=num_records, buffer_size=buffer_size)
    ids = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True))
    return [(rg, draw(st.sampled_from([0, 1, 5, 63, 64, 65, 100]))) for rg in ids]


def _sizes(plan: Any) -> dict[int, int]:
    return dict(iter(plan))


def _key(task: Task) -> tuple[Any, ...]:
    return (task.column, task.row_group, -1 if task.row_index is None else task.row_index, task.task_type)


def _delta_sets(delta: FrontierDelta) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    return {_key(t) for t in delta.added}, {_key(t) for t in delta.removed}


def _call(tracker: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", getattr(tracker, method)(*args, **kwargs)
    except Exception as exc:  # compared by type below
        return "error", exc


def _snapshot(tracker: Any, graph: ExecutionGraph, sizes: dict[int, int]) -> dict[str, Any]:
    columns = graph.columns
    groups = [*sorted(sizes), max(sizes) + 1]
    snap: dict[str, Any] = {"frontier": sorted(_key(t) for t in tracker.ready_frontier())}
    for rg in groups:
        size = sizes.get(rg, 3)
        snap[("group", rg)] = tracker.is_row_group_complete(rg, size, columns)
        for column in columns:
            snap[("column", column, rg)] = tracker.is_column_complete_for_rg(column, rg)
            snap[("batch", column, rg)] = tracker.is_all_complete([SliceRef(column, rg, None)])
            for row in range(size):
                snap[("cell", column, rg, row)] = tracker.is_complete(SliceRef(column, rg, row))
        for row in range(size):
            snap[("dropped", rg, row)] = tracker.is_dropped(rg, row)
    return snap


@st.composite
def events(draw: st.DrawFn, graph: ExecutionGraph, sizes: dict[int, int]) -> list[tuple[str, tuple, dict]]:
    columns = graph.columns
    groups = sorted(sizes)
    unknown_group = max(groups) + 1
    out: list[tuple[str, tuple, dict]] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(
            st.sampled_from(
                [
                    "cell",
                    "cell",
                    "cell",
                    "range",
                    "drop",
                    "roots",
                    "roots",
                    "enqueue",
                    "compact",
                    "ready",
                    "bad_group",
                    "bad_column",
                ]
            )
        )
        rg = draw(st.sampled_from(groups))
        size = sizes[rg]
        row = draw(st.integers(0, max(size - 1, 0)))
        column = draw(st.sampled_from(columns))
        if kind == "cell" and size:
            out.append(("mark_cell_complete", (column, rg, row), {}))
        elif kind == "range":
            given_size = size if draw(st.booleans()) or size == 0 else size + 1
            out.append(("mark_row_range_complete", (column, rg, given_size), {}))
        elif kind == "drop" and size:
            out.append(("drop_row", (rg, row), {}))
        elif kind == "roots":
            chosen = draw(st.one_of(st.none(), st.lists(st.sampled_from(columns), min_size=1, max_size=3)))
            out.append(("add_root_tasks", (rg, size), {"columns": None if chosen is None else tuple(chosen)}))
        elif kind == "enqueue":
            out.append(("mark_enqueued", (draw(st.integers(0, 2**16)),), {}))
        elif kind == "compact":
            out.append(("compact_row_group", (rg,), {}))
        elif kind == "ready":
            task_type = draw(st.sampled_from(["cell", "batch", "from_scratch"]))
            index = None if task_type != "cell" else row
            out.append(("add_ready_tasks", ((Task(column, rg, index, task_type),),), {}))
        elif kind == "bad_group":
            method = draw(st.sampled_from(["mark_cell_complete", "mark_row_range_complete", "drop_row"]))
            args = {
                "mark_cell_complete": (column, unknown_group, 0),
                "mark_row_range_complete": (column, unknown_group, 3),
                "drop_row": (unknown_group, 0),
            }[method]
            out.append((method, args, {}))
        elif kind == "bad_column" and size:
            method = draw(
                st.sampled_from(["mark_cell_complete", "mark_row_range_complete", "add_root_tasks"])
            )
            args = {
                "mark_cell_complete": ("nope", rg, row),
                "mark_row_range_complete": ("nope", rg, size),
                "add_root_tasks": (rg, size),
            }[method]
            kwargs = {"columns": ("nope",)} if method == "add_root_tasks" else {}
            out.append((method, args, kwargs))
    return out


@given(data=st.data())
def test_adapter_matches_data_designer_step_by_step(data: st.DataObject) -> None:
    graph = data.draw(graphs())
    plan = data.draw(plans())
    reference = ReferenceTracker.with_graph(graph, plan)
    ours = adapter.CompletionTracker.with_graph(graph, plan)
    sizes = _sizes(reference._row_group_plan)
    if not sizes:
        return
    for method, args, kwargs in data.draw(events(graph, sizes)):
        if method == "mark_enqueued":
            frontier = sorted(reference.ready_frontier(), key=_key)
            chosen = [t for i, t in enumerate(frontier) if (args[0] >> (i % 16)) & 1]
            args = ([stable_task_id(t) for t in chosen],)
        expected = _call(reference, method, args, kwargs)
        actual = _call(ours, method, args, kwargs)
        assert actual[0] == expected[0], (method, args, expected, actual)
        if expected[0] == "error":
            assert isinstance(actual[1], type(expected[1])), (method, args, expected, actual)
        elif isinstance(expected[1], FrontierDelta):
            assert isinstance(actual[1], FrontierDelta)
            assert _delta_sets(actual[1]) == _delta_sets(expected[1]), (method, args)
            assert actual[1].empty == expected[1].empty
        assert _snapshot(ours, graph, sizes) == _snapshot(reference, graph, sizes), (method, args)
        for task in reference.ready_frontier():
            assert ours.is_frontier_task(task)


def test_graphless_tracker_matches_data_designer() -> None:
    reference, ours = ReferenceTracker(), adapter.CompletionTracker()
    for tracker in (reference, ours):
        tracker.mark_cell_complete("a", 0, 3)
        tracker.mark_row_range_complete("b", 0, 4)
        tracker.drop_row(0, 1)
        tracker.compact_row_group(2)
    for tracker in (reference, ours):
        with pytest.raises(RuntimeError):
            tracker.add_root_tasks(0, 4)
        with pytest.raises(RuntimeError):
            tracker.seed_frontier()
    refs = [SliceRef("a", 0, 3), SliceRef("a", 0, 2), SliceRef("b", 0, None), SliceRef("b", 0, 2)]
    for ref in refs:
        assert ours.is_complete(ref) == reference.is_complete(ref)
        assert ours.is_all_complete([ref]) == reference.is_all_complete([ref])
    for row in range(4):
        assert ours.is_dropped(0, row) == reference.is_dropped(0, row)
    assert ours.is_column_complete_for_rg("b", 0) == reference.is_column_complete_for_rg("b", 0)
    assert ours.is_row_group_complete(0, 4, ["a", "b"]) == reference.is_row_group_complete(0, 4, ["a", "b"])
    assert ours.is_row_group_complete(2, 4, ["a"]) == reference.is_row_group_complete(2, 4, ["a"])


def test_rows_outside_the_group_are_refused_instead_of_stored() -> None:
    graph = ExecutionGraph()
    graph.add_column("a", DDStrategy.CELL_BY_CELL)
    ours = adapter.CompletionTracker.with_graph(graph, [(0, 10)])
    before = ours.ready_frontier()
    with pytest.raises(ValueError):
        ours.mark_cell_complete("a", 0, 10)
    with pytest.raises(TypeError):
        ours.mark_cell_complete("a", 0, 1.0)
    assert ours.ready_frontier() == before


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


def test_uninstall_restores_modules_imported_while_installed() -> None:
    import sys
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
    from cellfrontier._core import stable_task_id as compiled_id

    task = Task(column, row_group, row_index, task_type)
    assert compiled_id(column, row_group, row_index, task_type) == stable_task_id(task)
    assert adapter.memoized_stable_task_id(task) == stable_task_id(task)


def test_handed_out_tasks_carry_their_ids_and_are_acknowledged_by_them() -> None:
    graph = ExecutionGraph()
    graph.add_column("a", DDStrategy.CELL_BY_CELL)
    graph.add_column("b", DDStrategy.FULL_COLUMN)
    graph.add_edge("a", "b")
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
    graph = ExecutionGraph()
    graph.add_column("a", DDStrategy.CELL_BY_CELL)
    plan = CompactRowGroupPlan.fresh(num_records=400_000, buffer_size=1_000)
    ours = adapter.CompletionTracker.with_graph(graph, plan)
    for rg, size in plan:
        ours.add_root_tasks(rg, size)
        ours.ready_frontier()  # builds (and registers) 1,000 tasks, never acknowledged
        for row in range(size):
            ours.mark_cell_complete("a", rg, row)
        ours.compact_row_group(rg)
    assert len(ours._registry) <= 2 * adapter._REGISTRY_PRUNE_MIN


def test_unready_ids_never_trusts_registry_entries() -> None:
    """A registry the core did not fill (or that was tampered with) cannot reach the bitmaps."""
    graph = ExecutionGraph()
    graph.add_column("a", DDStrategy.CELL_BY_CELL)
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
    missing = core.unready_ids(list(registry), registry)
    assert sorted(missing) == sorted(
        ["bad-shape", "bad-column", "bad-row", "huge-row", "batch-of-cell-column", "negative", "not-int"]
    )
    assert [t.row_index for t in ours.ready_frontier()] == [0, 2]
