"""Progress of a running job: a value object, a terminal bar and periodic log lines.

The runner calls :meth:`ProgressReporter.update` once per scheduling round with the current
time; the reporter decides whether anything is due, so the hot path pays one comparison.
The bar is drawn on stderr with a carriage return (no dependency); where stderr is not a
terminal the same figures go to the ``cellfrontier.job`` logger every ``log_interval`` seconds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["JobProgress", "ProgressBoard", "ProgressReporter", "ShardBaseline"]

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

    @property
    def fraction(self) -> float:
        """Share of the estimated tasks done (0 to 1)."""
        if self.tasks_total_estimate <= 0:
            return 1.0
        return min(1.0, self.tasks / self.tasks_total_estimate)

    def describe(self) -> str:
        eta = "?" if self.eta_seconds is None else _clock(self.eta_seconds)
        return (
            f"rows {self.rows_done:,}/{self.rows_total:,} dropped {self.rows_dropped:,} | "
            f"{self.tasks_per_second:,.0f} tasks/s | groups {self.active_row_groups} | "
            f"errors {self.errors:,} | ETA {eta}"
        )


def _clock(seconds: float) -> str:
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
        width = 24
        filled = int(width * progress.fraction)
        bar = "#" * filled + "." * (width - filled)
        line = f"\r[{bar}] {100 * progress.fraction:5.1f}% {progress.describe()}"
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()
        self.drawn = not final


# ---------------------------------------------------------------------- several shards, one view

_SNAPSHOT_FIELDS = (
    "rows_done",
    "rows_dropped",
    "tasks",
    "tasks_run",
    "tasks_total_estimate",
    "active",
    "errors",
)


def shard_snapshot(progress: JobProgress, epoch: int) -> dict[str, Any]:
    """A shard's progress as plain numbers (what a cluster worker sends to the client).

    ``tasks_run`` counts the tasks this attempt completed (the rate's numerator), ``tasks`` also
    those its checkpoint held when it started.
    """
    return {
        "epoch": epoch,
        "rows_done": progress.rows_done,
        "rows_dropped": progress.rows_dropped,
        "tasks": progress.tasks,
        "tasks_run": round(progress.tasks_per_second * progress.elapsed_seconds),
        "tasks_total_estimate": progress.tasks_total_estimate,
        "active": progress.active_row_groups,
        "errors": progress.errors,
    }


@dataclass(frozen=True)
class ShardBaseline:
    """What a shard counts before it reports: its size, and what the directory shows as done."""

    rows_total: int
    tasks_total_estimate: int
    rows_done: int = 0
    rows_dropped: int = 0
    tasks: int = 0


class ProgressBoard:
    """One progress view over several shards, from the latest snapshot each one sent.

    A shard that has not reported yet counts its :class:`ShardBaseline` (what the output
    directory showed when the run started).  Snapshots of an attempt older than one already
    seen for the same shard are ignored, so a stale attempt cannot move the view backwards.
    Safe to update from another thread (a cluster client's event handler).
    """

    def __init__(self, baselines: Sequence[ShardBaseline]) -> None:
        self.baselines = list(baselines)
        self.latest: dict[int, dict[str, Any]] = {}
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def update(self, shard: int, snapshot: Mapping[str, Any]) -> None:
        with self.lock:
            seen = self.latest.get(shard)
            if seen is not None and int(snapshot.get("epoch", 0)) < int(seen.get("epoch", 0)):
                return
            self.latest[shard] = {k: snapshot.get(k, 0) for k in ("epoch", *_SNAPSHOT_FIELDS)}

    def progress(self, now: float | None = None) -> JobProgress:
        """The whole job's progress now (rates over the time since the board was created)."""
        now = time.perf_counter() if now is None else now
        rows_total = rows_done = rows_dropped = tasks = estimate = tasks_run = active = errors = 0
        with self.lock:
            for index, base in enumerate(self.baselines):
                rows_total += base.rows_total
                seen = self.latest.get(index)
                if seen is None:
                    rows_done += base.rows_done
                    rows_dropped += base.rows_dropped
                    tasks += base.tasks
                    estimate += base.tasks_total_estimate
                    continue
                rows_done += int(seen["rows_done"])
                rows_dropped += int(seen["rows_dropped"])
                tasks += int(seen["tasks"])
                estimate += int(seen["tasks_total_estimate"])
                tasks_run += int(seen["tasks_run"])
                active += int(seen["active"])
                errors += int(seen["errors"])
        elapsed = max(1e-9, now - self.started)
        rate = tasks_run / elapsed
        return JobProgress(
            rows_total=rows_total,
            rows_done=rows_done,
            rows_dropped=rows_dropped,
            tasks=tasks,
            tasks_total_estimate=estimate,
            tasks_per_second=rate,
            elapsed_seconds=elapsed,
            eta_seconds=(max(0, estimate - tasks) / rate) if rate > 0 else None,
            active_row_groups=active,
            errors=errors,
        )
