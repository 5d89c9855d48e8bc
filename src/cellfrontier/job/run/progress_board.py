"""One progress view over the shards of a run: what each shard sent last, or its baseline.

A shard's runner reports a :class:`~cellfrontier.job.progress.JobProgress`; a run of several
shards turns each report into a snapshot of plain numbers (:func:`shard_snapshot`, what a
cluster worker sends to its client) and sums the latest snapshot of every shard on a
:class:`ProgressBoard`.  A shard that has not reported yet counts what the output directory
showed when the run started (:func:`shard_baselines`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cellfrontier.job.progress import JobProgress
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.shard_dirs import FinishedShard

__all__ = ["ProgressBoard", "ShardBaseline", "shard_baselines", "shard_snapshot"]

_SNAPSHOT_FIELDS = (
    "rows_done",
    "rows_dropped",
    "tasks",
    "tasks_run",
    "tasks_total_estimate",
    "active",
    "errors",
    "calls_run",
    "tokens_run",
    "counts_usage",
)


def shard_snapshot(progress: JobProgress, epoch: int) -> dict[str, Any]:
    """A shard's progress as plain numbers (what a cluster worker sends to the client).

    ``tasks_run`` counts the tasks this attempt completed (the rate's numerator), ``tasks`` also
    those its checkpoint held when it started; ``calls_run`` and ``tokens_run`` count the model
    calls and tokens of this attempt, when a generator counts usage (``counts_usage``).
    """
    elapsed = progress.elapsed_seconds
    return {
        "epoch": epoch,
        "rows_done": progress.rows_done,
        "rows_dropped": progress.rows_dropped,
        "tasks": progress.tasks,
        "tasks_run": round(progress.tasks_per_second * progress.elapsed_seconds),
        "tasks_total_estimate": progress.tasks_total_estimate,
        "active": progress.active_row_groups,
        "errors": progress.errors,
        "calls_run": round((progress.calls_per_second or 0.0) * elapsed),
        "tokens_run": round((progress.tokens_per_second or 0.0) * elapsed),
        "counts_usage": int(progress.calls_per_second is not None),
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
        calls_run = tokens_run = counts_usage = 0
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
                calls_run += int(seen["calls_run"])
                tokens_run += int(seen["tokens_run"])
                counts_usage |= int(seen["counts_usage"])
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
            calls_per_second=calls_run / elapsed if counts_usage else None,
            tokens_per_second=tokens_run / elapsed if counts_usage else None,
        )


def shard_baselines(
    spec: JobSpec, shards: Sequence[range], finished: Mapping[range, FinishedShard], written: set[int]
) -> list[ShardBaseline]:
    """What each of *shards* counts in the progress view before it reports.

    A finished shard counts its rows from its checkpoint's header; another counts the rows of
    its groups whose files exist (their drops are unknown until it reports).
    """
    buffer_size = spec.buffer_size
    baselines = []
    for shard in shards:
        sizes = [min(buffer_size, spec.num_records - rg * buffer_size) for rg in shard]
        rows_total = sum(sizes)
        estimate = spec.estimate_tasks(rows_total, len(shard))
        done = finished.get(shard)
        if done is not None:
            baselines.append(ShardBaseline(rows_total, estimate, done.records, done.dropped, estimate))
            continue
        rows = sum(size for rg, size in zip(shard, sizes, strict=True) if rg in written)
        groups = sum(1 for rg in shard if rg in written)
        baselines.append(ShardBaseline(rows_total, estimate, rows, 0, spec.estimate_tasks(rows, groups)))
    return baselines
