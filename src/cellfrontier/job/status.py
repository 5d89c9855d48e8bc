"""What a job's output directory holds, as plain values: :class:`JobStatus` and its parts.

:mod:`cellfrontier.job.store.status_reader` reads them from a directory (``cellfrontier
status``); they hold only numbers, strings and ranges, and :meth:`JobStatus.to_json` gives their
JSON form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellfrontier.job.result import GeneratorFailure

__all__ = [
    "STATES",
    "ClaimRecord",
    "ColumnDescription",
    "JobDescription",
    "JobStatus",
    "ShardStatus",
    "format_duration",
    "plain_fields",
]

STATES = ("live", "stale", "finished", "not started")
"""A shard's states (:attr:`ShardStatus.state`)."""
MAX_SAMPLES = 5


@dataclass(frozen=True)
class ColumnDescription:
    name: str
    strategy: str
    """``cell_by_cell`` or ``full_column``."""
    generator: str
    """The generator's ``module:qualname``, as the manifest names it."""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobDescription:
    """The job a directory holds, from its manifest alone."""

    columns: tuple[ColumnDescription, ...]
    """In topological order."""
    num_records: int
    buffer_size: int
    fingerprint: str
    """The manifest's digest, the one stamped on every checkpoint of the job."""
    manifest_version: int

    @property
    def num_row_groups(self) -> int:
        return -(-self.num_records // self.buffer_size)

    def group_size(self, rg: int) -> int:
        return max(0, min(self.buffer_size, self.num_records - rg * self.buffer_size))

    def rows_in(self, groups: range) -> int:
        return sum(self.group_size(rg) for rg in groups)

    def estimate_tasks(self, groups: range) -> int:
        """Tasks of *groups*: one per cell, one per full-column batch (as the runner estimates)."""
        cells = sum(1 for c in self.columns if c.strategy == "cell_by_cell")
        return self.rows_in(groups) * cells + len(groups) * (len(self.columns) - cells)


@dataclass(frozen=True)
class ClaimRecord:
    """Who claimed an epoch: what its claim file records (for diagnosis only)."""

    epoch: int
    host: str | None = None
    pid: int | None = None
    claimed_at: float | None = None


@dataclass(frozen=True)
class ShardStatus:
    """One shard (or a range of row groups no shard covers yet, ``registered`` False)."""

    row_groups: range
    registered: bool
    state: str
    """One of :data:`STATES`."""
    detail: str
    """Why the state was chosen, in a few words."""
    epoch: int | None
    """The newest checkpoint's epoch."""
    claimed_epoch: int | None
    checkpoint_age: float | None
    """Seconds since the newest checkpoint was saved."""
    rows_total: int
    rows_done: int
    """Rows of the groups written now: the newest checkpoint's count, plus the files written since."""
    rows_dropped: int
    groups_written: int
    """Row groups whose file exists now."""
    groups_active: int
    """Groups the newest checkpoint held computing whose file does not exist yet."""
    groups_pending: int
    tasks: int | None
    tasks_total: int
    tasks_per_second: float | None
    """The attempt's rate from its start to its newest checkpoint (None without two observations)."""
    errors: int
    error_samples: tuple[GeneratorFailure, ...] = ()
    usage: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    claim: ClaimRecord | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **plain_fields(self),
            "row_groups": [self.row_groups.start, self.row_groups.stop],
            "error_samples": [sample.to_record() for sample in self.error_samples],
            "usage": {column: dict(counts) for column, counts in self.usage.items()},
            "claim": None if self.claim is None else plain_fields(self.claim),
        }


@dataclass(frozen=True)
class JobStatus:
    """What an output directory holds: the job and each shard, read at ``read_at`` (wall clock)."""

    output_dir: Path
    job: JobDescription
    shards: tuple[ShardStatus, ...]
    """Every shard and every range no shard covers, in row-group order: together the whole job."""
    read_at: float

    def _total(self, name: str) -> int:
        return sum(getattr(shard, name) for shard in self.shards)

    @property
    def rows_done(self) -> int:
        return self._total("rows_done")

    @property
    def rows_dropped(self) -> int:
        return self._total("rows_dropped")

    @property
    def groups_written(self) -> int:
        return self._total("groups_written")

    @property
    def groups_active(self) -> int:
        return self._total("groups_active")

    @property
    def groups_pending(self) -> int:
        return self._total("groups_pending")

    @property
    def errors(self) -> int:
        return self._total("errors")

    @property
    def state(self) -> str:
        """``finished`` when every shard is, else ``live`` if any is, else ``not started`` or ``stale``."""
        states = {shard.state for shard in self.shards}
        if states <= {"finished"}:
            return "finished"
        if "live" in states:
            return "live"
        return "not started" if states <= {"not started"} else "stale"

    @property
    def error_samples(self) -> tuple[GeneratorFailure, ...]:
        """The first failed calls the checkpoints record, shard by shard."""
        return tuple(sample for shard in self.shards for sample in shard.error_samples)[:MAX_SAMPLES]

    @property
    def usage(self) -> dict[str, dict[str, int]]:
        """Usage counters summed over the shards, per column (empty where the job records none)."""
        totals: dict[str, dict[str, int]] = {}
        for shard in self.shards:
            for column, counts in shard.usage.items():
                into = totals.setdefault(column, {})
                for name, value in counts.items():
                    into[name] = into.get(name, 0) + value
        return totals

    @property
    def tasks_per_second(self) -> float | None:
        """The live shards' rates summed; None when no live shard has one."""
        rates = [s.tasks_per_second for s in self.shards if s.state == "live" and s.tasks_per_second]
        return sum(rates) if rates else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every unfinished shard is done at the live shards' rate, or None.

        Counted from the checkpoints (each up to an interval old): an estimate that assumes the
        live attempts keep their pace and go on to the shards not running now.
        """
        rate = self.tasks_per_second
        if rate is None:
            return None
        remaining = sum(
            max(0, shard.tasks_total - (shard.tasks or 0))
            for shard in self.shards
            if shard.state != "finished"
        )
        return remaining / rate

    def to_json(self) -> dict[str, Any]:
        """The status as plain JSON values (what ``cellfrontier status --json`` prints)."""
        job = self.job
        return {
            "format": "cellfrontier-status",
            "version": 1,
            "output_dir": str(self.output_dir),
            "read_at": self.read_at,
            "state": self.state,
            "job": {
                "columns": [plain_fields(column) for column in job.columns],
                "num_records": job.num_records,
                "buffer_size": job.buffer_size,
                "num_row_groups": job.num_row_groups,
                "fingerprint": job.fingerprint,
                "manifest_version": job.manifest_version,
            },
            "rows_done": self.rows_done,
            "rows_dropped": self.rows_dropped,
            "groups_written": self.groups_written,
            "groups_active": self.groups_active,
            "groups_pending": self.groups_pending,
            "errors": self.errors,
            "error_samples": [sample.to_record() for sample in self.error_samples],
            "usage": self.usage,
            "tasks_per_second": self.tasks_per_second,
            "eta_seconds": self.eta_seconds,
            "shards": [shard.to_json() for shard in self.shards],
        }


def plain_fields(value: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(value, f.name), tuple) else v
        for f in dataclasses.fields(value)
    }


def format_duration(seconds: float) -> str:
    """A duration in the unit a person reads it in: ``12 s``, ``5 min``, ``3.2 h``."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:,.1f} h"
