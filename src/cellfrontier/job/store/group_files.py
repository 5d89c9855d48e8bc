"""A finished row group's Parquet file: what its metadata says, and how it is written and replaced.

``data/part-<rg>.parquet`` holds the group's live rows (``_row``, then the job's outputs).  Its
schema's key-value metadata, under the key ``cellfrontier``, makes it self-describing (JSON)::

    {"format": 1, "row_group": 7, "generation": 3, "size": 1000,
     "columns": {"h": {"fingerprint": "9f..", "outputs": ["h"]}, ...},
     "dropped": {"total": [17, 403], "": [5]}}

``generation`` is the job version that wrote the file; ``columns`` gives each column's
fingerprint (:mod:`cellfrontier.job.fingerprint`) and the outputs it produced; ``dropped``
names, for each dropped row (local index), the column whose failure dropped it (``""``: not
known, for rows a checkpoint of an older release dropped).  A rerun reads this footer only
(never the values) to decide what to keep: :mod:`cellfrontier.job.store.group_reuse`.  A file
without it was written before job versions existed; it counts as written by version 1 of a
migrated directory (:mod:`cellfrontier.job.store.generations`).

Writing (:func:`write_group_file`), by whichever attempt finishes the group:

- no file yet: the first write of a group is write-once (temp file, fsync, hard link, see
  :func:`~cellfrontier._durable.create_once`): the first attempt to finish wins, and a later
  attempt of the same job version keeps that file;
- a file of an older job version: the new content goes to a temporary file and is fsynced,
  then, if the file is still of an older version (its footer read just before), renamed over
  it (one atomic step: a reader of ``data/`` sees the old generation or the new, never both
  and never neither), then the directory is fsynced;
- a file of the same or a newer job version: kept (a stale attempt never replaces newer work).

The remaining window: the check of the existing file's version and the rename are two steps,
so a newer job version's writer that replaces the file between them is overwritten by the
older content.  That takes two job versions running the same group at the same instant (a
stale attempt that outlived a rerun of an edited job); the older file is whole and valid for
its own fingerprints, so the next run of the newer version sees that its columns differ and
computes them again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellfrontier._durable import create_once, replace_if
from cellfrontier.job.output import ROW_COLUMN, OutputLayout, require_pyarrow, table_from_columns

__all__ = [
    "GROUP_META_KEY",
    "GroupStamp",
    "read_group_columns",
    "read_group_stamp",
    "write_group_file",
]

GROUP_META_KEY = b"cellfrontier"
GROUP_FORMAT = 1


@dataclass(frozen=True)
class GroupStamp:
    """What a group file's footer says about it (plain values; a status view may read it too).

    ``columns`` maps each column to ``(fingerprint, outputs)``; it is None for a file written
    before job versions existed (``generation`` 0), whose columns are those of the migrated
    version 1.  ``dropped`` maps each dropped row (local index) to the column that dropped it.
    """

    row_group: int
    generation: int
    size: int
    rows: int
    columns: dict[str, tuple[str, tuple[str, ...]]] | None
    dropped: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        by_culprit: dict[str, list[int]] = {}
        for row, culprit in sorted(self.dropped.items()):
            by_culprit.setdefault(culprit, []).append(row)
        return {
            "format": GROUP_FORMAT,
            "row_group": self.row_group,
            "generation": self.generation,
            "size": self.size,
            "columns": {
                name: {"fingerprint": fp, "outputs": list(outputs)}
                for name, (fp, outputs) in (self.columns or {}).items()
            },
            "dropped": by_culprit,
        }


def _stamp_from_json(data: Mapping[str, Any], rows: int) -> GroupStamp:
    dropped = {int(row): str(culprit) for culprit, found in data.get("dropped", {}).items() for row in found}
    return GroupStamp(
        row_group=int(data["row_group"]),
        generation=int(data["generation"]),
        size=int(data["size"]),
        rows=rows,
        columns={
            str(name): (str(entry["fingerprint"]), tuple(entry["outputs"]))
            for name, entry in data.get("columns", {}).items()
        },
        dropped=dropped,
    )


def read_group_stamp(path: Path, *, legacy_size: int = 0, legacy_base: int = 0) -> GroupStamp | None:
    """The footer of the group file at *path* (None when there is none); values are not read.

    A file without the metadata (written before job versions) is described from its rows:
    its size is *legacy_size* and, when rows are missing, its ``_row`` column (global indices
    from *legacy_base*) tells which were dropped, by a column not known.
    """
    _, pq = require_pyarrow("reading output_dir")
    try:
        with open(path, "rb") as handle:  # an open file: pyarrow resolves no filesystem
            metadata = pq.read_metadata(handle)
    except FileNotFoundError:
        return None
    rows = int(metadata.num_rows)
    raw = (metadata.metadata or {}).get(GROUP_META_KEY)
    if raw is not None:
        return _stamp_from_json(json.loads(raw), rows)
    name = os.path.basename(path)
    row_group = int(name[len("part-") : -len(".parquet")])
    dropped: dict[int, str] = {}
    if rows < legacy_size:
        present = {int(i) - legacy_base for i in read_group_columns(path, ()).column(0).to_pylist()}
        dropped = {r: "" for r in range(legacy_size) if r not in present}
    return GroupStamp(row_group, 0, legacy_size, rows, None, dropped)


def read_group_columns(path: Path, names: Sequence[str]) -> Any:
    """The ``_row`` column and the columns *names* of the group file at *path*, as a pyarrow Table."""
    _, pq = require_pyarrow("reading output_dir")
    with open(path, "rb") as handle, pq.ParquetFile(handle) as parquet:  # no dataset discovery
        return parquet.read(columns=[ROW_COLUMN, *names], use_threads=False)


def stamp_still_older(path: Path, generation: int) -> bool:
    """Whether the file at *path* is still of a job version older than *generation* (or gone).

    Asked just before a replacement is renamed into place (the fence, see the module doc).
    """
    stamp = read_group_stamp(path)
    return stamp is None or stamp.generation < generation


def write_group_file(
    layout: OutputLayout,
    stamp: GroupStamp,
    names: Sequence[str],
    data: Mapping[str, Any],
    *,
    tag: str,
    previous: int | None,
    sync_directory: bool = True,
) -> int:
    """Write the finished group *stamp* describes (module doc); returns the rows of the file that stands.

    *data* maps ``_row`` and every name in *names* to the values of the group's live rows
    (lists, or pyarrow arrays carried over from the previous file).  *tag* names the writing
    attempt in the temporary file's name (``g<generation>e<epoch>``).  *previous* is the job
    version of the file the group started from, None when there was none: the write then goes
    straight to its one check (the hard link that fails on an existing file, or the fence
    before the rename) instead of reading the file's footer first.  Without *sync_directory*
    the caller fsyncs ``data/`` before relying on the new name (a shard does it once before
    each checkpoint: a group leaves the checkpoint only once its file's name is durable).
    """
    pa, pq = require_pyarrow("writing row groups to output_dir")
    path = layout.part_path(stamp.row_group)
    if previous is not None and previous >= stamp.generation:
        existing = read_group_stamp(path)
        if existing is not None:
            return existing.rows  # this version (another attempt) or a newer one wrote it first
    table = table_from_columns([ROW_COLUMN, *names], data, where=f"row group {stamp.row_group}")
    metadata = dict(table.schema.metadata or {})
    metadata[GROUP_META_KEY] = json.dumps(stamp.to_json(), separators=(",", ":")).encode("utf-8")
    table = table.replace_schema_metadata(metadata)

    def write(handle: Any) -> None:
        # Encoded in memory, then written in one call: pyarrow writing through a Python file
        # object calls back into Python (taking the GIL) for every page, which starves the
        # writer threads while the loop thread computes.
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        handle.write(sink.getvalue())

    if previous is None:
        if create_once(path, write, tag=tag, sync_directory=sync_directory):
            return int(table.num_rows)
        existing = read_group_stamp(path)  # another attempt, or another version, wrote it meanwhile
        if existing is not None and existing.generation >= stamp.generation:
            return existing.rows
    generation = stamp.generation
    still_older = lambda: stamp_still_older(path, generation)  # noqa: E731
    if replace_if(path, write, still_wanted=still_older, tag=tag, sync_directory=sync_directory):
        return int(table.num_rows)
    found = read_group_stamp(path)
    return found.rows if found is not None else 0
