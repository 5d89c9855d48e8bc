"""Progress of a running job: a value object, a terminal bar and periodic log lines.

The runner asks :meth:`ProgressReporter.due` once per scheduling round with the current time
and calls :meth:`ProgressReporter.emit` only when something is due, so the hot path pays one
comparison.  The bar is drawn on stderr with a carriage return (no dependency), by
:func:`render_bar`, the library's one bar (the ``simulate`` command draws its own with it);
where stderr is not a terminal the same figures go to the ``cellfrontier.job`` logger every
``log_interval`` seconds.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = ["JobProgress", "ProgressReporter", "format_clock", "render_bar"]

logger = logging.getLogger("cellfrontier.job")


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A snapshot of a job's progress (rows are counted when their group is finished)."""

    rows_total: int
    rows_done: int
    rows_dropped: int
    tasks: int
    tasks_total_estimate: int
    tasks_per_second: float
    elapsed_seconds: float
    eta_seconds: float | None
    active_row_groups: int
    errors: int
    calls_per_second: float | None = None
    """Model calls answered per second (counted by the generators' usage), None when none counts."""
    tokens_per_second: float | None = None
    """Tokens (prompt and completion) per second, likewise."""

    @property
    def fraction(self) -> float:
        """Share of the estimated tasks done (0 to 1)."""
        if self.tasks_total_estimate <= 0:
            return 1.0
        return min(1.0, self.tasks / self.tasks_total_estimate)

    def describe(self) -> str:
        eta = "?" if self.eta_seconds is None else format_clock(self.eta_seconds)
        calls = ""
        if self.calls_per_second is not None:
            calls = f"{self.calls_per_second:,.0f} calls/s | {self.tokens_per_second or 0:,.0f} tokens/s | "
        return (
            f"rows {self.rows_done:,}/{self.rows_total:,} dropped {self.rows_dropped:,} | "
            f"{self.tasks_per_second:,.0f} tasks/s | {calls}groups {self.active_row_groups} | "
            f"errors {self.errors:,} | ETA {eta}"
        )


def render_bar(fraction: float, width: int) -> str:
    """``[####....]``: *fraction* (0 to 1) of *width* cells filled."""
    filled = int(width * fraction)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def format_clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressReporter:
    """Turns runner state into callbacks, a bar or log lines at a bounded rate."""

    def __init__(
        self,
        callback: Callable[[JobProgress], None] | None,
        bar: bool | None,
        *,
        interval: float = 0.5,
        log_interval: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.callback = callback
        self.stream = stream if stream is not None else sys.stderr
        if bar is None:
            isatty = getattr(self.stream, "isatty", None)
            bar = bool(isatty and isatty())
            self.log = not bar
        else:
            self.log = False
        self.bar = bar
        self.interval = interval if (callback is not None or bar) else log_interval
        self.log_interval = log_interval
        self.next_due = 0.0
        self.next_log = 0.0
        self.drawn = False

    @property
    def active(self) -> bool:
        return self.callback is not None or self.bar or self.log

    def due(self, now: float) -> bool:
        return now >= self.next_due and self.active

    def emit(self, progress: JobProgress, now: float, *, final: bool = False) -> None:
        self.next_due = now + self.interval
        if self.callback is not None:
            self.callback(progress)
        if self.bar:
            self._draw(progress, final)
        if self.log and (final or now >= self.next_log):
            self.next_log = now + self.log_interval
            logger.info("job %s", progress.describe())

    def _draw(self, progress: JobProgress, final: bool) -> None:
        line = f"\r{render_bar(progress.fraction, 24)} {100 * progress.fraction:5.1f}% {progress.describe()}"
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()
        self.drawn = not final
