"""Drop-in backend for NVIDIA DataDesigner's async scheduler.

:class:`CompletionTracker` has the public API of DataDesigner's own tracker
(``data_designer.engine.dataset_builders.scheduling.completion.CompletionTracker``; tested
with 0.9.6 and 0.9.7, see :data:`TESTED_VERSIONS`): the same methods, arguments, return types
and exceptions, speaking DataDesigner's own
``Task``, ``SliceRef``, ``FrontierDelta``, ``ExecutionGraph`` and row-group plans.  Its state
lives in cellfrontier's compiled bitmaps, run in DataDesigner-compatible mode so that the
frontier evolves exactly as DataDesigner's does (tasks are re-checked on every event, a
dropped row re-checks every full-column task, admitting a group adds all its root cells), and
deltas list their tasks in DataDesigner's order.  Without a graph (``CompletionTracker()`` or
``with_graph(None, plan)``) it keeps plain sets, as DataDesigner does.

:func:`install` makes DataDesigner's builder and scheduler use it::

    from cellfrontier.integrations import data_designer as cf_dd

    with cf_dd.installed():
        ...  # build datasets with DataDesigner's async engine, as usual

Errors carry DataDesigner's exception types and messages (its text first, then the backend's
detail).  Deliberate differences, all where DataDesigner would store bad input silently or fail
later:

* a row index that is not an integer in ``0 <= row_index < row_group_size`` (without a graph:
  not an integer ``>= 0``) raises ``RowIndexError`` / ``IndexTypeError`` (``ValueError`` /
  ``TypeError`` subclasses) instead of being stored;
* an invalid call never leaves a partial change behind: DataDesigner's ``add_root_tasks``
  adds the tasks of the columns listed before an unknown one, then raises ``KeyError``; this
  one raises the same ``KeyError`` and adds nothing;
* an unknown row group raises ``UnknownRowGroupError``, which is the ``ValueError``
  DataDesigner raises and also a ``KeyError``;
* a graph with a cycle or an edge naming an unregistered column is refused by ``with_graph``
  with DataDesigner's ``DAGCircularDependencyError`` (DataDesigner accepts it and raises that,
  or ``KeyError``, at the first call that needs the column order);
* the graph is copied by ``with_graph``: columns or edges added to it later are not seen
  (DataDesigner's graph is fixed for the lifetime of a run).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

try:
    from data_designer.engine.dataset_builders.row_group_plan import normalize_row_group_plan
    from data_designer.engine.dataset_builders.scheduling import completion as _dd_completion
    from data_designer.engine.dataset_builders.scheduling import resources as _dd_resources
    from data_designer.engine.dataset_builders.scheduling.completion import FrontierDelta as DDFrontierDelta
    from data_designer.engine.dataset_builders.scheduling.task_model import SliceRef as DDSliceRef
    from data_designer.engine.dataset_builders.scheduling.task_model import Task as DDTask
    from data_designer.engine.dataset_builders.utils.errors import (
        DAGCircularDependencyError as DDDAGCircularDependencyError,
    )
except ImportError as exc:  # exercised by a test that hides DataDesigner
    raise ImportError(
        "cellfrontier.integrations.data_designer needs NVIDIA DataDesigner (data-designer-engine "
        ">=0.9.6,<0.10), which is not importable here. Install the extra: "
        "pip install 'cellfrontier[datadesigner]' (from a source checkout: pip install '.[datadesigner]')"
    ) from exc

from cellfrontier._validate import as_integer
from cellfrontier.errors import (
    CellFrontierError,
    DAGCircularDependencyError,
    IndexTypeError,
    RowIndexError,
    SizeMismatchError,
    StrategyMismatchError,
    UnknownColumnError,
    UnknownRowGroupError,
)
from cellfrontier.graph import ExecutionGraph
from cellfrontier.integrations._dd_core import DataDesignerCore
from cellfrontier.integrations._task_id import stable_task_id as _c_stable_task_id
from cellfrontier.strategies import GenerationStrategy

__all__ = [
    "TESTED_VERSIONS",
    "CompletionTracker",
    "UnsupportedDataDesignerError",
    "check_version",
    "install",
    "installed",
    "installed_data_designer_version",
    "is_installed",
    "is_tested_version",
    "uninstall",
]

ORIGINAL_TRACKER = _dd_completion.CompletionTracker
ORIGINAL_STABLE_TASK_ID = _dd_resources.stable_task_id

_new_object = object.__new__
_EMPTY_DELTA = DDFrontierDelta()
_NO_ROWS: frozenset[Any] = frozenset()
_NO_COLUMNS: dict[str, Any] = {}
_MISSING: Any = object()
# Key of the stable id stored in a materialised task's __dict__ (invisible to the dataclass's
# eq/hash/repr, and equal to what stable_task_id computes from the task's fields).
_ID_KEY = "_cf_task_id"


def _dd_task(column: str, row_group: int, row_index: int | None, task_type: str) -> DDTask:
    """A DataDesigner ``Task`` without the frozen-dataclass constructor (5x cheaper)."""
    task = _new_object(DDTask)
    task.__dict__.update(column=column, row_group=row_group, row_index=row_index, task_type=task_type)
    return task


def _compute_task_id(task: Any) -> str:
    """A task's stable id (DataDesigner's format), memoised in its ``__dict__`` when it has one."""
    namespace = getattr(task, "__dict__", None)
    if namespace is not None:
        cached = namespace.get(_ID_KEY)
        if cached is not None:
            return cached
    task_id = _c_stable_task_id(task.column, task.row_group, task.row_index, task.task_type)
    if namespace is not None:
        namespace[_ID_KEY] = task_id
    return task_id


def memoized_stable_task_id(task: Any) -> str:
    """``stable_task_id`` that returns the id the core computed when it built the task.

    Installed in DataDesigner's modules by :func:`install`: the scheduler computes a task's
    id several times (queue, admission, acknowledgement).  Tasks handed out by this backend
    carry their id from the moment the compiled core built them (and are registered under it,
    so that ``mark_enqueued`` maps ids back to tasks in O(1)); any other task gets its id
    computed once, in compiled code, and remembered.
    """
    try:
        return task.__dict__[_ID_KEY]
    except (AttributeError, KeyError):
        return _compute_task_id(task)


def _as_row(value: Any) -> int | None:
    """The integer row a set lookup with *value* would find (``3.0`` and ``True`` find rows)."""
    try:
        row = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return row if row == value else None


def _packed_bit(packed: bytes, row_index: Any) -> bool:
    """Bit *row_index* of a little-endian packed mask, as DataDesigner answers for odd indices.

    DataDesigner keeps a compacted group's dropped rows as such a mask: a negative or too large
    index is not dropped, and an index it cannot split into byte and bit raises ``TypeError``.
    """
    byte, bit = divmod(row_index, 8)
    if not 0 <= byte < len(packed):
        return False
    return bool(packed[byte] >> bit & 1)


def _pack_rows(rows: Iterable[int]) -> bytes:
    """Rows (integers >= 0) as a little-endian packed mask without trailing zero bytes."""
    rows = list(rows)
    packed = bytearray((max(rows) >> 3) + 1 if rows else 0)
    for row in rows:
        packed[row >> 3] |= 1 << (row & 7)
    return bytes(packed)


def _checked_row(row_index: Any, method: str) -> int:
    """A row index a tracker without a graph may store: an integer >= 0."""
    if type(row_index) is int and row_index >= 0:
        return row_index
    row = as_integer(row_index, "row index", method)
    if row < 0:
        raise RowIndexError(f"{method}() needs a row index >= 0, got {row_index!r}")
    return row


class _LazyFrontierDelta(DDFrontierDelta):
    """DataDesigner's ``FrontierDelta`` whose task tuples are built on first access.

    The compiled core makes these itself (``DataDesignerCore``) without running the
    constructor: ``__dict__`` holds the core's own delta under ``_core_delta``, and the tuples
    once they were asked for.  The constructor is for copies (``dataclasses.replace``): it
    stores the given tuples, as DataDesigner's dataclass does.

    The core lists tasks by column in topological order; DataDesigner lists the tasks a
    completion adds by column name and the tasks a drop removes in the graph's column order.
    A tracker whose orders differ hands out a subclass with ``_added_rank`` /
    ``_removed_rank`` (column -> position) set, and its tuples are sorted on first access.
    """

    _added_rank: dict[str, int] | None = None
    _removed_rank: dict[str, int] | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> _LazyFrontierDelta:
        return _new_object(cls)

    def __init__(self, added: tuple[DDTask, ...] = (), removed: tuple[DDTask, ...] = ()) -> None:
        self.__dict__.update(_added=added, _removed=removed)

    @property
    def added(self) -> tuple[DDTask, ...]:
        namespace = self.__dict__
        cached = namespace.get("_added", _MISSING)
        if cached is _MISSING:
            cached = namespace["_core_delta"].added
            rank = self._added_rank
            if rank is not None and len(cached) > 1 and "_as_listed" not in namespace:
                cached = tuple(sorted(cached, key=lambda task: rank[task.column]))
            namespace["_added"] = cached
        return cached

    @property
    def removed(self) -> tuple[DDTask, ...]:
        namespace = self.__dict__
        cached = namespace.get("_removed", _MISSING)
        if cached is _MISSING:
            cached = namespace["_core_delta"].removed
            rank = self._removed_rank
            if rank is not None and len(cached) > 1:
                cached = tuple(sorted(cached, key=lambda task: rank[task.column]))
            namespace["_removed"] = cached
        return cached

    @property
    def empty(self) -> bool:
        core_delta = self.__dict__.get("_core_delta")
        if core_delta is None:
            return not self.added and not self.removed
        return bool(core_delta.empty)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DDFrontierDelta):
            return (self.added, self.removed) == (other.added, other.removed)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.added, self.removed))

    def __repr__(self) -> str:
        return f"FrontierDelta(added={self.added!r}, removed={self.removed!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled and copied as DataDesigner's own class: a tracker's subclass is not importable.
        return (DDFrontierDelta, (self.added, self.removed))


def _delta_class(
    graph: Any, order: tuple[str, ...], batch: frozenset[str]
) -> tuple[type[_LazyFrontierDelta], bool]:
    """The delta class whose tuples list tasks in DataDesigner's order for *graph*, and whether
    it lists added tasks as the core built them (True) or sorts them by column name.

    A completion adds tasks column by column in name order; a drop removes cell tasks in the
    graph's column order.  The core uses *order* (topological) for both: a graph where that
    already agrees needs no sorting at all.
    """
    position = {name: i for i, name in enumerate(order)}
    added_rank: dict[str, int] | None = None
    for column in order:
        downstream = sorted(graph.get_downstream_columns(column), key=position.__getitem__)
        if downstream != sorted(downstream):
            added_rank = {name: i for i, name in enumerate(sorted(order))}
            break
    removed_rank: dict[str, int] | None = None
    columns = list(graph.columns)
    if [c for c in order if c not in batch] != [c for c in columns if c not in batch]:
        removed_rank = {name: i for i, name in enumerate(columns)}
    if added_rank is None and removed_rank is None:
        return _LazyFrontierDelta, True
    ordered = type(
        "_OrderedFrontierDelta",
        (_LazyFrontierDelta,),
        {"_added_rank": added_rank, "_removed_rank": removed_rank, "__module__": __name__},
    )
    return ordered, added_rank is None


class CompletionTracker:
    """DataDesigner's tracker API over cellfrontier's compiled bitmaps."""

    def __init__(self) -> None:
        self._graph: Any = None
        self._row_group_plan: Any = None
        self._core: DataDesignerCore | None = None
        self._batch_columns: frozenset[str] = frozenset()
        self._column_position: dict[str, int] = {}
        self._lists_roots_as_built = True
        # Without a graph: DataDesigner's own layout (row group -> column -> rows, as sets).
        self._completed: dict[Any, dict[Any, set[Any]]] = {}
        self._dropped: dict[Any, set[Any]] = {}
        self._batch_complete: dict[Any, set[Any]] = {}
        # Compacted row group -> its dropped rows as a little-endian packed mask.
        self._compacted_dropped: dict[Any, bytes] = {}
        # Frontier entries the bitmaps cannot hold (every entry without a graph; with one,
        # foreign task types, unknown groups, ...): task -> its id, and id -> tasks.  The core
        # registers every task it holds under its id itself, so that mark_enqueued
        # acknowledges ids in one compiled call.
        self._extra: dict[DDTask, str] = {}
        self._extra_ids: dict[str, list[DDTask]] = {}

    @classmethod
    def with_graph(cls, graph: Any, row_groups: Any) -> CompletionTracker:
        """Create a frontier-enabled tracker backed by an execution graph (or none)."""
        tracker = cls()
        tracker._graph = graph
        tracker._row_group_plan = plan = normalize_row_group_plan(row_groups)
        if graph is None:
            return tracker  # DataDesigner's graph-less tracker, with a plan for its queries
        columns = list(graph.columns)
        known = set(columns)
        cf_graph = ExecutionGraph()
        for column in columns:
            cf_graph.add_column(column, graph.get_strategy(column))
        try:
            for column in columns:
                for upstream in sorted(graph.get_upstream_columns(column)):
                    cf_graph.add_edge(upstream, column)
                for downstream in graph.get_downstream_columns(column):
                    if downstream not in known:
                        raise UnknownColumnError(f"edge {column!r} -> unregistered column {downstream!r}")
            compiled = cf_graph.compile()
        except (UnknownColumnError, DAGCircularDependencyError) as exc:
            # DataDesigner accepts such a graph and fails when it first orders its columns.
            raise DDDAGCircularDependencyError(
                f"The execution graph contains cyclic dependencies. (with_graph() cannot order the "
                f"graph's columns: {exc})"
            ) from exc
        batch = frozenset(c for c in columns if cf_graph.get_strategy(c) is GenerationStrategy.FULL_COLUMN)
        delta_class, tracker._lists_roots_as_built = _delta_class(graph, compiled.names, batch)
        tracker._core = DataDesignerCore(compiled, plan, DDTask, delta_class, _EMPTY_DELTA, _ID_KEY)
        tracker._batch_columns = batch
        tracker._column_position = {name: i for i, name in enumerate(columns)}
        return tracker

    # -- conversions --------------------------------------------------------------------

    def _require_graph(self) -> DataDesignerCore:
        if self._core is None:
            raise RuntimeError("This method requires a graph to be set.")
        return self._core

    def _check_row_group(self, row_group: Any) -> int:
        """The size of *row_group*, or DataDesigner's error for a group its plan does not have."""
        plan = self._row_group_plan
        if not plan.has_row_group(row_group):
            raise UnknownRowGroupError(
                f"Unknown row_group {row_group}. Known row_groups: {plan.describe_known_row_groups()}"
            )
        return int(plan.row_group_size(row_group))

    def _reraise(
        self, exc: CellFrontierError, method: str, row_group: Any, column: Any = None, size: Any = None
    ) -> NoReturn:
        """Raise the core's *exc* as DataDesigner words that fault, with the core's detail after it.

        DataDesigner checks the row group first, then the column's strategy (a name its graph
        does not know is its graph's ``KeyError``), then the size.  Faults it does not check (a
        row index outside the group, say) keep the library's own wording.
        """
        try:
            expected = self._check_row_group(row_group)
        except UnknownRowGroupError as unknown:
            raise unknown from exc
        if isinstance(exc, UnknownColumnError):
            raise UnknownColumnError(f"{column!r} ({exc})") from exc
        if isinstance(exc, StrategyMismatchError):
            wanted = "full_column" if method == "mark_row_range_complete" else "cell_by_cell"
            actual = "cell_by_cell" if wanted == "full_column" else "full_column"
            raise StrategyMismatchError(
                f"{method}() requires {wanted} strategy, but column '{column}' has {actual} ({exc})"
            ) from exc
        if size is not None and isinstance(exc, (SizeMismatchError, IndexTypeError)):
            if size != expected:
                raise SizeMismatchError(
                    f"Row-group size mismatch for rg={row_group}: got {size}, expected {expected}"
                ) from exc
            if isinstance(exc, IndexTypeError):  # equal but not an integer: what range() says
                raise IndexTypeError(
                    f"{type(size).__name__!r} object cannot be interpreted as an integer ({exc})"
                ) from exc
        raise exc

    # -- mutations ----------------------------------------------------------------------

    def mark_cell_complete(self, column: str, row_group: int, row_index: int) -> DDFrontierDelta:
        core = self._core
        if core is None:
            row = _checked_row(row_index, "mark_cell_complete")
            self._completed.setdefault(row_group, {}).setdefault(column, set()).add(row)
            return _EMPTY_DELTA
        try:
            delta: Any = core.mark_cell(column, row_group, row_index)
        except CellFrontierError as exc:
            self._reraise(exc, "mark_cell_complete", row_group, column)
        if self._extra:
            return self._with_extra_removed(delta, _dd_task(column, row_group, row_index, "cell"))
        return delta

    def mark_row_range_complete(self, column: str, row_group: int, row_group_size: int) -> DDFrontierDelta:
        core = self._core
        if core is None:
            rows = set(range(row_group_size))
            self._completed.setdefault(row_group, {})[column] = rows
            self._batch_complete.setdefault(row_group, set()).add(column)
            return _EMPTY_DELTA
        try:
            delta: Any = core.mark_range(column, row_group, row_group_size)
        except CellFrontierError as exc:
            self._reraise(exc, "mark_row_range_complete", row_group, column, row_group_size)
        if self._extra:
            return self._with_extra_removed(delta, _dd_task(column, row_group, None, "batch"))
        return delta

    def drop_row(self, row_group: int, row_index: int) -> DDFrontierDelta:
        core = self._core
        if core is None:
            self._dropped.setdefault(row_group, set()).add(_checked_row(row_index, "drop_row"))
            return _EMPTY_DELTA
        try:
            delta: Any = core.drop_row(row_group, row_index)
        except CellFrontierError as exc:
            self._reraise(exc, "drop_row", row_group)
        if not self._extra:
            return delta
        # Cell tasks of graph columns for this row leave the frontier, wherever they are held;
        # tasks of other names (aliases, unknown columns) stay, as in DataDesigner.
        position = self._column_position
        extra = [
            t
            for t in self._extra
            if t.row_group == row_group
            and t.row_index == row_index
            and t.task_type == "cell"
            and t.column in position
        ]
        if not extra:
            return delta
        for task in extra:
            self._remove_extra(task)
        removed = sorted([*delta.removed, *extra], key=lambda t: position[t.column])
        return DDFrontierDelta(added=tuple(delta.added), removed=tuple(removed))

    def add_root_tasks(
        self, row_group: int, row_group_size: int, *, columns: tuple[str, ...] | None = None
    ) -> DDFrontierDelta:
        """Add root/from-scratch tasks for one admitted row group."""
        core = self._require_graph()
        expected = self._check_row_group(row_group)
        if expected != row_group_size:
            raise SizeMismatchError(
                f"Row-group size mismatch for rg={row_group}: got {row_group_size}, expected {expected}"
            )
        names = tuple(columns) if columns else None
        if names is not None:
            for name in names:
                if name not in core.index:
                    raise UnknownColumnError(
                        f"{name!r} (add_root_tasks() got a column the graph does not have)"
                    )
        try:
            delta: Any = core.add_roots(row_group, row_group_size, names)
        except CellFrontierError as exc:
            self._reraise(exc, "add_root_tasks", row_group, size=row_group_size)
        if not self._lists_roots_as_built and delta is not _EMPTY_DELTA:
            delta.__dict__["_as_listed"] = True  # in the order of the columns, not by name
        return delta

    def add_ready_tasks(self, tasks: list[DDTask] | tuple[DDTask, ...]) -> DDFrontierDelta:
        """Add ready tasks to the frontier idempotently."""
        core = self._core
        added: list[DDTask] = []
        for task in tasks:
            if core is not None and self._representable(task):
                # Registered under its id, so that acknowledging it (the scheduler's retry
                # path) is one lookup instead of a scan of the whole frontier.
                scratch = task.task_type == "from_scratch"
                if core.add_ready(
                    task.column, task.row_group, task.row_index, scratch, _compute_task_id(task)
                ):
                    added.append(task)
            elif task not in self._extra:
                task_id = _compute_task_id(task)
                self._extra[task] = task_id
                self._extra_ids.setdefault(task_id, []).append(task)
                added.append(task)
        return DDFrontierDelta(added=tuple(added), removed=())

    def mark_enqueued(self, task_ids: set[str] | list[str] | tuple[str, ...]) -> None:
        """Acknowledge tasks accepted by the ready queue (they leave the frontier)."""
        wanted = set(task_ids)
        if not wanted:
            return
        core = self._core
        if core is None:
            self._unready_extra_ids(wanted)
            return
        # Tasks the core holds under a known id: one compiled call.
        unmatched: Iterable[str] = core.unready_ids(wanted)
        if self._extra:
            unmatched = set(unmatched) - self._unready_extra_ids(wanted)
        if unmatched:
            # Ids of tasks nobody listed since they became ready (built by the caller, say):
            # listing the frontier registers every task in it, then the ids resolve.
            core.ready_tasks()
            core.unready_ids(unmatched)

    def mark_complete(self, task: DDTask) -> None:
        """Compatibility hook for scheduler terminal accounting."""

    def compact_row_group(self, row_group: int) -> None:
        """Release detailed state while retaining terminal group and drop queries."""
        if row_group in self._compacted_dropped:
            return
        core = self._core
        if core is None:
            self._compacted_dropped[row_group] = _pack_rows(self._dropped.pop(row_group, ()))
            self._completed.pop(row_group, None)
            self._batch_complete.pop(row_group, None)
        else:
            self._check_row_group(row_group)
            self._compacted_dropped[row_group] = core.compact(row_group)
        for task in [t for t in self._extra if t.row_group == row_group]:
            self._remove_extra(task)

    # -- queries ------------------------------------------------------------------------

    def is_complete(self, ref: DDSliceRef) -> bool:
        core = self._core
        if core is None:
            return ref.row_index in self._completed.get(ref.row_group, _NO_COLUMNS).get(ref.column, _NO_ROWS)
        row: int | None = ref.row_index
        if type(row) is not int:
            row = _as_row(row)
            if row is None:
                return False
        return bool(core.cell_done(ref.column, ref.row_group, row))

    def is_all_complete(self, cells: list[DDSliceRef]) -> bool:
        """Whether every cell is done; ``row_index=None`` asks for a completed range."""
        for ref in cells:
            if ref.row_index is None:
                if not self._is_batch_complete(ref.column, ref.row_group):
                    return False
            elif not self.is_complete(ref):
                return False
        return True

    def is_column_complete_for_rg(self, column: str, row_group_index: int) -> bool:
        if self._is_batch_complete(column, row_group_index):
            return True
        plan = self._row_group_plan
        if plan is None or not plan.has_row_group(row_group_index):
            return False
        size = plan.row_group_size(row_group_index)
        if size == 0:
            return False
        core = self._core
        if core is None:
            done = self._completed.get(row_group_index, _NO_COLUMNS).get(column, _NO_ROWS)
            dropped = self._dropped.get(row_group_index, _NO_ROWS)
            return all(row in done or row in dropped for row in range(size))
        return bool(core.column_complete(column, row_group_index))

    def is_dropped(self, row_group: int, row_index: int) -> bool:
        packed = self._compacted_dropped.get(row_group)
        if packed is not None:
            return _packed_bit(packed, row_index)
        core = self._core
        if core is None:
            return row_index in self._dropped.get(row_group, _NO_ROWS)
        row: int | None = row_index
        if type(row) is not int:
            row = _as_row(row)
        return bool(core.row_dropped(row_group, row))

    def is_row_group_complete(self, row_group: int, row_group_size: int, all_columns: list[str]) -> bool:
        """All non-dropped rows have all columns done."""
        if row_group in self._compacted_dropped:
            return True
        core = self._core
        size = None if core is None else core.group_size(row_group)
        if core is not None and size is None:
            return row_group_size <= 0 or not all_columns  # nothing is done in an untouched group
        if core is None or size != row_group_size:
            return self._slow_group_complete(row_group, row_group_size, all_columns)
        if any(c not in core.index for c in all_columns):
            return self._slow_group_complete(row_group, row_group_size, all_columns)
        return bool(core.group_resolved(row_group, row_group_size, list(all_columns)))

    def ready_frontier(self) -> tuple[DDTask, ...]:
        """Dependency-ready tasks not yet acknowledged as enqueued."""
        if self._core is None:
            return tuple(self._extra)
        tasks = self._core.ready_tasks()
        if self._extra:
            tasks.extend(self._extra)
        return tuple(tasks)

    def get_ready_tasks(self, dispatched: set[DDTask], admitted_rgs: set[int] | None = None) -> list[DDTask]:
        return [
            t
            for t in self.ready_frontier()
            if t not in dispatched and (admitted_rgs is None or t.row_group in admitted_rgs)
        ]

    def is_frontier_task(self, task: DDTask) -> bool:
        if task in self._extra:
            return True
        return self._core is not None and self._in_bits(task)

    def seed_frontier(self) -> None:
        """Populate the frontier with root tasks (columns with no upstream deps)."""
        if self._core is None:
            raise RuntimeError("This method requires a graph to be set.")
        if self._row_group_plan is None:
            raise RuntimeError("This method requires row groups to be set.")
        for column in self._graph.get_root_columns():
            for rg_id, rg_size in self._row_group_plan:
                self.add_root_tasks(rg_id, rg_size, columns=(column,))

    # -- internals ----------------------------------------------------------------------

    def _with_extra_removed(self, delta: Any, task: DDTask) -> Any:
        """*delta* (from the core), plus *task* if it was a frontier entry the bitmaps did not hold."""
        if task not in self._extra:
            return delta
        self._remove_extra(task)
        return DDFrontierDelta(added=tuple(delta.added), removed=(*delta.removed, task))

    def _remove_extra(self, task: DDTask) -> None:
        task_id = self._extra.pop(task)
        same_id = self._extra_ids[task_id]
        same_id.remove(task)
        if not same_id:
            del self._extra_ids[task_id]

    def _unready_extra_ids(self, task_ids: set[str]) -> set[str]:
        """Take the extra entries with these ids out of the frontier; returns the ids found."""
        found: set[str] = set()
        by_id = self._extra_ids
        for task_id in task_ids:
            tasks = by_id.pop(task_id, None)
            if tasks is not None:
                found.add(task_id)
                for task in tasks:
                    del self._extra[task]
        return found

    def _is_batch_complete(self, column: str, row_group: int) -> bool:
        core = self._core
        if core is None:
            return column in self._batch_complete.get(row_group, _NO_ROWS)
        return bool(core.batch_done(column, row_group))

    def _slow_group_complete(self, row_group: int, row_group_size: int, all_columns: list[str]) -> bool:
        for row_index in range(row_group_size):
            if self.is_dropped(row_group, row_index):
                continue
            for column in all_columns:
                if not self.is_complete(DDSliceRef(column=column, row_group=row_group, row_index=row_index)):
                    return False
        return True

    def _representable(self, task: Any) -> bool:
        """Whether the bitmaps can hold *task* (known column and group, consistent type)."""
        core = self._core
        row_group = task.row_group
        if (
            core is None
            or type(row_group) is not int
            or task.column not in core.index
            or not self._row_group_plan.has_row_group(row_group)
        ):
            return False
        batch = task.column in self._batch_columns
        if task.task_type == "cell":
            index = task.row_index
            return (
                not batch
                and type(index) is int
                and 0 <= index < self._row_group_plan.row_group_size(row_group)
            )
        return batch and task.row_index is None and task.task_type in ("batch", "from_scratch")

    def _in_bits(self, task: Any) -> bool:
        if not self._representable(task):
            return False
        return bool(
            self._core.is_listed(  # type: ignore[union-attr]
                task.column, task.row_group, task.row_index, task.task_type == "from_scratch"
            )
        )


# -- installing into DataDesigner ---------------------------------------------------------

# Modules known to bind the tracker class or stable_task_id at import time; any other loaded
# DataDesigner module that bound them is found by scanning sys.modules.
_KNOWN_MODULES = (
    "data_designer.engine.dataset_builders.scheduling.completion",
    "data_designer.engine.dataset_builders.async_scheduler",
    "data_designer.engine.dataset_builders.dataset_builder",
    "data_designer.engine.dataset_builders.scheduling.resolver",
    "data_designer.engine.dataset_builders.scheduling.resources",
)
_patched: list[tuple[Any, str, Any]] = []


def _data_designer_modules() -> Iterator[Any]:
    for name in _KNOWN_MODULES:
        with contextlib.suppress(ImportError):
            __import__(name)
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "data_designer" or name.startswith("data_designer.")):
            yield module


TESTED_VERSIONS = ((0, 9, 6), (0, 10))
"""DataDesigner releases this backend is tested with: ``>= 0.9.6, < 0.10``.

The backend replaces DataDesigner's tracker class in its scheduler's modules, so it depends on
that class's public API and on which modules bind it; both are unchanged across 0.9.6 and
0.9.7, and CI runs the backend's DataDesigner tests against each.  A minor release (0.10) may
change either, so :func:`install` refuses one until it has been tested."""
_DISTRIBUTION = "data-designer-engine"


class UnsupportedDataDesignerError(CellFrontierError, RuntimeError):
    """The installed DataDesigner is outside the versions the backend is tested with."""


def _tested_range() -> str:
    low, high = TESTED_VERSIONS
    return f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"


def installed_data_designer_version() -> str | None:
    """The installed ``data-designer-engine`` version, or None when its metadata is missing."""
    try:
        return importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...] | None:
    """The numeric release of *version* (``"0.9.7"`` -> ``(0, 9, 7)``; None if it has none)."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def is_tested_version(version: str) -> bool:
    """Whether *version* is in :data:`TESTED_VERSIONS` (pre-releases of 0.10 count as 0.10)."""
    release = _release(version)
    if release is None:
        return False
    low, high = TESTED_VERSIONS
    return low <= release < high


def check_version(*, force: bool = False) -> str | None:
    """Refuse a DataDesigner outside :data:`TESTED_VERSIONS` (warn instead with *force*).

    Returns the installed version (None when its package metadata cannot be read, e.g. a
    source checkout on ``sys.path``: then nothing is known to refuse, and nothing is).
    """
    version = installed_data_designer_version()
    if version is None or is_tested_version(version):
        return version
    message = (
        f"cellfrontier's DataDesigner backend is tested with {_DISTRIBUTION}{_tested_range()}, but "
        f"{version} is installed"
    )
    if not force:
        raise UnsupportedDataDesignerError(
            f"{message}; install a tested version (pip install 'cellfrontier[datadesigner]'), or call "
            "install(force=True) to try this one anyway"
        )
    warnings.warn(f"{message}; installing the backend anyway (force=True)", RuntimeWarning, stacklevel=3)
    return version


def install(*, force: bool = False) -> None:
    """Make DataDesigner use this tracker (idempotent; undo with :func:`uninstall`).

    Every loaded DataDesigner module whose ``CompletionTracker`` is DataDesigner's own class
    gets this one instead, and ``stable_task_id`` is replaced by a memoising version that
    returns the same ids.  A DataDesigner outside :data:`TESTED_VERSIONS` is refused with
    :class:`UnsupportedDataDesignerError`; ``force=True`` installs anyway, with a warning.
    """
    if _patched:
        return
    check_version(force=force)
    replacements = {
        "CompletionTracker": (ORIGINAL_TRACKER, CompletionTracker),
        "stable_task_id": (ORIGINAL_STABLE_TASK_ID, memoized_stable_task_id),
    }
    for module in _data_designer_modules():
        for attr, (original, replacement) in replacements.items():
            if getattr(module, attr, None) is original:
                setattr(module, attr, replacement)
                _patched.append((module, attr, original))


def uninstall() -> None:
    """Restore DataDesigner's own tracker everywhere :func:`install` replaced it.

    Modules imported while installed that bound the replacements by name are restored too.
    """
    while _patched:
        module, attr, original = _patched.pop()
        setattr(module, attr, original)
    originals = {
        "CompletionTracker": (CompletionTracker, ORIGINAL_TRACKER),
        "stable_task_id": (memoized_stable_task_id, ORIGINAL_STABLE_TASK_ID),
    }
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "data_designer" or name.startswith("data_designer.")):
            continue
        for attr, (replacement, original) in originals.items():
            if getattr(module, attr, None) is replacement:
                setattr(module, attr, original)


def is_installed() -> bool:
    return bool(_patched)


@contextlib.contextmanager
def installed(*, force: bool = False) -> Iterator[None]:
    """Context manager form of :func:`install` / :func:`uninstall`."""
    already = is_installed()
    install(force=force)
    try:
        yield
    finally:
        if not already:
            uninstall()


def iter_patched_modules() -> Iterable[str]:
    """Names of the modules currently patched (for diagnostics)."""
    return sorted({m.__name__ for m, _, _ in _patched})
