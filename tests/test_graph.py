"""ExecutionGraph: construction, validation, queries, compilation and freezing."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
from graph_support import make_graph

from cellfrontier import (
    CellFrontierError,
    CompletionTracker,
    DAGCircularDependencyError,
    DuplicateColumnError,
    ExecutionGraph,
    GenerationStrategy,
    GraphError,
    GraphFrozenError,
    IndexTypeError,
    InvalidArgumentError,
    RowIndexError,
    SliceRef,
    UnknownColumnError,
)
from cellfrontier.errors import ColumnNameError, CountTypeError
from cellfrontier.strategies import coerce_strategy

CELL = GenerationStrategy.CELL_BY_CELL
FULL = GenerationStrategy.FULL_COLUMN


@dataclass
class Config:
    name: str
    required_columns: list[str] = field(default_factory=list)
    side_effect_columns: list[str] = field(default_factory=list)


@dataclass
class MultiConfig:
    columns: list[Config]


@dataclass
class Skip:
    columns: list[str]


@dataclass
class SkippingConfig(Config):
    skip: Skip | None = None


class ForeignStrategy(enum.Enum):
    CELL_BY_CELL = "cell_by_cell"
    FULL_COLUMN = "full_column"


# -- strategies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cell_by_cell", CELL),
        ("full_column", FULL),
        ("FULL_COLUMN", FULL),
        (ForeignStrategy.CELL_BY_CELL, CELL),
        (ForeignStrategy.FULL_COLUMN, FULL),
        (FULL, FULL),
    ],
)
def test_strategies_are_coerced_from_strings_and_foreign_enums(value, expected) -> None:
    assert coerce_strategy(value) is expected
    graph = ExecutionGraph()
    graph.add_column("x", value)
    assert graph.get_strategy("x") is expected


@pytest.mark.parametrize("value", ["sideways", None, 3, "", object()])
def test_unknown_strategies_are_refused_and_leave_the_graph_unchanged(value) -> None:
    graph = ExecutionGraph()
    with pytest.raises(ValueError, match="unknown generation strategy") as info:
        graph.add_column("x", value)
    assert isinstance(info.value, InvalidArgumentError) and isinstance(info.value, TypeError)
    assert "add_column()" in str(info.value) and repr(value) in str(info.value)
    assert graph.columns == []
    graph.add_column("x", "cell_by_cell")  # the name was not taken by the failed call


def test_coerce_strategy_errors_belong_to_the_hierarchy() -> None:
    with pytest.raises(InvalidArgumentError, match=r"coerce_strategy\(\) got unknown generation strategy"):
        coerce_strategy("x")
    with pytest.raises(CellFrontierError):
        coerce_strategy(None)


def test_generation_strategy_is_a_str_enum() -> None:
    assert FULL == "full_column"
    assert str(CELL) == "cell_by_cell"


# -- construction -----------------------------------------------------------------------------


def test_add_column_keeps_insertion_order_and_columns_is_a_copy() -> None:
    graph = make_graph([("b", CELL), ("a", FULL)])
    columns = graph.columns
    columns.append("zzz")
    assert graph.columns == ["b", "a"]


def test_duplicate_columns_are_refused() -> None:
    graph = make_graph([("a", CELL)])
    with pytest.raises(DuplicateColumnError, match="'a'"):
        graph.add_column("a", FULL)
    assert graph.get_strategy("a") is CELL
    assert graph.columns == ["a"]


@pytest.mark.parametrize("name", ["", None, 3])
def test_empty_or_non_string_names_are_refused(name) -> None:
    graph = ExecutionGraph()
    with pytest.raises(GraphError):
        graph.add_column(name, CELL)
    with pytest.raises(GraphError):
        graph.set_side_effect(name, "a")
    assert graph.columns == []
    graph.add_column("a", CELL)
    with pytest.raises(ColumnNameError) as info:
        graph.set_side_effect(name, "a")
    assert "set_side_effect()" in str(info.value) and repr(name) in str(info.value)
    assert graph.side_effects == {}


@pytest.mark.parametrize("name", [None, 3, b"a", ["a"]])
def test_non_string_names_are_type_errors_as_well(name) -> None:
    graph = make_graph([("a", CELL)])
    for call in (lambda: graph.add_column(name, CELL), lambda: graph.set_side_effect(name, "a")):
        with pytest.raises(TypeError):
            call()
    assert graph.columns == ["a"] and graph.side_effects == {}


def test_add_edge_needs_known_columns() -> None:
    graph = make_graph([("a", CELL)])
    with pytest.raises(UnknownColumnError, match="'ghost'"):
        graph.add_edge("a", "ghost")
    with pytest.raises(UnknownColumnError):
        graph.add_edge("ghost", "a")
    assert graph.get_downstream_columns("a") == set()


def test_add_edge_to_itself_is_a_cycle() -> None:
    graph = make_graph([("a", CELL)])
    with pytest.raises(DAGCircularDependencyError) as info:
        graph.add_edge("a", "a")
    assert info.value.cycle == ("a", "a")
    assert "add_edge()" in str(info.value) and "'a'" in str(info.value)
    assert graph.get_upstream_columns("a") == set()
    assert graph.get_topological_order() == ["a"]


def test_duplicate_edges_are_harmless() -> None:
    graph = make_graph([("a", CELL), ("b", CELL)], [("a", "b"), ("a", "b")])
    assert graph.get_upstream_columns("b") == {"a"}
    assert graph.compile().down_idx.tolist() == [1]


def test_an_edge_closing_a_cycle_is_refused_and_not_recorded() -> None:
    graph = make_graph(
        [("a", CELL), ("b", CELL), ("c", FULL), ("d", CELL)],
        [("a", "b"), ("b", "c"), ("c", "d")],
    )
    order = graph.get_topological_order()
    signature = graph.signature()
    with pytest.raises(DAGCircularDependencyError) as info:
        graph.add_edge("d", "b")
    cycle = info.value.cycle
    assert cycle == ("d", "b", "c", "d")
    assert "add_edge()" in str(info.value) and "d -> b -> c -> d" in str(info.value)
    assert isinstance(info.value, ValueError)
    # nothing was recorded: the graph and its cached order are as before
    assert graph.signature() == signature
    assert graph.get_upstream_columns("b") == {"a"}
    assert graph.get_downstream_columns("d") == set()
    assert graph.get_topological_order() == order
    # consecutive entries are edges (the refused one first), upstream first
    graph.add_edge("a", "c")
    assert graph.get_upstream_columns("c") == {"a", "b"}
    with pytest.raises(DAGCircularDependencyError) as info:
        graph.add_edge("c", "a")
    assert info.value.cycle == ("c", "a", "c")  # the shortest way back
    for up, down in itertools.pairwise(info.value.cycle[1:]):
        assert up in graph.get_upstream_columns(down)


def test_a_refused_edge_leaves_the_graph_usable_by_a_tracker() -> None:
    graph = make_graph([("a", CELL), ("b", CELL)], [("a", "b")])
    with pytest.raises(DAGCircularDependencyError) as info:
        graph.add_edge("b", "a")
    assert info.value.cycle == ("b", "a", "b")
    tracker = CompletionTracker.with_graph(graph, [(0, 1)])
    assert graph.is_frozen
    assert [t.column for t in tracker.seed_frontier().added] == ["a"]


def test_the_internal_cycle_check_still_names_the_columns() -> None:
    graph = make_graph([("a", CELL), ("b", CELL), ("c", CELL)], [("a", "b"), ("b", "c")])
    # bypass add_edge() on purpose: the order computation keeps its own check
    graph._upstream["b"].add("c")
    graph._downstream["c"] = {"b"}
    graph._order = None
    with pytest.raises(DAGCircularDependencyError) as info:
        graph.get_topological_order()
    assert set(info.value.cycle) == {"b", "c"} and info.value.cycle[0] == info.value.cycle[-1]
    with pytest.raises(DAGCircularDependencyError):
        CompletionTracker.with_graph(graph, [(0, 1)])
    assert not graph.is_frozen


def test_set_side_effect_conflicting_producers_are_refused() -> None:
    graph = make_graph([("a", CELL), ("b", CELL)], side_effects=[("x__trace", "a")])
    graph.set_side_effect("x__trace", "a")  # same producer again: fine
    with pytest.raises(GraphError, match="x__trace"):
        graph.set_side_effect("x__trace", "b")
    assert graph.resolve_side_effect("x__trace") == "a"
    assert graph.side_effects == {"x__trace": "a"}


def test_set_side_effect_needs_a_registered_producer() -> None:
    graph = make_graph([("a", CELL)])
    with pytest.raises(GraphError) as info:
        graph.set_side_effect("x__trace", "ghost")
    assert "'x__trace'" in str(info.value) and "'ghost'" in str(info.value)
    assert "set_side_effect()" in str(info.value)
    assert graph.side_effects == {}
    assert graph.resolve_side_effect("x__trace") == "x__trace"
    # the dangling alias never reaches a tracker
    CompletionTracker.with_graph(graph, [(0, 1)])


@pytest.mark.parametrize("producer", [3, None, "", b"a"])
def test_set_side_effect_needs_a_string_producer(producer) -> None:
    graph = make_graph([("a", CELL)])
    with pytest.raises(ColumnNameError) as info:
        graph.set_side_effect("x__trace", producer)
    assert isinstance(info.value, TypeError) and isinstance(info.value, GraphError)
    assert repr(producer) in str(info.value)
    assert graph.side_effects == {}


def test_set_side_effect_alias_equal_to_its_producer_is_refused() -> None:
    graph = make_graph([("a", CELL)])
    with pytest.raises(GraphError, match="'a'"):
        graph.set_side_effect("a", "a")
    assert graph.side_effects == {}


def test_an_alias_equal_to_a_real_column_is_inert() -> None:
    graph = make_graph([("a", CELL), ("b", FULL)])
    graph.set_side_effect("b", "a")  # allowed: configs may declare it before 'b' exists
    assert graph.side_effects == {"b": "a"}
    assert graph.resolve_side_effect("b") == "b"
    late = make_graph([("a", CELL)], side_effects=[("b", "a")])
    late.add_column("b", FULL)  # a later column of the alias's name takes over
    assert late.resolve_side_effect("b") == "b"


def test_resolve_side_effect_prefers_a_real_column() -> None:
    graph = make_graph([("a", CELL), ("shared", CELL)], side_effects=[("shared", "a"), ("a__trace", "a")])
    assert graph.resolve_side_effect("shared") == "shared"
    assert graph.resolve_side_effect("a__trace") == "a"
    assert graph.resolve_side_effect("unknown") == "unknown"


def test_side_effects_property_is_a_copy() -> None:
    graph = make_graph([("a", CELL)], side_effects=[("a__trace", "a")])
    graph.side_effects["evil"] = "a"
    assert graph.side_effects == {"a__trace": "a"}


# -- create() ---------------------------------------------------------------------------------


def test_create_builds_edges_from_configs_and_aliases() -> None:
    configs = [
        Config("topic", side_effect_columns=["topic__trace"]),
        Config("question", ["topic__trace"]),
        Config("answer", ["question", "topic"], ["answer__reasoning_content"]),
        Config("judge", ["answer__reasoning_content"]),
    ]
    graph = ExecutionGraph.create(
        configs, {"topic": FULL, "question": "cell_by_cell", "answer": CELL, "judge": "full_column"}
    )
    assert graph.columns == ["topic", "question", "answer", "judge"]
    assert graph.get_upstream_columns("question") == {"topic"}
    assert graph.get_upstream_columns("answer") == {"question", "topic"}
    assert graph.get_upstream_columns("judge") == {"answer"}
    assert graph.get_strategy("judge") is FULL
    assert graph.side_effects == {"topic__trace": "topic", "answer__reasoning_content": "answer"}


def test_create_accepts_multi_column_configs_and_skip_columns() -> None:
    configs = [
        MultiConfig([Config("a"), Config("b", ["a"])]),
        SkippingConfig("c", ["b"], skip=Skip(["a"])),
    ]
    graph = ExecutionGraph.create(configs, {"a": CELL, "b": CELL, "c": FULL})
    assert graph.columns == ["a", "b", "c"]
    assert graph.get_upstream_columns("b") == {"a"}
    assert graph.get_upstream_columns("c") == {"a", "b"}


def test_create_skips_self_dependencies_directly_or_through_an_alias() -> None:
    configs = [Config("a", ["a", "a__trace"], ["a__trace", "a"])]
    graph = ExecutionGraph.create(configs, {"a": CELL})
    assert graph.get_upstream_columns("a") == set()
    assert graph.get_root_columns() == ["a"]
    assert graph.side_effects == {"a__trace": "a"}  # its own name is not an alias


def test_create_registers_every_column_before_any_alias() -> None:
    configs = [Config("a", side_effect_columns=["later"]), Config("later"), Config("c", ["later"])]
    graph = ExecutionGraph.create(configs, {"a": CELL, "later": FULL, "c": CELL})
    assert graph.side_effects == {"later": "a"}
    assert graph.get_upstream_columns("c") == {"later"}
    with pytest.raises(DuplicateColumnError):  # reported before any alias conflict
        ExecutionGraph.create(
            [Config("a", side_effect_columns=["t"]), Config("b", side_effect_columns=["t"]), Config("a")],
            {"a": CELL, "b": CELL},
        )
    with pytest.raises(GraphError, match="'t'"):
        ExecutionGraph.create(
            [Config("a", side_effect_columns=["t"]), Config("b", side_effect_columns=["t"])],
            {"a": CELL, "b": CELL},
        )


def test_create_real_column_wins_over_an_alias_of_the_same_name() -> None:
    configs = [Config("a", side_effect_columns=["b"]), Config("b"), Config("c", ["b"])]
    graph = ExecutionGraph.create(configs, {"a": CELL, "b": FULL, "c": CELL})
    assert graph.get_upstream_columns("c") == {"b"}


def test_create_unknown_producer_names_both_columns() -> None:
    configs = [Config("a"), Config("b", ["missing__trace"])]
    with pytest.raises(GraphError) as info:
        ExecutionGraph.create(configs, {"a": CELL, "b": CELL})
    assert "'b'" in str(info.value) and "'missing__trace'" in str(info.value)


def test_create_needs_a_strategy_for_every_column() -> None:
    with pytest.raises(GraphError, match="'b'"):
        ExecutionGraph.create([Config("a"), Config("b")], {"a": CELL})


def test_create_rejects_duplicates_and_cycles() -> None:
    with pytest.raises(DuplicateColumnError):
        ExecutionGraph.create([Config("a"), Config("a")], {"a": CELL})
    with pytest.raises(DAGCircularDependencyError) as info:
        ExecutionGraph.create([Config("a", ["b"]), Config("b", ["a"])], {"a": CELL, "b": CELL})
    assert info.value.cycle == ("a", "b", "a")
    assert "create()" in str(info.value) and "'b' requires 'a'" in str(info.value)


def test_create_reports_a_cycle_through_an_alias() -> None:
    configs = [
        Config("a", ["c__trace"]),
        Config("b", ["a"]),
        Config("c", ["b"], ["c__trace"]),
    ]
    with pytest.raises(DAGCircularDependencyError) as info:
        ExecutionGraph.create(configs, {"a": CELL, "b": FULL, "c": CELL})
    assert info.value.cycle == ("b", "c", "a", "b")
    assert "b -> c -> a -> b" in str(info.value)


def test_create_with_no_configs_is_an_empty_graph() -> None:
    graph = ExecutionGraph.create([], {})
    assert graph.columns == []
    assert graph.get_topological_order() == []


# -- queries ----------------------------------------------------------------------------------


def test_upstream_and_downstream_sets_are_copies(diamond) -> None:
    assert diamond.get_upstream_columns("judge") == {"a", "b"}
    assert diamond.get_downstream_columns("seed") == {"a", "b"}
    diamond.get_upstream_columns("judge").add("x")
    diamond.get_downstream_columns("seed").clear()
    assert diamond.get_upstream_columns("judge") == {"a", "b"}
    assert diamond.get_downstream_columns("seed") == {"a", "b"}
    assert diamond.get_upstream_columns("seed") == set()
    assert diamond.get_downstream_columns("final") == set()


@pytest.mark.parametrize(
    "method",
    ["get_strategy", "get_upstream_columns", "get_downstream_columns", "split_upstream_by_strategy"],
)
def test_queries_on_unknown_columns_raise(diamond, method) -> None:
    with pytest.raises(UnknownColumnError, match="'ghost'"):
        getattr(diamond, method)("ghost")
    with pytest.raises(KeyError):
        getattr(diamond, method)("ghost")


def test_root_columns_in_topological_order() -> None:
    graph = make_graph([("z", CELL), ("m", FULL), ("a", CELL)], [("z", "a")])
    assert graph.get_root_columns() == ["z", "m"]


def test_split_upstream_by_strategy(diamond) -> None:
    assert diamond.split_upstream_by_strategy("judge") == ([], ["a", "b"])
    assert diamond.split_upstream_by_strategy("a") == (["seed"], [])
    assert diamond.split_upstream_by_strategy("seed") == ([], [])
    graph = make_graph(
        [("c1", CELL), ("f1", FULL), ("c2", CELL), ("f2", FULL), ("x", CELL)],
        [("c1", "x"), ("f1", "x"), ("c2", "x"), ("f2", "x")],
    )
    assert graph.split_upstream_by_strategy("x") == (["f1", "f2"], ["c1", "c2"])


def test_topological_order_is_deterministic_with_insertion_order_ties() -> None:
    graph = make_graph([("d", CELL), ("c", CELL), ("b", CELL), ("a", CELL)], [("c", "a"), ("d", "b")])
    assert graph.get_topological_order() == ["d", "c", "b", "a"]
    graph2 = make_graph([("a", CELL), ("b", CELL), ("c", CELL)], [("c", "a")])
    assert graph2.get_topological_order() == ["b", "c", "a"]


def test_topological_order_cache_cannot_be_corrupted(diamond) -> None:
    order = diamond.get_topological_order()
    order.reverse()
    order.append("evil")
    assert diamond.get_topological_order() == ["seed", "a", "b", "judge", "final"]
    roots = diamond.get_root_columns()
    roots.clear()
    assert diamond.get_root_columns() == ["seed"]


def test_topological_order_cache_is_invalidated_by_changes() -> None:
    graph = make_graph([("a", CELL), ("b", CELL)])
    assert graph.get_topological_order() == ["a", "b"]
    graph.add_edge("b", "a")
    assert graph.get_topological_order() == ["b", "a"]
    graph.add_column("c", FULL)
    assert graph.get_topological_order() == ["b", "a", "c"]


def test_longest_dependency_chain() -> None:
    assert ExecutionGraph().get_longest_dependency_chain() == []
    assert make_graph([("a", CELL)]).get_longest_dependency_chain() == ["a"]
    graph = make_graph(
        [("a", CELL), ("b", CELL), ("c", FULL), ("d", CELL), ("e", CELL)],
        [("a", "b"), ("b", "c"), ("a", "d"), ("d", "e"), ("c", "e")],
    )
    assert graph.get_longest_dependency_chain() == ["a", "b", "c", "e"]


def test_compute_task_count() -> None:
    graph = make_graph([("a", CELL), ("b", FULL)], [("a", "b")])
    assert graph.compute_task_count(2_500, 1_000) == {"a": 2_500, "b": 3}
    assert graph.compute_task_count(0, 10) == {"a": 0, "b": 0}
    assert graph.compute_task_count(10, 10) == {"a": 10, "b": 1}
    assert ExecutionGraph().compute_task_count(5, 2) == {}


@pytest.mark.parametrize(
    ("num_records", "buffer_size"), [(-1, 10), (10, 0), (10, -2), (1.5, 2), (True, 2), (10, None)]
)
def test_compute_task_count_refuses_bad_arguments(num_records, buffer_size) -> None:
    with pytest.raises(ValueError) as info:
        make_graph([("a", CELL)]).compute_task_count(num_records, buffer_size)
    assert isinstance(info.value, CellFrontierError)
    assert "compute_task_count()" in str(info.value)


def test_compute_task_count_accepts_numpy_integers() -> None:
    graph = make_graph([("a", CELL), ("b", FULL)], [("a", "b")])
    counts = graph.compute_task_count(np.int64(10), np.int32(3))
    assert counts == {"a": 10, "b": 4}
    assert all(type(v) is int for v in counts.values())
    assert graph.compute_task_count(10**20 + 1, 10**20) == {"a": 10**20 + 1, "b": 2}


@pytest.mark.parametrize(
    ("num_records", "buffer_size", "error", "text"),
    [
        (True, 2, CountTypeError, "integer num_records, got bool True"),
        (np.bool_(True), 2, CountTypeError, "integer num_records"),
        (1.5, 2, CountTypeError, "integer num_records, got float 1.5"),
        (np.float64(4.0), 2, CountTypeError, "integer num_records"),
        (10, "3", CountTypeError, "integer buffer_size, got str '3'"),
        (np.int64(-1), 2, InvalidArgumentError, "num_records >= 0, got np.int64(-1)"),
        (10, np.int8(0), InvalidArgumentError, "buffer_size >= 1, got np.int8(0)"),
    ],
)
def test_compute_task_count_errors(num_records, buffer_size, error, text) -> None:
    with pytest.raises(error, match=r"^compute_task_count\(\) needs ") as info:
        make_graph([("a", CELL)]).compute_task_count(num_records, buffer_size)
    assert text in str(info.value)
    if error is CountTypeError:
        assert isinstance(info.value, IndexTypeError) and isinstance(info.value, ValueError)


def test_compute_cell_dependencies(diamond) -> None:
    assert diamond.compute_cell_dependencies("seed", 3, None, 4) == []
    assert diamond.compute_cell_dependencies("a", 3, 2, 4) == [SliceRef("seed", 3, None)]
    assert diamond.compute_cell_dependencies("judge", 3, None, 2) == [
        SliceRef("a", 3, 0),
        SliceRef("a", 3, 1),
        SliceRef("b", 3, 0),
        SliceRef("b", 3, 1),
    ]
    assert diamond.compute_cell_dependencies("final", 0, 1, 2) == [SliceRef("judge", 0, None)]
    mixed = make_graph([("f", FULL), ("c", CELL), ("x", CELL)], [("f", "x"), ("c", "x")])
    assert mixed.compute_cell_dependencies("x", 1, 0, 5) == [SliceRef("f", 1, None), SliceRef("c", 1, 0)]


def test_compute_cell_dependencies_refuses_bad_input(diamond) -> None:
    with pytest.raises(UnknownColumnError):
        diamond.compute_cell_dependencies("ghost", 0, 0, 1)
    with pytest.raises(ValueError, match="outside"):
        diamond.compute_cell_dependencies("a", 0, 4, 4)
    with pytest.raises(ValueError, match="outside"):
        diamond.compute_cell_dependencies("a", 0, -1, 4)


def test_compute_cell_dependencies_accepts_numpy_integers(diamond) -> None:
    refs = diamond.compute_cell_dependencies("judge", np.int64(3), None, np.int32(2))
    assert refs == [SliceRef("a", 3, 0), SliceRef("a", 3, 1), SliceRef("b", 3, 0), SliceRef("b", 3, 1)]
    assert all(type(r.row_group) is int for r in refs)
    cell = make_graph([("c", CELL), ("x", CELL)], [("c", "x")])
    (ref,) = cell.compute_cell_dependencies("x", np.uint16(1), np.int64(4), 5)
    assert ref == SliceRef("c", 1, 4) and type(ref.row_index) is int
    assert cell.compute_cell_dependencies("x", -7, 0, 1) == [SliceRef("c", -7, 0)]  # ids may be negative
    assert cell.compute_cell_dependencies("x", 0, None, 0) == []


@pytest.mark.parametrize(
    ("args", "error", "text"),
    [
        ((0, True, 4), IndexTypeError, "integer row_index, got bool True"),
        ((0, 1.5, 4), IndexTypeError, "integer row_index, got float 1.5"),
        ((0, "1", 4), IndexTypeError, "integer row_index, got str '1'"),
        ((0, np.bool_(False), 4), IndexTypeError, "integer row_index"),
        (("0", 1, 4), IndexTypeError, "integer row_group, got str '0'"),
        ((False, 1, 4), IndexTypeError, "integer row_group, got bool False"),
        ((0.0, None, 4), IndexTypeError, "integer row_group, got float 0.0"),
        ((0, 1, 4.0), IndexTypeError, "integer row_group_size, got float 4.0"),
        ((0, None, None), IndexTypeError, "integer row_group_size, got NoneType None"),
        ((0, None, -1), InvalidArgumentError, "row_group_size >= 0, got -1"),
        ((0, 0, -3), InvalidArgumentError, "row_group_size >= 0, got -3"),
        ((0, None, 2**31), InvalidArgumentError, "row_group_size < 2**31"),
        ((0, 4, 4), RowIndexError, "row_index 4 outside 0 <= row_index < 4"),
        ((0, np.int64(-1), 4), RowIndexError, "row_index -1 outside"),
        ((0, 0, 0), RowIndexError, "row_index 0 outside 0 <= row_index < 0"),
    ],
)
def test_compute_cell_dependencies_validates_every_argument(args, error, text) -> None:
    graph = make_graph([("c", CELL), ("x", CELL)], [("c", "x")])
    with pytest.raises(error, match=r"^compute_cell_dependencies\(\) ") as info:
        graph.compute_cell_dependencies("x", *args)
    assert text in str(info.value)
    assert isinstance(info.value, CellFrontierError)


def test_to_mermaid() -> None:
    graph = make_graph(
        [("topic", FULL), ('say "hi"', CELL)],
        [("topic", 'say "hi"')],
        side_effects=[("topic__trace", "topic")],
    )
    assert graph.to_mermaid().splitlines() == [
        "flowchart TD",
        '    c0["topic (full_column)"]',
        '    c1("say #quot;hi#quot; (cell_by_cell)")',
        "    c0 --> c1",
        '    c0 -.-> s0["topic__trace"]',
    ]
    assert ExecutionGraph().to_mermaid() == "flowchart TD"


# -- compilation and freezing -------------------------------------------------------------------


def test_compile_numbers_columns_in_topological_order(diamond) -> None:
    compiled = diamond.compile()
    assert compiled.names == ("seed", "a", "b", "judge", "final")
    assert compiled.num_columns == 5
    assert compiled.is_batch.tolist() == [1, 0, 0, 1, 0]
    assert compiled.is_root.tolist() == [1, 0, 0, 0, 0]
    down = [compiled.down_idx[compiled.down_ptr[c] : compiled.down_ptr[c + 1]].tolist() for c in range(5)]
    assert down == [[1, 2], [3], [3], [4], []]
    cell_up = [
        compiled.cell_up_idx[compiled.cell_up_ptr[c] : compiled.cell_up_ptr[c + 1]].tolist() for c in range(5)
    ]
    batch_up = [
        compiled.batch_up_idx[compiled.batch_up_ptr[c] : compiled.batch_up_ptr[c + 1]].tolist()
        for c in range(5)
    ]
    assert cell_up == [[], [], [], [1, 2], []]
    assert batch_up == [[], [0], [0], [], [3]]
    assert diamond.compile() is compiled


def test_graph_is_frozen_once_a_tracker_uses_it(diamond) -> None:
    assert not diamond.is_frozen
    CompletionTracker.with_graph(diamond, [(0, 2)])
    assert diamond.is_frozen
    with pytest.raises(GraphFrozenError):
        diamond.add_column("late", CELL)
    with pytest.raises(GraphFrozenError):
        diamond.add_edge("a", "final")
    with pytest.raises(GraphFrozenError):
        diamond.set_side_effect("a__trace", "a")
    with pytest.raises(RuntimeError):
        diamond.add_column("late", CELL)
    assert diamond.columns == ["seed", "a", "b", "judge", "final"]
    assert diamond.get_upstream_columns("final") == {"judge"}
    assert diamond.side_effects == {}
    # queries keep working, and a second tracker can share the frozen graph
    assert diamond.get_topological_order()[0] == "seed"
    CompletionTracker.with_graph(diamond, [(0, 2)])


def test_with_graph_needs_an_execution_graph() -> None:
    with pytest.raises(TypeError):
        CompletionTracker.with_graph(object(), [(0, 1)])


def test_signature_round_trip(diamond) -> None:
    diamond.set_side_effect("a__trace", "a")
    rebuilt = ExecutionGraph.from_signature(diamond.signature())
    assert rebuilt.signature() == diamond.signature()
    assert rebuilt.get_topological_order() == diamond.get_topological_order()
    assert repr(rebuilt) == "ExecutionGraph(columns=['seed', 'a', 'b', 'judge', 'final'])"
