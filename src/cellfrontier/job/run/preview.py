"""A preview of a job: its first rows computed in memory, nothing written (``job.preview(n)``).

The first *n* rows run through the same shard runner as a whole job, so what a preview shows
is what the job computes for those rows (a full-column generator sees only the preview's
rows of the first group).  No ``output_dir`` is read or written, no progress is shown, and
the collector is left as it is: a preview of a few rows costs what computing them costs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from cellfrontier.job.result import GeneratorFailure
from cellfrontier.job.shard.interrupts import StopSignals
from cellfrontier.job.shard.runner import ShardRunner
from cellfrontier.job.spec import JobSpec

__all__ = ["JobPreview", "preview_job"]


@dataclass(frozen=True)
class JobPreview:
    """The first rows of a job, computed in memory.

    ``data`` maps ``_row`` and every output column to its values (dropped rows absent);
    ``table`` is the same as a ``pyarrow.Table`` when pyarrow is installed, else None.
    """

    data: dict[str, list[Any]]
    table: Any
    records: int
    dropped: int
    error_samples: tuple[GeneratorFailure, ...]

    def __str__(self) -> str:
        return str(self.table) if self.table is not None else str(self.data)


def preview_spec(spec: JobSpec, n: int) -> JobSpec:
    """*spec* cut to its first *n* rows, in memory, showing nothing."""
    return dataclasses.replace(
        spec,
        num_records=min(n, spec.num_records),
        output_dir=None,
        generation=None,
        progress=None,
        progress_bar=False,
        tune_gc=False,
    )


async def preview_job_async(spec: JobSpec, n: int) -> JobPreview:
    """Compute the first *n* rows of *spec* on the running loop (module doc)."""
    small = preview_spec(spec, n)
    result = await ShardRunner(small, range(small.num_row_groups)).run(StopSignals())
    data = result.to_pydict(row_index=True)
    try:
        table = result.table(row_index=True)
    except ImportError:
        table = None
    return JobPreview(data, table, result.records, result.dropped, result.error_samples)


def preview_job(spec: JobSpec, n: int) -> JobPreview:
    """Compute the first *n* rows of *spec* in a new event loop (module doc)."""
    return asyncio.run(preview_job_async(spec, n))
