"""Completion state without a graph: what ``CompletionTracker()`` records.

Without a graph there is no frontier and no row-group plan, so nothing says in advance
which columns exist or how many rows a group has.  The state is still bitmaps (numpy
``uint64`` words, one bit per row) with counters, as in the compiled core:

* per row group: the dropped rows, and per column the done rows, each with its count, plus
  the count of rows both done and dropped, so that "is this column resolved for the group?"
  is O(1) and "is the group complete?" O(columns), never a scan of rows;
* a group's size becomes known with its first ``mark_row_range_complete`` (a range is the
  whole group).  From then on a row outside it, or another size, is refused
  (:class:`RowIndexError`, :class:`SizeMismatchError`); before then a bitmap grows by
  doubling as rows arrive, and ``is_row_group_complete`` refuses a size smaller than a row
  already recorded.

Every mutation is a Python read-modify-write of several arrays, so each holds ``_lock``:
the same no-lost-update contract as the compiled core.  State leaves and enters through
:meth:`CompletionOnlyState.export_state` / :meth:`CompletionOnlyState.from_state`, as plain
values of :mod:`cellfrontier.state`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from cellfrontier._validate import MAX_ROWS, as_integer, check_group_size
from cellfrontier._values import FrontierDelta
from cellfrontier.errors import (
    RowGroupCompactedError,
    RowIndexError,
    SizeMismatchError,
    UnknownColumnError,
)
from cellfrontier.state import CompactedGroup, PlainGroupState, PlainState

__all__ = ["CompletionOnlyState", "PlainGroup"]

_EMPTY_DELTA = FrontierDelta()
_ONE = np.uint64(1)


def _popcount(words: npt.NDArray[np.uint64]) -> int:
    """Set bits in an array of words."""
    return int(np.unpackbits(words.view(np.uint8)).sum()) if words.size else 0


def _words(rows: int) -> int:
    return (rows + 63) >> 6


def _full_words(size: int) -> npt.NDArray[np.uint64]:
    """Words with the first *size* bits set."""
    out = np.full(_words(size), ~np.uint64(0), dtype=np.uint64)
    if size & 63:
        out[-1] = (_ONE << np.uint64(size & 63)) - _ONE
    return out


class PlainGroup:
    """One row group's bitmaps and counters (see the module docstring)."""

    __slots__ = ("batches", "done", "dropped", "extent", "n_both", "n_done", "n_dropped", "size")

    def __init__(self, size: int | None = None) -> None:
        self.size = size  # known once a range completed (or from a checkpoint)
        self.extent = 0  # one past the largest row recorded
        self.dropped = np.zeros(_words(size or 0), dtype=np.uint64)
        self.n_dropped = 0
        self.done: dict[str, npt.NDArray[np.uint64]] = {}
        self.n_done: dict[str, int] = {}
        self.n_both: dict[str, int] = {}  # rows both done and dropped
        self.batches: set[str] = set()

    def grow(self, rows: int) -> None:
        """Make every bitmap hold at least *rows* rows (doubling, so growth is amortised O(1))."""
        need = _words(rows)
        if need <= self.dropped.size:
            return
        capacity = max(need, 2 * self.dropped.size)
        self.dropped = _resized(self.dropped, capacity)
        for column, words in self.done.items():
            self.done[column] = _resized(words, capacity)

    def column_words(self, column: str) -> npt.NDArray[np.uint64]:
        words = self.done.get(column)
        if words is None:
            words = self.done[column] = np.zeros(self.dropped.size, dtype=np.uint64)
            self.n_done[column] = 0
            self.n_both[column] = 0
        return words

    def resolved(self, column: str) -> int:
        """Rows done or dropped for *column*."""
        return self.n_done.get(column, 0) + self.n_dropped - self.n_both.get(column, 0)

    def recount(self) -> None:
        """Recompute every counter from the bitmaps (after a checkpoint is read)."""
        self.n_dropped = _popcount(self.dropped)
        for column, words in self.done.items():
            self.n_done[column] = _popcount(words)
            self.n_both[column] = _popcount(words & self.dropped)

    @property
    def nbytes(self) -> int:
        return int(self.dropped.nbytes + sum(w.nbytes for w in self.done.values()))


def _resized(words: npt.NDArray[np.uint64], capacity: int) -> npt.NDArray[np.uint64]:
    out = np.zeros(capacity, dtype=np.uint64)
    out[: words.size] = words
    return out


def _read_words(data: bytes) -> npt.NDArray[np.uint64]:
    """Little-endian uint64 words read from bytes (a copy the group owns)."""
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


class CompletionOnlyState:
    """Completed cells and dropped rows per row group, with no graph and no frontier."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.groups: dict[int, PlainGroup] = {}
        self.compacted: dict[int, tuple[int, bytes]] = {}  # id -> (rows, dropped rows packed)

    # -- state in and out -----------------------------------------------------------------

    def export_state(self) -> PlainState:
        """The whole state at one instant, as plain values."""
        with self._lock:
            return PlainState(
                groups=tuple(
                    PlainGroupState(
                        row_group=rg,
                        size=group.size,
                        extent=group.extent,
                        dropped=group.dropped.astype("<u8").tobytes(),
                        columns=tuple((c, w.astype("<u8").tobytes()) for c, w in sorted(group.done.items())),
                        batches=tuple(sorted(group.batches)),
                    )
                    for rg, group in sorted(self.groups.items())
                ),
                compacted=tuple(
                    CompactedGroup(rg, rows, packed) for rg, (rows, packed) in sorted(self.compacted.items())
                ),
            )

    @classmethod
    def from_state(cls, state: PlainState) -> CompletionOnlyState:
        """A state holding *state* (nothing trusted: counters are recomputed, sizes checked)."""
        groups: dict[int, PlainGroup] = {}
        for entry in state.groups:
            group = PlainGroup(None if entry.size is None else int(entry.size))
            group.extent = int(entry.extent)
            group.dropped = _read_words(entry.dropped)
            group.done = {str(column): _read_words(words) for column, words in entry.columns}
            group.batches = {str(name) for name in entry.batches}
            # Every bitmap of a group has the same number of words; counters are never trusted.
            width = max([group.dropped.size, *(w.size for w in group.done.values())])
            group.dropped = _resized(group.dropped, width)
            group.done = {c: _resized(w, width) for c, w in group.done.items()}
            group.recount()
            if group.size is not None and (
                not 0 <= group.size < MAX_ROWS or group.size < group.extent or width * 64 < group.size
            ):
                raise ValueError(f"graph-less row group {entry.row_group!r} has inconsistent sizes")
            groups[int(entry.row_group)] = group
        restored = cls()
        restored.groups = groups
        restored.compacted = {int(g.row_group): (int(g.size), bytes(g.dropped)) for g in state.compacted}
        return restored

    # -- validation -----------------------------------------------------------------------

    def _row(self, value: Any, group: PlainGroup | None, method: str) -> int:
        row = as_integer(value, "row index", method)
        limit = group.size if group is not None and group.size is not None else MAX_ROWS
        if not 0 <= row < limit:
            raise RowIndexError(f"{method}() got row index {row!r} outside 0 <= row_index < {limit}")
        return row

    def _size(self, value: Any, group: PlainGroup | None, method: str) -> int:
        size = int(check_group_size(value, method))
        if group is not None:
            if group.size is not None and size != group.size:
                raise SizeMismatchError(
                    f"{method}() got row_group_size {size!r}, but the group's range was completed "
                    f"with size {group.size}"
                )
            if size < group.extent:
                raise SizeMismatchError(
                    f"{method}() got row_group_size {size!r}, but row {group.extent - 1} of the group "
                    "was already recorded"
                )
        return size

    @staticmethod
    def _column(column: Any, method: str) -> str:
        if not isinstance(column, str) or not column:
            raise UnknownColumnError(f"{method}() needs a non-empty column name, got {column!r}")
        return column

    def _live(self, row_group: int, method: str) -> PlainGroup | None:
        if row_group in self.compacted:
            raise RowGroupCompactedError(
                f"{method}() got row group {row_group!r}, which was already compacted"
            )
        return self.groups.get(row_group)

    # -- mutations ------------------------------------------------------------------------

    def _group_for_row(self, row_group: int, row_index: Any, method: str) -> tuple[PlainGroup, int]:
        """The live group a row event lands in (made on first touch, grown to hold the row).

        Call with ``_lock`` held; validation comes first, so a refused call changes nothing.
        """
        group = self._live(row_group, method)
        row = self._row(row_index, group, method)
        if group is None:
            group = self.groups[row_group] = PlainGroup()
        group.grow(row + 1)
        group.extent = max(group.extent, row + 1)
        return group, row

    def mark_cell(self, column: Any, row_group: Any, row_index: Any) -> FrontierDelta:
        method = "mark_cell_complete"
        column = self._column(column, method)
        row_group = as_integer(row_group, "row group", method)
        with self._lock:
            group, row = self._group_for_row(row_group, row_index, method)
            words = group.column_words(column)
            word, bit = row >> 6, _ONE << np.uint64(row & 63)
            if not words[word] & bit:
                words[word] |= bit
                group.n_done[column] += 1
                if group.dropped[word] & bit:
                    group.n_both[column] += 1
        return _EMPTY_DELTA

    def mark_range(self, column: Any, row_group: Any, size: Any) -> FrontierDelta:
        method = "mark_row_range_complete"
        column = self._column(column, method)
        row_group = as_integer(row_group, "row group", method)
        with self._lock:
            group = self._live(row_group, method)
            size = self._size(size, group, method)
            if group is None:
                group = self.groups[row_group] = PlainGroup(size)
            group.size = size
            group.grow(size)
            words = group.column_words(column)
            full = _full_words(size)
            head = words[: full.size]
            newly = full & ~head
            group.n_done[column] += _popcount(newly)
            group.n_both[column] += _popcount(newly & group.dropped[: full.size])
            head |= full
            group.batches.add(column)
            group.extent = max(group.extent, size)
        return _EMPTY_DELTA

    def drop(self, row_group: Any, row_index: Any) -> FrontierDelta:
        method = "drop_row"
        row_group = as_integer(row_group, "row group", method)
        with self._lock:
            group, row = self._group_for_row(row_group, row_index, method)
            word, bit = row >> 6, _ONE << np.uint64(row & 63)
            if not group.dropped[word] & bit:
                group.dropped[word] |= bit
                group.n_dropped += 1
                for column, words in group.done.items():  # O(columns)
                    if words[word] & bit:
                        group.n_both[column] += 1
        return _EMPTY_DELTA

    def compact(self, row_group: Any) -> None:
        """Release a group's bitmaps, keeping its dropped rows (the caller says it is finished)."""
        row_group = as_integer(row_group, "row group", "compact_row_group")
        with self._lock:
            if row_group in self.compacted:
                return
            group = self.groups.pop(row_group, None)
            if group is None:
                self.compacted[row_group] = (0, b"")
                return
            rows = group.size if group.size is not None else group.extent
            packed = group.dropped.astype("<u8").tobytes().rstrip(b"\x00")
            self.compacted[row_group] = (rows, packed)

    # -- queries --------------------------------------------------------------------------

    def _compacted_dropped(self, row_group: int, row: int) -> bool:
        _, packed = self.compacted[row_group]
        byte = row >> 3
        return byte < len(packed) and bool(packed[byte] & (1 << (row & 7)))

    def is_done(self, column: Any, row_group: Any, row_index: Any) -> bool:
        method = "is_complete"
        column = self._column(column, method)
        row_group = as_integer(row_group, "row group", method)
        group = self.groups.get(row_group)
        if row_index is None:
            return row_group in self.compacted or (group is not None and column in group.batches)
        row = self._row(row_index, group, method)
        if row_group in self.compacted:
            return not self._compacted_dropped(row_group, row)
        if group is None:
            return False
        words = group.done.get(column)
        if words is None or row >> 6 >= words.size:
            return False
        return bool(words[row >> 6] & (_ONE << np.uint64(row & 63)))

    def is_dropped(self, row_group: Any, row_index: Any) -> bool:
        row_group = as_integer(row_group, "row group", "is_dropped")
        group = self.groups.get(row_group)
        row = self._row(row_index, group, "is_dropped")
        if row_group in self.compacted:
            return self._compacted_dropped(row_group, row)
        if group is None or row >> 6 >= group.dropped.size:
            return False
        return bool(group.dropped[row >> 6] & (_ONE << np.uint64(row & 63)))

    def is_group_complete(self, row_group: Any, size: Any, columns: list[Any]) -> bool:
        method = "is_row_group_complete"
        row_group = as_integer(row_group, "row group", method)
        columns = [self._column(c, method) for c in columns]
        group = self.groups.get(row_group)
        size = self._size(size, group, method)
        if row_group in self.compacted:
            return True
        if group is None:
            return size == 0 or not columns
        return all(group.resolved(c) == size for c in columns)  # O(columns)

    def is_column_complete(self, column: Any, row_group: Any) -> bool:
        method = "is_column_complete_for_rg"
        column = self._column(column, method)
        row_group = as_integer(row_group, "row group", method)
        if row_group in self.compacted:
            return True
        group = self.groups.get(row_group)
        # Until a range fixed the group's size, only a completed range proves completeness.
        if group is None or group.size is None:
            return group is not None and column in group.batches
        return column in group.batches or group.resolved(column) == group.size

    def nbytes(self) -> int:
        return sum(g.nbytes for g in self.groups.values()) + sum(len(p) for _, p in self.compacted.values())
