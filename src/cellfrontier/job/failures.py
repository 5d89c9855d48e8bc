"""Failed generator calls: retry timing and the record kept of each failure.

A call that raises is retried up to ``retries`` times, the n-th retry ``backoff * 2**(n-1)``
seconds later (capped at ``max_backoff``); the runner keeps the loop running meanwhile (a
retry is an entry in a timer heap, never a sleep).  After the last retry the row is dropped.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

__all__ = ["GeneratorFailure", "RetryPolicy"]


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


@dataclass(frozen=True, slots=True)
class GeneratorFailure:
    """One failed call, as kept in :attr:`JobResult.error_samples` (the first few of a run)."""

    column: str
    row_group: int
    row: int | None
    """Global row index of a cell task; None for a full-column task."""
    attempt: int
    error_type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(
        cls, column: str, row_group: int, row: int | None, attempt: int, exc: BaseException
    ) -> GeneratorFailure:
        return cls(
            column=column,
            row_group=row_group,
            row=row,
            attempt=attempt,
            error_type=type(exc).__qualname__,
            message=str(exc),
            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else f"row group {self.row_group}"
        return f"{self.column!r} at {where} (attempt {self.attempt}): {self.error_type}: {self.message}"
