"""cellfrontier: a compiled completion tracker and ready-task frontier for column-DAG jobs."""

from cellfrontier._values import FrontierDelta, Task
from cellfrontier.errors import (
    CellFrontierError,
    CheckpointError,
    CheckpointFileError,
    CheckpointNotFoundError,
    ColumnNameError,
    CountTypeError,
    DAGCircularDependencyError,
    DuplicateColumnError,
    GraphError,
    GraphFrozenError,
    IndexTypeError,
    InvalidArgumentError,
    NoGraphError,
    RowGroupCompactedError,
    RowIndexError,
    SizeMismatchError,
    StrategyMismatchError,
    UnknownColumnError,
    UnknownRowGroupError,
)
from cellfrontier.graph import ExecutionGraph
from cellfrontier.row_groups import RowGroupPlan
from cellfrontier.strategies import GenerationStrategy
from cellfrontier.tasks import SliceRef, TaskResult, TaskTrace
from cellfrontier.tracker import ColumnProgress, CompletionTracker

__all__ = [
    "CellFrontierError",
    "CheckpointError",
    "CheckpointFileError",
    "CheckpointNotFoundError",
    "ColumnNameError",
    "ColumnProgress",
    "CompletionTracker",
    "CountTypeError",
    "DAGCircularDependencyError",
    "DuplicateColumnError",
    "ExecutionGraph",
    "FrontierDelta",
    "GenerationStrategy",
    "GraphError",
    "GraphFrozenError",
    "IndexTypeError",
    "InvalidArgumentError",
    "NoGraphError",
    "RowGroupCompactedError",
    "RowGroupPlan",
    "RowIndexError",
    "SizeMismatchError",
    "SliceRef",
    "StrategyMismatchError",
    "Task",
    "TaskResult",
    "TaskTrace",
    "UnknownColumnError",
    "UnknownRowGroupError",
]

__version__ = "0.1.0"
