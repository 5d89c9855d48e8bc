"""Errors raised by :class:`cellfrontier.Job`.

Like every error of the library, each derives from :class:`~cellfrontier.CellFrontierError`
and from the built-in a caller would naturally catch.
"""

from __future__ import annotations

from cellfrontier.errors import CellFrontierError

__all__ = [
    "ErrorRateExceededError",
    "GeneratorMappingError",
    "GeneratorOutputError",
    "GeneratorTimeoutError",
    "JobCancelledError",
    "JobInterruptedError",
    "MissingDependencyError",
    "OutputDirError",
    "RerunRefusedError",
    "RunningLoopError",
    "ShardLostError",
    "StaleShardError",
]


class GeneratorMappingError(CellFrontierError, ValueError, TypeError):
    """The generators mapping does not fit the graph (missing, unknown, alias or non-callable)."""


class GeneratorOutputError(CellFrontierError, ValueError):
    """A generator returned something of the wrong shape (length, missing alias keys, a coroutine).

    A programming error, not a failure of one call: the job stops (after checkpointing)
    instead of retrying or dropping rows.
    """


class GeneratorTimeoutError(CellFrontierError, TimeoutError):
    """An async generator call ran past its timeout and was cancelled: a failure of that call.

    Retried under the job's ``retries``, then its row is dropped, like any failed call.
    """


class OutputDirError(CellFrontierError, ValueError):
    """The output directory belongs to another job, or is not empty and not a job's at all."""


class RerunRefusedError(OutputDirError):
    """An edited job cannot reuse what its output directory holds (fewer rows, another buffer size).

    Raised before any file is touched; the message says what to do instead.
    """


class ErrorRateExceededError(CellFrontierError, RuntimeError):
    """Too many generator calls failed; the job stopped after checkpointing."""


class StaleShardError(CellFrontierError, RuntimeError):
    """A newer attempt claimed this shard since this one started: this one stops without writing."""


class JobCancelledError(CellFrontierError, RuntimeError):
    """A shard's cluster task was cancelled (its client went away); the shard checkpointed and stopped."""


class ShardLostError(CellFrontierError, RuntimeError):
    """A shard lost more workers than the Dask scheduler's ``allowed-failures`` (its checkpoint is kept)."""


class JobInterruptedError(CellFrontierError, RuntimeError):
    """The job stopped on a signal whose previous handler did not raise (its checkpoint is saved)."""


class RunningLoopError(CellFrontierError, RuntimeError):
    """``Job.run()`` was called from inside a running event loop (use ``await job.run_async()``)."""


class MissingDependencyError(CellFrontierError, ImportError):
    """An optional dependency (pyarrow) is needed and not installed."""
