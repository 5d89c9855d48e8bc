"""Refusing a plain generator that returns awaitables, and the wording of a malformed value.

A plain function that returns a coroutine (``lambda row: asyncio.sleep(0)``) is not async to
the job (checking every value would cost time on every call), so its values would be stored
as coroutine objects and break the next checkpoint.  Whichever way the column runs (inline,
a retried inline cell, a full-column batch, blocking on the pool), its first values are
checked here before the tracker counts them: an awaitable is refused with
:class:`GeneratorOutputError`, every coroutine among the values closed (so none warns that it
was never awaited) and the values taken out of the buffer again, so the checkpoint the job
saves as it stops holds nothing it cannot write.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.errors import GeneratorOutputError
from cellfrontier.job.shard.buffers import GroupBuffers

__all__ = ["awaitable_error", "check_first_values", "output_error", "refuse_awaitable"]


def awaitable_error(column: ColumnSpec) -> GeneratorOutputError:
    return GeneratorOutputError(
        f"the generator of {column.name!r} returned an awaitable; declare it `async def` "
        "so that the job awaits it"
    )


def _close(value: Any) -> None:
    if inspect.iscoroutine(value):
        value.close()


def refuse_awaitable(column: ColumnSpec, value: Any) -> None:
    """Raise (closing it) if *value*, one call's result, is awaitable."""
    if inspect.isawaitable(value):
        _close(value)
        raise awaitable_error(column)


def check_first_values(
    column: ColumnSpec, group: GroupBuffers, rows: Iterable[int], failed: set[int]
) -> bool:
    """Check the values *column* just stored for *rows* (but the *failed* ones).

    True once a value proved not awaitable (the column need not be checked again); False when
    every row failed (nothing to judge yet).  Raises :class:`GeneratorOutputError` when the
    first value is awaitable, after closing and removing every value of *rows*.
    """
    rows = list(rows)
    outputs = [group.columns[name] for name in column.outputs]
    for row in rows:
        if row in failed:
            continue
        if not inspect.isawaitable(outputs[0][row]):
            return True
        for values in outputs:
            for other in rows:
                _close(values[other])
                values[other] = None
        raise awaitable_error(column)
    return False


def output_error(column: ColumnSpec, group: GroupBuffers, row: int, value: Any) -> GeneratorOutputError:
    """The error for a cell value of the wrong shape (or an awaitable, closed here)."""
    if inspect.isawaitable(value):
        _close(value)
        return awaitable_error(column)
    got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
    return GeneratorOutputError(
        f"the generator of {column.name!r} must return a mapping with exactly the keys "
        f"{list(column.outputs)} (the column and its side-effect aliases); at row {group.base + row} "
        f"it returned {got}"
    )
