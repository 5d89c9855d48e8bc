"""The column-level execution graph and its compiled, array form for the core.

An :class:`ExecutionGraph` is built in pure Python (``add_column`` / ``add_edge`` /
``set_side_effect`` or :meth:`ExecutionGraph.create`) and becomes immutable the moment a
tracker compiles it: the tracker's bitmaps are laid out by column id, so the graph may not
change under them.  Compilation numbers the columns in topological order (ties broken by
insertion order, so the numbering is deterministic) and stores adjacency as CSR integer
arrays that the Cython core reads without touching a Python object.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cellfrontier._validate import as_count, as_integer, check_group_size
from cellfrontier.errors import (
    ColumnNameError,
    DAGCircularDependencyError,
    DuplicateColumnError,
    GraphError,
    GraphFrozenError,
    RowIndexError,
    UnknownColumnError,
)
from cellfrontier.strategies import GenerationStrategy, coerce_strategy
from cellfrontier.tasks import SliceRef

__all__ = ["CompiledGraph", "ExecutionGraph"]


@dataclass(frozen=True, eq=False)
class CompiledGraph:
    """The graph as the core sees it: column ids are positions in topological order.

    Adjacency is CSR: the downstream ids of column ``c`` are
    ``down_idx[down_ptr[c]:down_ptr[c + 1]]`` (sorted, so frontier deltas come out in
    topological order); upstreams are split into cell-by-cell and full-column lists because
    the readiness rules treat them differently.
    """

    names: tuple[str, ...]
    index: Mapping[str, int]
    is_batch: npt.NDArray[np.uint8]
    is_root: npt.NDArray[np.uint8]
    down_ptr: npt.NDArray[np.int32]
    down_idx: npt.NDArray[np.int32]
    cell_up_ptr: npt.NDArray[np.int32]
    cell_up_idx: npt.NDArray[np.int32]
    batch_up_ptr: npt.NDArray[np.int32]
    batch_up_idx: npt.NDArray[np.int32]

    @property
    def num_columns(self) -> int:
        return len(self.names)


def _csr(lists: Sequence[Sequence[int]]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int32)
    flat: list[int] = []
    for i, items in enumerate(lists):
        flat.extend(sorted(items))
        ptr[i + 1] = len(flat)
    return ptr, np.asarray(flat, dtype=np.int32)


class ExecutionGraph:
    """Columns, their generation strategies and the dependency edges between them.

    Side-effect aliases (``answer__trace`` produced by ``answer``) resolve to their producer
    wherever a column is named as a dependency; a real column of the same name wins.  The
    graph is acyclic at all times: :meth:`add_edge` refuses an edge that would close a cycle.
    """

    def __init__(self) -> None:
        self._columns: list[str] = []
        self._strategies: dict[str, GenerationStrategy] = {}
        self._upstream: dict[str, set[str]] = {}
        self._downstream: dict[str, set[str]] = {}
        self._side_effects: dict[str, str] = {}
        self._order: tuple[str, ...] | None = None
        self._compiled: CompiledGraph | None = None

    # -- construction -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        column_configs: Iterable[Any],
        strategies: Mapping[str, Any],
    ) -> ExecutionGraph:
        """Build a graph from column configs and a ``name -> strategy`` mapping.

        A config is any object with ``name``, ``required_columns`` and
        ``side_effect_columns``; a multi-column config exposes ``columns`` instead of a
        ``name``.  An optional ``skip`` with ``columns`` adds edges too.  A column that
        requires itself (directly or through its own alias) is not an edge, and a column that
        lists its own name as a side effect declares nothing.  Every column is registered
        before any alias, so an alias may name a column declared later (the real column wins).
        """
        graph = cls()
        singles = [sub for config in column_configs for sub in _sub_configs(config)]
        for sub in singles:
            if sub.name not in strategies:
                raise GraphError(f"create() got no strategy for column {sub.name!r}")
            graph.add_column(sub.name, strategies[sub.name])
        for sub in singles:
            for alias in getattr(sub, "side_effect_columns", None) or ():
                if alias != sub.name:
                    graph.set_side_effect(alias, sub.name)
        for sub in singles:
            required = list(getattr(sub, "required_columns", None) or ())
            skip = getattr(sub, "skip", None)
            required += list(getattr(skip, "columns", None) or ())
            for req in required:
                producer = graph.resolve_side_effect(req)
                if producer not in graph._strategies:
                    raise GraphError(
                        f"column {sub.name!r} requires {req!r} (resolved to {producer!r}), "
                        "which no column produces"
                    )
                if producer != sub.name:
                    try:
                        graph.add_edge(producer, sub.name)
                    except DAGCircularDependencyError as exc:
                        raise DAGCircularDependencyError(
                            f"create() got a cycle: column {sub.name!r} requires {req!r}, "
                            f"closing {' -> '.join(exc.cycle)}",
                            exc.cycle,
                        ) from None
        return graph

    def add_column(self, name: str, strategy: Any) -> None:
        """Register *name* with its generation *strategy*."""
        self._check_mutable("add_column")
        _check_name(name, "name", "add_column")
        if name in self._strategies:
            raise DuplicateColumnError(f"add_column() got duplicate column {name!r}")
        self._strategies[name] = coerce_strategy(strategy, "add_column")
        self._columns.append(name)
        self._order = None

    def add_edge(self, upstream: str, downstream: str) -> None:
        """Record that *downstream* reads *upstream* (both must be registered columns).

        An edge that would close a cycle (a self-edge included) raises
        :class:`DAGCircularDependencyError` naming the cycle and is not recorded, so the graph
        stays usable: there is no way to remove an edge once it is in.
        """
        self._check_mutable("add_edge")
        for name in (upstream, downstream):
            self._require(name, "add_edge")
        if upstream in self._upstream.get(downstream, ()):
            return  # already there; the cached order stays valid
        path = self._path(downstream, upstream)
        if path is not None:
            cycle = [upstream, *path]
            raise DAGCircularDependencyError(
                f"add_edge() got {upstream!r} -> {downstream!r}, which would close the cycle "
                f"{' -> '.join(cycle)}",
                cycle,
            )
        self._upstream.setdefault(downstream, set()).add(upstream)
        self._downstream.setdefault(upstream, set()).add(downstream)
        self._order = None

    def set_side_effect(self, alias: str, producer: str) -> None:
        """Declare that column name *alias* is produced as a side effect of *producer*.

        *producer* must be a registered column other than *alias*, so every alias resolves to
        a real column.  *alias* may equal a real column's name; that column then wins in
        :meth:`resolve_side_effect` and the alias is inert (kept only so that configs which
        declare it load unchanged).
        """
        self._check_mutable("set_side_effect")
        _check_name(alias, "alias", "set_side_effect")
        _check_name(producer, "producer", "set_side_effect")
        if alias == producer:
            raise GraphError(f"set_side_effect() got alias {alias!r} equal to its producer")
        if producer not in self._strategies:
            raise GraphError(
                f"set_side_effect() got alias {alias!r} for producer {producer!r}, which is not a column"
            )
        existing = self._side_effects.get(alias)
        if existing is not None and existing != producer:
            raise GraphError(
                f"set_side_effect() got alias {alias!r} for {producer!r}, "
                f"but {existing!r} already produces it"
            )
        self._side_effects[alias] = producer

    def resolve_side_effect(self, name: str) -> str:
        """Return the column that produces *name* (a real column wins over an alias).

        A name that is neither a column nor an alias comes back unchanged, so callers decide
        whether an unknown name is an error.
        """
        if name in self._strategies:
            return name
        return self._side_effects.get(name, name)

    # -- queries ------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """Column names in insertion order (a fresh list)."""
        return list(self._columns)

    @property
    def side_effects(self) -> dict[str, str]:
        """``alias -> producer`` (a fresh dict)."""
        return dict(self._side_effects)

    @property
    def is_frozen(self) -> bool:
        """True once a tracker compiled the graph; it can no longer change."""
        return self._compiled is not None

    def get_strategy(self, column: str) -> GenerationStrategy:
        self._require(column, "get_strategy")
        return self._strategies[column]

    def get_upstream_columns(self, column: str) -> set[str]:
        """Direct dependencies of *column* (a fresh set)."""
        self._require(column, "get_upstream_columns")
        return set(self._upstream.get(column, ()))

    def get_downstream_columns(self, column: str) -> set[str]:
        """Columns that read *column* directly (a fresh set)."""
        self._require(column, "get_downstream_columns")
        return set(self._downstream.get(column, ()))

    def get_root_columns(self) -> list[str]:
        """Columns without dependencies, in topological order."""
        return [c for c in self.get_topological_order() if not self._upstream.get(c)]

    def split_upstream_by_strategy(self, column: str) -> tuple[list[str], list[str]]:
        """Upstreams of *column* as ``(full_column ones, cell_by_cell ones)``, topologically sorted."""
        ups = self.get_upstream_columns(column)
        order = [c for c in self.get_topological_order() if c in ups]
        batch = [c for c in order if self._strategies[c] is GenerationStrategy.FULL_COLUMN]
        cell = [c for c in order if self._strategies[c] is GenerationStrategy.CELL_BY_CELL]
        return batch, cell

    def get_topological_order(self) -> list[str]:
        """Columns ordered so that every column follows its dependencies.

        Kahn's algorithm with ties broken by insertion order, so the order is deterministic.
        Cached; callers receive a copy and cannot corrupt the cache.
        """
        if self._order is None:
            self._order = self._kahn()
        return list(self._order)

    def get_longest_dependency_chain(self) -> list[str]:
        """The longest path of dependencies, by number of columns (``[]`` for an empty graph)."""
        order = self.get_topological_order()
        if not order:
            return []
        length = dict.fromkeys(order, 1)
        previous: dict[str, str | None] = dict.fromkeys(order)
        for col in order:
            for child in sorted(self._downstream.get(col, ()), key=order.index):
                if length[col] + 1 > length[child]:
                    length[child] = length[col] + 1
                    previous[child] = col
        end: str | None = max(order, key=lambda c: length[c])
        chain: list[str] = []
        while end is not None:
            chain.append(end)
            end = previous[end]
        return chain[::-1]

    def compute_task_count(self, num_records: int, buffer_size: int) -> dict[str, int]:
        """Tasks per column for a job of *num_records* rows in groups of *buffer_size*.

        A cell-by-cell column has one task per row; a full-column column one per row group.
        Numpy integers are accepted; bool and float are not (:class:`CountTypeError`).
        """
        num_records = as_count(num_records, "num_records", "compute_task_count", 0)
        buffer_size = as_count(buffer_size, "buffer_size", "compute_task_count", 1)
        groups = -(-num_records // buffer_size)  # exact for any size, unlike math.ceil(a / b)
        return {
            col: num_records if self._strategies[col] is GenerationStrategy.CELL_BY_CELL else groups
            for col in self._columns
        }

    def compute_cell_dependencies(
        self,
        column: str,
        row_group: int,
        row_index: int | None,
        row_group_size: int,
    ) -> list[SliceRef]:
        """The cells (or whole batches) that the task for *column* at *row_index* reads.

        A full-column upstream is one ``SliceRef`` with ``row_index=None``.  A cell-by-cell
        upstream is the same row for a cell task, or every row of the group for a batch task
        (``row_index=None``).  Every argument is validated before anything is computed.
        """
        method = "compute_cell_dependencies"
        self._require(column, method)
        row_group = as_integer(row_group, "row_group", method)
        row_group_size = check_group_size(row_group_size, method)
        if row_index is not None:
            row_index = as_integer(row_index, "row_index", method)
            if not 0 <= row_index < row_group_size:
                raise RowIndexError(
                    f"{method}() got row_index {row_index!r} outside 0 <= row_index < {row_group_size}"
                )
        batch_ups, cell_ups = self.split_upstream_by_strategy(column)
        refs = [SliceRef(up, row_group, None) for up in batch_ups]
        for up in cell_ups:
            if row_index is None:
                refs.extend(SliceRef(up, row_group, r) for r in range(row_group_size))
            else:
                refs.append(SliceRef(up, row_group, row_index))
        return refs

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: full-column columns as boxes, cell-by-cell as rounded nodes."""
        order = self.get_topological_order()
        ids = {col: f"c{i}" for i, col in enumerate(order)}
        lines = ["flowchart TD"]
        for col in order:
            label = col.replace('"', "#quot;")
            if self._strategies[col] is GenerationStrategy.FULL_COLUMN:
                lines.append(f'    {ids[col]}["{label} (full_column)"]')
            else:
                lines.append(f'    {ids[col]}("{label} (cell_by_cell)")')
        for col in order:
            for child in sorted(self._downstream.get(col, ()), key=order.index):
                lines.append(f"    {ids[col]} --> {ids[child]}")
        aliases = [
            (alias, producer)
            for alias, producer in sorted(self._side_effects.items())
            if producer in ids and alias not in self._strategies
        ]
        for k, (alias, producer) in enumerate(aliases):
            lines.append(f'    {ids[producer]} -.-> s{k}["{alias}"]')
        return "\n".join(lines)

    # -- compilation --------------------------------------------------------------------

    def compile(self) -> CompiledGraph:
        """Freeze the graph and return its array form (cached)."""
        if self._compiled is None:
            order = self.get_topological_order()
            index = {name: i for i, name in enumerate(order)}
            n = len(order)
            is_batch = np.array(
                [self._strategies[c] is GenerationStrategy.FULL_COLUMN for c in order], dtype=np.uint8
            ).reshape(n)
            is_root = np.array([not self._upstream.get(c) for c in order], dtype=np.uint8).reshape(n)
            down = [[index[d] for d in self._downstream.get(c, ())] for c in order]
            cell_up = [[index[u] for u in self._upstream.get(c, ()) if not is_batch[index[u]]] for c in order]
            batch_up = [[index[u] for u in self._upstream.get(c, ()) if is_batch[index[u]]] for c in order]
            down_ptr, down_idx = _csr(down)
            cell_up_ptr, cell_up_idx = _csr(cell_up)
            batch_up_ptr, batch_up_idx = _csr(batch_up)
            self._compiled = CompiledGraph(
                names=tuple(order),
                index=index,
                is_batch=is_batch,
                is_root=is_root,
                down_ptr=down_ptr,
                down_idx=down_idx,
                cell_up_ptr=cell_up_ptr,
                cell_up_idx=cell_up_idx,
                batch_up_ptr=batch_up_ptr,
                batch_up_idx=batch_up_idx,
            )
        return self._compiled

    def signature(self) -> dict[str, Any]:
        """A plain description of the graph (for checkpoints and equality checks)."""
        return {
            "columns": [[c, self._strategies[c].value] for c in self._columns],
            "edges": sorted([u, d] for d, ups in self._upstream.items() for u in ups),
            "side_effects": sorted([a, p] for a, p in self._side_effects.items()),
        }

    @classmethod
    def from_signature(cls, signature: Mapping[str, Any]) -> ExecutionGraph:
        """Rebuild a graph from :meth:`signature` output."""
        graph = cls()
        for name, strategy in signature["columns"]:
            graph.add_column(name, strategy)
        for up, down in signature["edges"]:
            graph.add_edge(up, down)
        for alias, producer in signature["side_effects"]:
            graph.set_side_effect(alias, producer)
        graph.get_topological_order()
        return graph

    def difference(self, other: ExecutionGraph) -> str:
        """What differs between this graph and *other*, in a few words (for error messages)."""
        parts = []
        mine, theirs = set(self.columns), set(other.columns)
        if mine != theirs:
            parts.append(f"columns only given {sorted(mine - theirs)}, only saved {sorted(theirs - mine)}")
        else:
            strategies = [c for c in self.columns if self.get_strategy(c) != other.get_strategy(c)]
            if strategies:
                parts.append(f"strategies of {sorted(strategies)}")
            edges = [
                c
                for c in self.columns
                if set(self.get_upstream_columns(c)) != set(other.get_upstream_columns(c))
            ]
            if edges:
                parts.append(f"upstream columns of {sorted(edges)}")
        return "; ".join(parts) or "side-effect aliases or column order"

    def __repr__(self) -> str:
        return f"ExecutionGraph(columns={self._columns!r})"

    # -- internals ----------------------------------------------------------------------

    def _require(self, name: str, method: str) -> None:
        if name not in self._strategies:
            raise UnknownColumnError(f"{method}() got unknown column {name!r}")

    def _check_mutable(self, method: str) -> None:
        if self._compiled is not None:
            raise GraphFrozenError(f"{method}() called on a graph that a tracker already uses")

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A shortest downstream path ``start -> ... -> goal`` (both ends included), or None.

        Breadth-first with children visited in insertion order, so the reported cycle is
        short and deterministic.
        """
        if start == goal:
            return [start]
        position = {c: i for i, c in enumerate(self._columns)}
        previous: dict[str, str] = {start: start}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for child in sorted(self._downstream.get(node, ()), key=position.__getitem__):
                if child in previous:
                    continue
                previous[child] = node
                if child == goal:
                    path = [goal]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                queue.append(child)
        return None

    def _kahn(self) -> tuple[str, ...]:
        position = {c: i for i, c in enumerate(self._columns)}
        indegree = {c: len(self._upstream.get(c, ())) for c in self._columns}
        heap = [position[c] for c in self._columns if indegree[c] == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            col = self._columns[heapq.heappop(heap)]
            order.append(col)
            for child in self._downstream.get(col, ()):
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(heap, position[child])
        if len(order) != len(self._columns):
            cycle = self._find_cycle({c for c, d in indegree.items() if d > 0})
            raise DAGCircularDependencyError(f"the execution graph has a cycle: {' -> '.join(cycle)}", cycle)
        return tuple(order)

    def _find_cycle(self, remaining: set[str]) -> list[str]:
        """One cycle among *remaining* (columns Kahn's algorithm could not order).

        :meth:`add_edge` keeps the graph acyclic, so this only runs if the internal edge
        sets were changed behind the public methods.
        """
        start = min(remaining, key=self._columns.index)
        path: list[str] = []
        seen: dict[str, int] = {}
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = min((u for u in self._upstream.get(node, ()) if u in remaining), key=self._columns.index)
        cycle = path[seen[node] :]
        cycle.reverse()  # upstream -> downstream reading order
        return [*cycle, cycle[0]]


def _check_name(value: Any, what: str, method: str) -> None:
    if not isinstance(value, str) or not value:
        raise ColumnNameError(f"{method}() needs a non-empty string {what}, got {value!r}")


def _sub_configs(config: Any) -> list[Any]:
    if not hasattr(config, "name") and hasattr(config, "columns"):
        return list(config.columns)
    return [config]
