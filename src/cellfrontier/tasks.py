"""Small value types that callers exchange with the tracker.

``Task`` and ``FrontierDelta`` are compiled (built in bulk when the frontier is handed out);
``SliceRef``, ``TaskResult`` and ``TaskTrace`` are plain dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from cellfrontier._values import FrontierDelta, Task

__all__ = [
    "ColumnName",
    "FrontierDelta",
    "RowGroupIndex",
    "RowIndex",
    "SliceRef",
    "Task",
    "TaskResult",
    "TaskTrace",
    "TaskType",
]

ColumnName: TypeAlias = str
RowGroupIndex: TypeAlias = int
RowIndex: TypeAlias = int
TaskType: TypeAlias = Literal["cell", "batch", "from_scratch"]


@dataclass(frozen=True, order=True, slots=True)
class SliceRef:
    """A cell (``row_index`` set) or a whole row group (``row_index=None``) of one column."""

    column: ColumnName
    row_group: RowGroupIndex
    row_index: RowIndex | None = None


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The outcome of running a task: its value, or the error that stopped it."""

    task: Task
    value: Any = None
    error: BaseException | None = None
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class TaskTrace:
    """Timing record of one task, created only when tracing is on."""

    column: ColumnName
    row_group: RowGroupIndex
    row_index: RowIndex | None
    task_type: str
    dispatched_at: float = 0.0
    slot_acquired_at: float = 0.0
    completed_at: float = 0.0
    status: str = ""
    error: str | None = None

    @classmethod
    def from_task(cls, task: Task) -> TaskTrace:
        return cls(
            column=task.column,
            row_group=task.row_group,
            row_index=task.row_index,
            task_type=task.task_type,
        )
