"""The node view: explicit node ids, barrier nodes and execution traits over the bitmap core.

This module offers the vocabulary of the exploratory design -- every cell is a node
(:class:`CellNodeId`), every column that needs all of its inputs before producing anything
has one synchronisation node (:class:`BarrierNodeId`), and a graph answers "which nodes are
ready?" -- without a second bookkeeping engine.  Readiness and completion live in the same
per-row-group bitmaps and Cython frontier updater as :class:`cellfrontier.CompletionTracker`.

The classes are :class:`NodeGraph` and :class:`NodeTracker`; the design's own names,
``ExecutionGraph`` and ``CompletionTracker``, are aliases of them, so that code written against
the design (its notebook's cells, for one) runs unchanged.  They are distinct from the column
model's :class:`cellfrontier.ExecutionGraph` and :class:`cellfrontier.CompletionTracker`.

How the node view maps onto the column model
--------------------------------------------
* A node-view graph of ``num_records`` records is one row group ``(0, num_records)``.
* A column that is not a barrier is a ``cell_by_cell`` column: its cell for row ``r``
  depends on row ``r`` of each dependency column (row-local).  A start column is a root.
* A barrier column ``v`` is a ``full_column`` column whose output cells depend on its
  barrier node.  The core holds it as two columns: a ``full_column`` column for the barrier
  node (its batch is the barrier, readied when every cell of every dependency is done) and a
  ``cell_by_cell`` column ``v`` for the output cells, which depend on that batch only.  So
  the output cells have their own completion bits, as the node model requires, and a column
  downstream of ``v`` reads row ``r`` of ``v`` like any other dependency.
* :meth:`NodeGraph.to_column_graph` gives the plain column graph (a barrier column is
  one ``full_column`` column).  A main tracker over it with one row group answers readiness
  exactly as this view does when the main model's batch of ``v`` corresponds to "barrier
  ``v`` and all of its output cells done" (``tests/test_nodes.py`` checks this with
  hypothesis).

Memory: a graph stores its column descriptors and O(columns) arrays; nodes are computed on
demand and never stored, so a graph of a million records costs what a graph of ten does.  A
tracker holds the core's bitmaps (a few bits per cell), never a Python object per node.

A tracker created without a graph (``NodeTracker(num_records)``, as in the
exploratory design) binds to the core lazily, the first time a graph uses it.  Until then it
cannot know the graph's columns, so each column it is told about gets a staging main tracker
of its own: one row group, the column's cells and its barrier node, updated by the same
compiled calls and held in the same bitmaps.  Binding validates the staged columns against
the graph (an unknown one raises ``UnknownColumnError``; nothing changes), moves each
column's done rows into the graph's core in one bulk call and drops the staging trackers.
Binding happens once: the tracker then serves that graph (or one with the same structure)
only, and from then on an unknown column name raises wherever one is taken (``in`` answers
False for a node of an unknown column, bound or not).

``num_records`` must be at least 1: in the core an empty row group has no cell event that
could release a barrier depending on it, so an empty graph could never complete.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np

from cellfrontier._validate import as_count, as_integer, is_integer
from cellfrontier.errors import (
    DuplicateColumnError,
    GraphError,
    RowIndexError,
    SizeMismatchError,
    UnknownColumnError,
)
from cellfrontier.graph import ExecutionGraph as ColumnGraph
from cellfrontier.strategies import GenerationStrategy, coerce_strategy
from cellfrontier.tasks import SliceRef, Task
from cellfrontier.tracker import CompletionTracker as ColumnTracker

__all__ = [
    "BarrierNodeId",
    "CellNodeId",
    "ColumnDescriptor",
    "CompletionTracker",
    "ExecutionGraph",
    "ExecutionTraits",
    "GraphBuilder",
    "NodeGraph",
    "NodeId",
    "NodeTracker",
    "infer_traits",
]

_ROW_GROUP = 0
_CHUNK = 4096


# -- node identity ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CellNodeId:
    """One cell: the value of *column* in record *row* (0-based)."""

    row: int
    column: str

    def __repr__(self) -> str:
        return f"Cell({self.row}, {self.column!r})"


@dataclass(frozen=True, slots=True)
class BarrierNodeId:
    """The synchronisation point of a barrier column: all inputs done, outputs may start."""

    column: str

    def __repr__(self) -> str:
        return f"Barrier({self.column!r})"


NodeId: TypeAlias = CellNodeId | BarrierNodeId


# -- traits and descriptors ---------------------------------------------------------------


class ExecutionTraits(enum.Flag):
    """How a column's generator executes; flags combine with ``|``.

    ``START``: generates from nothing (its column is a root).  ``CELL_BY_CELL``: one cell per
    call.  ``ROW_STREAMABLE``: rows can be produced independently, so no barrier is needed.
    ``BARRIER``: needs every input cell before producing any output.
    """

    NONE = 0
    START = enum.auto()
    CELL_BY_CELL = enum.auto()
    ROW_STREAMABLE = enum.auto()
    BARRIER = enum.auto()

    def __str__(self) -> str:
        # One spelling on every Python version (3.10 orders and names combined flags differently).
        names = [m.name for m in type(self) if m.value and m.value & self.value and m.name]
        return f"{type(self).__name__}.{'|'.join(names) if names else 'NONE'}"


@dataclass(frozen=True, slots=True)
class ColumnDescriptor:
    """What the graph knows about one column: its generator, traits and direct dependencies.

    ``dependencies`` name the columns this one reads (a side-effect column name resolves to
    its producer); ``side_effects`` name extra columns that this column's generator writes.
    """

    name: str
    config: Any = None
    generator_cls: Any = None
    traits: ExecutionTraits = ExecutionTraits.NONE
    dependencies: list[str] = field(default_factory=list)
    side_effects: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"ColumnDescriptor() needs a non-empty string name, got {self.name!r}")
        object.__setattr__(self, "traits", ExecutionTraits(self.traits))
        for attr in ("dependencies", "side_effects"):
            value = getattr(self, attr)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise GraphError(
                    f"ColumnDescriptor({self.name!r}) needs {attr} as column names, got {value!r}"
                )
            object.__setattr__(self, attr, list(value))

    @property
    def is_start_column(self) -> bool:
        """Whether the generator starts from nothing (the column is a root)."""
        return bool(self.traits & ExecutionTraits.START)

    @property
    def is_cell_by_cell(self) -> bool:
        """Whether the generator produces one cell per call."""
        return bool(self.traits & ExecutionTraits.CELL_BY_CELL)

    @property
    def is_row_streamable(self) -> bool:
        """Whether rows can be produced independently of each other."""
        return bool(self.traits & ExecutionTraits.ROW_STREAMABLE)

    @property
    def is_barrier(self) -> bool:
        """Whether every input cell must be done before any output cell starts."""
        return bool(self.traits & ExecutionTraits.BARRIER)

    @property
    def has_dependencies(self) -> bool:
        return bool(self.dependencies)


# -- the graph ----------------------------------------------------------------------------


def _check_count(value: Any, what: str, method: str) -> int:
    # An empty row group has no cell event that could release a dependent barrier: at least 1.
    return as_count(value, what, method, 1)


class NodeGraph:
    """Columns with traits and dependencies; cell and barrier nodes computed on demand.

    Descriptors may come in any order; the graph orders them topologically (keeping the given
    order when it already is one).  The graph is immutable: it keeps its own copies of the
    descriptors and hands out fresh ones.
    """

    def __init__(self, num_records: int, column_descriptors: Iterable[ColumnDescriptor]) -> None:
        self._num_records = _check_count(num_records, "num_records", "NodeGraph")
        descriptors = list(column_descriptors)
        by_name: dict[str, ColumnDescriptor] = {}
        for desc in descriptors:
            if not isinstance(desc, ColumnDescriptor):
                raise TypeError(f"NodeGraph() needs ColumnDescriptor objects, got {type(desc).__name__}")
            if desc.name in by_name:
                raise DuplicateColumnError(f"NodeGraph() got duplicate column {desc.name!r}")
            by_name[desc.name] = replace(desc)

        columns = ColumnGraph()
        for desc in descriptors:
            columns.add_column(desc.name, _strategy(desc))
        for desc in descriptors:
            for alias in desc.side_effects:
                columns.set_side_effect(alias, desc.name)
        deps: dict[str, tuple[str, ...]] = {}
        for desc in descriptors:
            resolved: list[str] = []
            for dep in desc.dependencies:
                producer = columns.resolve_side_effect(dep)
                if producer not in by_name:
                    raise GraphError(
                        f"column {desc.name!r} depends on {dep!r} (resolved to {producer!r}), "
                        "which no column produces"
                    )
                if producer != desc.name and producer not in resolved:
                    resolved.append(producer)
                    columns.add_edge(producer, desc.name)
            if desc.is_start_column and resolved:
                raise GraphError(
                    f"start column {desc.name!r} has dependencies {resolved!r}; a start column is a root"
                )
            deps[desc.name] = tuple(resolved)
        order = columns.get_topological_order()  # raises DAGCircularDependencyError on a cycle

        self._descriptors = by_name
        self._order: tuple[str, ...] = tuple(order)
        self._position = {name: i for i, name in enumerate(order)}
        self._deps = deps
        self._dependents = {
            name: tuple(sorted(columns.get_downstream_columns(name), key=self._position.__getitem__))
            for name in order
        }
        self._barrier = {name: by_name[name].is_barrier for name in order}
        self._column_graph = columns
        self._core_graph: ColumnGraph | None = None
        self._barrier_names: dict[str, str] = {}
        self._structure = (
            self._num_records,
            tuple((name, self._barrier[name], deps[name]) for name in order),
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def num_records(self) -> int:
        return self._num_records

    @property
    def num_columns(self) -> int:
        return len(self._order)

    @property
    def num_nodes(self) -> int:
        """Cell nodes of every column plus one barrier node per barrier column."""
        return self._num_records * len(self._order) + sum(self._barrier.values())

    @property
    def start_columns(self) -> list[str]:
        """Columns with the ``START`` trait, in topological order."""
        return [name for name in self._order if self._descriptors[name].is_start_column]

    @property
    def column_names(self) -> list[str]:
        """Every column in topological order."""
        return list(self._order)

    def get_column_descriptor(self, name: str) -> ColumnDescriptor:
        """A copy of *name*'s descriptor (changing it does not change the graph)."""
        self.require_column(name, "get_column_descriptor")
        return replace(self._descriptors[name])

    def get_generator_and_config(self, node: NodeId) -> tuple[Any, Any]:
        """``(generator_cls, config)`` of the column that *node* belongs to."""
        self.check_node(node, "get_generator_and_config")
        desc = self._descriptors[node.column]
        return desc.generator_cls, desc.config

    def has_column(self, name: object) -> bool:
        """Whether *name* is a column of the graph."""
        try:
            return name in self._descriptors
        except TypeError:  # unhashable
            return False

    def is_barrier_column(self, name: str) -> bool:
        """Whether *name* is a barrier column (``UnknownColumnError`` for an unknown name)."""
        self.require_column(name, "is_barrier_column")
        return self._barrier[name]

    def require_column(self, name: Any, method: str) -> None:
        """Raise ``UnknownColumnError`` naming *method* unless *name* is a column of the graph."""
        if not self.has_column(name):
            raise UnknownColumnError(f"{method}() got unknown column {name!r}")

    def check_node(self, node: Any, method: str) -> None:
        """Raise unless *node* is a node of this graph (its column exists, its row is in range,
        a barrier node belongs to a barrier column); errors name *method*."""
        if isinstance(node, CellNodeId):
            self.require_column(node.column, method)
            _check_row(node.row, self._num_records, method)
        elif isinstance(node, BarrierNodeId):
            self.require_column(node.column, method)
            if not self._barrier[node.column]:
                raise GraphError(f"{method}() got {node!r}, but {node.column!r} is not a barrier column")
        else:
            raise TypeError(f"{method}() needs a CellNodeId or BarrierNodeId, got {type(node).__name__}")

    def same_structure(self, other: NodeGraph) -> bool:
        """Whether *other* has the same records, columns, barriers and dependencies."""
        return self._structure == other._structure

    # -- nodes -----------------------------------------------------------------------------

    def iter_nodes(self) -> Iterator[NodeId]:
        """Every node in topological order (a barrier before its column's cells)."""
        for name in self._order:
            yield from self._column_nodes(name)

    def iter_start_nodes(self) -> Iterator[NodeId]:
        """Nodes without dependencies: the cells of root columns, or the barrier of a root barrier column."""
        for name in self._order:
            if self._deps[name]:
                continue
            if self._barrier[name]:
                yield BarrierNodeId(name)
            else:
                yield from self._cells(name)

    def get_dependencies(self, node: NodeId) -> list[NodeId]:
        """The nodes that must be done before *node* can run."""
        self.check_node(node, "get_dependencies")
        if isinstance(node, BarrierNodeId):
            return [CellNodeId(r, dep) for dep in self._deps[node.column] for r in range(self._num_records)]
        if self._barrier[node.column]:
            return [BarrierNodeId(node.column)]
        return [CellNodeId(node.row, dep) for dep in self._deps[node.column]]

    def get_dependents(self, node: NodeId) -> list[NodeId]:
        """The nodes that list *node* among their dependencies."""
        self.check_node(node, "get_dependents")
        if isinstance(node, BarrierNodeId):
            return list(self._cells(node.column))
        return [
            BarrierNodeId(down) if self._barrier[down] else CellNodeId(node.row, down)
            for down in self._dependents[node.column]
        ]

    def iter_ready_nodes(self, tracker: NodeTracker) -> Iterator[NodeId]:
        """Nodes not yet complete whose dependencies all are, in :meth:`iter_nodes` order.

        Read from the core's frontier bits (binding *tracker* on first use); each column is
        read when the iteration reaches it, so take a ``list`` first if you mark nodes while
        iterating and want one consistent snapshot.
        """
        backend = self._backend(tracker, "iter_ready_nodes")
        for name in self._order:
            if self._barrier[name]:
                core_name = self._barrier_names[name]
                # A barrier without inputs is a root of the core graph: its task is from_scratch.
                task_type = "batch" if self.core_graph().get_upstream_columns(core_name) else "from_scratch"
                barrier = Task(core_name, _ROW_GROUP, None, task_type)
                if backend.is_frontier_task(barrier):
                    yield BarrierNodeId(name)
            rows = backend.ready_rows(name, _ROW_GROUP)
            for start in range(0, len(rows), _CHUNK):  # Python ints made a chunk at a time
                for row in rows[start : start + _CHUNK].tolist():
                    yield CellNodeId(row, name)

    def is_complete(self, tracker: NodeTracker) -> bool:
        """Whether every node of the graph is done (O(columns))."""
        self._backend(tracker, "is_complete")
        return len(tracker) == self.num_nodes

    # -- bridges to the column model -------------------------------------------------------

    def to_column_graph(self) -> ColumnGraph:
        """The plain column graph: barrier columns ``full_column``, the others ``cell_by_cell``.

        A fresh, unfrozen graph each call.
        """
        return ColumnGraph.from_signature(self._column_graph.signature())

    def create_tracker(self) -> NodeTracker:
        """A tracker bound to this graph from the start."""
        return NodeTracker(self._num_records, graph=self)

    def barrier_column_name(self, column: str) -> str:
        """The core column that holds *column*'s barrier node (for bulk access through the backend)."""
        self.require_column(column, "barrier_column_name")
        if not self._barrier[column]:
            raise GraphError(f"barrier_column_name() got {column!r}, which is not a barrier column")
        self.core_graph()
        return self._barrier_names[column]

    def core_graph(self) -> ColumnGraph:
        """The column graph the core runs for this view (frozen once a tracker binds).

        Like :meth:`to_column_graph`, except that each barrier column becomes a
        ``full_column`` column for its barrier node followed by a ``cell_by_cell`` column
        of the same name for its output cells.
        """
        if self._core_graph is None:
            taken = set(self._order)
            core = ColumnGraph()
            for name in self._order:
                if self._barrier[name]:
                    barrier = f"{name}[barrier]"
                    while barrier in taken:
                        barrier += "'"
                    taken.add(barrier)
                    self._barrier_names[name] = barrier
                    core.add_column(barrier, GenerationStrategy.FULL_COLUMN)
                core.add_column(name, GenerationStrategy.CELL_BY_CELL)
            for name in self._order:
                target = self._barrier_names.get(name, name)
                for dep in self._deps[name]:
                    core.add_edge(dep, target)
                if self._barrier[name]:
                    core.add_edge(self._barrier_names[name], name)
            core.get_topological_order()
            self._core_graph = core
        return self._core_graph

    def __repr__(self) -> str:
        return f"NodeGraph(num_records={self._num_records}, columns={list(self._order)!r})"

    # -- internals -------------------------------------------------------------------------

    def _backend(self, tracker: Any, method: str) -> ColumnTracker:
        if not isinstance(tracker, NodeTracker):
            raise TypeError(
                f"{method}() needs a cellfrontier.nodes.NodeTracker, got {type(tracker).__name__}"
            )
        return tracker.bind(self)

    def _cells(self, name: str) -> Iterator[CellNodeId]:
        for row in range(self._num_records):
            yield CellNodeId(row, name)

    def _column_nodes(self, name: str) -> Iterator[NodeId]:
        if self._barrier[name]:
            yield BarrierNodeId(name)
        yield from self._cells(name)


def _strategy(desc: ColumnDescriptor) -> GenerationStrategy:
    return GenerationStrategy.FULL_COLUMN if desc.is_barrier else GenerationStrategy.CELL_BY_CELL


def _check_row(row: Any, num_records: int, method: str) -> int:
    number = as_integer(row, "row", method)
    if not 0 <= number < num_records:
        raise RowIndexError(f"{method}() got row {row!r} outside 0..{num_records - 1}")
    return number


# -- completion tracking ------------------------------------------------------------------


class NodeTracker:
    """Which nodes are done, kept in the core's bitmaps (see the module docs for binding).

    ``mark_complete`` is idempotent and does not check readiness, like the exploratory
    design's tracker: marking a node early simply records it as done.

    Column names are checked against the graph once the tracker is bound.  Before that it
    cannot tell a column of the graph-to-be from a misspelt one: ``column_completion_count``
    answers 0 and ``is_column_complete`` False for a column with nothing marked, and a node
    of an unknown column is rejected when the tracker binds (``UnknownColumnError``).  Pass
    ``graph=`` (or use :meth:`NodeGraph.create_tracker`) to have unknown names raise
    from the first call.
    """

    def __init__(self, num_records: int, graph: NodeGraph | None = None) -> None:
        self._num_records = _check_count(num_records, "num_records", "NodeTracker")
        self._graph: NodeGraph | None = None
        self._backend: ColumnTracker | None = None
        self._staged: dict[str, ColumnTracker] = {}  # column -> main tracker of its nodes
        if graph is not None:
            self.bind(graph)

    # -- binding ---------------------------------------------------------------------------

    @property
    def num_records(self) -> int:
        return self._num_records

    @property
    def graph(self) -> NodeGraph | None:
        """The graph this tracker is bound to (None until first used with one)."""
        return self._graph

    @property
    def backend(self) -> ColumnTracker | None:
        """The core tracker (one row group ``(0, num_records)``) once bound; use it for bulk paths."""
        return self._backend

    def bind(self, graph: NodeGraph) -> ColumnTracker:
        """Bind to *graph* now (otherwise the first graph call binds); returns :attr:`backend`."""
        if self._backend is not None:
            assert self._graph is not None
            if graph is not self._graph and not graph.same_structure(self._graph):
                raise GraphError("this tracker is bound to another graph (different columns or records)")
            return self._backend
        if not isinstance(graph, NodeGraph):
            raise TypeError(f"bind() needs a cellfrontier.nodes.NodeGraph, got {type(graph).__name__}")
        if graph.num_records != self._num_records:
            raise SizeMismatchError(
                f"a tracker of {self._num_records} records cannot serve a graph of {graph.num_records}"
            )
        # Validate everything first, so that a failed bind changes nothing.
        for column, staged in self._staged.items():
            graph.require_column(column, "mark_complete")
            if _staged_barrier_done(staged, column) and not graph.is_barrier_column(column):
                raise GraphError(
                    f"mark_complete() got {BarrierNodeId(column)!r}, but {column!r} is not a barrier column"
                )
        backend = ColumnTracker.with_graph(graph.core_graph(), [(_ROW_GROUP, self._num_records)])
        backend.add_root_tasks(_ROW_GROUP, self._num_records)  # its delta stays lazy: no task objects
        for column in graph.column_names:  # in topological order, as a run would complete them
            source = self._staged.get(column)
            if source is None:
                continue
            if _staged_barrier_done(source, column):
                barrier = graph.barrier_column_name(column)
                backend.mark_row_range_complete(barrier, _ROW_GROUP, self._num_records)
            done = np.ones(self._num_records, dtype=bool)
            done[source.ready_rows(column, _ROW_GROUP)] = False  # every staged row was admitted
            backend.mark_cells_complete(column, _ROW_GROUP, np.flatnonzero(done))
        self._graph, self._backend = graph, backend
        self._staged = {}
        return backend

    # -- mutations -------------------------------------------------------------------------

    def mark_complete(self, node: NodeId) -> None:
        """Record *node* as done (a second time changes nothing)."""
        graph, backend = self._graph, self._backend
        if isinstance(node, CellNodeId):
            row = _check_row(node.row, self._num_records, "mark_complete")
            if backend is None:
                self._staging(node.column).mark_cell_complete(node.column, _ROW_GROUP, row)
                return
            assert graph is not None
            graph.require_column(node.column, "mark_complete")
            backend.mark_cell_complete(node.column, _ROW_GROUP, row)
        elif isinstance(node, BarrierNodeId):
            if backend is None:
                staged = self._staging(node.column)
                staged.mark_row_range_complete(_barrier_of(node.column), _ROW_GROUP, self._num_records)
                return
            assert graph is not None
            graph.check_node(node, "mark_complete")
            barrier = graph.barrier_column_name(node.column)
            backend.mark_row_range_complete(barrier, _ROW_GROUP, self._num_records)
        else:
            raise TypeError(f"mark_complete() needs a CellNodeId or BarrierNodeId, got {type(node).__name__}")

    def _staging(self, column: Any) -> ColumnTracker:
        _check_name(column, "mark_complete")
        staged = self._staged.get(column)
        if staged is None:
            staged = self._staged[column] = _staging_tracker(column, self._num_records)
        return staged

    # -- queries ---------------------------------------------------------------------------

    def __contains__(self, node: object) -> bool:
        graph, backend = self._graph, self._backend
        if isinstance(node, CellNodeId):
            if not _valid_row(node.row, self._num_records):
                return False
            if backend is None:
                staged = self._staged.get(node.column)
                return staged is not None and staged.is_complete(
                    SliceRef(node.column, _ROW_GROUP, int(node.row))
                )
            assert graph is not None
            if not graph.has_column(node.column):
                return False
            return backend.is_complete(SliceRef(node.column, _ROW_GROUP, int(node.row)))
        if isinstance(node, BarrierNodeId):
            if backend is None:
                staged = self._staged.get(node.column)
                return staged is not None and _staged_barrier_done(staged, node.column)
            assert graph is not None
            if not graph.has_column(node.column) or not graph.is_barrier_column(node.column):
                return False
            name = graph.barrier_column_name(node.column)
            return bool(backend.is_complete(SliceRef(name, _ROW_GROUP, None)))
        return False

    def __len__(self) -> int:
        """Completed nodes: cells plus barrier nodes."""
        if self._backend is None:
            return sum(
                staged.progress()[column].completed + _staged_barrier_done(staged, column)
                for column, staged in self._staged.items()
            )
        assert self._graph is not None
        progress = self._backend.progress()
        graph = self._graph
        cells = sum(progress[name].completed for name in graph.column_names)
        barriers = sum(
            self._backend.is_complete(SliceRef(name, _ROW_GROUP, None))
            for name in (
                graph.barrier_column_name(c) for c in graph.column_names if graph.is_barrier_column(c)
            )
        )
        return cells + barriers

    def column_completion_count(self, column: str) -> int:
        """Completed cells of *column* (its barrier node is not a cell and is not counted).

        Bound: an unknown column raises ``UnknownColumnError``.  Unbound: a column with
        nothing marked counts 0, whether or not the graph will have it (see the class docs).
        """
        if self._backend is None:
            _check_name(column, "column_completion_count")
            staged = self._staged.get(column)
            return 0 if staged is None else staged.progress()[column].completed
        assert self._graph is not None
        self._graph.require_column(column, "column_completion_count")
        return self._backend.progress()[column].completed

    def is_column_complete(self, column: str) -> bool:
        """Whether every cell of *column* is done (unknown columns as in :meth:`column_completion_count`)."""
        return self.column_completion_count(column) == self._num_records

    @property
    def nbytes(self) -> int:
        """Bytes of completion state held by the core (all staged columns before binding)."""
        if self._backend is not None:
            return self._backend.nbytes
        return sum(staged.nbytes for staged in self._staged.values())

    def __repr__(self) -> str:
        state = "bound" if self._backend is not None else "unbound"
        return f"NodeTracker(num_records={self._num_records}, completed={len(self)}, {state})"


def _barrier_of(column: str) -> str:
    """The name of a staging tracker's barrier column (longer than *column*, so never equal)."""
    return f"{column}[barrier]"


def _staging_tracker(column: str, num_records: int) -> ColumnTracker:
    """A main tracker for one column's nodes before binding: its cells and its barrier node.

    Two roots over one row group of *num_records* rows (*column* cell by cell, a full-column
    column for the barrier node), admitted at once, so that the rows not yet done are exactly
    the ready rows: that is how binding reads the done rows back.
    """
    graph = ColumnGraph()
    graph.add_column(column, GenerationStrategy.CELL_BY_CELL)
    graph.add_column(_barrier_of(column), GenerationStrategy.FULL_COLUMN)
    tracker = ColumnTracker.with_graph(graph, [(_ROW_GROUP, num_records)])
    tracker.add_root_tasks(_ROW_GROUP, num_records)  # its delta stays lazy: no task objects
    return tracker


def _staged_barrier_done(staged: ColumnTracker, column: str) -> bool:
    return staged.is_complete(SliceRef(_barrier_of(column), _ROW_GROUP, None))


def _check_name(column: Any, method: str) -> None:
    if not isinstance(column, str) or not column:
        raise UnknownColumnError(f"{method}() needs a non-empty column name, got {column!r}")


def _valid_row(row: Any, num_records: int) -> bool:
    return is_integer(row) and 0 <= row < num_records


# -- building from configs ----------------------------------------------------------------

_MISSING = object()


def _probe(generator_cls: type) -> Any:
    """An uninitialised instance, so that constant-valued properties can be read."""
    cls = generator_cls
    if inspect.isabstract(cls):
        cls = type(cls.__name__, (cls,), {})
        cls.__abstractmethods__ = frozenset()  # type: ignore[attr-defined]
    return object.__new__(cls)


def _read(generator_cls: Any, config: Any, names: Sequence[str]) -> Any:
    """The first readable value among *names*: on the generator class, else on the config.

    Static and class methods are called; properties and instance methods are evaluated on
    an uninitialised instance.  A value that needs a configured generator (it raises) is
    looked up on the column config instead, where some libraries keep it per column.
    """
    for name in names:
        attr = _MISSING if generator_cls is None else inspect.getattr_static(generator_cls, name, _MISSING)
        if attr is not _MISSING:
            try:
                if isinstance(attr, (staticmethod, classmethod)):
                    return getattr(generator_cls, name)()
                if hasattr(type(attr), "__get__"):  # property, function, cached_property, ...
                    value = getattr(_probe(generator_cls), name)
                    return value() if inspect.ismethod(value) else value
                return attr
            except Exception:
                pass
        value = getattr(config, name, None)
        if value is not None:
            return value() if callable(value) and not isinstance(value, enum.Enum) else value
    return _MISSING


def infer_traits(
    generator_cls: Any, config: Any = None, *, has_dependencies: bool = False
) -> ExecutionTraits:
    """Execution traits from what a generator declares about itself (never from its name).

    Reads these properties (each a class attribute, property, cached property, static,
    class or plain method of the generator class; when the generator has none, or it needs a
    configured instance to answer, an attribute of the same name on the column config):

    * ``can_generate_from_scratch`` (bool) -> ``START``, only for a column without
      dependencies (a start column is a root);
    * ``get_generation_strategy()`` or ``generation_strategy`` (``"cell_by_cell"`` /
      ``"full_column"``, any enum with those values) -> ``CELL_BY_CELL | ROW_STREAMABLE``
      for cell-by-cell; a generator that declares none is treated as full-column;
    * ``is_row_streamable`` (bool) -> for a full-column generator, ``ROW_STREAMABLE`` when
      True and ``BARRIER`` when False.  Undeclared, a start column streams (it has no inputs
      to wait for, so a barrier node would add nothing) and any other column is a barrier.
    """
    start = not has_dependencies and _read(generator_cls, config, ["can_generate_from_scratch"]) is True
    traits = ExecutionTraits.START if start else ExecutionTraits.NONE
    raw = _read(generator_cls, config, ["get_generation_strategy", "generation_strategy"])
    strategy = GenerationStrategy.FULL_COLUMN if raw is _MISSING else coerce_strategy(raw)
    if strategy is GenerationStrategy.CELL_BY_CELL:
        return traits | ExecutionTraits.CELL_BY_CELL | ExecutionTraits.ROW_STREAMABLE
    streamable = _read(generator_cls, config, ["is_row_streamable"])
    if streamable is _MISSING or streamable is None:
        streamable = start
    if streamable is True:
        return traits | ExecutionTraits.ROW_STREAMABLE
    return traits | ExecutionTraits.BARRIER


class GraphBuilder:
    """Builds a :class:`NodeGraph` from a config of columns and a generator registry.

    The config is any object with ``columns`` (or an iterable of column configs); each column
    config has ``name`` and ``required_columns``, optionally ``side_effect_columns``.  A
    multi-column config (``columns`` and no ``name``) gives one descriptor per sub-column,
    all with its generator.  The registry maps a column config to its generator class: a
    callable ``registry(config)``, a mapping keyed by config type (or by the config's
    ``column_type``), or an object with ``get_for_config_type(config_type)`` (falling back
    to ``get_task_type(config.column_type)``).

    Traits come from :func:`infer_traits`, which reads only what the generator class
    declares, so plugin generators work without registration here:
    ``can_generate_from_scratch``, ``get_generation_strategy()`` / ``generation_strategy``
    and ``is_row_streamable``, each falling back to an attribute of the same name on the
    column config.  A start column (from scratch, no dependencies) whose full-column
    generator does not declare ``is_row_streamable`` streams rather than becoming a barrier.
    """

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def build(self, config: Any, num_records: int) -> NodeGraph:
        items = list(config.columns if hasattr(config, "columns") else config)
        entries: list[tuple[Any, Any]] = []  # (column config, generator class)
        for item in items:
            generator_cls = self.get_generator_cls(item)
            subs = list(item.columns) if not hasattr(item, "name") and hasattr(item, "columns") else [item]
            entries.extend((sub, generator_cls) for sub in subs)
        producers: dict[str, str] = {}
        for sub, _ in entries:
            for alias in getattr(sub, "side_effect_columns", None) or ():
                producers.setdefault(alias, sub.name)
        for sub, _ in entries:
            producers[sub.name] = sub.name
        descriptors = []
        for sub, generator_cls in entries:
            deps: list[str] = []
            for req in getattr(sub, "required_columns", None) or ():
                producer = producers.get(req, req)
                if producer != sub.name and producer not in deps:
                    deps.append(producer)
            descriptors.append(
                ColumnDescriptor(
                    name=sub.name,
                    config=sub,
                    generator_cls=generator_cls,
                    traits=infer_traits(generator_cls, sub, has_dependencies=bool(deps)),
                    dependencies=deps,
                    side_effects=list(getattr(sub, "side_effect_columns", None) or ()),
                )
            )
        return NodeGraph(num_records, descriptors)

    def get_generator_cls(self, column_config: Any) -> Any:
        """The generator class the registry gives for *column_config*."""
        registry = self._registry
        if isinstance(registry, Mapping):
            for key in (*type(column_config).__mro__, getattr(column_config, "column_type", _MISSING)):
                if key in registry:
                    return registry[key]
        elif hasattr(registry, "get_for_config_type"):
            try:
                return registry.get_for_config_type(type(column_config))
            except Exception:
                column_type = getattr(column_config, "column_type", _MISSING)
                if column_type is _MISSING or not hasattr(registry, "get_task_type"):
                    raise
                return registry.get_task_type(column_type)
        elif callable(registry):
            return registry(column_config)
        name = getattr(column_config, "name", column_config)
        raise GraphError(f"build() found no generator for column {name!r} ({type(column_config).__name__})")


# The exploratory design's names for the node view's classes (its notebook's cells use them).
ExecutionGraph = NodeGraph
CompletionTracker = NodeTracker
