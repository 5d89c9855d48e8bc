"""CompletionTracker: every method, the traps of the first tracker's review, and bad input.

Every rejected call must raise the documented exception class and leave the state exactly as
it was (compared through a snapshot of the frontier, progress and every completion answer).
"""

from __future__ import annotations

import numpy as np
import pytest
from graph_support import make_graph

from cellfrontier import (
    CellFrontierError,
    ColumnProgress,
    CompletionTracker,
    ExecutionGraph,
    FrontierDelta,
    IndexTypeError,
    InvalidArgumentError,
    NoGraphError,
    RowGroupCompactedError,
    RowGroupPlan,
    RowIndexError,
    SizeMismatchError,
    SliceRef,
    StrategyMismatchError,
    Task,
    UnknownColumnError,
    UnknownRowGroupError,
)

PAIRS = [(0, 4), (7, 70), (9, 0)]


def cell(column: str, rg: int, row: int) -> Task:
    return Task(column, rg, row, "cell")


def keys(tasks) -> list[tuple]:
    return [(t.column, t.row_group, t.row_index, t.task_type) for t in tasks]


def snapshot(tracker: CompletionTracker, pairs=PAIRS) -> tuple:
    """Everything observable about a graph-mode tracker's state."""
    graph = tracker.graph
    columns = graph.get_topological_order()
    answers = []
    for rg, n in pairs:
        answers.append(tracker.ready_columns(rg))
        answers.append(tracker.is_row_group_complete(rg, n, columns))
        for column in columns:
            answers.append(tracker.is_complete(SliceRef(column, rg)))
            answers.append(tracker.is_column_complete_for_rg(column, rg))
            answers.extend(tracker.is_complete(SliceRef(column, rg, r)) for r in range(n))
        answers.extend(tracker.is_dropped(rg, r) for r in range(n))
    return (
        tracker.ready_frontier(),
        tracker.progress(),
        tracker.active_row_groups(),
        tracker.frontier_size(),
        tracker.nbytes,
        tuple(answers),
    )


@pytest.fixture
def busy(chain_tracker) -> CompletionTracker:
    """The chain tracker with some history: groups admitted, cells done, a row dropped, tasks popped."""
    t = chain_tracker
    t.add_root_tasks(0, 4)
    t.add_root_tasks(7, 70)
    t.mark_cell_complete("topic", 0, 1)
    t.mark_cell_complete("topic", 7, 65)
    t.drop_row(0, 2)
    t.pop_ready(3)
    return t


# -- readiness semantics ------------------------------------------------------------------------


def test_diamond_walkthrough(diamond) -> None:
    t = CompletionTracker.with_graph(diamond, [(0, 3)])
    assert t.ready_frontier() == ()  # nothing is ready before admission
    delta = t.add_root_tasks(0, 3)
    assert keys(delta.added) == [("seed", 0, None, "from_scratch")]
    assert t.pop_ready() == [Task("seed", 0, None, "from_scratch")]
    delta = t.mark_row_range_complete("seed", 0, 3)
    assert keys(delta.added) == [("a", 0, r, "cell") for r in range(3)] + [
        ("b", 0, r, "cell") for r in range(3)
    ]
    assert delta.removed == ()  # the seed task had been handed out already
    assert t.is_complete(SliceRef("seed", 0)) and t.is_complete(SliceRef("seed", 0, 2))
    for r in range(3):
        t.mark_cell_complete("a", 0, r)
    assert "judge" not in t.ready_columns(0)  # b is not done yet
    t.mark_cell_complete("b", 0, 0)
    delta = t.drop_row(0, 1)
    assert set(keys(delta.removed)) == {("b", 0, 1, "cell")}
    assert delta.added == ()
    delta = t.mark_cell_complete("b", 0, 2)
    assert keys(delta.removed) == [("b", 0, 2, "cell")]
    assert keys(delta.added) == [("judge", 0, None, "batch")]
    assert t.pop_ready_batch("judge", 0)
    delta = t.mark_row_range_complete("judge", 0, 3)
    assert keys(delta.added) == [("final", 0, 0, "cell"), ("final", 0, 2, "cell")]  # row 1 is dropped
    assert t.ready_rows("final", 0, take=True).tolist() == [0, 2]
    t.mark_cells_complete("final", 0, np.array([0, 2]))
    assert t.is_row_group_complete(0, 3, diamond.columns)
    assert t.frontier_size() == 0
    assert t.progress()["final"] == ColumnProgress(completed=2, dropped=1, total=3)
    assert t.progress()["seed"] == ColumnProgress(completed=3, dropped=0, total=3)


def test_cell_task_waits_for_every_cell_upstream_on_its_row() -> None:
    graph = make_graph(
        [("x", "cell_by_cell"), ("y", "cell_by_cell"), ("z", "cell_by_cell")], [("x", "z"), ("y", "z")]
    )
    t = CompletionTracker.with_graph(graph, [(0, 2)])
    t.seed_frontier()
    assert t.mark_cell_complete("x", 0, 0).added == ()
    assert t.mark_cell_complete("y", 0, 1).added == ()
    assert keys(t.mark_cell_complete("y", 0, 0).added) == [("z", 0, 0, "cell")]
    assert keys(t.mark_cell_complete("x", 0, 1).added) == [("z", 0, 1, "cell")]


def test_cell_task_waits_for_full_column_upstreams() -> None:
    graph = make_graph(
        [("x", "cell_by_cell"), ("f", "full_column"), ("z", "cell_by_cell")], [("x", "z"), ("f", "z")]
    )
    t = CompletionTracker.with_graph(graph, [(0, 3)])
    t.seed_frontier()
    t.mark_cells_complete("x", 0, [0, 1])
    assert t.ready_rows("z", 0).tolist() == []
    t.drop_row(0, 1)
    delta = t.mark_row_range_complete("f", 0, 3)
    assert keys(delta.added) == [("z", 0, 0, "cell")]  # row 1 dropped, row 2 waits for x


def test_a_batch_column_only_counts_as_done_when_its_range_is_marked() -> None:
    """The first tracker treated one marked cell of a batch column as the whole batch."""
    graph = make_graph(
        [("f", "full_column"), ("g", "full_column"), ("c", "cell_by_cell")], [("f", "g"), ("f", "c")]
    )
    t = CompletionTracker.with_graph(graph, [(0, 3)])
    t.seed_frontier()
    before = snapshot(t, [(0, 3)])
    with pytest.raises(StrategyMismatchError, match="mark_row_range_complete"):
        t.mark_cell_complete("f", 0, 0)
    with pytest.raises(StrategyMismatchError):
        t.mark_cells_complete("f", 0, np.array([0, 1, 2]))
    assert snapshot(t, [(0, 3)]) == before
    assert not t.is_complete(SliceRef("f", 0))
    assert not t.is_column_complete_for_rg("f", 0)
    assert t.ready_columns(0) == ["f"]
    t.mark_row_range_complete("f", 0, 3)
    assert t.is_complete(SliceRef("f", 0))
    assert t.ready_columns(0) == ["g", "c"]


def test_full_column_task_waits_for_every_row_done_or_dropped(chain_tracker) -> None:
    t = chain_tracker
    t.add_root_tasks(0, 4)
    t.mark_cells_complete("topic", 0, np.arange(4))
    t.mark_cells_complete("question", 0, np.array([0, 1]))
    assert t.drop_row(0, 2).added == ()
    assert not t.is_column_complete_for_rg("question", 0)
    delta = t.drop_row(0, 3)
    assert keys(delta.added) == [("score", 0, None, "batch")]
    assert keys(delta.removed) == [("question", 0, 3, "cell")]
    assert t.is_column_complete_for_rg("question", 0)


def test_dropping_every_row_releases_the_full_column_task(chain_tracker) -> None:
    t = chain_tracker
    delta = t.drop_rows(0, np.arange(4))
    assert keys(delta.added) == [("score", 0, None, "batch")]
    assert t.add_root_tasks(0, 4).added == ()  # no live row is left to admit
    assert t.is_row_group_complete(0, 4, ["topic", "question"])
    # every row is dropped, so even the unrun full-column task leaves nothing to do for a row
    assert t.is_row_group_complete(0, 4, ["score"])
    assert not t.is_complete(SliceRef("score", 0))
    assert t.pop_ready_batch("score", 0)


def test_completing_a_dropped_row_unblocks_nothing(chain_tracker) -> None:
    t = chain_tracker
    t.add_root_tasks(0, 4)
    t.drop_row(0, 0)
    delta = t.mark_cell_complete("topic", 0, 0)
    assert delta.empty
    assert t.is_complete(SliceRef("topic", 0, 0))
    assert not t.is_frontier_task(cell("question", 0, 0))
    assert t.progress()["topic"] == ColumnProgress(1, 0, 74)


def test_completing_or_dropping_twice_changes_nothing(busy) -> None:
    busy.mark_cell_complete("topic", 0, 3)
    busy.drop_row(0, 0)
    before = snapshot(busy)
    assert busy.mark_cell_complete("topic", 0, 3).empty
    assert busy.drop_row(0, 0).empty
    assert busy.drop_rows(0, np.array([0, 0, 2])).empty
    assert busy.mark_cells_complete("topic", 0, np.array([3, 3])).empty
    assert snapshot(busy) == before
    busy.mark_cells_complete("topic", 7, np.arange(70))
    busy.mark_cells_complete("question", 7, np.arange(70))
    busy.pop_ready()
    busy.mark_row_range_complete("score", 7, 70)
    before = snapshot(busy)
    assert busy.mark_row_range_complete("score", 7, 70).empty
    assert snapshot(busy) == before


def test_each_task_enters_the_frontier_once(chain_tracker) -> None:
    t = chain_tracker
    t.add_root_tasks(0, 4)
    handed = t.pop_ready()
    assert len(handed) == 4
    assert t.add_root_tasks(0, 4).empty  # the same roots are not admitted twice
    assert t.seed_frontier().num_added == 71  # only groups 7 and 9 (its zero-row score task) are new
    assert t.ready_frontier() and all(task.row_group in (7, 9) for task in t.ready_frontier())
    t.mark_cell_complete("topic", 0, 0)
    assert t.pop_ready() != []
    assert not t.is_frontier_task(cell("question", 0, 0))
    t.mark_cell_complete("topic", 0, 0)  # repeated completion does not bring question back
    assert not t.is_frontier_task(cell("question", 0, 0))


def test_add_root_tasks_with_explicit_columns() -> None:
    graph = make_graph([("r1", "cell_by_cell"), ("r2", "full_column"), ("x", "cell_by_cell")], [("r1", "x")])
    t = CompletionTracker.with_graph(graph, [(0, 2)])
    assert keys(t.add_root_tasks(0, 2, ["r2"]).added) == [("r2", 0, None, "from_scratch")]
    t.mark_cell_complete("r1", 0, 0)  # completed before admission: not offered
    assert keys(t.add_root_tasks(0, 2, ("r1", "r2")).added) == [("r1", 0, 1, "cell")]
    assert t.add_root_tasks(0, 2).empty


def test_add_root_tasks_refuses_bad_columns(chain_tracker) -> None:
    before = snapshot(chain_tracker)
    with pytest.raises(InvalidArgumentError, match="question"):
        chain_tracker.add_root_tasks(0, 4, ["topic", "question"])
    with pytest.raises(ValueError):
        chain_tracker.add_root_tasks(0, 4, ["question"])
    with pytest.raises(TypeError):
        chain_tracker.add_root_tasks(0, 4, "topic")
    with pytest.raises(UnknownColumnError):
        chain_tracker.add_root_tasks(0, 4, ["topic", "ghost"])
    assert snapshot(chain_tracker) == before


def test_zero_row_group(chain_tracker) -> None:
    t = chain_tracker
    assert t.is_row_group_complete(9, 0, ["topic", "question", "score"])
    assert t.is_column_complete_for_rg("score", 9)
    delta = t.add_root_tasks(9, 0)
    # every cell column is vacuously resolved, so the full-column task is ready at once
    assert keys(delta.added) == [("score", 9, None, "batch")]
    assert t.pop_ready_batch("score", 9)
    assert t.mark_row_range_complete("score", 9, 0).empty
    assert t.is_complete(SliceRef("score", 9))
    assert t.progress()["score"].total == 74


def test_empty_graph() -> None:
    t = CompletionTracker.with_graph(ExecutionGraph(), [(0, 3), (1, 0)])
    assert t.seed_frontier().empty
    assert t.ready_frontier() == () and t.pop_ready() == []
    assert t.progress() == {}
    assert t.is_row_group_complete(0, 3, [])
    t.drop_row(0, 1)
    assert t.is_dropped(0, 1)
    with pytest.raises(UnknownColumnError):
        t.mark_cell_complete("a", 0, 0)
    t.compact_row_group(0)
    assert t.is_dropped(0, 1) and not t.is_dropped(0, 0)


# -- handing out --------------------------------------------------------------------------------


def test_pop_ready_order_and_partial_popping() -> None:
    graph = make_graph([("b", "cell_by_cell"), ("a", "cell_by_cell"), ("f", "full_column")], [("b", "a")])
    t = CompletionTracker.with_graph(graph, [(5, 2), (-1, 1), (3, 70)])
    t.seed_frontier()
    t.mark_cell_complete("b", 3, 69)
    t.mark_cell_complete("b", 3, 0)
    expected = [
        ("b", -1, 0, "cell"),
        ("f", -1, None, "from_scratch"),
        *[("b", 3, r, "cell") for r in range(1, 69)],
        ("a", 3, 0, "cell"),
        ("a", 3, 69, "cell"),
        ("f", 3, None, "from_scratch"),
        ("b", 5, 0, "cell"),
        ("b", 5, 1, "cell"),
        ("f", 5, None, "from_scratch"),
    ]
    assert keys(t.ready_frontier()) == expected
    assert keys(t.get_ready_tasks(set())) == expected
    assert t.pop_ready(0) == []
    popped = []
    for size in (1, 2, 64, 3, 1000):
        batch = t.pop_ready(size)
        assert len(batch) <= size
        popped += batch
        assert keys(t.ready_frontier()) == expected[len(popped) :]
    assert keys(popped) == expected
    assert t.pop_ready() == [] and t.frontier_size() == 0


@pytest.mark.parametrize("max_tasks", [np.int64(2), 2])
def test_pop_ready_accepts_numpy_integers(busy, max_tasks) -> None:
    expected = busy.ready_frontier()[:2]
    assert busy.pop_ready(max_tasks) == list(expected)


def test_pop_ready_with_a_huge_limit_pops_everything(busy) -> None:
    expected = list(busy.ready_frontier())
    assert busy.pop_ready(2**70) == expected


@pytest.mark.parametrize(
    ("max_tasks", "error"),
    [(-1, InvalidArgumentError), (1.0, IndexTypeError), (True, IndexTypeError), ("2", IndexTypeError)],
)
def test_pop_ready_refuses_bad_limits(busy, max_tasks, error) -> None:
    before = snapshot(busy)
    with pytest.raises(error):
        busy.pop_ready(max_tasks)
    assert snapshot(busy) == before


def test_results_are_snapshots_not_views(busy) -> None:
    frontier = busy.ready_frontier()
    assert isinstance(frontier, tuple)
    popped = busy.pop_ready(2)
    popped.clear()
    progress = busy.progress()
    progress["topic"] = None
    assert busy.progress()["topic"] is not None
    rows = busy.ready_rows("topic", 7)
    expected = rows.tolist()
    rows[:] = 0
    assert busy.ready_rows("topic", 7).tolist() == expected
    assert busy.ready_frontier() == frontier[2:]


def test_get_ready_tasks_filters_dispatched_and_admitted(busy) -> None:
    frontier = list(busy.ready_frontier())
    dispatched = frontier[:3]
    assert busy.get_ready_tasks(dispatched) == frontier[3:]
    assert busy.get_ready_tasks(set(dispatched)) == frontier[3:]
    assert busy.get_ready_tasks([], admitted_rgs=[0]) == [t for t in frontier if t.row_group == 0]
    assert busy.get_ready_tasks([], admitted_rgs=[]) == []
    assert busy.ready_frontier() == tuple(frontier)  # nothing was removed


def test_mark_enqueued_removes_tasks(busy) -> None:
    frontier = list(busy.ready_frontier())
    busy.mark_enqueued(frontier[:2])
    assert list(busy.ready_frontier()) == frontier[2:]
    busy.mark_enqueued(frontier[:2])  # already gone: ignored
    busy.mark_enqueued([cell("question", 7, 0), Task("score", 9, None, "batch")])  # valid, not ready
    assert list(busy.ready_frontier()) == frontier[2:]
    assert not busy.is_frontier_task(frontier[0])


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (Task("ghost", 0, 0, "cell"), UnknownColumnError),
        (Task("topic", 0, None, "batch"), StrategyMismatchError),
        (Task("score", 0, 0, "cell"), StrategyMismatchError),
        (Task("topic", 99, 0, "cell"), UnknownRowGroupError),
        (Task("topic", 0, 4, "cell"), RowIndexError),
        (Task("topic", 0, -1, "cell"), RowIndexError),
        (Task("topic", 0, 1.0, "cell"), IndexTypeError),
        (Task("topic", 0.0, 1, "cell"), IndexTypeError),
        (Task("topic", 7, 70, "cell"), RowIndexError),
    ],
)
def test_mark_enqueued_and_add_ready_tasks_validate_every_task_first(busy, bad, error) -> None:
    good = list(busy.ready_frontier()[:2])
    before = snapshot(busy)
    with pytest.raises(error):
        busy.mark_enqueued([*good, bad])
    with pytest.raises(error):
        busy.add_ready_tasks([cell("question", 0, 3), bad])
    assert snapshot(busy) == before


def test_add_ready_tasks(chain_tracker) -> None:
    t = chain_tracker
    delta = t.add_ready_tasks([cell("question", 0, 1), Task("score", 7, None, "batch")])
    assert keys(delta.added) == [("question", 0, 1, "cell"), ("score", 7, None, "batch")]
    assert t.add_ready_tasks([cell("question", 0, 1)]).empty
    assert t.is_frontier_task(cell("question", 0, 1))
    assert keys(t.pop_ready()) == [("question", 0, 1, "cell"), ("score", 7, None, "batch")]


def test_is_frontier_task(busy) -> None:
    for task in busy.ready_frontier():
        assert busy.is_frontier_task(task)
    assert not busy.is_frontier_task(cell("question", 7, 0))
    assert not busy.is_frontier_task(Task("score", 0, 1, "cell"))  # a batch column has no cell tasks
    with pytest.raises(UnknownColumnError):
        busy.is_frontier_task(Task("ghost", 0, 0, "cell"))
    with pytest.raises(UnknownRowGroupError):
        busy.is_frontier_task(cell("topic", 99, 0))


def test_ready_rows_and_pop_ready_batch(chain_tracker) -> None:
    t = chain_tracker
    t.add_root_tasks(7, 70)
    t.drop_rows(7, np.array([0, 64, 69]))
    rows = t.ready_rows("topic", 7)
    assert rows.dtype == np.int64
    assert rows.tolist() == [r for r in range(70) if r not in (0, 64, 69)]
    assert t.ready_rows("topic", 7, take=True).tolist() == rows.tolist()
    assert t.ready_rows("topic", 7).tolist() == [] and t.frontier_size() == 0
    assert t.ready_rows("topic", 0).tolist() == []  # untouched group
    t.mark_cells_complete("topic", 7, rows)
    t.mark_cells_complete("question", 7, rows)
    assert t.ready_columns(7) == ["score"]
    assert not t.pop_ready_batch("score", 0)
    assert t.pop_ready_batch("score", 7)
    assert not t.pop_ready_batch("score", 7)
    assert t.ready_columns(7) == []
    with pytest.raises(StrategyMismatchError):
        t.ready_rows("score", 7)
    with pytest.raises(StrategyMismatchError):
        t.pop_ready_batch("topic", 7)
    with pytest.raises(UnknownRowGroupError):
        t.ready_rows("topic", 8)
    with pytest.raises(UnknownRowGroupError):
        t.ready_columns(8)
    with pytest.raises(UnknownColumnError):
        t.ready_rows("ghost", 7)


# -- bulk API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [np.array([3, 1]), [3, 1], np.array([1, 3], dtype=np.uint8), (1, 3, 3)])
def test_mark_cells_complete_accepts_integer_arrays(chain_tracker, rows) -> None:
    t = chain_tracker
    t.add_root_tasks(0, 4)
    delta = t.mark_cells_complete("topic", 0, rows)
    assert keys(delta.removed) == [("topic", 0, 1, "cell"), ("topic", 0, 3, "cell")]
    assert keys(delta.added) == [("question", 0, 1, "cell"), ("question", 0, 3, "cell")]


def test_bulk_calls_accept_empty_arrays(chain_tracker) -> None:
    assert chain_tracker.mark_cells_complete("topic", 0, np.array([], dtype=np.int64)).empty
    assert chain_tracker.drop_rows(0, []).empty


def test_bulk_equals_one_by_one(chain) -> None:
    one = CompletionTracker.with_graph(chain, PAIRS)
    bulk = CompletionTracker.with_graph(ExecutionGraph.from_signature(chain.signature()), PAIRS)
    for t in (one, bulk):
        t.seed_frontier()
    rows = np.array([5, 64, 63, 0, 69, 5])
    expected_added, expected_removed = set(), set()
    for r in rows:
        d = one.mark_cell_complete("topic", 7, int(r))
        expected_added |= set(d.added)
        expected_removed |= set(d.removed)
    delta = bulk.mark_cells_complete("topic", 7, rows)
    assert (set(delta.added), set(delta.removed)) == (expected_added, expected_removed)
    one_drop = [one.drop_row(7, r) for r in (1, 64)]
    bulk_drop = bulk.drop_rows(7, np.array([64, 1]))
    assert set(bulk_drop.removed) == {t for d in one_drop for t in d.removed}
    assert snapshot(one) == snapshot(bulk)


# -- compaction ---------------------------------------------------------------------------------


def test_compaction_releases_state_and_keeps_terminal_answers(busy) -> None:
    busy.mark_cells_complete("topic", 0, np.arange(4))
    busy.mark_cells_complete("question", 0, np.array([0, 1, 3]))
    busy.mark_row_range_complete("score", 0, 4)
    progress = busy.progress()
    nbytes = busy.nbytes
    frontier_elsewhere = [t for t in busy.ready_frontier() if t.row_group != 0]
    busy.compact_row_group(0)
    assert busy.active_row_groups() == [7]
    assert busy.nbytes < nbytes
    assert busy.progress() == progress
    assert list(busy.ready_frontier()) == frontier_elsewhere
    assert busy.is_row_group_complete(0, 4, ["topic", "question", "score"])
    assert busy.is_column_complete_for_rg("question", 0)
    assert busy.is_complete(SliceRef("score", 0))
    assert busy.is_dropped(0, 2) and not busy.is_dropped(0, 1)
    assert busy.is_complete(SliceRef("question", 0, 1)) and not busy.is_complete(SliceRef("question", 0, 2))
    assert busy.ready_columns(0) == [] and busy.ready_rows("topic", 0).tolist() == []
    busy.compact_row_group(0)  # twice: harmless
    before = snapshot(busy)
    for call in (
        lambda: busy.mark_cell_complete("topic", 0, 0),
        lambda: busy.mark_row_range_complete("score", 0, 4),
        lambda: busy.drop_row(0, 0),
        lambda: busy.drop_rows(0, [0]),
        lambda: busy.mark_cells_complete("topic", 0, [0]),
        lambda: busy.add_root_tasks(0, 4),
        lambda: busy.add_ready_tasks([cell("topic", 0, 0)]),
    ):
        with pytest.raises(RowGroupCompactedError):
            call()
    with pytest.raises(RowIndexError):
        busy.is_dropped(0, 4)
    with pytest.raises(SizeMismatchError):
        busy.is_row_group_complete(0, 5, ["topic"])
    busy.mark_enqueued([cell("topic", 0, 0)])  # a handed-out task of a compacted group: ignored
    assert snapshot(busy) == before


def test_compacting_an_untouched_group(chain_tracker) -> None:
    before = snapshot(chain_tracker)
    with pytest.raises(InvalidArgumentError, match=r"row group 7.*70 rows"):
        chain_tracker.compact_row_group(7)  # nothing is done: it is not complete
    assert snapshot(chain_tracker) == before
    chain_tracker.compact_row_group(7, abandon=True)
    assert chain_tracker.is_row_group_complete(7, 70, ["score"])
    assert chain_tracker.is_dropped(7, 3)
    assert not chain_tracker.is_complete(SliceRef("topic", 7, 3))
    assert chain_tracker.progress()["topic"] == ColumnProgress(0, 70, 74)
    with pytest.raises(UnknownRowGroupError):
        chain_tracker.compact_row_group(8)
    with pytest.raises(IndexTypeError):
        chain_tracker.compact_row_group("7")


def test_compaction_keeps_progress_of_dropped_rows(chain_tracker) -> None:
    t = chain_tracker
    t.mark_cells_complete("topic", 7, np.arange(10))
    t.drop_rows(7, np.array([3, 20, 69]))
    before = t.progress()
    assert before["topic"] == ColumnProgress(10, 2, 74)
    assert before["question"] == ColumnProgress(0, 3, 74)
    assert before["topic"].remaining == 62
    with pytest.raises(InvalidArgumentError):
        t.compact_row_group(7)
    assert t.progress() == before
    t.compact_row_group(7, abandon=True)  # every open row is dropped: none stays unaccounted
    after = t.progress()
    assert after["topic"] == ColumnProgress(10, 60, 74)
    assert after["question"] == ColumnProgress(0, 70, 74)
    assert t.is_dropped(7, 10) and not t.is_complete(SliceRef("topic", 7, 10))


def test_compacting_a_complete_group_keeps_every_answer(chain_tracker) -> None:
    t = chain_tracker
    t.add_root_tasks(0, 4)
    t.drop_row(0, 1)
    while t.ready_frontier():
        for task in t.pop_ready():
            if task.row_index is None:
                t.mark_row_range_complete(task.column, 0, 4)
            else:
                t.mark_cell_complete(task.column, 0, task.row_index)
    progress = t.progress()
    columns = [c for c in t.graph.columns]
    assert t.is_row_group_complete(0, 4, columns)
    t.compact_row_group(0)  # complete: no abandon needed
    assert t.progress() == progress
    cell_columns = [c for c in columns if t.graph.get_strategy(c).value == "cell_by_cell"]
    assert all(t.is_complete(SliceRef(c, 0, 2)) for c in cell_columns)
    assert not t.is_complete(SliceRef("topic", 0, 1)) and t.is_dropped(0, 1)


# -- nothing scans everything -------------------------------------------------------------------


class CountingPlan:
    """A uniform plan of a billion groups that counts how it is used."""

    def __init__(self) -> None:
        self.plan = RowGroupPlan.uniform(10**12, 1_000)
        self.iterations = 0

    def has_row_group(self, rg: int) -> bool:
        return self.plan.has_row_group(rg)

    def row_group_size(self, rg: int) -> int:
        return self.plan.row_group_size(rg)

    def __iter__(self):
        self.iterations += 1
        return iter(self.plan)


def test_events_never_walk_the_plan_or_allocate_untouched_groups(diamond) -> None:
    plan = CountingPlan()
    t = CompletionTracker.with_graph(diamond, plan)
    t.add_root_tasks(123_456_789, 1_000)
    t.pop_ready()
    t.mark_row_range_complete("seed", 123_456_789, 1_000)
    t.mark_cell_complete("a", 123_456_789, 5)
    t.mark_cells_complete("b", 123_456_789, np.arange(1_000))
    t.drop_row(123_456_789, 7)
    t.drop_rows(5, np.array([1, 2]))
    t.pop_ready(10)
    t.ready_frontier()
    t.is_complete(SliceRef("a", 999_999_999, 3))
    t.is_row_group_complete(17, 1_000, ["a"])
    assert plan.iterations == 0
    assert t.active_row_groups() == [5, 123_456_789]
    assert t.nbytes < 20_000  # two groups of 1,000 rows and five columns
    # a delta holds only what the event touched
    delta = t.mark_cell_complete("a", 123_456_789, 500)
    assert keys(delta.removed) == [("a", 123_456_789, 500, "cell")] and delta.added == ()


# -- bad input ------------------------------------------------------------------------------------

BAD_ROWS = [
    (-1, RowIndexError),
    (4, RowIndexError),
    (2**40, RowIndexError),
    (2**63, RowIndexError),
    (2**70, RowIndexError),
    (-(2**70), RowIndexError),
    (np.int64(-1), RowIndexError),
    (np.uint64(2**64 - 1), RowIndexError),
    (1.0, IndexTypeError),
    (np.float64(1), IndexTypeError),
    (True, IndexTypeError),
    (np.bool_(False), IndexTypeError),
    (None, IndexTypeError),
    ("1", IndexTypeError),
]

BAD_ROW_GROUPS = [
    (1, UnknownRowGroupError),
    (-1, UnknownRowGroupError),
    (2**70, UnknownRowGroupError),
    (0.0, IndexTypeError),
    (False, IndexTypeError),
    (None, IndexTypeError),
    ("0", IndexTypeError),
]


def _row_calls(t: CompletionTracker, row):
    calls = [
        lambda: t.mark_cell_complete("topic", 0, row),
        lambda: t.drop_row(0, row),
        lambda: t.is_dropped(0, row),
    ]
    if row is not None:  # a row_index of None names the batch in these two
        calls.append(lambda: t.is_complete(SliceRef("question", 0, row)))
        calls.append(lambda: t.is_frontier_task(cell("question", 0, row)))
    return calls


@pytest.mark.parametrize(("row", "error"), BAD_ROWS)
@pytest.mark.parametrize("touched", [True, False], ids=["active", "untouched"])
def test_bad_row_indices_raise_and_change_nothing(chain_tracker, busy, row, error, touched) -> None:
    t = busy if touched else chain_tracker
    before = snapshot(t)
    for call in _row_calls(t, row):
        with pytest.raises(error):
            call()
        with pytest.raises(CellFrontierError):
            call()
    assert snapshot(t) == before


@pytest.mark.parametrize(("rg", "error"), BAD_ROW_GROUPS)
def test_bad_row_groups_raise_and_change_nothing(busy, rg, error) -> None:
    before = snapshot(busy)
    calls = [
        lambda: busy.mark_cell_complete("topic", rg, 0),
        lambda: busy.mark_row_range_complete("score", rg, 4),
        lambda: busy.mark_cells_complete("topic", rg, [0]),
        lambda: busy.drop_row(rg, 0),
        lambda: busy.drop_rows(rg, [0]),
        lambda: busy.add_root_tasks(rg, 4),
        lambda: busy.compact_row_group(rg),
        lambda: busy.is_dropped(rg, 0),
        lambda: busy.is_complete(SliceRef("topic", rg, 0)),
        lambda: busy.is_complete(SliceRef("score", rg)),
        lambda: busy.is_column_complete_for_rg("topic", rg),
        lambda: busy.is_row_group_complete(rg, 4, ["topic"]),
        lambda: busy.ready_rows("topic", rg),
        lambda: busy.pop_ready_batch("score", rg),
        lambda: busy.ready_columns(rg),
        lambda: busy.mark_enqueued([cell("topic", rg, 0)]),
        lambda: busy.add_ready_tasks([cell("topic", rg, 0)]),
    ]
    for call in calls:
        with pytest.raises(error):
            call()
    assert snapshot(busy) == before


@pytest.mark.parametrize("column", ["ghost", "", None, 3, ("topic",), ["topic"]])
def test_unknown_columns_raise_and_change_nothing(busy, column) -> None:
    before = snapshot(busy)
    calls = [
        lambda: busy.mark_cell_complete(column, 0, 0),
        lambda: busy.mark_row_range_complete(column, 0, 4),
        lambda: busy.mark_cells_complete(column, 0, [0]),
        lambda: busy.add_root_tasks(0, 4, [column]),
        lambda: busy.is_complete(SliceRef(column, 0, 0)),
        lambda: busy.is_column_complete_for_rg(column, 0),
        lambda: busy.is_row_group_complete(0, 4, ["topic", column]),
        lambda: busy.ready_rows(column, 0),
        lambda: busy.pop_ready_batch(column, 0),
    ]
    for call in calls:
        with pytest.raises(UnknownColumnError):
            call()
        with pytest.raises(KeyError):
            call()
    assert snapshot(busy) == before


@pytest.mark.parametrize("size", [3, 5, 0, -4, 2**70])
def test_size_mismatches_raise_and_change_nothing(busy, size) -> None:
    before = snapshot(busy)
    for call in (
        lambda: busy.mark_row_range_complete("score", 0, size),
        lambda: busy.add_root_tasks(0, size),
        lambda: busy.add_root_tasks(9, size + 1),
        lambda: busy.mark_row_range_complete("score", 7, size),
        lambda: busy.is_row_group_complete(0, size, ["topic"]),
        lambda: busy.is_row_group_complete(7, size, ["topic"]),
    ):
        with pytest.raises(SizeMismatchError):
            call()
    assert snapshot(busy) == before


@pytest.mark.parametrize("size", [4.0, True, None, "4"])
def test_non_integer_sizes_raise_and_change_nothing(busy, size) -> None:
    before = snapshot(busy)
    for call in (
        lambda: busy.mark_row_range_complete("score", 0, size),
        lambda: busy.add_root_tasks(0, size),
        lambda: busy.is_row_group_complete(0, size, ["topic"]),
        lambda: busy.is_row_group_complete(7, size, ["topic"]),
    ):
        with pytest.raises(IndexTypeError):
            call()
    assert snapshot(busy) == before


def test_sizes_accept_numpy_integers(chain_tracker) -> None:
    assert chain_tracker.add_root_tasks(0, np.int32(4)).num_added == 4
    assert chain_tracker.is_row_group_complete(7, np.int64(70), [])


def test_strategy_mismatches_raise_and_change_nothing(busy) -> None:
    before = snapshot(busy)
    for call in (
        lambda: busy.mark_cell_complete("score", 0, 0),
        lambda: busy.mark_cells_complete("score", 0, [0]),
        lambda: busy.mark_row_range_complete("topic", 0, 4),
        lambda: busy.ready_rows("score", 0),
        lambda: busy.pop_ready_batch("question", 0),
    ):
        with pytest.raises(StrategyMismatchError):
            call()
    assert snapshot(busy) == before


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        (np.zeros((2, 1), dtype=np.int64), IndexTypeError),
        (np.int64(1), IndexTypeError),
        (5, IndexTypeError),
        (np.array([0.0, 1.0]), IndexTypeError),
        (np.array([True, False]), IndexTypeError),
        (np.array(["0"]), IndexTypeError),
        ([0, 2**70], IndexTypeError),
        (np.array([0, 4]), RowIndexError),
        (np.array([-1, 0]), RowIndexError),
        (np.array([2**63 - 1], dtype=np.int64), RowIndexError),
        (np.array([2**64 - 1], dtype=np.uint64), RowIndexError),
    ],
)
def test_bad_bulk_arrays_raise_and_change_nothing(busy, rows, error) -> None:
    before = snapshot(busy)
    with pytest.raises(error):
        busy.mark_cells_complete("topic", 0, rows)
    with pytest.raises(error):
        busy.drop_rows(0, rows)
    with pytest.raises(error):
        busy.mark_cells_complete("topic", 9, rows)  # an untouched group of zero rows
    assert snapshot(busy) == before


def test_numpy_integers_are_accepted_everywhere(chain_tracker) -> None:
    t = chain_tracker
    rg, row = np.int64(0), np.int32(2)
    t.add_root_tasks(rg, np.int16(4))
    assert keys(t.mark_cell_complete("topic", rg, row).added) == [("question", 0, 2, "cell")]
    task = t.ready_frontier()[-1]
    assert type(task.row_group) is int and type(task.row_index) is int
    assert t.is_complete(SliceRef("topic", rg, np.uint8(2)))
    t.drop_row(np.uint16(0), np.int8(3))
    assert t.is_dropped(rg, np.int64(3))
    assert t.is_frontier_task(cell("question", np.int64(0), np.int64(2)))
    t.compact_row_group(np.int64(0), abandon=True)
    assert t.is_dropped(0, 3)


def test_errors_say_what_was_wrong(chain_tracker) -> None:
    with pytest.raises(RowIndexError, match=r"mark_cell_complete\(\).*4.*size 4"):
        chain_tracker.mark_cell_complete("topic", 0, 4)
    with pytest.raises(UnknownRowGroupError, match=r"drop_row\(\).*12"):
        chain_tracker.drop_row(12, 0)
    with pytest.raises(SizeMismatchError, match=r"5.*4"):
        chain_tracker.mark_row_range_complete("score", 0, 5)
    with pytest.raises(UnknownColumnError, match="'ghost'") as info:
        chain_tracker.mark_cell_complete("ghost", 0, 0)
    assert str(info.value).startswith("mark_cell_complete()")  # no KeyError quoting


# -- progress, repr, nbytes -------------------------------------------------------------------------


def test_progress(busy) -> None:
    progress = busy.progress()
    assert list(progress) == ["topic", "question", "score"]
    assert progress["topic"] == ColumnProgress(completed=2, dropped=1, total=74)
    assert progress["question"] == ColumnProgress(completed=0, dropped=1, total=74)
    assert progress["topic"].remaining == 71


def test_repr_and_nbytes(chain_tracker) -> None:
    assert repr(chain_tracker) == "CompletionTracker(columns=3, active_row_groups=0, frontier=0)"
    empty = chain_tracker.nbytes
    chain_tracker.add_root_tasks(7, 70)
    assert repr(chain_tracker) == "CompletionTracker(columns=3, active_row_groups=1, frontier=70)"
    assert chain_tracker.nbytes > empty
    assert isinstance(chain_tracker.nbytes, int)


def test_seed_frontier_admits_every_group(chain_tracker) -> None:
    delta = chain_tracker.seed_frontier()
    assert delta.num_added == 75  # 4 + 70 topic cells and the zero-row group's score task
    assert isinstance(delta, FrontierDelta)
    assert chain_tracker.seed_frontier().empty


# -- no-graph mode ----------------------------------------------------------------------------------


def test_completion_only_tracker() -> None:
    t = CompletionTracker()
    assert t.graph is None and repr(t) == "CompletionTracker()"
    assert t.mark_cell_complete("a", 0, 3).empty
    assert t.is_complete(SliceRef("a", 0, 3)) and not t.is_complete(SliceRef("a", 0, 2))
    assert not t.is_complete(SliceRef("b", 0, 3)) and not t.is_complete(SliceRef("a", 1, 3))
    assert not t.is_complete(SliceRef("a", 0))  # cells never make a batch
    assert not t.is_column_complete_for_rg("a", 0)  # the group's size is not known yet
    with pytest.raises(SizeMismatchError, match="row 3"):
        t.mark_row_range_complete("f", 0, 3)  # row 3 exists, so the group has more than 3 rows
    t.mark_row_range_complete("f", 0, 4)  # the group's size is 4 from now on
    assert t.is_complete(SliceRef("f", 0)) and t.is_complete(SliceRef("f", 0, 3))
    assert t.is_column_complete_for_rg("f", 0) and not t.is_column_complete_for_rg("a", 0)
    with pytest.raises(RowIndexError):
        t.mark_cell_complete("a", 0, 4)
    with pytest.raises(SizeMismatchError):
        t.mark_row_range_complete("g", 0, 5)
    with pytest.raises(SizeMismatchError):
        t.is_row_group_complete(0, 3, ["a"])
    t.drop_row(0, 1)
    assert t.is_dropped(0, 1) and not t.is_dropped(0, 0)
    assert not t.is_row_group_complete(0, 4, ["a", "f"])
    t.mark_cell_complete("a", 0, 0)
    t.mark_cell_complete("a", 0, 2)
    assert t.is_row_group_complete(0, 4, ["a"]) and t.is_column_complete_for_rg("a", 0)
    assert t.is_all_complete([SliceRef("a", 0, 0), SliceRef("f", 0)])
    assert not t.is_all_complete([SliceRef("a", 0, 0), SliceRef("a", 0, 1)])
    assert t.nbytes > 0
    t.compact_row_group(0)
    assert t.is_dropped(0, 1)
    assert t.is_row_group_complete(0, 4, ["a", "zzz"])
    with pytest.raises(RowGroupCompactedError):
        t.mark_cell_complete("a", 0, 1)


def test_completion_only_tracker_counts_instead_of_scanning() -> None:
    """A mark near the top of the row range costs its bitmap, not a copy per event."""
    t = CompletionTracker()
    t.mark_cell_complete("a", 0, 2**20)
    size = t.nbytes
    for row in range(1_000):
        t.mark_cell_complete("a", 0, row)
        t.drop_row(0, row + 5_000)
    assert t.nbytes == size  # in place: no growth, no copies kept
    t.mark_row_range_complete("f", 0, 2**20 + 1)
    assert not t.is_row_group_complete(0, 2**20 + 1, ["a"])
    assert t.is_row_group_complete(0, 2**20 + 1, ["f"])
    t.mark_row_range_complete("a", 0, 2**20 + 1)
    assert t.is_row_group_complete(0, 2**20 + 1, ["a", "f"])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda t: t.mark_cell_complete("a", 0, -1), RowIndexError),
        (lambda t: t.mark_cell_complete("a", 0, 2**31), RowIndexError),
        (lambda t: t.mark_cell_complete("a", 0, 2**70), RowIndexError),
        (lambda t: t.mark_cell_complete("a", 0, 1.0), IndexTypeError),
        (lambda t: t.mark_cell_complete("a", 0, True), IndexTypeError),
        (lambda t: t.mark_cell_complete("a", None, 1), IndexTypeError),
        (lambda t: t.mark_cell_complete("", 0, 1), UnknownColumnError),
        (lambda t: t.mark_cell_complete(None, 0, 1), UnknownColumnError),
        (lambda t: t.drop_row(0, -3), RowIndexError),
        (lambda t: t.drop_row("0", 1), IndexTypeError),
        (lambda t: t.mark_row_range_complete("f", 0, 2.0), IndexTypeError),
        (lambda t: t.is_complete(SliceRef("a", 0, -1)), RowIndexError),
        (lambda t: t.is_dropped(0, None), IndexTypeError),
    ],
)
def test_completion_only_tracker_refuses_bad_input(call, error) -> None:
    t = CompletionTracker()
    t.mark_cell_complete("a", 0, 0)
    before = (t.is_complete(SliceRef("a", 0, 0)), t.is_dropped(0, 0), t.nbytes)
    with pytest.raises(error):
        call(t)
    assert (t.is_complete(SliceRef("a", 0, 0)), t.is_dropped(0, 0), t.nbytes) == before
    assert not t.is_complete(SliceRef("a", 0, 1))


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.pop_ready(),
        lambda t: t.ready_frontier(),
        lambda t: t.get_ready_tasks(set()),
        lambda t: t.add_root_tasks(0, 1),
        lambda t: t.seed_frontier(),
        lambda t: t.mark_cells_complete("a", 0, [0]),
        lambda t: t.drop_rows(0, [0]),
        lambda t: t.ready_rows("a", 0),
        lambda t: t.pop_ready_batch("a", 0),
        lambda t: t.ready_columns(0),
        lambda t: t.active_row_groups(),
        lambda t: t.frontier_size(),
        lambda t: t.progress(),
        lambda t: t.mark_enqueued([]),
        lambda t: t.add_ready_tasks([]),
        lambda t: t.is_frontier_task(Task("a", 0, 0, "cell")),
    ],
)
def test_frontier_methods_need_a_graph(call) -> None:
    with pytest.raises(NoGraphError, match="with_graph"):
        call(CompletionTracker())
    with pytest.raises(RuntimeError):
        call(CompletionTracker())


def test_task_validation_also_covers_untouched_groups(chain_tracker) -> None:
    before = snapshot(chain_tracker)
    with pytest.raises(RowIndexError):
        chain_tracker.mark_enqueued([cell("topic", 7, 70)])
    with pytest.raises(RowIndexError):
        chain_tracker.add_ready_tasks([cell("topic", 7, 70)])
    assert snapshot(chain_tracker) == before


def test_get_ready_tasks_refuses_unhashable_arguments(busy) -> None:
    with pytest.raises(TypeError):
        busy.get_ready_tasks([[1, 2]])
    with pytest.raises(TypeError):
        busy.get_ready_tasks([], admitted_rgs=[[0]])


def test_seed_frontier_after_a_compaction_is_all_or_nothing(chain_tracker) -> None:
    chain_tracker.compact_row_group(7, abandon=True)
    before = snapshot(chain_tracker)
    with pytest.raises(RowGroupCompactedError):
        chain_tracker.seed_frontier()
    assert snapshot(chain_tracker) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.is_frontier_task(None),
        lambda t: t.is_frontier_task(("topic", 0, 1, "cell")),
        lambda t: t.is_complete(None),
        lambda t: t.add_ready_tasks(5),
        lambda t: t.mark_enqueued(None),
        lambda t: t.mark_enqueued([None]),
        lambda t: t.is_all_complete(None),
        lambda t: t.add_root_tasks(0, 4, columns=5),
        lambda t: t.is_row_group_complete(0, 4, None),
        lambda t: t.is_row_group_complete(0, 4, "topic"),
        lambda t: t.is_row_group_complete(3, 5.0, ["topic"]),  # untouched group: same checks
        lambda t: t.is_row_group_complete(3, True, ["topic"]),
        lambda t: t.mark_cells_complete("topic", 0, np.zeros(0)),  # an empty float array
        lambda t: t.mark_cells_complete("topic", 0, np.ma.array([1, 2], mask=[0, 1])),
        lambda t: t.mark_cells_complete("topic", 0, np.array([2**64 - 1], dtype=np.uint64)),
        lambda t: t.mark_cells_complete("topic", 0, [2**70]),
        lambda t: CompletionTracker.with_graph(None, [(0, 1)]),
        lambda t: Task(None, 0, 0, "cell"),
    ],
)
def test_hostile_arguments_raise_library_errors_and_change_nothing(busy, call) -> None:
    before = snapshot(busy)
    with pytest.raises(CellFrontierError):
        call(busy)
    assert snapshot(busy) == before


def test_unknown_names_and_groups_say_what_was_expected(chain_tracker) -> None:
    with pytest.raises(UnknownColumnError, match=r"unknown column 'nope' \(expected one of 'topic'"):
        chain_tracker.mark_cell_complete("nope", 0, 0)
    with pytest.raises(UnknownRowGroupError, match=r"unknown row group 5 \(expected a row group of the plan"):
        chain_tracker.drop_row(5, 0)
    with pytest.raises(IndexError, match=r"mark_enqueued\(\)"):
        chain_tracker.mark_enqueued([cell("topic", 0, 99)])


def test_prefill_row_group_is_the_sequence_of_bulk_calls_in_one_step() -> None:
    from cellfrontier.testing.j12 import build_j12_graph

    plan = RowGroupPlan.uniform(300, 130)  # groups of 130 rows: three words, the last one partial
    rows = np.arange(0, 130, 3, dtype=np.int64)
    dropped = np.array([1, 64, 129], dtype=np.int64)
    one = CompletionTracker.with_graph(build_j12_graph(), plan)
    assert (
        one.prefill_row_group(
            1,
            130,
            dropped=dropped,
            cell_columns=["h", "bucket"],
            rows=rows,
            full_columns=["row_key", "region"],
        )
        is None
    )
    many = CompletionTracker.with_graph(build_j12_graph(), plan)
    many.drop_rows(1, dropped)
    many.mark_cells_complete("h", 1, rows)
    many.mark_cells_complete("bucket", 1, rows)
    many.mark_row_range_complete("row_key", 1, 130)
    many.mark_row_range_complete("region", 1, 130)
    assert one.to_bytes() == many.to_bytes()
    assert one.ready_columns(1) == many.ready_columns(1) == ["h", "code", "label"]
    for column in ("h", "code", "label"):
        assert one.ready_rows(column, 1).tolist() == many.ready_rows(column, 1).tolist()


def test_prefill_row_group_on_a_group_with_cells_done_marks_every_column_given() -> None:
    """Rows already done in the first column listed are still marked in the columns after it."""
    from cellfrontier.testing.j12 import build_j12_graph

    plan = RowGroupPlan.uniform(300, 130)
    rows = np.arange(0, 130, 2, dtype=np.int64)
    one = CompletionTracker.with_graph(build_j12_graph(), plan)
    many = CompletionTracker.with_graph(build_j12_graph(), plan)
    for tracker in (one, many):
        tracker.mark_cells_complete("h", 1, rows[:10])  # part of the kept rows, in the first column only
    one.prefill_row_group(1, 130, cell_columns=["h", "bucket", "code"], rows=rows)
    for column in ("h", "bucket", "code"):
        many.mark_cells_complete(column, 1, rows)
    assert one.to_bytes() == many.to_bytes()
    assert one.progress()["code"] == many.progress()["code"]
    assert one.ready_rows("bucket", 1).tolist() == many.ready_rows("bucket", 1).tolist()


def test_prefill_row_group_checks_everything_before_changing_anything() -> None:
    from cellfrontier.testing.j12 import build_j12_graph

    tracker = CompletionTracker.with_graph(build_j12_graph(), RowGroupPlan.uniform(300, 130))
    tracker.mark_cells_complete("h", 0, [0, 1])
    before = tracker.to_bytes()
    with pytest.raises(
        StrategyMismatchError, match=r"prefill_row_group\(\) needs a cell_by_cell column.*'summary'"
    ):
        tracker.prefill_row_group(0, 130, cell_columns=["h", "summary"], rows=[2])
    with pytest.raises(StrategyMismatchError, match="list it in cell_columns"):
        tracker.prefill_row_group(0, 130, full_columns=["row_key", "h"])
    with pytest.raises(UnknownColumnError):
        tracker.prefill_row_group(0, 130, cell_columns=["h"], rows=[2], full_columns=["nope"])
    with pytest.raises(RowIndexError):
        tracker.prefill_row_group(0, 130, dropped=[5], cell_columns=["h"], rows=[2, 130])
    with pytest.raises(SizeMismatchError):
        tracker.prefill_row_group(0, 100, dropped=[5], cell_columns=["h"], rows=[2])
    with pytest.raises(UnknownRowGroupError):
        tracker.prefill_row_group(7, 130, cell_columns=["h"], rows=[2])
    assert tracker.to_bytes() == before
    with pytest.raises(NoGraphError):
        CompletionTracker().prefill_row_group(0, 10)
