"""What a shard reports, built from its figures: its progress now, its checkpoint's figures, its result.

The runner keeps the figures (rows written and dropped, the ledger's counts, the usage meter,
the peaks); these functions only turn them into the values the layers above read
(:class:`~cellfrontier.job.progress.JobProgress`, the figures a checkpoint's header records
for ``cellfrontier status``, :class:`~cellfrontier.job.result.JobResult` with one
:class:`~cellfrontier.job.result.ShardSummary`).  They read the runner through
:class:`ShardFigures`, the few attributes they need, so this module knows nothing else of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from cellfrontier.job.progress import JobProgress
from cellfrontier.job.result import JobResult, ShardSummary
from cellfrontier.job.shard.group_ranges import GroupRanges
from cellfrontier.job.shard.ledger import TaskLedger
from cellfrontier.job.shard.reuse import UpgradedGroups
from cellfrontier.job.shard.usage import UsageMeter
from cellfrontier.job.spec import JobSpec

__all__ = ["MAX_COUNTED_RANGES", "ShardFigures", "checkpoint_stats", "shard_progress", "shard_result"]

MAX_COUNTED_RANGES = 10_000
"""Beyond this many ranges of counted groups a checkpoint leaves them out (its header stays small)."""


class ShardFigures(Protocol):
    """The figures of a running shard that its reports read."""

    spec: JobSpec
    first: int
    stop: int
    rows_total: int
    records: int
    dropped: int
    resumed: bool
    peak_active: int
    peak_held: int
    tasks_at_start: int
    started: float
    groups: dict[int, Any]
    output_names: list[str]
    memory: dict[int, dict[str, list[Any]]]
    ledger: TaskLedger
    usage: UsageMeter
    upgrades: UpgradedGroups
    started_wall: float
    counted: GroupRanges

    @property
    def epoch(self) -> int: ...


def shard_progress(shard: ShardFigures, now: float) -> JobProgress:
    """The shard's progress at *now* (``time.perf_counter``): rates since it started."""
    elapsed = max(1e-9, now - shard.started)
    estimate = shard.spec.estimate_tasks(shard.rows_total, shard.stop - shard.first)
    tasks = shard.ledger.tasks
    done = shard.tasks_at_start + tasks
    rate = tasks / elapsed
    calls_per_second, tokens_per_second = shard.usage.rates(elapsed)
    return JobProgress(
        rows_total=shard.rows_total,
        rows_done=shard.records,
        rows_dropped=shard.dropped,
        tasks=done,
        tasks_total_estimate=estimate,
        tasks_per_second=rate,
        elapsed_seconds=elapsed,
        eta_seconds=(max(0, estimate - done) / rate) if rate > 0 else None,
        active_row_groups=len(shard.groups),
        errors=shard.ledger.errors,
        calls_per_second=calls_per_second,
        tokens_per_second=tokens_per_second,
    )


def checkpoint_stats(shard: ShardFigures, *, final: bool) -> dict[str, Any]:
    """The figures a checkpoint records beside the state (its header: what ``status`` reads)."""
    ledger = shard.ledger
    counted = shard.counted
    return {
        "records": shard.records,
        "dropped": shard.dropped,
        "final": int(final),
        "tasks": shard.tasks_at_start + ledger.tasks,
        "tasks_total": shard.spec.estimate_tasks(shard.rows_total, shard.stop - shard.first),
        "started_at": shard.started_wall,
        "started_tasks": shard.tasks_at_start,
        "interval": shard.spec.checkpoint_interval,
        "errors": ledger.errors,
        "error_samples": [failure.to_record() for failure in ledger.error_samples],
        "counted_groups": counted.pairs() if len(counted) <= MAX_COUNTED_RANGES else None,
        "usage": shard.usage.counts(),
    }


def shard_result(
    shard: ShardFigures, seconds: float, cpu_seconds: float, output_dir: Path | None
) -> JobResult:
    """The shard's result: its counts, timing and usage; its values when it kept them in memory."""
    ledger = shard.ledger
    usage = shard.usage.usage()
    row_groups = range(shard.first, shard.stop)
    summary = ShardSummary(
        row_groups=row_groups,
        epoch=shard.epoch,
        records=shard.records,
        dropped=shard.dropped,
        tasks=ledger.tasks,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        resumed=shard.resumed,
        usage=usage,
    )
    return JobResult(
        records=shard.records,
        dropped=shard.dropped,
        tasks=ledger.tasks,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        errors=ledger.errors,
        error_samples=ledger.error_samples,
        peak_active_row_groups=shard.peak_active,
        peak_held_row_groups=shard.peak_held,
        row_groups=row_groups,
        resumed=shard.resumed,
        output_dir=output_dir,
        columns=tuple(shard.output_names),
        memory=shard.memory if output_dir is None else None,
        shards=(summary,),
        calls=ledger.calls,
        usage=usage,
        cells_kept=shard.upgrades.cells_kept,
        readback_seconds=shard.upgrades.readback_seconds,
    )
