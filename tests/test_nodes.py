"""The node view: API contracts, errors, trait inference, binding, memory and equivalence.

Two hypothesis properties pin the semantics down: the core-backed answers equal the node
model's definition (a node is ready when it is not done and every dependency is), and they
equal the main tracker's answers over the plain column graph with one row group.
"""

from __future__ import annotations

import abc
import functools
import gc
import sys
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_support import allocated_bytes

import cellfrontier
from cellfrontier.errors import (
    DAGCircularDependencyError,
    DuplicateColumnError,
    GraphError,
    IndexTypeError,
    RowIndexError,
    SizeMismatchError,
    UnknownColumnError,
)
from cellfrontier.nodes import (
    BarrierNodeId,
    CellNodeId,
    ColumnDescriptor,
    CompletionTracker,
    ExecutionGraph,
    ExecutionTraits,
    GraphBuilder,
    NodeId,
    infer_traits,
)
from cellfrontier.strategies import GenerationStrategy
from cellfrontier.tasks import SliceRef

T = ExecutionTraits
CELL = T.CELL_BY_CELL | T.ROW_STREAMABLE


def desc(
    name: str, traits: ExecutionTraits = CELL, deps: list[str] | None = None, **kw: Any
) -> ColumnDescriptor:
    return ColumnDescriptor(name, traits=traits, dependencies=deps or [], **kw)


def diamond(num_records: int = 4) -> ExecutionGraph:
    """a (start) -> b, c (barrier) -> d (barrier, reads b and c) -> e."""
    return ExecutionGraph(
        num_records,
        [
            desc("a", T.START | CELL),
            desc("b", CELL, ["a"]),
            desc("c", T.BARRIER, ["a"]),
            desc("d", T.BARRIER, ["b", "c"]),
            desc("e", CELL, ["d"]),
        ],
    )


def ready_by_definition(graph: ExecutionGraph, tracker: CompletionTracker) -> list[NodeId]:
    return [
        node
        for node in graph.iter_nodes()
        if node not in tracker and all(dep in tracker for dep in graph.get_dependencies(node))
    ]


# -- node ids, traits, descriptors -----------------------------------------------------------


def test_node_ids_are_frozen_slotted_value_types() -> None:
    cell = CellNodeId(3, "x")
    assert cell == CellNodeId(row=3, column="x") and hash(cell) == hash(CellNodeId(3, "x"))
    assert cell != CellNodeId(4, "x") and BarrierNodeId("x") != CellNodeId(0, "x")
    assert not hasattr(cell, "__dict__") and not hasattr(BarrierNodeId("x"), "__dict__")
    with pytest.raises(AttributeError):
        cell.row = 4  # type: ignore[misc]
    assert repr(cell) == "Cell(3, 'x')" and str(BarrierNodeId("v")) == "Barrier('v')"


def test_traits_spell_combinations_the_same_on_every_python() -> None:
    assert str(T.ROW_STREAMABLE | T.START) == "ExecutionTraits.START|ROW_STREAMABLE"
    assert str(T.NONE) == "ExecutionTraits.NONE"
    assert [t.value for t in T if t != T.NONE] == [1, 2, 4, 8]


def test_descriptor_copies_and_validates_its_lists() -> None:
    deps = ["a"]
    d = ColumnDescriptor("b", traits=2, dependencies=deps)  # type: ignore[arg-type]
    deps.append("z")
    assert d.dependencies == ["a"] and d.traits is T.CELL_BY_CELL
    assert d.is_cell_by_cell and not d.is_row_streamable and d.has_dependencies
    with pytest.raises(GraphError, match="non-empty string name"):
        ColumnDescriptor("")
    with pytest.raises(GraphError, match="dependencies as column names"):
        ColumnDescriptor("b", dependencies="a")  # type: ignore[arg-type]


# -- the graph -------------------------------------------------------------------------------


def test_graph_orders_columns_and_counts_nodes() -> None:
    g = ExecutionGraph(10, [desc("e", CELL, ["d"]), desc("d", T.BARRIER, ["a"]), desc("a", T.START | CELL)])
    assert g.column_names == ["a", "d", "e"]
    assert g.num_nodes == 31 and g.num_columns == 3 and g.start_columns == ["a"]
    assert len(list(g.iter_nodes())) == g.num_nodes


def test_graph_rejects_malformed_input() -> None:
    with pytest.raises(DuplicateColumnError):
        ExecutionGraph(1, [desc("a"), desc("a")])
    with pytest.raises(GraphError, match="'zz'"):
        ExecutionGraph(1, [desc("a", CELL, ["zz"])])
    with pytest.raises(DAGCircularDependencyError) as info:
        ExecutionGraph(1, [desc("a", CELL, ["b"]), desc("b", CELL, ["a"])])
    assert set(info.value.cycle) == {"a", "b"}
    with pytest.raises(GraphError, match="start column 'b'"):
        ExecutionGraph(1, [desc("a"), desc("b", T.START | CELL, ["a"])])
    with pytest.raises(ValueError, match="num_records >= 1"):
        ExecutionGraph(0, [desc("a")])
    with pytest.raises(IndexTypeError):
        ExecutionGraph(True, [desc("a")])


def test_side_effect_names_resolve_to_their_producer() -> None:
    g = ExecutionGraph(2, [desc("a", CELL, side_effects=["a__trace"]), desc("b", CELL, ["a__trace", "a"])])
    assert g.get_dependencies(CellNodeId(1, "b")) == [CellNodeId(1, "a")]
    assert g.get_dependents(CellNodeId(1, "a")) == [CellNodeId(1, "b")]


def test_dependencies_and_dependents_are_inverse() -> None:
    g = diamond(3)
    for node in g.iter_nodes():
        for dep in g.get_dependencies(node):
            assert node in g.get_dependents(dep)
        for down in g.get_dependents(node):
            assert node in g.get_dependencies(down)
    assert g.get_dependents(CellNodeId(0, "a")) == [CellNodeId(0, "b"), BarrierNodeId("c")]
    assert g.get_dependencies(BarrierNodeId("d"))[:4] == [CellNodeId(r, "b") for r in range(3)] + [
        CellNodeId(0, "c")
    ]


def test_start_nodes_include_a_root_barrier() -> None:
    g = ExecutionGraph(3, [desc("s", T.START | T.BARRIER), desc("x", CELL)])
    assert list(g.iter_start_nodes()) == [BarrierNodeId("s"), *(CellNodeId(r, "x") for r in range(3))]


def test_node_queries_validate() -> None:
    g = diamond()
    with pytest.raises(UnknownColumnError):
        g.get_dependencies(CellNodeId(0, "nope"))
    with pytest.raises(RowIndexError, match=r"outside 0\.\.3"):
        g.get_dependents(CellNodeId(4, "a"))
    with pytest.raises(GraphError, match="not a barrier column"):
        g.get_dependencies(BarrierNodeId("b"))
    with pytest.raises(TypeError):
        g.get_dependencies(("a", 0))  # type: ignore[arg-type]
    with pytest.raises(UnknownColumnError):
        g.get_column_descriptor("nope")


def test_graph_hands_out_copies() -> None:
    g = diamond()
    d = g.get_column_descriptor("b")
    d.dependencies.append("c")
    assert g.get_column_descriptor("b").dependencies == ["a"]
    assert g.get_dependencies(CellNodeId(0, "b")) == [CellNodeId(0, "a")]


def test_generator_and_config_come_from_the_descriptor() -> None:
    class Gen:
        pass

    g = ExecutionGraph(2, [ColumnDescriptor("a", {"k": 1}, Gen, T.BARRIER)])
    assert g.get_generator_and_config(BarrierNodeId("a")) == (Gen, {"k": 1})
    assert g.get_generator_and_config(CellNodeId(1, "a")) == (Gen, {"k": 1})


def test_column_graph_and_core_graph() -> None:
    g = diamond()
    plain = g.to_column_graph()
    assert plain.get_strategy("c") is GenerationStrategy.FULL_COLUMN
    assert plain.get_upstream_columns("d") == {"b", "c"}
    assert g.to_column_graph() is not plain
    core = g.core_graph()
    barrier = g.barrier_column_name("c")
    assert core.get_strategy(barrier) is GenerationStrategy.FULL_COLUMN
    assert core.get_strategy("c") is GenerationStrategy.CELL_BY_CELL
    assert core.get_upstream_columns("c") == {barrier}
    assert core.get_upstream_columns(g.barrier_column_name("d")) == {"b", "c"}
    with pytest.raises(GraphError):
        g.barrier_column_name("b")


def test_barrier_core_name_never_collides() -> None:
    g = ExecutionGraph(1, [desc("v[barrier]"), desc("v", T.BARRIER, ["v[barrier]"])])
    assert g.barrier_column_name("v") not in g.column_names
    t = g.create_tracker()
    t.mark_complete(CellNodeId(0, "v[barrier]"))
    assert list(g.iter_ready_nodes(t)) == [BarrierNodeId("v")]


# -- the tracker -----------------------------------------------------------------------------


def test_tracker_before_and_after_binding_agree() -> None:
    g = diamond(70)  # more than one 64-bit word per column
    t = CompletionTracker(70)
    for r in (0, 63, 64, 69, 63):
        t.mark_complete(CellNodeId(r, "a"))
    t.mark_complete(BarrierNodeId("c"))
    before = (len(t), t.column_completion_count("a"), CellNodeId(64, "a") in t, BarrierNodeId("c") in t)
    assert t.graph is None and t.backend is None and before == (5, 4, True, True)
    ready = list(g.iter_ready_nodes(t))
    assert t.graph is g and t.backend is not None
    assert (
        len(t),
        t.column_completion_count("a"),
        CellNodeId(64, "a") in t,
        BarrierNodeId("c") in t,
    ) == before
    assert ready == ready_by_definition(g, t)
    assert ready[:4] == [CellNodeId(r, "a") for r in (1, 2, 3, 4)]


def test_unbound_marks_live_in_main_tracker_bitmaps() -> None:
    n, step = 200_000, 10
    t = CompletionTracker(n)
    gc.collect()
    blocks = sys.getallocatedblocks()
    for r in range(0, n, step):
        t.mark_complete(CellNodeId(r, "a"))
    t.mark_complete(BarrierNodeId("v"))
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 1_000  # a few objects per column, none per node
    assert t.nbytes < 2 * n  # the core's arrays: under 8 bits per row of each staged column
    assert len(t) == n // step + 1 and t.column_completion_count("a") == n // step


def test_unknown_columns_before_and_after_binding() -> None:
    g = diamond(2)
    t = CompletionTracker(2)
    # Unbound, the tracker cannot tell a column still to come from a misspelt one.
    assert t.column_completion_count("nope") == 0 and not t.is_column_complete("nope")
    assert CellNodeId(0, "nope") not in t and BarrierNodeId("nope") not in t
    with pytest.raises(UnknownColumnError):
        t.column_completion_count("")
    g.is_complete(t)
    for query in (t.column_completion_count, t.is_column_complete):
        with pytest.raises(UnknownColumnError, match="'nope'"):
            query("nope")
    assert CellNodeId(0, "nope") not in t and BarrierNodeId("nope") not in t
    # A tracker given its graph knows its columns from the first call.
    with pytest.raises(UnknownColumnError, match="'nope'"):
        CompletionTracker(2, graph=g).is_column_complete("nope")


def test_marking_is_idempotent_and_does_not_check_readiness() -> None:
    g = diamond(2)
    t = g.create_tracker()
    t.mark_complete(CellNodeId(1, "e"))
    t.mark_complete(CellNodeId(1, "e"))
    t.mark_complete(BarrierNodeId("d"))
    t.mark_complete(BarrierNodeId("d"))
    assert len(t) == 2 and t.column_completion_count("e") == 1 and t.column_completion_count("d") == 0
    assert CellNodeId(0, "e") not in ready_by_definition(g, t)  # still needs d's output cell
    assert list(g.iter_ready_nodes(t)) == ready_by_definition(g, t)


def test_tracker_errors_name_the_problem() -> None:
    g = diamond(2)
    t = CompletionTracker(2)
    with pytest.raises(RowIndexError, match=r"outside 0\.\.1"):
        t.mark_complete(CellNodeId(2, "a"))
    with pytest.raises(IndexTypeError):
        t.mark_complete(CellNodeId(True, "a"))
    with pytest.raises(TypeError):
        t.mark_complete("a")  # type: ignore[arg-type]
    t.mark_complete(CellNodeId(0, "ghost"))
    with pytest.raises(UnknownColumnError, match="ghost"):
        g.iter_ready_nodes(t).__next__()
    assert t.backend is None and len(t) == 1 and CellNodeId(0, "ghost") in t  # a failed bind changes nothing
    bound = g.create_tracker()
    with pytest.raises(UnknownColumnError):
        bound.mark_complete(CellNodeId(0, "ghost"))
    with pytest.raises(GraphError, match="not a barrier column"):
        bound.mark_complete(BarrierNodeId("a"))
    with pytest.raises(UnknownColumnError):
        bound.column_completion_count("ghost")
    assert CellNodeId(0, "ghost") not in bound and BarrierNodeId("a") not in bound and "x" not in bound
    assert len(bound) == 0


def test_staged_barrier_on_a_non_barrier_column_fails_at_binding() -> None:
    t = CompletionTracker(2)
    t.mark_complete(BarrierNodeId("a"))
    with pytest.raises(GraphError, match="not a barrier column"):
        diamond(2).is_complete(t)


def test_tracker_serves_one_graph_structure() -> None:
    t = CompletionTracker(4)
    assert not diamond(4).is_complete(t)
    assert not diamond(4).is_complete(t)  # an equal graph is fine
    with pytest.raises(GraphError, match="another graph"):
        ExecutionGraph(4, [desc("a")]).is_complete(t)
    with pytest.raises(SizeMismatchError):
        diamond(5).is_complete(CompletionTracker(4))
    with pytest.raises(TypeError):
        diamond(4).is_complete(cellfrontier.CompletionTracker())  # type: ignore[arg-type]


def test_backend_is_the_main_tracker_over_one_row_group() -> None:
    g = diamond(3)
    t = g.create_tracker()
    backend = t.backend
    assert isinstance(backend, cellfrontier.CompletionTracker)
    assert list(backend.row_group_plan) == [(0, 3)]
    t.mark_complete(CellNodeId(2, "a"))
    assert backend.is_complete(SliceRef("a", 0, 2))
    backend.mark_cells_complete("a", 0, [0, 1])  # the bulk path shows in the node view
    assert t.is_column_complete("a") and BarrierNodeId("c") in list(g.iter_ready_nodes(t))


def test_ready_iteration_reads_each_column_when_reached() -> None:
    g = ExecutionGraph(2, [desc("a", T.START | CELL), desc("b", CELL, ["a"])])
    t = g.create_tracker()
    seen = []
    for node in g.iter_ready_nodes(t):
        seen.append(node)
        t.mark_complete(node)
    assert seen == [CellNodeId(0, "a"), CellNodeId(1, "a"), CellNodeId(0, "b"), CellNodeId(1, "b")]
    assert g.is_complete(t)


# -- memory ----------------------------------------------------------------------------------


def _allocated(fn: Any) -> tuple[Any, int]:
    result, size, _ = allocated_bytes(fn)
    return result, size


def test_graph_memory_does_not_grow_with_records() -> None:
    descs = [desc(f"c{i}", T.BARRIER if i % 3 == 2 else CELL, [f"c{i - 1}"] if i else []) for i in range(10)]
    _, small_bytes = _allocated(lambda: ExecutionGraph(10, descs))
    large, large_bytes = _allocated(lambda: ExecutionGraph(1_000_000, descs))
    assert large.num_nodes == 10_000_003
    assert large_bytes < 64 * 1024
    assert abs(large_bytes - small_bytes) < 4 * 1024
    start, start_bytes = _allocated(lambda: list(islice(large.iter_start_nodes(), 5)))
    assert start == [CellNodeId(r, "c0") for r in range(5)] and start_bytes < 16 * 1024


def test_tracker_holds_bits_not_objects_per_node() -> None:
    n = 1_000_000
    g = ExecutionGraph(n, [desc("a", T.START | CELL), desc("b", CELL, ["a"]), desc("v", T.BARRIER, ["b"])])
    gc.collect()
    blocks = sys.getallocatedblocks()
    t = g.create_tracker()
    assert next(g.iter_ready_nodes(t)) == CellNodeId(0, "a")
    t.backend.mark_cells_complete("a", 0, np.arange(n))  # type: ignore[union-attr]
    t.mark_complete(CellNodeId(7, "b"))
    assert t.column_completion_count("a") == n and len(t) == n + 1
    assert next(g.iter_ready_nodes(t)) == CellNodeId(0, "b")
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 1_000  # a few objects in all, none per node
    assert t.nbytes < g.num_nodes // 2  # the core's bitmaps: under 4 bits per node


# -- equivalence properties ------------------------------------------------------------------


@st.composite
def node_graphs(draw: st.DrawFn) -> ExecutionGraph:
    """A random DAG of 1-6 columns, some barriers, given in a shuffled order."""
    n = draw(st.integers(1, 6))
    records = draw(st.sampled_from([1, 2, 3, 5, 64, 65, 70]))
    descs = []
    for i in range(n):
        deps = draw(st.lists(st.sampled_from([f"c{j}" for j in range(i)]), unique=True)) if i else []
        traits = T.BARRIER if draw(st.booleans()) else CELL
        if not deps and draw(st.booleans()):
            traits |= T.START
        descs.append(desc(f"c{i}", traits, deps))
    return ExecutionGraph(records, draw(st.permutations(descs)))


steps = st.lists(
    st.tuples(st.sampled_from(["ready", "any", "all_ready"]), st.integers(0, 10**6)), max_size=25
)


@settings(max_examples=100, deadline=None)
@given(graph=node_graphs(), staged=st.lists(st.integers(0, 10**6), max_size=6), plan=steps)
def test_ready_nodes_match_the_node_definition(graph: ExecutionGraph, staged: list[int], plan: list) -> None:
    nodes = list(graph.iter_nodes())
    tracker = CompletionTracker(graph.num_records)
    done: set[NodeId] = set()
    for i in staged:
        tracker.mark_complete(nodes[i % len(nodes)])
        done.add(nodes[i % len(nodes)])
    for kind, i in [*plan, ("check", 0)]:
        ready = list(graph.iter_ready_nodes(tracker))
        assert ready == ready_by_definition(graph, tracker)
        assert len(tracker) == len(done) and all((node in tracker) == (node in done) for node in nodes)
        for name in graph.column_names:
            count = sum(1 for node in done if isinstance(node, CellNodeId) and node.column == name)
            assert tracker.column_completion_count(name) == count
            assert tracker.is_column_complete(name) == (count == graph.num_records)
        assert graph.is_complete(tracker) == (len(done) == graph.num_nodes)
        if kind == "ready" and ready:
            picked = [ready[i % len(ready)]]
        elif kind == "all_ready":
            picked = ready
        else:
            picked = [nodes[i % len(nodes)]]
        for node in picked if kind != "check" else []:
            tracker.mark_complete(node)
            done.add(node)


def _main_ready(main: cellfrontier.CompletionTracker) -> set[NodeId]:
    return {
        BarrierNodeId(t.column) if t.row_index is None else CellNodeId(t.row_index, t.column)
        for t in main.ready_frontier()
    }


@settings(max_examples=100, deadline=None)
@given(graph=node_graphs(), plan=steps, data=st.data())
def test_readiness_matches_the_main_tracker(graph: ExecutionGraph, plan: list, data: st.DataObject) -> None:
    n = graph.num_records
    main = cellfrontier.CompletionTracker.with_graph(graph.to_column_graph(), [(0, n)])
    main.seed_frontier()
    view = graph.create_tracker()
    barrier = {name: graph.get_column_descriptor(name).is_barrier for name in graph.column_names}
    tasks = [
        BarrierNodeId(c) if barrier[c] else CellNodeId(r, c) for c in graph.column_names for r in range(n)
    ]
    tasks = list(dict.fromkeys(tasks))

    def complete(node: NodeId) -> None:
        if isinstance(node, BarrierNodeId):
            main.mark_row_range_complete(node.column, 0, n)
            view.mark_complete(node)  # the main model's batch = the barrier and all its output cells
            for row in data.draw(st.permutations(range(n))):
                view.mark_complete(CellNodeId(row, node.column))
        else:
            main.mark_cell_complete(node.column, 0, node.row)
            view.mark_complete(node)

    for kind, i in [*plan, ("check", 0)]:
        expected = _main_ready(main)
        assert set(graph.iter_ready_nodes(view)) == expected
        for name in graph.column_names:
            assert view.is_column_complete(name) == main.is_column_complete_for_rg(name, 0)
        if kind == "check":
            break
        if kind == "any":
            complete(tasks[i % len(tasks)])
        else:
            ordered = sorted(expected, key=repr)
            for node in ordered if kind == "all_ready" else ordered[i % max(len(ordered), 1) :][:1]:
                complete(node)
    assert graph.is_complete(view) == main.is_row_group_complete(0, n, graph.column_names)


@settings(max_examples=100, deadline=None)
@given(graph=node_graphs(), picks=st.lists(st.integers(0, 10**6), max_size=20))
def test_unbound_answers_survive_binding(graph: ExecutionGraph, picks: list[int]) -> None:
    nodes = list(graph.iter_nodes())
    staged, bound = CompletionTracker(graph.num_records), graph.create_tracker()
    for i in picks:
        staged.mark_complete(nodes[i % len(nodes)])
        bound.mark_complete(nodes[i % len(nodes)])

    def answers(t: CompletionTracker) -> tuple[Any, ...]:
        return (
            len(t),
            [node in t for node in nodes],
            [(t.column_completion_count(c), t.is_column_complete(c)) for c in graph.column_names],
        )

    before = answers(staged)
    assert before == answers(bound)
    staged.bind(graph)
    assert staged.backend is not None and answers(staged) == before
    assert list(graph.iter_ready_nodes(staged)) == list(graph.iter_ready_nodes(bound))


# -- building from configs -------------------------------------------------------------------


@dataclass
class Col:
    name: str
    required_columns: list[str] = field(default_factory=list)
    side_effect_columns: list[str] = field(default_factory=list)
    generation_strategy: str | None = None


@dataclass
class Multi:
    columns: list[Col]


@dataclass
class Cfg:
    columns: list[Any]


class Scratch:
    """Class attributes: a start column that streams rows."""

    can_generate_from_scratch = True
    is_row_streamable = True

    @staticmethod
    def get_generation_strategy() -> str:
        return "full_column"


class Cellwise:
    """A property and a classmethod."""

    @property
    def can_generate_from_scratch(self) -> bool:
        return False

    @classmethod
    def get_generation_strategy(cls) -> GenerationStrategy:
        return GenerationStrategy.CELL_BY_CELL


class WholeBatch(abc.ABC):
    """Abstract, with a property strategy: a barrier."""

    @property
    def generation_strategy(self) -> str:
        return "FULL_COLUMN"

    @abc.abstractmethod
    def generate(self) -> None: ...


class PerConfig:
    """A strategy that needs the configured generator: read from the column config instead."""

    def get_generation_strategy(self) -> str:
        return self.config.generation_strategy  # type: ignore[attr-defined]


class Cached:
    """A cached property is read like a plain one."""

    @functools.cached_property
    def generation_strategy(self) -> str:
        return "cell_by_cell"


class Silent:
    """Declares nothing: treated as full-column, so a barrier."""


class FromScratch:
    """A full-column start generator that says nothing about streaming rows."""

    @property
    def can_generate_from_scratch(self) -> bool:
        return True

    @staticmethod
    def get_generation_strategy() -> GenerationStrategy:
        return GenerationStrategy.FULL_COLUMN


class FromScratchBatch(FromScratch):
    """The same, declaring that it needs the whole batch."""

    is_row_streamable = False


@dataclass
class StreamableCol(Col):
    """A column config that carries ``is_row_streamable`` itself."""

    is_row_streamable: bool | None = None


def test_infer_traits_reads_properties_not_names() -> None:
    assert infer_traits(Scratch) == T.START | T.ROW_STREAMABLE
    assert infer_traits(Scratch, has_dependencies=True) == T.ROW_STREAMABLE
    assert infer_traits(Cellwise) == CELL
    assert infer_traits(WholeBatch) == T.BARRIER
    assert infer_traits(PerConfig, Col("x", generation_strategy="cell_by_cell")) == CELL
    assert infer_traits(Cached) == CELL
    assert infer_traits(Silent) == T.BARRIER
    renamed = type("SamplerColumnGenerator", (Silent,), {})
    assert infer_traits(renamed) == T.BARRIER


def test_a_start_column_streams_unless_it_says_otherwise() -> None:
    # No inputs, nothing to wait for: a barrier node would add nothing.
    assert infer_traits(FromScratch) == T.START | T.ROW_STREAMABLE
    assert infer_traits(FromScratchBatch) == T.START | T.BARRIER
    # With dependencies it is no start column, and the full-column default stands.
    assert infer_traits(FromScratch, has_dependencies=True) == T.BARRIER
    # Only what the generator declares counts, never its name.
    assert infer_traits(type("ValidationColumnGenerator", (FromScratch,), {})) == T.START | T.ROW_STREAMABLE
    # The column config answers what the generator class does not.
    assert infer_traits(FromScratch, StreamableCol("s", is_row_streamable=False)) == T.START | T.BARRIER
    assert infer_traits(Silent, StreamableCol("s", is_row_streamable=True)) == T.ROW_STREAMABLE
    graph = GraphBuilder({Col: FromScratch}).build(Cfg([Col("s"), Col("t", ["s"])]), num_records=4)
    assert [graph.get_column_descriptor(c).traits for c in graph.column_names] == [
        T.START | T.ROW_STREAMABLE,
        T.BARRIER,
    ]
    assert graph.num_nodes == 2 * 4 + 1


def test_builder_with_mapping_registry() -> None:
    config = Cfg(
        [
            Col("topic"),
            Multi([Col("x", ["topic"]), Col("y", ["topic"])]),
            Col("answer", ["topic"], ["answer__trace"], "cell_by_cell"),
            Col("judge", ["answer__trace", "x", "judge"]),
        ]
    )
    registry = {Col: PerConfig, Multi: WholeBatch}
    graph = GraphBuilder({**registry, "unused": Silent}).build(config, num_records=7)
    assert graph.column_names == ["topic", "x", "y", "answer", "judge"]
    topic = graph.get_column_descriptor("topic")
    assert topic.traits == T.BARRIER and topic.config is config.columns[0]
    assert graph.get_column_descriptor("x").generator_cls is WholeBatch
    assert graph.get_column_descriptor("answer").traits == CELL
    judge = graph.get_column_descriptor("judge")
    assert judge.dependencies == ["answer", "x"] and judge.is_barrier
    assert graph.num_nodes == 5 * 7 + 4


def test_builder_with_callable_and_object_registries() -> None:
    config = Cfg([Col("a"), Col("b", ["a"])])
    by_call = GraphBuilder(lambda c: Scratch if c.name == "a" else Cellwise).build(config, 3)
    assert by_call.start_columns == ["a"] and by_call.num_nodes == 6

    class Registry:
        def get_for_config_type(self, config_type: type) -> type:
            raise KeyError(config_type)

        def get_task_type(self, column_type: str) -> type:
            return {"sampler": Scratch, "llm": Cellwise}[column_type]

    @dataclass
    class Typed(Col):
        column_type: str = "llm"

    typed = Cfg([Typed("a", column_type="sampler"), Typed("b", ["a"])])
    graph = GraphBuilder(Registry()).build(typed, 3)
    assert [graph.get_column_descriptor(c).traits for c in graph.column_names] == [
        T.START | T.ROW_STREAMABLE,
        CELL,
    ]
    with pytest.raises(GraphError, match="no generator for column 'a'"):
        GraphBuilder({}).build(config, 3)
    with pytest.raises(GraphError, match="'missing'"):
        GraphBuilder({Col: Cellwise}).build(Cfg([Col("a", ["missing"])]), 3)


def test_builder_with_data_designer_config_api() -> None:
    dd = pytest.importorskip("data_designer.config")
    registry_module = pytest.importorskip("data_designer.engine.column_generators.registry")
    builder = dd.DataDesignerConfigBuilder()
    builder.add_column(
        dd.SamplerColumnConfig(
            name="category",
            sampler_type=dd.SamplerType.CATEGORY,
            params=dd.CategorySamplerParams(values=["science", "history", "math"]),
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="question",
            prompt="Generate a trivia question about {{ category }}",
            model_alias="gpt-4o-mini",
        )
    )
    registry = registry_module.create_default_column_generator_registry()
    graph = GraphBuilder(registry).build(builder.build(), num_records=100)
    assert graph.column_names == ["category", "question"] and graph.start_columns == ["category"]
    category = graph.get_column_descriptor("category")
    question = graph.get_column_descriptor("question")
    assert question.traits == CELL and question.dependencies == ["category"]
    # The notebook's answer: a sampler starts from scratch and, with no inputs, streams rows.
    assert category.traits == T.START | T.ROW_STREAMABLE and not category.is_barrier
    assert graph.num_nodes == 200
