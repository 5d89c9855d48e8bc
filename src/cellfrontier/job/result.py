"""What a run produced: :class:`JobResult`, one :class:`ShardSummary` per shard, and their sum.

Plain values: a shard's runner builds one result, a run of several shards combines them
(:func:`combine_results`), and the result reads the rows back from memory or from the
output directory's Parquet files.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellfrontier.job.output import ROW_COLUMN, OutputLayout, read_tables, require_pyarrow, table_from_columns
from cellfrontier.job.usage import JobUsage

__all__ = ["GeneratorFailure", "JobResult", "ShardSummary", "combine_results"]


@dataclass(frozen=True, slots=True)
class GeneratorFailure:
    """One failed call, as kept in :attr:`JobResult.error_samples` (the first few of a run).

    A shard's checkpoint keeps the same failures as plain records (:meth:`to_record`, the
    traceback left out and the message bounded), so that reading a job's output directory
    shows them without unpickling anything.
    """

    column: str
    row_group: int
    row: int | None
    """Global row index of a cell task; None for a full-column task."""
    attempt: int
    error_type: str
    message: str
    traceback: str
    origin: str = ""
    """Where the error was raised: ``file:line in function`` of the innermost frame."""

    @classmethod
    def from_exception(
        cls, column: str, row_group: int, row: int | None, attempt: int, exc: BaseException
    ) -> GeneratorFailure:
        frames = traceback.extract_tb(exc.__traceback__)
        return cls(
            column=column,
            row_group=row_group,
            row=row,
            attempt=attempt,
            error_type=type(exc).__qualname__,
            message=str(exc),
            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            origin=f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "",
        )

    def to_record(self, max_message: int = 300) -> dict[str, Any]:
        """The failure as plain JSON values, without the traceback, its message cut to *max_message*."""
        message = (
            self.message if len(self.message) <= max_message else self.message[: max_message - 3] + "..."
        )
        return {
            "column": self.column,
            "row_group": self.row_group,
            "row": self.row,
            "attempt": self.attempt,
            "error_type": self.error_type,
            "message": message,
            "origin": self.origin,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GeneratorFailure:
        """A failure read back from :meth:`to_record` (its traceback is empty)."""
        row = record.get("row")
        return cls(
            column=str(record.get("column", "?")),
            row_group=int(record.get("row_group", -1)),
            row=None if row is None else int(row),
            attempt=int(record.get("attempt", 0)),
            error_type=str(record.get("error_type", "?")),
            message=str(record.get("message", "")),
            traceback="",
            origin=str(record.get("origin", "")),
        )

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else f"row group {self.row_group}"
        return f"{self.column!r} at {where} (attempt {self.attempt}): {self.error_type}: {self.message}"


@dataclass(frozen=True)
class ShardSummary:
    """What one shard did in a run (``skipped`` when it was already finished)."""

    row_groups: range
    epoch: int
    records: int
    dropped: int
    tasks: int
    seconds: float
    cpu_seconds: float
    resumed: bool
    skipped: bool = False
    worker: str | None = None
    usage: JobUsage = field(default_factory=JobUsage)
    """The shard's usage counters (a resumed shard's include what its checkpoint saved)."""


@dataclass(frozen=True)
class JobResult:
    """What a run produced.

    ``records`` and ``dropped`` count the rows of the run's row groups in the output (so a
    resumed run counts the rows written before it too); ``tasks`` are the tasks completed by
    this run (cells plus full-column batches), ``errors`` the generator calls that raised.
    ``seconds`` is wall time and ``cpu_seconds`` the process's CPU time over the run.
    ``peak_active_row_groups`` is the most groups computing at once; ``peak_held_row_groups``
    adds the finished ones still waiting for their file to be written (their buffers are
    held until then).  ``shards`` tells what each shard did (one for a single-shard run).
    ``calls`` counts the generator calls this run started (retries included); ``usage`` holds
    the counters of the generators that keep them (model columns: calls, tokens, rate-limit
    waits, errors), per column and per model, whole across resumes (:class:`JobUsage`).

    A run of several shards (on a cluster, or a local run finishing them) sums the counts;
    its ``cpu_seconds`` is the sum of the shards' own CPU time, each measured in the process
    that ran it, and its peaks are the largest of any one shard.
    """

    records: int
    dropped: int
    tasks: int
    seconds: float
    cpu_seconds: float
    errors: int
    error_samples: tuple[GeneratorFailure, ...]
    peak_active_row_groups: int
    peak_held_row_groups: int
    row_groups: range
    resumed: bool
    output_dir: Path | None
    columns: tuple[str, ...]
    memory: dict[int, dict[str, list[Any]]] | None = field(default=None, repr=False)
    shards: tuple[ShardSummary, ...] = field(default=(), repr=False)
    """What each shard did: its row groups, the epoch of its attempt, its counts and timing."""
    cells_kept: int = 0
    """Cells a rerun kept from the files of an earlier job version (read back, not computed)."""
    readback_seconds: float = 0.0
    """Wall time spent reading those kept values back (summed over shards)."""
    calls: int = 0
    usage: JobUsage = field(default_factory=JobUsage)

    def to_pydict(self, *, row_index: bool = False) -> dict[str, list[Any]]:
        """The output as ``{column: values}`` in global row order (needs pyarrow with output_dir)."""
        names = ([ROW_COLUMN] if row_index else []) + list(self.columns)
        if self.memory is not None:
            out: dict[str, list[Any]] = {name: [] for name in names}
            for rg in sorted(self.memory):
                data = self.memory[rg]
                for name in names:
                    out[name].extend(data[name])
            return out
        table = self.table(row_index=row_index)
        return {name: table.column(name).to_pylist() for name in names}

    def table(self, *, row_index: bool = False) -> Any:
        """The output rows as a ``pyarrow.Table`` in global row order (dropped rows absent).

        One column per graph column and side-effect alias, plus ``_row`` (global row indices)
        first when *row_index*.  Needs pyarrow (``pip install 'cellfrontier[job]'``).
        """
        pa, _ = require_pyarrow("JobResult.table()")
        names = ([ROW_COLUMN] if row_index else []) + list(self.columns)
        if self.memory is not None:
            return table_from_columns(names, self.to_pydict(row_index=True))
        assert self.output_dir is not None
        layout = OutputLayout(self.output_dir)
        written = layout.written_groups(self.row_groups.start, self.row_groups.stop)
        tables = read_tables(written[rg] for rg in sorted(written))
        if not tables:
            return pa.table({name: pa.array([], type=pa.null()) for name in names})
        table = pa.concat_tables(tables, promote_options="permissive")
        return table.select(names)


def combine_results(
    results: Sequence[JobResult],
    skipped: Sequence[ShardSummary],
    *,
    row_groups: range,
    seconds: float,
    keep_errors: int,
    output_dir: Path | None,
    columns: tuple[str, ...],
    workers: Sequence[str | None] | None = None,
) -> JobResult:
    """One result for a run of several shards.

    *skipped* are the shards found finished, which did not run.  Counts are summed;
    ``cpu_seconds`` is the sum of the shards' own CPU time (each measured in the process that
    ran it); the peaks are the largest of any one shard.
    """
    summaries = [
        dataclasses.replace(summary, worker=workers[i] if workers else summary.worker)
        for i, r in enumerate(results)
        for summary in r.shards
    ]
    summaries += skipped
    summaries.sort(key=lambda s: s.row_groups.start)
    samples = [sample for r in results for sample in r.error_samples][:keep_errors]
    return JobResult(
        records=sum(s.records for s in summaries),
        dropped=sum(s.dropped for s in summaries),
        tasks=sum(r.tasks for r in results),
        seconds=seconds,
        cpu_seconds=sum(r.cpu_seconds for r in results),
        errors=sum(r.errors for r in results),
        error_samples=tuple(samples),
        peak_active_row_groups=max((r.peak_active_row_groups for r in results), default=0),
        peak_held_row_groups=max((r.peak_held_row_groups for r in results), default=0),
        row_groups=row_groups,
        resumed=any(s.resumed for s in summaries),
        output_dir=output_dir,
        columns=columns,
        shards=tuple(summaries),
        cells_kept=sum(r.cells_kept for r in results),
        readback_seconds=sum(r.readback_seconds for r in results),
        calls=sum(r.calls for r in results),
        usage=JobUsage.combine(s.usage for s in summaries),
    )
