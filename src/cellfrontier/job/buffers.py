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
