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

from collections.abc import Mapping, Sequence
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

__all__ = ["attach_kept", "buffer_names", "prefill_group", "read_kept", "to_python"]


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
