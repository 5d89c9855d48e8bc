"""A shard's usage counters: what its checkpoint held plus what its generators counted since.

Generators keep their own counters (see :mod:`cellfrontier.job.usage`), and a generator object
may outlive one shard (a local run runs its shards one after another in one process, and the
user may run the job again), so the meter never resets them: it notes each counter when the
shard starts and counts the difference.  A resumed shard adds the counts its checkpoint saved,
so its totals are whole.  Calls in flight at a crash ran before the crash and run again after
it: they are counted twice, as the endpoint that answered them counts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.usage import Counts, JobUsage, add_counts, plain_counts

__all__ = ["UsageMeter", "usage_group", "usage_source"]


def usage_source(fn: Any) -> Any | None:
    """The ``usage`` object of a generator (or of the function a ``blocking()`` mark wraps), or None."""
    for target in (fn, getattr(fn, "__wrapped__", None)):
        usage = getattr(target, "usage", None)
        if usage is not None and callable(getattr(usage, "as_dict", None)):
            return usage
    return None


def usage_group(fn: Any) -> str | None:
    """The model a generator's counts belong to (its ``usage_group``), or None."""
    for target in (fn, getattr(fn, "__wrapped__", None)):
        group = getattr(target, "usage_group", None)
        if isinstance(group, str):
            return group
    return None


class UsageMeter:
    """Usage per column of one shard: saved counts plus what the generators counted since the start."""

    def __init__(self, columns: Sequence[ColumnSpec]) -> None:
        self.sources: dict[str, Any] = {}
        self.groups: dict[str, str] = {}
        for column in columns:
            source = usage_source(column.fn)
            if source is None:
                continue
            self.sources[column.name] = source
            group = usage_group(column.fn)
            if group is not None:
                self.groups[column.name] = group
        self.saved: dict[str, Counts] = {}
        self.started: dict[str, Counts] = {name: self._read(name) for name in self.sources}

    @property
    def active(self) -> bool:
        """Some column counts usage (or the checkpoint held some)."""
        return bool(self.sources or self.saved)

    def restore(self, saved: Mapping[str, Mapping[str, int]]) -> None:
        """Start from the counts a checkpoint saved (``{column: {counter: int}}``)."""
        self.saved = {name: plain_counts(counts) for name, counts in saved.items()}

    def _read(self, name: str) -> Counts:
        return plain_counts(self.sources[name].as_dict())

    def new_counts(self) -> dict[str, Counts]:
        """What each column counted since this shard started (not the saved counts)."""
        counts: dict[str, Counts] = {}
        for name in self.sources:
            start = self.started[name]
            counts[name] = {key: value - start.get(key, 0) for key, value in self._read(name).items()}
        return counts

    def counts(self) -> dict[str, Counts]:
        """Each column's whole count: the saved counts plus the new ones (what a checkpoint saves)."""
        counts = {name: dict(saved) for name, saved in self.saved.items()}
        for name, new in self.new_counts().items():
            add_counts(counts.setdefault(name, {}), new)
        return counts

    def usage(self) -> JobUsage:
        return JobUsage.from_columns(self.counts(), self.groups)

    def rates(self, elapsed: float) -> tuple[float | None, float | None]:
        """Calls and tokens per second since this shard started over *elapsed* seconds (the
        progress bar's figures); None when no column counts usage."""
        if not self.sources:
            return None, None
        calls = tokens = 0
        for counts in self.new_counts().values():
            calls += counts.get("calls", 0)
            tokens += sum(value for key, value in counts.items() if key.endswith("tokens"))
        return calls / elapsed, tokens / elapsed
