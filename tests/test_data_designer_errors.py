"""The DataDesigner backend raises DataDesigner's errors (0.9.6 and 0.9.7): its exception types, its wording.

Every bad call below goes to DataDesigner's own tracker and to the backend.  DataDesigner must
raise (so that the case really compares something), and the backend must raise an instance of
the same type whose message starts with DataDesigner's message (the backend's own detail may
follow), since DataDesigner's tests and users match errors by type and message pattern.  The
cases cover every ``raise`` a caller can reach in DataDesigner's ``completion.py``, the
``KeyError`` its graph raises for an unknown column, the ``TypeError`` of a non-integer size,
and the cycle error of its ``execution_graph.py``.
"""

# ruff: noqa: E402 - DataDesigner is imported once the module knows it is installed
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dd_e2e_support import require_data_designer
from graph_support import make_graph

require_data_designer("data_designer.engine.dataset_builders.scheduling.completion")

from data_designer.config.column_configs import GenerationStrategy as DDStrategy
from data_designer.engine.dataset_builders.scheduling.completion import (
    CompletionTracker as ReferenceTracker,
)
from data_designer.engine.dataset_builders.utils.errors import DAGCircularDependencyError
from data_designer.engine.dataset_builders.utils.execution_graph import ExecutionGraph

from cellfrontier.integrations import data_designer as adapter

CELL, FULL = DDStrategy.CELL_BY_CELL, DDStrategy.FULL_COLUMN
PLAN = [(0, 3), (1, 2)]


def _graph() -> ExecutionGraph:
    return make_graph(
        [("a", CELL), ("b", FULL), ("c", CELL)],
        [("a", "b"), ("b", "c")],
        [("a__trace", "a")],
        graph_type=ExecutionGraph,
    )


def _compacted(tracker: Any) -> Any:
    tracker.compact_row_group(0)
    return tracker


BadCall = Callable[[Any], Any]
CASES: dict[str, tuple[Callable[[], Any], BadCall]] = {
    # the row group comes first, whatever else is wrong
    "mark_cell_complete: unknown row group": (_graph, lambda t: t.mark_cell_complete("a", 7, 0)),
    "mark_cell_complete: unknown row group and column": (_graph, lambda t: t.mark_cell_complete("zz", 7, 0)),
    "mark_cell_complete: unknown column": (_graph, lambda t: t.mark_cell_complete("zz", 0, 0)),
    "mark_cell_complete: side-effect alias": (_graph, lambda t: t.mark_cell_complete("a__trace", 0, 0)),
    "mark_cell_complete: full-column column": (_graph, lambda t: t.mark_cell_complete("b", 0, 0)),
    "mark_row_range_complete: unknown row group": (_graph, lambda t: t.mark_row_range_complete("b", 9, 3)),
    "mark_row_range_complete: unknown row group, wrong size": (
        _graph,
        lambda t: t.mark_row_range_complete("b", 9, 5),
    ),
    "mark_row_range_complete: unknown column": (_graph, lambda t: t.mark_row_range_complete("zz", 0, 3)),
    "mark_row_range_complete: cell-by-cell column": (_graph, lambda t: t.mark_row_range_complete("a", 0, 3)),
    "mark_row_range_complete: cell-by-cell column, wrong size": (
        _graph,
        lambda t: t.mark_row_range_complete("a", 0, 5),
    ),
    "mark_row_range_complete: wrong size": (_graph, lambda t: t.mark_row_range_complete("b", 0, 5)),
    "mark_row_range_complete: size of another type": (
        _graph,
        lambda t: t.mark_row_range_complete("b", 0, "3"),
    ),
    "mark_row_range_complete: size True": (_graph, lambda t: t.mark_row_range_complete("b", 0, True)),
    "mark_row_range_complete: equal float size": (_graph, lambda t: t.mark_row_range_complete("b", 0, 3.0)),
    "drop_row: unknown row group": (_graph, lambda t: t.drop_row(9, 0)),
    "add_root_tasks: unknown row group": (_graph, lambda t: t.add_root_tasks(9, 3)),
    "add_root_tasks: wrong size": (_graph, lambda t: t.add_root_tasks(0, 5)),
    "add_root_tasks: unknown column": (_graph, lambda t: t.add_root_tasks(0, 3, columns=("zz",))),
    "add_root_tasks: unknown column after a known one": (
        _graph,
        lambda t: t.add_root_tasks(0, 3, columns=("a", "zz")),
    ),
    "compact_row_group: unknown row group": (_graph, lambda t: t.compact_row_group(9)),
    "is_dropped: a compacted group asked about a str row": (
        _graph,
        lambda t: _compacted(t).is_dropped(0, "x"),
    ),
    "add_root_tasks: no graph": (lambda: None, lambda t: t.add_root_tasks(0, 3)),
    "seed_frontier: no graph": (lambda: None, lambda t: t.seed_frontier()),
}


def _raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the call raised nothing")


@pytest.mark.parametrize("case", list(CASES))
def test_every_error_has_data_designers_type_and_message(case: str) -> None:
    build_graph, bad_call = CASES[case]
    theirs = _raised(lambda: bad_call(ReferenceTracker.with_graph(build_graph(), PLAN)))
    ours = _raised(lambda: bad_call(adapter.CompletionTracker.with_graph(build_graph(), PLAN)))
    assert isinstance(ours, type(theirs)), (case, type(theirs), type(ours), ours)
    assert str(ours).startswith(str(theirs)), (case, str(theirs), str(ours))


def test_a_cyclic_graph_is_refused_with_data_designers_error_and_message() -> None:
    """DataDesigner raises when it first orders the columns; the backend already in with_graph."""
    graph = ExecutionGraph()
    for name in ("a", "b"):
        graph.add_column(name, CELL)
    graph.add_edge("a", "b")
    graph.add_edge("b", "a")
    theirs = _raised(lambda: ReferenceTracker.with_graph(graph, PLAN).add_root_tasks(0, 3))
    ours = _raised(lambda: adapter.CompletionTracker.with_graph(graph, PLAN))
    assert type(theirs) is DAGCircularDependencyError
    assert isinstance(ours, DAGCircularDependencyError)
    assert str(ours).startswith(str(theirs)) and "'a'" in str(ours)


def test_a_failed_call_changes_nothing_in_either_tracker() -> None:
    """The same bad calls, in a row, on one tracker of each: both still agree afterwards."""
    reference = ReferenceTracker.with_graph(_graph(), PLAN)
    ours = adapter.CompletionTracker.with_graph(_graph(), PLAN)
    for tracker in (reference, ours):
        tracker.add_root_tasks(0, 3)
        tracker.add_root_tasks(1, 2)
    for case, (build_graph, bad_call) in CASES.items():
        if build_graph is not _graph or "compact" in case or "is_dropped" in case:
            continue
        for tracker in (reference, ours):
            with pytest.raises(Exception):  # noqa: B017 - the types are compared above
                bad_call(tracker)
    assert sorted(map(repr, reference.ready_frontier())) == sorted(map(repr, ours.ready_frontier()))
