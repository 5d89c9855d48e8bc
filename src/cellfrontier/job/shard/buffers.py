"""Per-row-group column buffers: where a group's values live until it is written out.

One plain Python list per output column, indexed by the row's position in the group and
pre-filled with ``None``.  Lists are the fastest container for values of any type that are
written one cell at a time and read back by index; numpy object arrays and dicts are slower
on both.  No sentinel marks "not computed yet": the tracker owns that fact, and a value slot
of a cell the tracker does not report as done is never read.

A group a rerun upgrades (:mod:`cellfrontier.job.shard.reuse`) may also hold *carried*
columns: kept columns no computed task reads, held as the Arrow arrays read from the previous
file (aligned with its rows) and written out as they are; and *partial* full columns: kept
full columns that still lack some rows, whose generator is then called for those rows only.
Each dropped row's *culprit* (the column whose failure dropped it) goes into the file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from cellfrontier.job.output import ROW_COLUMN
from cellfrontier.tracker import CompletionTracker

__all__ = ["GroupBuffers"]

_SAMPLE = 16
"""Values sampled per column when estimating a group's memory."""


class GroupBuffers:
    """The values of one admitted row group, its dropped rows and its outstanding tasks."""

    __slots__ = (
        "base",
        "carried",
        "carried_rows",
        "columns",
        "culprits",
        "dropped",
        "finished",
        "outstanding",
        "partial",
        "row_group",
        "size",
    )

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
        self.culprits: dict[int, str] = {}
        """For each dropped row, the column whose failure dropped it."""
        self.carried: dict[str, Any] = {}
        """Outputs carried over from the previous file as Arrow arrays, aligned with ``carried_rows``."""
        self.carried_rows: Sequence[int] = ()
        self.partial: dict[str, set[int]] = {}
        """Kept full columns that lack some rows: the rows they already hold."""
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

    def batch_input(self, names: Iterable[str], column: str = "") -> tuple[dict[str, Any], Sequence[int]]:
        """A full-column call's argument and the live rows it covers.

        ``{name: values on the live rows}`` for each of *names*, plus ``_row`` (their global
        indices); copies, since the generator may keep or change its lists.  For a partial
        *column* (a kept full column lacking rows) only the live rows it lacks.
        """
        if self.partial and column in self.partial:
            missing = self.batch_rows(column)
            rows = {name: [self.columns[name][r] for r in missing] for name in names}
            rows[ROW_COLUMN] = [self.base + r for r in missing]
            return rows, missing
        if not self.dropped:
            batch: dict[str, Any] = {name: list(self.columns[name]) for name in names}
            batch[ROW_COLUMN] = list(range(self.base, self.base + self.size))
            return batch, range(self.size)
        live = self.live_rows()
        batch = {name: self.live_values(name, live) for name in names}
        batch[ROW_COLUMN] = [self.base + r for r in live]
        return batch, live

    def batch_rows(self, column: str) -> list[int]:
        """The rows a full-column call of *column* covers: the live rows (those it lacks, if partial)."""
        filled = self.partial.get(column)
        if filled is None:
            return self.live_rows()
        dropped = self.dropped
        return [r for r in range(self.size) if r not in filled and r not in dropped]

    def lacks_nothing(self, column: str) -> bool:
        """A partial *column* that holds every live row already (its call would get no rows)."""
        filled = self.partial.get(column)
        if filled is None:
            return False
        dropped = self.dropped
        return all(r in filled or r in dropped for r in range(self.size))

    def final_values(self, names: Iterable[str]) -> tuple[dict[str, Any], int]:
        """The finished group's output, ``{name: values}`` on its live rows plus ``_row``, and its live rows.

        Without dropped rows the buffers themselves are handed over: the group is final.
        Carried columns are Arrow arrays, taken at the live rows' positions when rows were
        dropped since they were read.
        """
        carried = self.carried
        if not self.dropped:
            data: dict[str, Any] = {
                name: carried[name] if name in carried else self.columns[name] for name in names
            }
            data[ROW_COLUMN] = list(range(self.base, self.base + self.size))
            return data, self.size
        live = self.live_rows()
        data = {name: self.live_values(name, live) for name in names if name not in carried}
        if carried:
            positions = None if len(live) == len(self.carried_rows) else _positions(self.carried_rows, live)
            for name, array in carried.items():
                data[name] = array if positions is None else array.take(positions)
        data[ROW_COLUMN] = [self.base + r for r in live]
        return data, len(live)

    def drop_culprits(self) -> dict[int, str]:
        """Each dropped row and the column that dropped it (``""`` where that is not known)."""
        culprits = self.culprits
        return {row: culprits.get(row, "") for row in sorted(self.dropped)}

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


def _positions(rows: Sequence[int], wanted: Sequence[int]) -> Any:
    """The position of each of *wanted* (ascending) in *rows* (ascending, a superset), as int64."""
    return np.searchsorted(np.asarray(rows, dtype=np.int64), np.asarray(wanted, dtype=np.int64))
