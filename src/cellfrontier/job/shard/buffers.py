"""Per-row-group column buffers: where a group's values live until it is written out.

One plain Python list per output column, indexed by the row's position in the group and
pre-filled with ``None``.  Lists are the fastest container for values of any type that are
written one cell at a time and read back by index; numpy object arrays and dicts are slower
on both.  No sentinel marks "not computed yet": the tracker owns that fact, and a value slot
of a cell the tracker does not report as done is never read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from cellfrontier.job.output import ROW_COLUMN
from cellfrontier.tracker import CompletionTracker

__all__ = ["GroupBuffers"]

_SAMPLE = 16
"""Values sampled per column when estimating a group's memory."""


class GroupBuffers:
    """The values of one admitted row group, its dropped rows and its outstanding tasks."""

    __slots__ = ("base", "columns", "dropped", "finished", "outstanding", "row_group", "size")

    def __init__(
        self,
        row_group: int,
        size: int,
        base: int,
        names: Iterable[str],
        columns: dict[str, list[Any]] | None = None,
    ) -> None:
        self.row_group = row_group
        self.size = size
        self.base = base
        self.columns: dict[str, list[Any]] = (
            columns if columns is not None else {n: [None] * size for n in names}
        )
        self.dropped: set[int] = set()
        self.outstanding = 0
        """Tasks of this group handed out by the tracker and not yet completed or dropped."""
        self.finished = False
        """Every column is done: the group is being written out (or stored) and takes no more work."""

    @classmethod
    def restored(
        cls, row_group: int, size: int, base: int, columns: dict[str, list[Any]], tracker: CompletionTracker
    ) -> GroupBuffers:
        """A group resumed from a checkpoint: its saved *columns*, its dropped rows as *tracker* has them."""
        group = cls(row_group, size, base, (), columns)
        is_dropped = tracker.is_dropped
        group.dropped = {r for r in range(size) if is_dropped(row_group, r)}
        return group

    def live_rows(self) -> list[int]:
        """Local indices of the rows not dropped, ascending."""
        if not self.dropped:
            return list(range(self.size))
        dropped = self.dropped
        return [r for r in range(self.size) if r not in dropped]

    def live_values(self, name: str, live: Sequence[int] | None = None) -> list[Any]:
        """The values of column *name* on the live rows (the buffer itself when nothing was dropped)."""
        values = self.columns[name]
        if not self.dropped:
            return values
        rows = self.live_rows() if live is None else live
        return [values[r] for r in rows]

    def batch_input(self, names: Iterable[str]) -> tuple[dict[str, Any], Sequence[int]]:
        """A full-column call's argument and the live rows it covers.

        ``{name: values on the live rows}`` for each of *names*, plus ``_row`` (their global
        indices); copies, since the generator may keep or change its lists.
        """
        if not self.dropped:
            batch: dict[str, Any] = {name: list(self.columns[name]) for name in names}
            batch[ROW_COLUMN] = list(range(self.base, self.base + self.size))
            return batch, range(self.size)
        live = self.live_rows()
        batch = {name: self.live_values(name, live) for name in names}
        batch[ROW_COLUMN] = [self.base + r for r in live]
        return batch, live

    def final_values(self, names: Iterable[str]) -> tuple[dict[str, list[Any]], int]:
        """The finished group's output, ``{name: values}`` on its live rows plus ``_row``, and its live rows.

        Without dropped rows the buffers themselves are handed over: the group is final.
        """
        if not self.dropped:
            data = {name: self.columns[name] for name in names}
            data[ROW_COLUMN] = list(range(self.base, self.base + self.size))
            return data, self.size
        live = self.live_rows()
        data = {name: self.live_values(name, live) for name in names}
        data[ROW_COLUMN] = [self.base + r for r in live]
        return data, len(live)

    def estimate_bytes(self) -> int:
        """Approximate memory of the values held, from a sample of each column."""
        total = 0
        for values in self.columns.values():
            total += sys.getsizeof(values)
            if not values:
                continue
            step = max(1, len(values) // _SAMPLE)
            sample = values[::step]
            total += sum(sys.getsizeof(v) for v in sample) * len(values) // len(sample)
        return total
