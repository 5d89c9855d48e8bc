"""Failed generator calls: retry timing and the record kept of each failure.

A call that raises is retried up to ``retries`` times, the n-th retry ``backoff * 2**(n-1)``
seconds later (capped at ``max_backoff``); the runner keeps the loop running meanwhile (a
retry is an entry in a timer heap, never a sleep).  After the last retry the row is dropped.
An exception whose ``retryable`` attribute is ``False`` (a model column's refused request, a
4xx: asking again cannot help) is not retried: its row is dropped at once.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.result import GeneratorFailure
from cellfrontier.job.shard.buffers import GroupBuffers

__all__ = ["FailureBook", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int
    backoff: float
    max_backoff: float

    def delay(self, attempt: int) -> float:
        """Seconds before retry number *attempt* (1-based)."""
        if self.backoff <= 0:
            return 0.0
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


class FailureBook:
    """A shard's failed calls: how often each failing task failed, the retries due, the first errors.

    A task is keyed ``(column index, row group, row)`` (row None for a full-column task);
    ``attempts`` holds only tasks that failed and have not yet succeeded or been dropped, so
    the success path pays one emptiness check while nothing is failing.
    """

    def __init__(self, retry: RetryPolicy, keep_errors: int) -> None:
        self.retry = retry
        self.keep_errors = keep_errors
        self.errors = 0
        self.samples: list[GeneratorFailure] = []
        self.attempts: dict[tuple[int, int, int | None], int] = {}
        self.heap: list[tuple[float, int, int, Any, int | None]] = []
        """``(due, sequence, column index, group, row)``: retries waiting for their backoff."""
        self._sequence = 0

    def record(self, column: ColumnSpec, group: GroupBuffers, row: int | None, exc: BaseException) -> bool:
        """Count a failure; True when the task will be retried, False when its retries are spent."""
        self.errors += 1
        key = (column.index, group.row_group, row)
        attempt = self.attempts.get(key, 0) + 1
        if len(self.samples) < self.keep_errors:
            global_row = None if row is None else group.base + row
            self.samples.append(
                GeneratorFailure.from_exception(column.name, group.row_group, global_row, attempt, exc)
            )
        if attempt <= self.retry.retries and getattr(exc, "retryable", True) is not False:
            self.attempts[key] = attempt
            self._sequence += 1
            due = time.monotonic() + self.retry.delay(attempt)
            heapq.heappush(self.heap, (due, self._sequence, column.index, group, row))
            return True
        self.attempts.pop(key, None)
        return False

    def due(self, now: float) -> Iterator[tuple[int, Any, int | None]]:
        """Pop the retries whose time has come: ``(column index, group, row)`` each."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, _, index, group, row = heapq.heappop(heap)
            yield index, group, row
