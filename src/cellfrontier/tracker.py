"""``CompletionTracker``: the public face of the compiled core.

With a graph (:meth:`CompletionTracker.with_graph`) the tracker owns a
:class:`~cellfrontier._core.TrackerCore`: per-row-group bitmaps plus the frontier, updated
in O(fan-out) per event.  Every call validates its arguments completely before anything
changes, so a call that raises leaves the state as it was; bulk calls are all-or-nothing.

Without a graph (``CompletionTracker()``) it records completion state only, in the bitmaps of
:mod:`cellfrontier.completion_only`; methods that need the frontier raise :class:`NoGraphError`.

Concurrency: every call into the compiled core holds the core's own lock from its first
check to its result, so events from several threads never interleave and no update is lost,
and a checkpoint or a progress report reads one instant.  (A graph-less tracker serialises
its mutations with a lock to the same effect.)  Iterate over results (``pop_ready`` lists,
deltas) freely: they are snapshots.

State leaves and enters the tracker only as the plain values of :mod:`cellfrontier.state`
(``export_state`` / ``from_state`` of the core): :mod:`cellfrontier.checkpoint` turns them into
bytes and back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from cellfrontier import checkpoint
from cellfrontier._core import TrackerCore
from cellfrontier._values import FrontierDelta, Task
from cellfrontier.completion_only import CompletionOnlyState
from cellfrontier.errors import (
    CheckpointError,
    IndexTypeError,
    InvalidArgumentError,
    NoGraphError,
    RowGroupCompactedError,
    StrategyMismatchError,
    UnknownColumnError,
)
from cellfrontier.graph import ExecutionGraph
from cellfrontier.merge import merge_checkpoints
from cellfrontier.row_groups import RowGroupPlan, as_row_group_plan
from cellfrontier.state import PlainState
from cellfrontier.strategies import GenerationStrategy
from cellfrontier.tasks import SliceRef

__all__ = ["ColumnProgress", "CompletionTracker"]


class ColumnProgress(NamedTuple):
    """Per-column counts over the whole plan: cells completed, rows dropped, rows in total."""

    completed: int
    dropped: int
    total: int

    @property
    def remaining(self) -> int:
        return self.total - self.completed - self.dropped


class CompletionTracker:
    """Which cells are done, which rows are dropped, and which tasks are ready next."""

    def __init__(self) -> None:
        self._graph: ExecutionGraph | None = None
        self._plan: Any = None
        self._core: TrackerCore | None = None
        self._plain: CompletionOnlyState | None = CompletionOnlyState()

    @classmethod
    def with_graph(cls, graph: ExecutionGraph, row_groups: Any) -> CompletionTracker:
        """A frontier-enabled tracker for *graph* over *row_groups*.

        *row_groups* is an iterable of ``(id, size)`` pairs or a plan object such as
        :meth:`RowGroupPlan.uniform` (which costs nothing until a group is touched).
        The graph is frozen from now on.
        """
        if not isinstance(graph, ExecutionGraph):
            raise InvalidArgumentError(
                f"with_graph() needs a cellfrontier ExecutionGraph, got {type(graph).__name__}"
            )
        plan = as_row_group_plan(row_groups)
        return cls._over_core(graph, plan, TrackerCore(graph.compile(), plan))

    @classmethod
    def _over_core(cls, graph: ExecutionGraph, plan: Any, core: TrackerCore) -> CompletionTracker:
        tracker = cls()
        tracker._graph = graph
        tracker._plan = plan
        tracker._core = core
        tracker._plain = None
        tracker._bind_hot_paths()
        return tracker

    def _bind_hot_paths(self) -> None:
        """Route the per-event methods straight to the compiled core.

        A Python-level forwarding method costs more than the whole event (about 0.4 us
        against 0.3 us), so in graph mode the instance attributes below shadow the
        forwarding methods of the class.  Names, arguments, validation, errors and results
        are identical; the class methods remain the documentation.
        """
        core = self._core
        assert core is not None
        self.mark_cell_complete = core.mark_cell  # type: ignore[method-assign]
        self.mark_row_range_complete = core.mark_range  # type: ignore[method-assign]
        self.drop_row = core.drop_row  # type: ignore[method-assign]
        self.mark_cells_complete = core.mark_cells  # type: ignore[method-assign]
        self.drop_rows = core.drop_rows  # type: ignore[method-assign]
        self.pop_ready = core.pop_ready  # type: ignore[method-assign]
        self.pop_ready_batch = core.pop_ready_batch  # type: ignore[method-assign]
        self.ready_columns = core.ready_columns  # type: ignore[method-assign]
        self.add_root_tasks = core.add_roots  # type: ignore[method-assign]
        self.is_complete = core.is_done_ref  # type: ignore[method-assign,assignment]

    # -- properties ---------------------------------------------------------------------

    @property
    def graph(self) -> ExecutionGraph | None:
        return self._graph

    @property
    def row_group_plan(self) -> Any:
        return self._plan

    @property
    def nbytes(self) -> int:
        """Bytes of state held (numpy arrays and packed summaries)."""
        if self._core is not None:
            return int(self._core.nbytes)
        assert self._plain is not None
        return self._plain.nbytes()

    # -- mutations ----------------------------------------------------------------------

    def mark_cell_complete(self, column: str, row_group: int, row_index: int) -> FrontierDelta:
        """Record one finished cell of a cell-by-cell column."""
        core = self._core
        if core is None:
            return self._completion_only().mark_cell(column, row_group, row_index)
        return core.mark_cell(column, row_group, row_index)

    def mark_row_range_complete(self, column: str, row_group: int, row_group_size: int) -> FrontierDelta:
        """Record a finished full-column task: every row of the group is done for *column*."""
        core = self._core
        if core is None:
            return self._completion_only().mark_range(column, row_group, row_group_size)
        return core.mark_range(column, row_group, row_group_size)

    def drop_row(self, row_group: int, row_index: int) -> FrontierDelta:
        """Abandon a row: its cells leave the frontier and no longer block full-column tasks."""
        core = self._core
        if core is None:
            return self._completion_only().drop(row_group, row_index)
        return core.drop_row(row_group, row_index)

    def mark_cells_complete(self, column: str, row_group: int, rows: npt.ArrayLike) -> FrontierDelta:
        """Bulk form of :meth:`mark_cell_complete` for a 1-D integer array of rows (all or nothing)."""
        return self._need_core("mark_cells_complete").mark_cells(column, row_group, rows)

    def drop_rows(self, row_group: int, rows: npt.ArrayLike) -> FrontierDelta:
        """Bulk form of :meth:`drop_row` (all or nothing)."""
        return self._need_core("drop_rows").drop_rows(row_group, rows)

    def prefill_row_group(
        self,
        row_group: int,
        row_group_size: int,
        *,
        dropped: npt.ArrayLike = (),
        cell_columns: Sequence[str] = (),
        rows: npt.ArrayLike = (),
        full_columns: Sequence[str] = (),
    ) -> None:
        """Make a row group's state in one bulk call (all or nothing): what a rerun keeps of it.

        Drops *dropped*, marks *rows* done in every column of *cell_columns* and every column of
        *full_columns* done: the state ``drop_rows``, ``mark_cells_complete`` and
        ``mark_row_range_complete`` would leave one after another, with every argument checked
        before anything changes.  Returns None (the group's ready tasks are read afterwards:
        ``ready_columns``, ``ready_rows``).
        """
        self._need_core("prefill_row_group").prefill(
            row_group, row_group_size, dropped, cell_columns, rows, full_columns
        )

    def add_root_tasks(
        self, row_group: int, row_group_size: int, columns: Sequence[str] | None = None
    ) -> FrontierDelta:
        """Admit a row group: the tasks of its root columns (or of the given roots) become ready.

        Admitting the same root of the same group twice adds nothing the second time, so a
        task that was handed out is never handed out again.
        """
        return self._need_core("add_root_tasks").add_roots(row_group, row_group_size, columns)

    def seed_frontier(self) -> FrontierDelta:
        """Admit every row group of the plan (:meth:`add_root_tasks` on each)."""
        core = self._need_core("seed_frontier")
        added: list[Task] = []
        for row_group in core.compacted_row_groups():  # all or nothing: refuse before admitting anything
            raise RowGroupCompactedError(f"seed_frontier() found row group {row_group!r} already compacted")
        for row_group, size in self._plan:
            added.extend(core.add_roots(row_group, size, None).added)
        return FrontierDelta(added=added)

    def add_ready_tasks(self, tasks: Iterable[Task]) -> FrontierDelta:
        """Put tasks into the frontier (idempotent; all are validated before any is added)."""
        core = self._need_core("add_ready_tasks")
        tasks = _items(tasks, "add_ready_tasks", "tasks")
        for task in tasks:
            self._validate_task(task, "add_ready_tasks")
        added = [t for t in tasks if core.set_ready(t.column, t.row_group, t.row_index, True)]
        return FrontierDelta(added=added)

    def mark_enqueued(self, tasks: Iterable[Task]) -> None:
        """Acknowledge handed-out tasks: they leave the frontier (unknown-but-valid ones are ignored)."""
        core = self._need_core("mark_enqueued")
        tasks = _items(tasks, "mark_enqueued", "tasks")
        for task in tasks:
            self._validate_task(task, "mark_enqueued")
        for task in tasks:
            core.set_ready(task.column, task.row_group, task.row_index, False)

    def compact_row_group(self, row_group: int, *, abandon: bool = False) -> None:
        """Release a complete group's detailed state; terminal queries keep answering.

        A group is complete when every row is dropped or done in every column.  An incomplete
        group raises :class:`InvalidArgumentError` and stays as it was, unless *abandon*: its
        open rows are then dropped (they will never be finished) before the state is released,
        so that what the group reports afterwards stays true.  After compaction
        ``is_row_group_complete`` and ``is_column_complete_for_rg`` are True, ``is_dropped``
        knows the dropped rows, a cell is complete when its row is not dropped, and any
        further mutation of the group raises :class:`RowGroupCompactedError`.  Without a
        graph the tracker cannot tell complete from incomplete and takes the caller's word.
        """
        if self._core is None:
            self._completion_only().compact(row_group)
        else:
            self._core.compact(row_group, abandon)

    # -- handing out the frontier -------------------------------------------------------

    def pop_ready(self, max_tasks: int | None = None) -> list[Task]:
        """Hand out up to *max_tasks* ready tasks (all if None) and remove them from the frontier.

        The order is deterministic: row group, then column in topological order, then row.
        Tasks beyond *max_tasks* are never materialised.
        """
        return self._need_core("pop_ready").pop_ready(max_tasks)

    def ready_frontier(self) -> tuple[Task, ...]:
        """Every ready task not yet handed out, in :meth:`pop_ready` order."""
        return tuple(self._need_core("ready_frontier").ready_tasks())

    def get_ready_tasks(
        self, dispatched: Iterable[Task], admitted_rgs: Iterable[int] | None = None
    ) -> list[Task]:
        """Ready tasks that are not in *dispatched* (and, if given, whose group is admitted)."""
        try:
            skip = dispatched if isinstance(dispatched, (set, frozenset)) else set(dispatched)
            allowed = None if admitted_rgs is None else set(admitted_rgs)
        except TypeError as exc:  # an unhashable task or row-group id
            raise IndexTypeError(f"get_ready_tasks() needs tasks and integer row groups: {exc}") from None
        return [
            t
            for t in self._need_core("get_ready_tasks").ready_tasks()
            if t not in skip and (allowed is None or t.row_group in allowed)
        ]

    def ready_rows(self, column: str, row_group: int, *, take: bool = False) -> npt.NDArray[np.int64]:
        """Bulk: rows of a cell-by-cell column whose task is ready (``take`` hands them out)."""
        return self._need_core("ready_rows").ready_rows(column, row_group, take)

    def pop_ready_batch(self, column: str, row_group: int) -> bool:
        """Bulk: hand out the full-column task of *column* in *row_group* if it is ready."""
        return self._need_core("pop_ready_batch").pop_ready_batch(column, row_group)

    def ready_columns(self, row_group: int) -> list[str]:
        """Columns with at least one ready task in *row_group*, in topological order."""
        return self._need_core("ready_columns").ready_columns(row_group)

    def active_row_groups(self) -> list[int]:
        """Row groups that hold detailed state (touched and not compacted), sorted."""
        return list(self._need_core("active_row_groups").active_row_groups())

    def frontier_size(self) -> int:
        """Number of ready tasks not yet handed out."""
        return int(self._need_core("frontier_size").total_ready())

    # -- queries ------------------------------------------------------------------------

    def is_complete(self, slice_ref: SliceRef) -> bool:
        """Whether a cell is done (``row_index=None``: whether the batch was completed as a range)."""
        _check_ref(slice_ref, "is_complete", "SliceRef")
        if self._core is None:
            return self._completion_only().is_done(slice_ref.column, slice_ref.row_group, slice_ref.row_index)
        return bool(self._core.is_done(slice_ref.column, slice_ref.row_group, slice_ref.row_index))

    def is_all_complete(self, refs: Iterable[SliceRef]) -> bool:
        """Whether every referenced cell or batch is done."""
        return all(self.is_complete(ref) for ref in _items(refs, "is_all_complete", "SliceRefs"))

    def is_dropped(self, row_group: int, row_index: int) -> bool:
        if self._core is None:
            return self._completion_only().is_dropped(row_group, row_index)
        return bool(self._core.is_dropped(row_group, row_index))

    def is_row_group_complete(self, row_group: int, row_group_size: int, all_columns: Iterable[str]) -> bool:
        """Whether every non-dropped row has every column in *all_columns* done (O(columns))."""
        if isinstance(all_columns, str):
            raise InvalidArgumentError(
                f"is_row_group_complete() needs a sequence of column names, not the str {all_columns!r}"
            )
        columns = _items(all_columns, "is_row_group_complete", "column names")
        if self._core is None:
            return self._completion_only().is_group_complete(row_group, row_group_size, columns)
        return bool(self._core.group_resolved(row_group, row_group_size, columns))

    def is_column_complete_for_rg(self, column: str, row_group: int) -> bool:
        """Whether *column* is done for every non-dropped row of *row_group* (O(1))."""
        if self._core is None:
            return self._completion_only().is_column_complete(column, row_group)
        return bool(self._core.column_resolved(column, row_group))

    def is_frontier_task(self, task: Task) -> bool:
        """Whether *task* is ready and not yet handed out."""
        core = self._need_core("is_frontier_task")
        try:
            column, row_group, row_index = task.column, task.row_group, task.row_index
            task_type = task.task_type
        except AttributeError:
            message = f"is_frontier_task() needs a Task, got {type(task).__name__}"
            raise InvalidArgumentError(message) from None
        if row_index is not None and self._graph is not None:
            strategy = self._graph.get_strategy(column) if column in core.index else None
            if strategy is GenerationStrategy.FULL_COLUMN:
                core.is_ready(column, row_group, None)  # validates the row group, like any query
                return False  # a full-column task has no row: such a task is never ready
        ready = bool(core.is_ready(column, row_group, row_index))
        return ready and task_type == self._task_type(column, row_index)

    def progress(self) -> dict[str, ColumnProgress]:
        """Per column: cells completed, rows dropped (not completed) and rows in the plan."""
        state = self._need_core("progress").export_state(bitmaps=False)  # totals of one instant
        num_records = getattr(self._plan, "num_records", None)  # O(1) on a RowGroupPlan
        total_rows = int(num_records) if num_records is not None else sum(size for _, size in self._plan)
        return {
            name: ColumnProgress(completed, dropped, total_rows)
            for name, completed, dropped in zip(state.columns, state.completed, state.dropped, strict=True)
        }

    # -- checkpoints ----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole state to *path* atomically (see :mod:`cellfrontier.checkpoint`)."""
        checkpoint.write_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str], graph: ExecutionGraph | None = None) -> CompletionTracker:
        """Restore a tracker saved with :meth:`save`.

        Tasks handed out but not completed before the checkpoint are ready again; nothing
        completed is offered again.  With *graph*, it must equal the saved graph.
        """
        return cls._restore(checkpoint.read(path, "load"), graph, "load")

    def to_bytes(self) -> bytes:
        """The checkpoint as bytes (same format as :meth:`save`)."""
        core = self._core
        if core is None:
            return checkpoint.encode(self._completion_only().export_state())
        assert self._graph is not None
        plan = self._plan if isinstance(self._plan, RowGroupPlan) else RowGroupPlan.explicit(self._plan)
        return checkpoint.encode(
            checkpoint.GraphCheckpoint(self._graph.signature(), plan.to_dict(), core.export_state())
        )

    @classmethod
    def from_bytes(cls, data: bytes, graph: ExecutionGraph | None = None) -> CompletionTracker:
        """Restore a tracker from :meth:`to_bytes` output."""
        return cls._restore(data, graph, "from_bytes")

    @classmethod
    def merge(cls, trackers: Iterable[CompletionTracker]) -> CompletionTracker:
        """One tracker holding the state of *trackers*, which hold disjoint row groups.

        For the shards of one job: each tracker recorded the events of its own row groups,
        over the same graph and plan (explicit plans may differ where they share no group).
        The result is what one tracker would hold had it recorded every event, read at one
        instant per tracker, with checkpoint semantics: tasks handed out and not completed are
        ready again.  Another graph or plan, a mix of trackers with and without a graph, or a
        row group held by two trackers raises :class:`StateMergeError` (see
        :mod:`cellfrontier.merge`).
        """
        parts = _items(trackers, "merge", "trackers")
        for part in parts:
            if not isinstance(part, CompletionTracker):
                raise InvalidArgumentError(
                    f"merge() needs CompletionTracker objects, got {type(part).__name__} {part!r}"
                )
        merged = merge_checkpoints([part.to_bytes() for part in parts])
        return cls._restore(merged, parts[0].graph if parts else None, "merge")

    @classmethod
    def _restore(cls, data: Any, graph: ExecutionGraph | None, method: str) -> CompletionTracker:
        """A tracker from checkpoint bytes; with *graph*, the saved graph must be the same (same
        columns, strategies, edges and aliases) and the tracker uses that graph object."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"{method}() needs bytes, got {type(data).__name__}")
        if graph is not None and not isinstance(graph, ExecutionGraph):
            raise InvalidArgumentError(
                f"{method}() needs a cellfrontier ExecutionGraph, got {type(graph).__name__}"
            )
        saved = checkpoint.decode(bytes(data))
        try:
            if isinstance(saved, PlainState):
                if graph is not None:
                    raise CheckpointError(f"{method}() got a graph, but the checkpoint has no graph")
                tracker = cls()
                tracker._plain = CompletionOnlyState.from_state(saved)
                return tracker
            saved_graph = ExecutionGraph.from_signature(saved.graph)
            if graph is not None:
                if graph.signature() != saved.graph:
                    raise CheckpointError(
                        f"{method}() got a graph that differs from the one in the checkpoint: "
                        + graph.difference(saved_graph)
                    )
                saved_graph = graph
            plan = RowGroupPlan.from_dict(saved.plan)
            return cls._over_core(
                saved_graph, plan, TrackerCore.from_state(saved_graph.compile(), plan, saved.state)
            )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise CheckpointError(f"checkpoint is malformed: {exc}") from exc

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (_tracker_from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        if self._core is None:
            return "CompletionTracker()"
        return (
            f"CompletionTracker(columns={len(self._core.names)}, "
            f"active_row_groups={len(self._core.active_row_groups())}, frontier={self.frontier_size()})"
        )

    # -- internals ----------------------------------------------------------------------

    def _need_core(self, method: str) -> TrackerCore:
        if self._core is None:
            raise NoGraphError(f"{method}() needs a tracker built with CompletionTracker.with_graph()")
        return self._core

    def _completion_only(self) -> CompletionOnlyState:
        assert self._plain is not None
        return self._plain

    def _task_type(self, column: str, row_index: int | None) -> str:
        """The task type the tracker gives tasks of *column* (cell, batch, or from_scratch for roots)."""
        if row_index is not None:
            return "cell"
        assert self._graph is not None
        return "batch" if self._graph.get_upstream_columns(column) else "from_scratch"

    def _validate_task(self, task: Any, method: str) -> None:
        """Check a task's column, group and row (raises; never mutates)."""
        core = self._need_core(method)
        assert self._graph is not None
        _check_ref(task, method, "Task")
        if not hasattr(task, "task_type"):
            raise InvalidArgumentError(f"{method}() needs a Task, got {type(task).__name__} {task!r}")
        column = task.column
        if column not in core.index:
            raise UnknownColumnError(f"{method}() got a task for unknown column {column!r}")
        batch = self._graph.get_strategy(column) is GenerationStrategy.FULL_COLUMN
        if batch != (task.row_index is None):
            raise StrategyMismatchError(
                f"{method}() got {task!r}: a {'full_column' if batch else 'cell_by_cell'} column "
                f"needs row_index {'None' if batch else 'set'}"
            )
        core.is_ready(column, task.row_group, task.row_index, method)  # validates group and row
        expected = self._task_type(column, task.row_index)
        if task.task_type != expected:
            raise InvalidArgumentError(
                f"{method}() got {task!r}: tasks of column {column!r} have task_type {expected!r}"
            )
        if method == "add_ready_tasks" and core.is_compacted(task.row_group):
            raise RowGroupCompactedError(
                f"add_ready_tasks() got {task!r}, whose row group was already compacted"
            )


def _items(values: Any, method: str, what: str) -> list[Any]:
    """*values* as a list, or the library's error for something that is not iterable."""
    if isinstance(values, (str, bytes)):
        raise InvalidArgumentError(f"{method}() needs an iterable of {what}, got {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise InvalidArgumentError(
            f"{method}() needs an iterable of {what}, got {type(values).__name__}"
        ) from None


def _check_ref(ref: Any, method: str, kind: str) -> None:
    """Refuse an argument that is not a task or slice reference (it lacks their fields)."""
    if not (hasattr(ref, "column") and hasattr(ref, "row_group") and hasattr(ref, "row_index")):
        raise InvalidArgumentError(f"{method}() needs a {kind}, got {type(ref).__name__} {ref!r}")


def _tracker_from_bytes(data: bytes) -> CompletionTracker:
    """Unpickling hook (a module-level function, so pickle can find it)."""
    return CompletionTracker.from_bytes(data)
