"""The output directory's layout and its Parquet files.

::

    output_dir/
      cellfrontier-job.json                    manifest: which job this directory holds
      data/part-00000000.parquet               one file per finished row group (id zero-padded)
      checkpoints/shard-00000000-00000100/     one directory per shard (a range of row groups)
        claim-000002                           an attempt's epoch, claimed atomically
        epoch-000002.ckpt                      that attempt's checkpoint

A row group's file name depends only on its id and is written once: the content goes to a
temporary file, is fsynced, and is hard-linked into place only if no file of that name exists
(see :func:`~cellfrontier._durable.create_once`).  A second writer of the same group (a
retried shard, an attempt that outlived its retry) keeps the existing file and counts its rows
instead, so a reader sees a whole file or none, and a file once written never changes.  Every
file holds a ``_row`` column of global row indices first, then the job's columns in
topological order with each column's side-effect aliases right after it; dropped rows are
absent.

pyarrow is imported only here and only when needed: the base install stays numpy-only.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellfrontier._durable import TEMP_SUFFIX, create_once
from cellfrontier.job.errors import GeneratorOutputError, MissingDependencyError

__all__ = [
    "ROW_COLUMN",
    "OutputLayout",
    "require_pyarrow",
    "table_from_columns",
    "write_group_file",
]

ROW_COLUMN = "_row"
MANIFEST_NAME = "cellfrontier-job.json"
_PART = re.compile(r"^part-(\d+)\.parquet$")
_TEMP_PART = re.compile(r"^\.part-(\d+)\.parquet\.(?:e(\d+)\.)?.*" + re.escape(TEMP_SUFFIX) + "$")
_SHARD_DIR = re.compile(r"^shard-(\d+)-(\d+)$")


def require_pyarrow(what: str) -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a clear error naming the extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs pyarrow, which is not installed: pip install 'cellfrontier[job]'"
        ) from None
    return pa, pq


@dataclass(frozen=True)
class OutputLayout:
    """Paths inside a job's output directory."""

    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def part_path(self, row_group: int) -> Path:
        return self.data_dir / f"part-{row_group:08d}.parquet"

    def shard_dir(self, first: int, stop: int) -> Path:
        """The directory of the shard ``[first, stop)``: its epoch claims and checkpoints."""
        return self.checkpoint_dir / f"shard-{first:08d}-{stop:08d}"

    def create(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    def written_groups(self, first: int, stop: int) -> dict[int, Path]:
        """Row groups in ``[first, stop)`` whose file exists."""
        found: dict[int, Path] = {}
        if not self.data_dir.is_dir():
            return found
        for entry in os.scandir(self.data_dir):
            match = _PART.match(entry.name)
            if match and first <= int(match.group(1)) < stop:
                found[int(match.group(1))] = Path(entry.path)
        return found

    def remove_temporaries(self, first: int, stop: int, *, below_epoch: int | None = None) -> None:
        """Delete temporary files that killed writers of groups in ``[first, stop)`` left.

        With *below_epoch*, only those of attempts older than that epoch (a temporary file
        names the epoch of the attempt writing it): a newer attempt's write under way is kept.
        """
        if not self.data_dir.is_dir():
            return
        for entry in os.scandir(self.data_dir):
            match = _TEMP_PART.match(entry.name)
            if not match or not first <= int(match.group(1)) < stop:
                continue
            if below_epoch is not None and match.group(2) is not None and int(match.group(2)) >= below_epoch:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)

    def shard_ranges(self) -> list[range]:
        """The row-group ranges of every shard directory, sorted by first group."""
        found: list[range] = []
        if not self.checkpoint_dir.is_dir():
            return found
        for entry in os.scandir(self.checkpoint_dir):
            match = _SHARD_DIR.match(entry.name)
            if match and entry.is_dir():
                found.append(range(int(match.group(1)), int(match.group(2))))
        return sorted(found, key=lambda r: (r.start, r.stop))


def table_from_columns(
    names: Sequence[str], data: Mapping[str, list[Any]], *, where: str = "the output"
) -> Any:
    """A pyarrow Table from plain lists, types inferred per column (ints stay ints, str stays str)."""
    pa, _ = require_pyarrow("building a table")
    arrays = []
    for name in names:
        try:
            arrays.append(pa.array(data[name]))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise GeneratorOutputError(
                f"column {name!r} of {where} cannot be stored as one Parquet column: {exc} "
                "(a generator returned values of mixed or unsupported types)"
            ) from None
    return pa.Table.from_arrays(arrays, names=list(names))


def write_group_file(
    layout: OutputLayout, row_group: int, names: Sequence[str], data: Mapping[str, list[Any]], epoch: int = 0
) -> int:
    """Write one finished row group durably, unless its file exists; returns the file's rows.

    *data* maps ``_row`` and every name in *names* to the values of the group's live rows.
    When another attempt wrote the group first, its file stays and its row count is returned.
    *epoch*, the writing attempt's, is part of the temporary file's name.
    """
    _, pq = require_pyarrow("writing row groups to output_dir")
    table = table_from_columns([ROW_COLUMN, *names], data, where=f"row group {row_group}")
    path = layout.part_path(row_group)
    if path.exists():  # another attempt finished the group first: skip encoding it again
        return read_group_rows(path)
    if create_once(path, lambda handle: pq.write_table(table, handle), tag=f"e{epoch:06d}"):
        return int(table.num_rows)
    return read_group_rows(path)


def read_group_rows(path: Path) -> int:
    """Rows in a written group's file (from its footer only)."""
    _, pq = require_pyarrow("resuming from output_dir")
    return int(pq.read_metadata(path).num_rows)


def read_group_row_ids(path: Path) -> list[int]:
    """The global row indices a written group's file holds."""
    _, pq = require_pyarrow("resuming from output_dir")
    return [int(v) for v in pq.read_table(path, columns=[ROW_COLUMN]).column(0).to_pylist()]


def read_tables(paths: Iterable[Path]) -> list[Any]:
    _, pq = require_pyarrow("reading output_dir")
    return [pq.read_table(path) for path in paths]
