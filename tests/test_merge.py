"""``CompletionTracker.merge``: trackers of disjoint row groups merged into one.

The property: split a random event sequence by row group over a few "shard" trackers, run the
whole sequence on one tracker, and the merge of the shards equals the single tracker after a
checkpoint round trip (merge has checkpoint semantics), in every answer it gives: state bytes,
progress, per-cell completion and drops, and the whole frontier in hand-out order.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from graph_support import make_graph
from hypothesis import given
from hypothesis import strategies as st
from test_properties import graphs

from cellfrontier import (
    CompletionTracker,
    ExecutionGraph,
    InvalidArgumentError,
    RowGroupPlan,
    SliceRef,
    StateMergeError,
)

SIZES = [0, 1, 2, 63, 64, 65, 130]
OPS = ["roots", "cell", "range", "drop", "take_rows", "take_batch", "compact", "abandon"]


def _apply(tracker: CompletionTracker, graph: ExecutionGraph, event: tuple[Any, ...], size: int) -> Any:
    """Run one event; returns what it returned, or the class of the error it raised."""
    op, rg, column, row = event
    try:
        if op == "roots":
            tracker.add_root_tasks(rg, size)
        elif op == "cell":
            tracker.mark_cell_complete(column, rg, row)
        elif op == "range":
            tracker.mark_row_range_complete(column, rg, size)
        elif op == "drop":
            tracker.drop_row(rg, row)
        elif op == "take_rows":
            return tracker.ready_rows(column, rg, take=True).tolist()
        elif op == "take_batch":
            return tracker.pop_ready_batch(column, rg)
        elif op == "compact":
            tracker.compact_row_group(rg)
        else:
            tracker.compact_row_group(rg, abandon=True)
    except Exception as exc:  # the same call must fail the same way in the shard
        return type(exc)
    return None


def _answers(tracker: CompletionTracker, graph: ExecutionGraph, sizes: dict[int, int]) -> dict[str, Any]:
    """Everything the tracker says about its state, the frontier last (it is handed out)."""
    cells = {
        (column, rg, row): (tracker.is_complete(SliceRef(column, rg, row)), tracker.is_dropped(rg, row))
        for rg, size in sizes.items()
        for column in graph.columns
        for row in range(size)
        if graph.get_strategy(column).value == "cell_by_cell"
    }
    return {
        "active": tracker.active_row_groups(),
        "progress": tracker.progress(),
        "frontier_size": tracker.frontier_size(),
        "cells": cells,
        "frontier": [(t.column, t.row_group, t.row_index) for t in tracker.pop_ready()],
    }


@st.composite
def split_runs(draw: Any) -> tuple[ExecutionGraph, dict[int, int], list[tuple[Any, ...]], list[int], bool]:
    graph = draw(graphs())
    count = draw(st.integers(1, 6))
    sizes = {rg: draw(st.sampled_from(SIZES)) for rg in range(count)}
    columns = list(graph.columns)
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(OPS) | st.sampled_from(["roots", "cell", "range", "take_rows"]),
                st.integers(0, count - 1),
                st.sampled_from(columns),
                st.integers(0, 70),
            ),
            max_size=60,
        )
    )
    cuts = sorted(draw(st.lists(st.integers(1, count), min_size=1, max_size=3, unique=True)))
    own_plans = draw(st.booleans())
    # Finally release some groups as a driver would: totals of compacted groups then come from
    # several shards.
    finish = [("abandon", rg, columns[0], 0) for rg in range(count) if draw(st.booleans())]
    return graph, sizes, events + finish, cuts, own_plans


@given(split_runs())
def test_merging_shards_equals_one_tracker(run: tuple[Any, ...]) -> None:
    graph, sizes, events, cuts, own_plans = run
    edges = [0, *[c for c in cuts if c < len(sizes)], len(sizes)]
    ranges = [range(a, b) for a, b in itertools.pairwise(edges) if a < b]
    whole = CompletionTracker.with_graph(graph, RowGroupPlan.explicit(sizes.items()))
    shards = [
        CompletionTracker.with_graph(
            graph,
            RowGroupPlan.explicit((rg, sizes[rg]) for rg in shard)
            if own_plans
            else RowGroupPlan.explicit(sizes.items()),
        )
        for shard in ranges
    ]
    shard_of = {rg: i for i, shard in enumerate(ranges) for rg in shard}
    for event in events:
        rg = event[1]
        expected = _apply(whole, graph, event, sizes[rg])
        assert _apply(shards[shard_of[rg]], graph, event, sizes[rg]) == expected, event

    merged = CompletionTracker.merge(shards)
    reloaded = CompletionTracker.from_bytes(whole.to_bytes(), graph)
    assert merged.graph is graph
    assert merged.row_group_plan == reloaded.row_group_plan
    assert merged.to_bytes() == reloaded.to_bytes()
    assert _answers(merged, graph, sizes) == _answers(reloaded, graph, sizes)


def _two_shards(graph: ExecutionGraph, plan: Any) -> list[CompletionTracker]:
    first, second = (CompletionTracker.with_graph(graph, plan) for _ in range(2))
    first.add_root_tasks(0, 4)
    second.add_root_tasks(1, 4)
    return [first, second]


def test_a_row_group_held_by_two_trackers_is_refused() -> None:
    graph = make_graph([("a", "full_column"), ("b", "cell_by_cell")])
    graph.add_edge("a", "b")
    plan = RowGroupPlan.explicit([(0, 4), (1, 4)])
    first, second = _two_shards(graph, plan)
    second.add_root_tasks(0, 4)  # group 0 now active in both
    with pytest.raises(StateMergeError, match=r"disjoint row groups; held by two: 0 \(trackers 0 and 1\)"):
        CompletionTracker.merge([first, second])
    # compacted in one, active in the other: still two owners
    other = CompletionTracker.with_graph(graph, plan)
    other.add_root_tasks(1, 4)
    other.compact_row_group(1, abandon=True)
    with pytest.raises(StateMergeError, match=r"1 \(trackers 0 and 1\)"):
        CompletionTracker.merge([other, second])


def test_different_graphs_and_plans_are_refused() -> None:
    graph = make_graph([("a", "full_column"), ("b", "cell_by_cell")])
    other_graph = make_graph([("a", "full_column"), ("c", "cell_by_cell")])
    plan = RowGroupPlan.uniform(8, 4)
    first = _two_shards(graph, plan)[0]
    stranger = CompletionTracker.with_graph(other_graph, plan)
    with pytest.raises(StateMergeError, match="different graphs: tracker 1 vs tracker 0"):
        CompletionTracker.merge([first, stranger])
    with pytest.raises(StateMergeError, match="different row-group plans"):
        CompletionTracker.merge([first, CompletionTracker.with_graph(graph, RowGroupPlan.uniform(12, 4))])
    conflicting = CompletionTracker.with_graph(graph, RowGroupPlan.explicit([(0, 5)]))
    explicit = CompletionTracker.with_graph(graph, RowGroupPlan.explicit([(0, 4), (1, 4)]))
    with pytest.raises(StateMergeError, match="row group 0 of 4 rows in tracker 0's plan and of 5 rows"):
        CompletionTracker.merge([explicit, conflicting])
    with pytest.raises(StateMergeError, match="with and without a graph"):
        CompletionTracker.merge([first, CompletionTracker()])
    with pytest.raises(InvalidArgumentError, match="at least one tracker"):
        CompletionTracker.merge([])
    with pytest.raises(InvalidArgumentError, match="needs CompletionTracker objects"):
        CompletionTracker.merge([first, "tracker"])  # type: ignore[list-item]


def test_explicit_plans_of_each_shard_merge_into_their_union() -> None:
    graph = make_graph([("a", "full_column"), ("b", "cell_by_cell")])
    graph.add_edge("a", "b")
    first = CompletionTracker.with_graph(graph, RowGroupPlan.explicit([(10, 3)]))
    second = CompletionTracker.with_graph(graph, RowGroupPlan.explicit([(20, 2)]))
    first.add_root_tasks(10, 3)
    first.mark_row_range_complete("a", 10, 3)
    second.add_root_tasks(20, 2)
    merged = CompletionTracker.merge([second, first])
    assert dict(merged.row_group_plan) == {10: 3, 20: 2}
    assert [(t.column, t.row_group, t.row_index) for t in merged.pop_ready()] == [
        ("b", 10, 0),
        ("b", 10, 1),
        ("b", 10, 2),
        ("a", 20, None),
    ]


def test_trackers_without_a_graph_merge() -> None:
    first, second = CompletionTracker(), CompletionTracker()
    first.mark_cell_complete("x", 0, 3)
    second.mark_row_range_complete("y", 1, 5)
    second.drop_row(1, 2)
    merged = CompletionTracker.merge([first, second])
    assert merged.is_complete(SliceRef("x", 0, 3)) and not merged.is_complete(SliceRef("x", 0, 2))
    assert merged.is_column_complete_for_rg("y", 1) and merged.is_dropped(1, 2)
    second.mark_cell_complete("x", 0, 1)  # group 0 in both now
    with pytest.raises(StateMergeError, match="held by two: 0"):
        CompletionTracker.merge([first, second])


def test_merge_leaves_its_inputs_alone() -> None:
    graph = make_graph([("a", "full_column"), ("b", "cell_by_cell")])
    graph.add_edge("a", "b")
    shards = _two_shards(graph, RowGroupPlan.uniform(8, 4))
    before = [s.to_bytes() for s in shards]
    merged = CompletionTracker.merge(shards)
    merged.mark_row_range_complete("a", 0, 4)
    assert [s.to_bytes() for s in shards] == before
