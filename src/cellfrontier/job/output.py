"""The output directory's layout and its Parquet files.

::

    output_dir/
      cellfrontier-job.json                    manifest: which job this directory holds
      data/part-00000000.parquet               one file per finished row group (id zero-padded)
      checkpoints/shard-00000000-00000100.ckpt  one checkpoint per shard (range of row groups)

A row group's file name depends only on its id, so writing a group again (a retried shard,
a resumed run) replaces the same file; the write is atomic and durable (temp file, fsync,
rename, directory fsync), so a reader sees a whole file or none.  Every file holds a ``_row``
column of global row indices first, then the job's columns in topological order with each
column's side-effect aliases right after it; dropped rows are absent.

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

from cellfrontier.job.errors import GeneratorOutputError, MissingDependencyError
from cellfrontier.job.files import TEMP_SUFFIX, replace_atomically

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
_TEMP_PART = re.compile(r"^\.part-(\d+)\.parquet\..*" + re.escape(TEMP_SUFFIX) + "$")
_CHECKPOINT = re.compile(r"^shard-(\d+)-(\d+)\.ckpt$")


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

    def checkpoint_path(self, first: int, stop: int) -> Path:
        return self.checkpoint_dir / f"shard-{first:08d}-{stop:08d}.ckpt"

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

    def remove_temporaries(self, first: int, stop: int) -> None:
        """Delete temporary files that a killed writer of groups in ``[first, stop)`` left."""
        if not self.data_dir.is_dir():
            return
        for entry in os.scandir(self.data_dir):
            match = _TEMP_PART.match(entry.name)
            if match and first <= int(match.group(1)) < stop:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def checkpoints(self) -> dict[tuple[int, int], Path]:
        """Every shard checkpoint in the directory, by ``(first, stop)``."""
        found: dict[tuple[int, int], Path] = {}
        if not self.checkpoint_dir.is_dir():
            return found
        for entry in os.scandir(self.checkpoint_dir):
            match = _CHECKPOINT.match(entry.name)
            if match:
                found[(int(match.group(1)), int(match.group(2)))] = Path(entry.path)
        return found


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
    layout: OutputLayout, row_group: int, names: Sequence[str], data: Mapping[str, list[Any]]
) -> int:
    """Write one finished row group durably; returns its number of rows.

    *data* maps ``_row`` and every name in *names* to the values of the group's live rows.
    """
    _, pq = require_pyarrow("writing row groups to output_dir")
    table = table_from_columns([ROW_COLUMN, *names], data, where=f"row group {row_group}")
    replace_atomically(layout.part_path(row_group), lambda handle: pq.write_table(table, handle))
    return int(table.num_rows)


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
