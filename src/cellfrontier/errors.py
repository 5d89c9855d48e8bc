"""One exception hierarchy for the whole library.

Every error derives from :class:`CellFrontierError` *and* from the built-in a caller would
naturally catch (``KeyError`` for unknown names, ``ValueError`` for bad values, ``TypeError``
for wrong types), so code written against other trackers keeps working.  Messages are short,
name the method with ``()`` and the offending value with ``!r``.  Any call that raises leaves
the tracker's state exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CellFrontierError",
    "CheckpointError",
    "CheckpointFileError",
    "CheckpointNotFoundError",
    "ColumnNameError",
    "CountTypeError",
    "DAGCircularDependencyError",
    "DuplicateColumnError",
    "GraphError",
    "GraphFrozenError",
    "IndexTypeError",
    "InvalidArgumentError",
    "NoGraphError",
    "RowGroupCompactedError",
    "RowIndexError",
    "SizeMismatchError",
    "StateMergeError",
    "StrategyMismatchError",
    "UnknownColumnError",
    "UnknownRowGroupError",
]


class CellFrontierError(Exception):
    """Base class of every error raised by cellfrontier."""

    def __str__(self) -> str:
        # KeyError would otherwise print the message with quotes around it.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class GraphError(CellFrontierError, ValueError):
    """The execution graph is malformed (unknown producer, bad name, ...)."""


class ColumnNameError(GraphError, TypeError):
    """A column name or side-effect alias that is not a non-empty string.

    Also a ``TypeError`` (a name of the wrong type is a type error) while staying a
    :class:`GraphError`, which these calls raised before.
    """


class DuplicateColumnError(GraphError):
    """A column name was registered twice."""


class DAGCircularDependencyError(GraphError):
    """The dependency graph has a cycle.

    ``cycle`` holds the columns on the cycle, with the first column repeated at the end
    (as :mod:`graphlib` does), so callers can show it.
    """

    def __init__(self, message: str, cycle: Sequence[str] = ()) -> None:
        super().__init__(message, tuple(cycle))
        self.cycle: tuple[str, ...] = tuple(cycle)

    def __str__(self) -> str:
        return str(self.args[0])


class GraphFrozenError(CellFrontierError, RuntimeError):
    """The graph is used by a tracker and can no longer change."""


class UnknownColumnError(CellFrontierError, KeyError):
    """A column name that the graph does not know."""


class UnknownRowGroupError(CellFrontierError, KeyError, ValueError):
    """A row-group id that is not part of the tracker's row-group plan."""


class RowGroupCompactedError(CellFrontierError, ValueError):
    """A mutation aimed at a row group whose detailed state was released."""


class RowIndexError(CellFrontierError, IndexError, ValueError):
    """A row index outside ``0 <= row_index < row_group_size``."""


class IndexTypeError(CellFrontierError, TypeError):
    """A row index or row-group id that is not an integer (bool and float are refused)."""


class InvalidArgumentError(CellFrontierError, ValueError, TypeError):
    """Any other unusable argument (a negative ``max_tasks``, a non-root column given as a root).

    It is both a ``ValueError`` and a ``TypeError`` because the calls that raise it used to
    raise one or the other.
    """


class CountTypeError(IndexTypeError, InvalidArgumentError):
    """A count or size (``num_records``, ``buffer_size``, a row-group size) that is not an integer.

    An :class:`IndexTypeError` like every other non-integer, and also a ``ValueError`` because
    some of the calls that raise it used to raise one.
    """


class StrategyMismatchError(CellFrontierError, ValueError):
    """A cell call on a full-column column, or a range call on a cell-by-cell column."""


class SizeMismatchError(CellFrontierError, ValueError):
    """A row-group size that differs from the size in the row-group plan."""


class NoGraphError(CellFrontierError, RuntimeError):
    """A frontier method called on a tracker built without a graph."""


class CheckpointError(CellFrontierError, ValueError):
    """A checkpoint that is truncated, corrupted, of an unknown version or for another graph."""


class CheckpointFileError(CheckpointError, OSError):
    """A checkpoint file that cannot be read (a directory, no permission, ...)."""


class CheckpointNotFoundError(CheckpointFileError, FileNotFoundError):
    """No checkpoint at the given path."""


class StateMergeError(CellFrontierError, ValueError):
    """Tracker states that cannot be merged: another graph or plan, or a row group held by two."""
