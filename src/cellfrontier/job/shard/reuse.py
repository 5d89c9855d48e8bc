"""Starting a row group a rerun upgrades: its kept columns read back, its tracker state prefilled.

:mod:`cellfrontier.job.store.group_reuse` decided, from the group file's footer, what is kept;
here the kept columns' values are read (:func:`read_kept`) and put in place
(:func:`prefill_group`): the values into the group's buffers (Python lists only for the
columns a computed task reads or that have new rows; the others stay the Arrow arrays they
were read as, carried to the new file), and the tracker told that the kept cells are done and
the kept drops dropped, before the group's root tasks are added: one bulk call of the compiled
core (``prefill_row_group``), which checks every argument before it changes anything, so the
group's state is made whole or not at all.  The file's rows are checked against its footer
before that.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cellfrontier.job.columns import ColumnSpec
from cellfrontier.job.errors import OutputDirError
from cellfrontier.job.output import ROW_COLUMN
from cellfrontier.job.shard.buffers import GroupBuffers
from cellfrontier.job.store.group_files import read_group_columns
from cellfrontier.job.store.group_reuse import GroupReuse
from cellfrontier.tracker import CompletionTracker

__all__ = ["UpgradedGroups", "attach_kept", "buffer_names", "prefill_group", "read_kept", "to_python"]

_PREFETCH_GROUPS = 4
"""Upgraded groups whose kept columns are read ahead of their admission, at most."""


def buffer_names(
    output_names: Sequence[str], reuse: GroupReuse, by_name: Mapping[str, ColumnSpec]
) -> list[str]:
    """The outputs a reused group holds as Python lists (every output but the carried ones)."""
    carried = {out for name in reuse.carried for out in by_name[name].outputs}
    return [name for name in output_names if name not in carried]


def read_kept(path: Path, reuse: GroupReuse, by_name: Mapping[str, ColumnSpec], base: int) -> Any:
    """The kept columns' values from the group file at *path*, checked against its footer."""
    outputs = [out for name in reuse.kept for out in by_name[name].outputs]
    table = read_group_columns(path, outputs)
    rows = np.asarray(table.column(ROW_COLUMN).to_numpy(), dtype=np.int64)
    expected = np.asarray(reuse.stored_rows, dtype=np.int64) + base
    if rows.shape != expected.shape or not np.array_equal(rows, expected):
        raise OutputDirError(
            f"{path} holds other rows than its footer says (row group {reuse.row_group}); the file was "
            "changed by hand: remove it to compute the group again"
        )
    return table


def to_python(column: Any) -> list[Any]:
    """An Arrow column's values as a Python list, as the generators gave them.

    Through numpy where that is exact and some twenty times faster than ``to_pylist()``:
    strings and binaries, and integers, floats and booleans without nulls.  Anything else
    (nulls in numbers, nested types, dates) goes through ``to_pylist()``.
    """
    import pyarrow.types as types

    kind = column.type
    if (types.is_string(kind) or types.is_large_string(kind) or types.is_binary(kind)) or (
        column.null_count == 0
        and (types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind))
    ):
        values: list[Any] = column.to_numpy(zero_copy_only=False).tolist()
        return values
    result: list[Any] = column.to_pylist()
    return result


def attach_kept(
    group: GroupBuffers, reuse: GroupReuse, by_name: Mapping[str, ColumnSpec], table: Any
) -> None:
    """Put the kept values of *table* into *group*: lists where computed tasks read them, else carried."""
    stored = reuse.stored_rows
    whole = len(stored) == group.size
    lists = set(reuse.as_lists)
    for name in reuse.kept:
        for out in by_name[name].outputs:
            column = table.column(out)
            if name not in lists:
                group.carried[out] = column
                continue
            values = to_python(column)
            buffer = group.columns[out]
            if whole:
                buffer[:] = values
            else:
                for row, value in zip(stored, values, strict=True):
                    buffer[row] = value
    group.carried_rows = stored
    if reuse.new_rows:
        filled = set(stored)
        group.partial = {name: filled for name in reuse.kept if by_name[name].batch}


def prefill_group(
    tracker: CompletionTracker, group: GroupBuffers, reuse: GroupReuse, by_name: Mapping[str, ColumnSpec]
) -> None:
    """Tell *tracker* what *group* keeps, in one bulk call: the kept drops, the kept cells and batches."""
    dropped = np.fromiter(sorted(reuse.kept_dropped), dtype=np.int64, count=len(reuse.kept_dropped))
    tracker.prefill_row_group(
        group.row_group,
        group.size,
        dropped=dropped,
        cell_columns=[name for name in reuse.kept if not by_name[name].batch],
        rows=np.asarray(reuse.stored_rows, dtype=np.int64),
        full_columns=[] if reuse.new_rows else [name for name in reuse.kept if by_name[name].batch],
    )
    if reuse.kept_dropped:
        group.dropped.update(reuse.kept_dropped)
        group.culprits.update(reuse.kept_dropped)


class UpgradedGroups:
    """The written groups a shard's run upgrades: what it keeps of each, read ahead on threads.

    The store decided what each group keeps (``reuse``: row group -> its file and
    :class:`~cellfrontier.job.store.group_reuse.GroupReuse`); the runner asks here for a group
    to start (:meth:`start` at admission, :meth:`resume` for one a checkpoint held), for the job
    version of the file a finished group replaces (:meth:`replaced_version`), and lets the next
    groups' reads start early (:meth:`prefetch`: Parquet reads release the GIL).
    """

    def __init__(
        self,
        reuse: dict[int, tuple[Path, GroupReuse]],
        by_name: Mapping[str, ColumnSpec],
        output_names: Sequence[str],
        buffer_size: int,
    ) -> None:
        self.waiting = reuse
        self.by_name = by_name
        self.output_names = output_names
        self.buffer_size = buffer_size
        self.previous: dict[int, int] = {}
        """The job version of the file each started upgrade replaces."""
        self.reader: concurrent.futures.ThreadPoolExecutor | None = None
        self.prefetched: dict[int, concurrent.futures.Future[tuple[Any, float]]] = {}
        self.cells_kept = 0
        """Cells kept from the files (read back, never computed)."""
        self.readback_seconds = 0.0
        """Time spent reading the kept values back, summed over the reads."""

    def __bool__(self) -> bool:
        return bool(self.waiting)

    def start(self, rg: int, size: int, tracker: CompletionTracker) -> GroupBuffers | None:
        """Group *rg* as admitted: with its kept values and tracker state when it is an upgrade, else None."""
        found = self.waiting.pop(rg, None)
        if found is None:
            return None
        path, reuse = found
        group = GroupBuffers(
            rg, size, rg * self.buffer_size, buffer_names(self.output_names, reuse, self.by_name)
        )
        self.previous[rg] = reuse.generation
        if reuse.kept:
            attach_kept(group, reuse, self.by_name, self._read(path, reuse))
            prefill_group(tracker, group, reuse, self.by_name)
            self.cells_kept += len(reuse.kept) * len(reuse.stored_rows)
        return group

    def resume(self, group: GroupBuffers) -> None:
        """A group a checkpoint held while upgrading it: its kept values come from the file again."""
        found = self.waiting.pop(group.row_group, None)
        if found is None:
            return
        path, reuse = found
        self.previous[group.row_group] = reuse.generation
        if reuse.kept:
            attach_kept(group, reuse, self.by_name, self._read(path, reuse))

    def replaced_version(self, rg: int) -> int | None:
        """The job version of the file finished group *rg* replaces (None: it had no file)."""
        return self.previous.pop(rg, None)

    def prefetch(self, pending: Iterable[int]) -> None:
        """Start reading the kept columns of the next upgrades among *pending* (in admission order)."""
        if not self.waiting:
            return
        if self.reader is None:
            self.reader = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="cellfrontier-reader")
        for rg in itertools.islice(pending, _PREFETCH_GROUPS):
            if len(self.prefetched) >= _PREFETCH_GROUPS:
                return
            found = self.waiting.get(rg)
            if found is not None and found[1].kept and rg not in self.prefetched:
                self.prefetched[rg] = self.reader.submit(self._timed_read, *found)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.shutdown(wait=True, cancel_futures=True)

    def _timed_read(self, path: Path, reuse: GroupReuse) -> tuple[Any, float]:
        started = time.perf_counter()
        table = read_kept(path, reuse, self.by_name, reuse.row_group * self.buffer_size)
        return table, time.perf_counter() - started

    def _read(self, path: Path, reuse: GroupReuse) -> Any:
        """The kept columns of an upgraded group: read ahead already, or now."""
        future = self.prefetched.pop(reuse.row_group, None)
        table, seconds = future.result() if future is not None else self._timed_read(path, reuse)
        self.readback_seconds += seconds
        return table
