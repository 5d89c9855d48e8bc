"""Usage of a job's generators (model calls and what they cost), per column and per model.

A generator object may carry a ``usage`` attribute: an object whose ``as_dict()`` returns
its counters as plain ints (``cellfrontier.llm``'s model columns do: calls, prompt and
completion tokens, rate-limit waits, errors).  Such counters are the job's state like its
values: a shard saves them in its checkpoint and a resumed shard adds its new counts to the
saved ones, so a resumed job's totals are whole.  A generator may also name the model its
counts belong to (``usage_group``, a str); the result sums them per model too.

The job reads these attributes by duck typing and imports no generator library.  This module
holds the plain values the layers share: counters as ``{name: int}`` dicts and
:class:`JobUsage`, what :attr:`JobResult.usage <cellfrontier.job.result.JobResult.usage>` holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counts", "JobUsage", "add_counts", "plain_counts"]

Counts = dict[str, int]
"""Counters by name, plain ints (JSON-ready)."""


def plain_counts(data: Any) -> Counts:
    """*data* (a mapping of counter names to ints) as a plain dict; refuses anything else."""
    if not isinstance(data, Mapping):
        raise TypeError(f"usage counters must be a mapping of name to int, got {type(data).__name__}")
    counts: Counts = {}
    for name, value in data.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"usage counters must map names to ints, got {name!r}: {value!r}")
        counts[name] = int(value)
    return counts


def add_counts(into: Counts, more: Mapping[str, int]) -> Counts:
    """Add *more* to *into* in place (names missing from *into* start at 0); returns *into*."""
    for name, value in more.items():
        into[name] = into.get(name, 0) + value
    return into


@dataclass(frozen=True)
class JobUsage:
    """Usage counters of a run: per column, per model (a generator's ``usage_group``) and in total.

    Each entry is a plain ``{counter: int}`` dict, so it prints, compares and serialises as is:
    ``result.usage.columns["answer"]["completion_tokens"]``, ``result.usage.models``,
    ``result.usage.total``.  Empty (falsy) when no generator reports usage.
    """

    columns: Mapping[str, Counts] = field(default_factory=dict)
    models: Mapping[str, Counts] = field(default_factory=dict)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Mapping[str, int]], groups: Mapping[str, str]) -> JobUsage:
        """Usage from per-column counters; *groups* maps a column to its model (columns without one
        count in no model)."""
        by_column = {name: dict(counts) for name, counts in sorted(columns.items())}
        models: dict[str, Counts] = {}
        for name, counts in by_column.items():
            group = groups.get(name)
            if group is not None:
                add_counts(models.setdefault(group, {}), counts)
        return cls(by_column, dict(sorted(models.items())))

    @classmethod
    def combine(cls, parts: Iterable[JobUsage]) -> JobUsage:
        """The sum of several shards' usage."""
        columns: dict[str, Counts] = {}
        models: dict[str, Counts] = {}
        for part in parts:
            for name, counts in part.columns.items():
                add_counts(columns.setdefault(name, {}), counts)
            for name, counts in part.models.items():
                add_counts(models.setdefault(name, {}), counts)
        return cls(dict(sorted(columns.items())), dict(sorted(models.items())))

    @property
    def total(self) -> Counts:
        """Every column's counters added up."""
        total: Counts = {}
        for counts in self.columns.values():
            add_counts(total, counts)
        return total

    @property
    def calls(self) -> int:
        """Calls counted in total (the ``calls`` counter)."""
        return self.total.get("calls", 0)

    @property
    def tokens(self) -> int:
        """Tokens counted in total (every counter whose name ends in ``tokens``)."""
        return sum(value for name, value in self.total.items() if name.endswith("tokens"))

    def __bool__(self) -> bool:
        return bool(self.columns)
