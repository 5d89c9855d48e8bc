"""Drop-in backend for NVIDIA DataDesigner's async scheduler.

:class:`CompletionTracker` has the public API of DataDesigner's own tracker
(``data_designer.engine.dataset_builders.scheduling.completion.CompletionTracker``, version
0.9.6): the same methods, arguments, return types and exceptions, speaking DataDesigner's own
``Task``, ``SliceRef``, ``FrontierDelta``, ``ExecutionGraph`` and row-group plans.  Its state
lives in cellfrontier's compiled bitmaps, run in DataDesigner-compatible mode so that the
frontier evolves exactly as DataDesigner's does (tasks are re-checked on every event, a
dropped row re-checks every full-column task, admitting a group adds all its root cells).

:func:`install` makes DataDesigner's builder and scheduler use it::

    from cellfrontier.integrations import data_designer as cf_dd

    with cf_dd.installed():
        ...  # build datasets with DataDesigner's async engine, as usual

Deliberate differences, where DataDesigner would silently corrupt its state: a row index
that is not an integer in ``0 <= row_index < row_group_size`` raises ``RowIndexError`` /
``IndexTypeError`` (``ValueError`` / ``TypeError`` subclasses) instead of being stored; an
invalid call never leaves a partial change behind (DataDesigner's ``add_root_tasks`` adds the
tasks of the columns before an unknown one); the graph is copied when the tracker is built
(later changes to it are not seen).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

try:
    from data_designer.engine.dataset_builders.row_group_plan import normalize_row_group_plan
    from data_designer.engine.dataset_builders.scheduling import completion as _dd_completion
    from data_designer.engine.dataset_builders.scheduling import resources as _dd_resources
    from data_designer.engine.dataset_builders.scheduling.completion import FrontierDelta as DDFrontierDelta
    from data_designer.engine.dataset_builders.scheduling.task_model import SliceRef as DDSliceRef
    from data_designer.engine.dataset_builders.scheduling.task_model import Task as DDTask
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "cellfrontier.integrations.data_designer needs NVIDIA DataDesigner; "
        "install it with: pip install 'cellfrontier[datadesigner]'"
    ) from exc

from cellfrontier._core import TrackerCore
from cellfrontier._core import stable_task_id as _c_stable_task_id
from cellfrontier.errors import CellFrontierError, UnknownRowGroupError
from cellfrontier.graph import ExecutionGraph
from cellfrontier.strategies import GenerationStrategy

__all__ = ["CompletionTracker", "install", "installed", "is_installed", "uninstall"]

ORIGINAL_TRACKER = _dd_completion.CompletionTracker
ORIGINAL_STABLE_TASK_ID = _dd_resources.stable_task_id

_new_object = object.__new__
_EMPTY_DELTA = DDFrontierDelta()
# Key of the stable id stored in a materialised task's __dict__ (invisible to the dataclass's
# eq/hash/repr, and equal to what stable_task_id computes from the task's fields).
_ID_KEY = "_cf_task_id"
# The id registry is pruned of tasks of inactive row groups when it grows past this size and
# past twice its size after the previous pruning: amortised O(1) per registered task.
_REGISTRY_PRUNE_MIN = 65_536


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


class _LazyFrontierDelta(DDFrontierDelta):
    """DataDesigner's ``FrontierDelta`` whose task tuples are built on first access.

    The compiled core makes these itself (``TrackerCore.set_delta_class``): ``__dict__`` holds
    the core's own delta under ``_core_delta``, and the tuples once they were asked for.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> _LazyFrontierDelta:
        return _new_object(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # fields are set by the core
        pass

    @property
    def added(self) -> tuple[DDTask, ...]:
        cached = self.__dict__.get("_added")
        if cached is None:
            cached = self.__dict__["_core_delta"].added
            self.__dict__["_added"] = cached
        return cached

    @property
    def removed(self) -> tuple[DDTask, ...]:
        cached = self.__dict__.get("_removed")
        if cached is None:
            cached = self.__dict__["_core_delta"].removed
            self.__dict__["_removed"] = cached
        return cached

    @property
    def empty(self) -> bool:
        return bool(self.__dict__["_core_delta"].empty)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DDFrontierDelta):
            return (self.added, self.removed) == (other.added, other.removed)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.added, self.removed))

    def __repr__(self) -> str:
        return f"FrontierDelta(added={self.added!r}, removed={self.removed!r})"


class CompletionTracker:
    """DataDesigner's tracker API over cellfrontier's compiled bitmaps."""

    def __init__(self) -> None:
        self._graph: Any = None
        self._row_group_plan: Any = None
        self._core: TrackerCore | None = None
        self._cf_graph: ExecutionGraph | None = None
        self._batch_columns: frozenset[str] = frozenset()
        # Graph-less state: one int bitset per (row group, column), as DataDesigner keeps sets.
        self._completed: dict[int, dict[str, int]] = {}
        self._dropped: dict[int, int] = {}
        self._batch_complete: dict[int, set[str]] = {}
        self._compacted_dropped: dict[int, int] = {}
        # Frontier entries the bitmaps cannot hold (foreign task types, unknown groups, ...).
        self._extra: dict[DDTask, None] = {}
        # id -> (row group, column id, row) for every task the core built (it computes the ids
        # as it builds them), so that mark_enqueued acknowledges ids in one compiled call.
        self._registry: dict[str, tuple[int, int, int]] = {}
        self._registry_limit = _REGISTRY_PRUNE_MIN

    @classmethod
    def with_graph(cls, graph: Any, row_groups: Any) -> CompletionTracker:
        """Create a frontier-enabled tracker backed by an execution graph."""
        tracker = cls()
        tracker._graph = graph
        tracker._row_group_plan = normalize_row_group_plan(row_groups)
        cf_graph = ExecutionGraph()
        for column in graph.columns:
            cf_graph.add_column(column, graph.get_strategy(column))
        for column in graph.columns:
            for upstream in sorted(graph.get_upstream_columns(column)):
                cf_graph.add_edge(upstream, column)
        tracker._cf_graph = cf_graph
        tracker._core = TrackerCore(cf_graph.compile(), tracker._row_group_plan, dd_compat=True)
        # Tasks hold names and numbers only: they are built untracked by the cyclic GC.
        tracker._core.set_task_class(DDTask, id_key=_ID_KEY, registry=tracker._registry, untrack=True)
        tracker._core.set_delta_class(_LazyFrontierDelta, _EMPTY_DELTA)
        tracker._batch_columns = frozenset(
            c for c in cf_graph.columns if cf_graph.get_strategy(c) is GenerationStrategy.FULL_COLUMN
        )
        return tracker

    # -- conversions --------------------------------------------------------------------

    @staticmethod
    def _with_extra_removed(delta: Any, extra_removed: tuple[DDTask, ...]) -> DDFrontierDelta:
        """*delta* (from the core) plus frontier entries the bitmaps could not hold."""
        if not extra_removed:
            return delta
        return DDFrontierDelta(added=tuple(delta.added), removed=tuple(delta.removed) + extra_removed)

    def _require_graph(self) -> TrackerCore:
        if self._core is None:
            raise RuntimeError("This method requires a graph to be set.")
        return self._core

    def _check_row_group_first(self, exc: CellFrontierError, row_group: Any) -> None:
        """DataDesigner validates the row group before anything else: report that fault first."""
        plan = self._row_group_plan
        if not plan.has_row_group(row_group):
            raise UnknownRowGroupError(
                f"Unknown row_group {row_group}. Known row_groups: {plan.describe_known_row_groups()}"
            ) from exc

    # -- mutations ----------------------------------------------------------------------

    def mark_cell_complete(self, column: str, row_group: int, row_index: int) -> DDFrontierDelta:
        core = self._core
        if core is None:
            group = self._completed.setdefault(row_group, {})
            group[column] = group.get(column, 0) | (1 << _plain_index(row_index))
            return _EMPTY_DELTA
        try:
            delta: Any = core.mark_cell(column, row_group, row_index)
        except CellFrontierError as exc:
            self._check_row_group_first(exc, row_group)
            raise
        if self._extra:
            return self._with_extra_removed(delta, self._discard_extra(column, row_group, row_index, "cell"))
        return delta

    def mark_row_range_complete(self, column: str, row_group: int, row_group_size: int) -> DDFrontierDelta:
        core = self._core
        if core is None:
            group = self._completed.setdefault(row_group, {})
            group[column] = (1 << row_group_size) - 1 if row_group_size > 0 else 0
            self._batch_complete.setdefault(row_group, set()).add(column)
            return _EMPTY_DELTA
        try:
            delta: Any = core.mark_range(column, row_group, row_group_size)
        except CellFrontierError as exc:
            self._check_row_group_first(exc, row_group)
            raise
        if self._extra:
            return self._with_extra_removed(delta, self._discard_extra(column, row_group, None, "batch"))
        return delta

    def drop_row(self, row_group: int, row_index: int) -> DDFrontierDelta:
        core = self._core
        if core is None:
            self._dropped[row_group] = self._dropped.get(row_group, 0) | (1 << _plain_index(row_index))
            return _EMPTY_DELTA
        try:
            delta: Any = core.drop_row(row_group, row_index)
        except CellFrontierError as exc:
            self._check_row_group_first(exc, row_group)
            raise
        extra: tuple[DDTask, ...] = ()
        if self._extra:
            extra = tuple(
                t
                for t in list(self._extra)
                if t.row_group == row_group and t.row_index == row_index and t.task_type == "cell"
            )
            for t in extra:
                del self._extra[t]
        return self._with_extra_removed(delta, extra)

    def add_root_tasks(
        self, row_group: int, row_group_size: int, *, columns: tuple[str, ...] | None = None
    ) -> DDFrontierDelta:
        """Add root/from-scratch tasks for one admitted row group."""
        core = self._require_graph()
        plan = self._row_group_plan
        if not plan.has_row_group(row_group):
            raise ValueError(
                f"Unknown row_group {row_group}. Known row_groups: {plan.describe_known_row_groups()}"
            )
        expected = plan.row_group_size(row_group)
        if expected != row_group_size:
            raise ValueError(
                f"Row-group size mismatch for rg={row_group}: got {row_group_size}, expected {expected}"
            )
        names = tuple(columns) if columns else None
        if names is not None:
            for name in names:
                if name not in core.index:
                    raise KeyError(name)
        return core.add_roots(row_group, row_group_size, names)

    def add_ready_tasks(self, tasks: list[DDTask] | tuple[DDTask, ...]) -> DDFrontierDelta:
        """Add ready tasks to the frontier idempotently."""
        core = self._require_graph() if self._core is not None else None
        added: list[DDTask] = []
        for task in tasks:
            if core is not None and self._representable(task):
                if core.set_ready(
                    task.column, task.row_group, task.row_index, True, task.task_type == "from_scratch"
                ):
                    added.append(task)
            elif task not in self._extra and not (core is not None and self._in_bits(task)):
                self._extra[task] = None
                added.append(task)
        return DDFrontierDelta(added=tuple(added), removed=())

    def mark_enqueued(self, task_ids: set[str] | list[str] | tuple[str, ...]) -> None:
        """Acknowledge tasks accepted by the ready queue (they leave the frontier)."""
        wanted = set(task_ids)
        if not wanted:
            return
        core = self._core
        # Tasks the core built are registered under their ids: one compiled call.
        unmatched = core.unready_ids(wanted, self._registry) if core is not None else wanted
        if unmatched:
            # Ids of tasks the core did not build (added with add_ready_tasks, say): compare
            # them with the ids of the whole frontier, as DataDesigner's tracker does.
            remaining = set(unmatched)
            for task in self._core.ready_tasks() if self._core is not None else ():
                if _compute_task_id(task) in remaining:
                    self._unset(task)
            for task in list(self._extra):
                if _compute_task_id(task) in remaining:
                    self._unset(task)

    def mark_complete(self, task: DDTask) -> None:
        """Compatibility hook for scheduler terminal accounting."""

    def compact_row_group(self, row_group: int) -> None:
        """Release detailed state while retaining terminal group and drop queries."""
        if row_group in self._compacted_dropped:
            return
        core = self._core
        if core is None:
            self._compacted_dropped[row_group] = self._dropped.pop(row_group, 0)
            self._completed.pop(row_group, None)
            self._batch_complete.pop(row_group, None)
            return
        plan = self._row_group_plan
        if not plan.has_row_group(row_group):
            raise ValueError(
                f"Unknown row_group {row_group}. Known row_groups: {plan.describe_known_row_groups()}"
            )
        group = core.groups.get(row_group)
        dropped = 0
        if group is not None:
            words = group.bits[2 * len(core.names) * group.nw : (2 * len(core.names) + 1) * group.nw]
            dropped = int.from_bytes(words.astype("<u8").tobytes(), "little")
            core.compact(row_group)
        self._compacted_dropped[row_group] = dropped
        for t in [t for t in self._extra if t.row_group == row_group]:
            del self._extra[t]
        if len(self._registry) > self._registry_limit:
            self._prune_registry()

    # -- queries ------------------------------------------------------------------------

    def is_complete(self, ref: DDSliceRef) -> bool:
        if ref.row_index is None or isinstance(ref.row_index, bool) or not isinstance(ref.row_index, int):
            return False
        core = self._core
        if core is None:
            return bool((self._completed.get(ref.row_group, {}).get(ref.column, 0) >> ref.row_index) & 1)
        if ref.column not in core.index or ref.row_group not in core.groups:
            return False
        group = core.groups[ref.row_group]
        if not 0 <= ref.row_index < group.n:
            return False
        return bool(core.is_done(ref.column, ref.row_group, ref.row_index))

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
        core = self._core
        if core is None:
            return False
        plan = self._row_group_plan
        if not plan.has_row_group(row_group_index) or plan.row_group_size(row_group_index) == 0:
            return False
        if column not in core.index or row_group_index not in core.groups:
            return False
        return bool(core.column_resolved(column, row_group_index))

    def is_dropped(self, row_group: int, row_index: int) -> bool:
        compacted = self._compacted_dropped.get(row_group)
        if compacted is not None:
            return isinstance(row_index, int) and row_index >= 0 and bool((compacted >> row_index) & 1)
        core = self._core
        if core is None:
            return bool((self._dropped.get(row_group, 0) >> row_index) & 1)
        group = core.groups.get(row_group)
        if group is None or not isinstance(row_index, int) or not 0 <= row_index < group.n:
            return False
        return bool(core.is_dropped(row_group, row_index))

    def is_row_group_complete(self, row_group: int, row_group_size: int, all_columns: list[str]) -> bool:
        """All non-dropped rows have all columns done."""
        if row_group in self._compacted_dropped:
            return True
        core = self._core
        if core is not None and row_group not in core.groups:
            return row_group_size <= 0 or not all_columns  # nothing is done in an untouched group
        if core is None or core.groups[row_group].n != row_group_size:
            return self._slow_group_complete(row_group, row_group_size, all_columns)
        if any(c not in core.index for c in all_columns):
            return self._slow_group_complete(row_group, row_group_size, all_columns)
        return bool(core.group_resolved(row_group, row_group_size, list(all_columns)))

    def ready_frontier(self) -> tuple[DDTask, ...]:
        """Dependency-ready tasks not yet acknowledged as enqueued."""
        if self._core is None:
            return tuple(self._extra)
        tasks = self._core.ready_tasks()
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

    def _is_batch_complete(self, column: str, row_group: int) -> bool:
        core = self._core
        if core is None:
            return column in self._batch_complete.get(row_group, ())
        if column not in core.index or row_group not in core.groups:
            return False
        return bool(core.is_done(column, row_group, None))

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
        if (
            core is None
            or task.column not in core.index
            or not self._row_group_plan.has_row_group(task.row_group)
        ):
            return False
        batch = task.column in self._batch_columns
        if task.task_type == "cell":
            index = task.row_index
            return (
                not batch
                and isinstance(index, int)
                and not isinstance(index, bool)
                and 0 <= index < self._row_group_plan.row_group_size(task.row_group)
            )
        return batch and task.row_index is None and task.task_type in ("batch", "from_scratch")

    def _in_bits(self, task: Any) -> bool:
        if not self._representable(task):
            return False
        return bool(
            self._core.is_ready(  # type: ignore[union-attr]
                task.column, task.row_group, task.row_index, task.task_type == "from_scratch"
            )
        )

    def _unset(self, task: Any) -> None:
        if self._extra and task in self._extra:
            del self._extra[task]
        elif self._representable(task):
            self._core.set_ready(  # type: ignore[union-attr]
                task.column, task.row_group, task.row_index, False, task.task_type == "from_scratch"
            )

    def _prune_registry(self) -> None:
        """Forget registered tasks of row groups that hold no detailed state any more.

        Tasks that were built (in a frontier listing or a delta) but never acknowledged stay in
        the registry until then; this keeps it proportional to the active row groups.
        """
        active = self._core.groups if self._core is not None else {}
        registry = self._registry
        for task_id in [k for k, entry in registry.items() if entry[0] not in active]:
            del registry[task_id]
        self._registry_limit = max(_REGISTRY_PRUNE_MIN, 2 * len(registry))

    def _discard_extra(
        self, column: str, row_group: int, row_index: int | None, task_type: str
    ) -> tuple[DDTask, ...]:
        task = DDTask(column=column, row_group=row_group, row_index=row_index, task_type=task_type)
        if task in self._extra:
            del self._extra[task]
            return (task,)
        return ()


def _plain_index(row_index: Any) -> int:
    from cellfrontier.errors import IndexTypeError, RowIndexError

    if isinstance(row_index, bool) or not isinstance(row_index, int):
        raise IndexTypeError(f"row index must be an integer, got {row_index!r}")
    if row_index < 0:
        raise RowIndexError(f"row index must be >= 0, got {row_index!r}")
    return row_index


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


def install() -> None:
    """Make DataDesigner use this tracker (idempotent; undo with :func:`uninstall`).

    Every loaded DataDesigner module whose ``CompletionTracker`` is DataDesigner's own class
    gets this one instead, and ``stable_task_id`` is replaced by a memoising version that
    returns the same ids.
    """
    if _patched:
        return
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
def installed() -> Iterator[None]:
    """Context manager form of :func:`install` / :func:`uninstall`."""
    already = is_installed()
    install()
    try:
        yield
    finally:
        if not already:
            uninstall()


def iter_patched_modules() -> Iterable[str]:
    """Names of the modules currently patched (for diagnostics)."""
    return sorted({m.__name__ for m, _, _ in _patched})
