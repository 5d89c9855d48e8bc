"""The output directory's layout and its Parquet files.

::

    output_dir/
      cellfrontier-job.json                    manifest: the job version the directory holds now
      versions/g000003.json                    every job version, created once each
      data/part-00000000.parquet               one file per finished row group (id zero-padded)
      checkpoints/g000003/                     the checkpoints of job version 3
        shard-00000000-00000100/               one directory per shard (a range of row groups)
          claim-000002                         an attempt's epoch, claimed atomically
          epoch-000002.ckpt                    that attempt's checkpoint

The job versions and the manifest are :mod:`cellfrontier.job.store.generations`; a row
group's file, its metadata and how it is written once and then replaced by newer job versions
are :mod:`cellfrontier.job.store.group_files`.  A row group's file name depends only on its
id, so ``data/`` always reads as one dataset: every file holds a ``_row`` column of global row
indices first, then the job's columns in topological order with each column's side-effect
aliases right after it; dropped rows are absent.  A directory written before job versions
existed (manifest version 1) keeps its shards directly under ``checkpoints/`` until a run
migrates it.

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

from cellfrontier._durable import TEMP_SUFFIX
from cellfrontier.job.errors import GeneratorOutputError, MissingDependencyError

__all__ = [
    "ROW_COLUMN",
    "OutputLayout",
    "require_pyarrow",
    "table_from_columns",
]

ROW_COLUMN = "_row"
MANIFEST_NAME = "cellfrontier-job.json"
_PART = re.compile(r"^part-(\d+)\.parquet$")
_TEMP_PART = re.compile(r"^\.part-(\d+)\.parquet\.(?:g(\d+))?(?:e(\d+)\.)?.*" + re.escape(TEMP_SUFFIX) + "$")
_SHARD_DIR = re.compile(r"^shard-(\d+)-(\d+)$")
_VERSION = re.compile(r"^g(\d+)\.json$")


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
    """Paths inside a job's output directory.

    *generation* is the job version whose checkpoints the layout addresses; None means the
    newest version on disk (read each time it is needed), or the unversioned layout of a
    directory that has none yet.
    """

    root: Path
    generation: int | None = None

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def version_path(self, generation: int) -> Path:
        """The record of job version *generation* (created once, never changed)."""
        return self.versions_dir / f"g{generation:06d}.json"

    def generations(self) -> list[int]:
        """Every job version recorded in the directory, ascending."""
        try:
            entries = os.scandir(self.versions_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        with entries:
            return sorted(int(m.group(1)) for e in entries if (m := _VERSION.match(e.name)))

    def current_generation(self) -> int | None:
        """The job version this layout addresses: its own, or the newest on disk (None: none yet)."""
        if self.generation is not None:
            return self.generation
        found = self.generations()
        return found[-1] if found else None

    def at_generation(self, generation: int) -> OutputLayout:
        """The same directory, addressing the checkpoints of job version *generation*."""
        return OutputLayout(self.root, generation)

    def generation_dir(self, generation: int) -> Path:
        """Where the shards of job version *generation* keep their checkpoints."""
        return self.checkpoint_dir / f"g{generation:06d}"

    def shards_root(self) -> Path:
        """The directory holding this layout's shard directories."""
        generation = self.current_generation()
        return self.checkpoint_dir if generation is None else self.generation_dir(generation)

    def part_path(self, row_group: int) -> Path:
        return self.data_dir / f"part-{row_group:08d}.parquet"

    def shard_dir(self, first: int, stop: int) -> Path:
        """The directory of the shard ``[first, stop)``: its epoch claims and checkpoints."""
        return self.shards_root() / f"shard-{first:08d}-{stop:08d}"

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

    def remove_temporaries(
        self, first: int, stop: int, *, below_epoch: int | None = None, generation: int = 0
    ) -> None:
        """Delete temporary files that killed writers of groups in ``[first, stop)`` left.

        With *below_epoch*, only those of attempts older than ``(generation, below_epoch)`` (a
        temporary file names the job version and epoch of the attempt writing it): a write
        under way by a newer attempt, or by a newer job version, is kept.
        """
        if not self.data_dir.is_dir():
            return
        for entry in os.scandir(self.data_dir):
            match = _TEMP_PART.match(entry.name)
            if not match or not first <= int(match.group(1)) < stop:
                continue
            if below_epoch is not None and match.group(3) is not None:
                writer = (int(match.group(2) or 0), int(match.group(3)))
                if writer >= (generation, below_epoch):
                    continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)

    def shard_ranges(self) -> list[range]:
        """The row-group ranges of every shard directory (of this layout's job version), sorted."""
        found: list[range] = []
        directory = self.shards_root()
        if not directory.is_dir():
            return found
        for entry in os.scandir(directory):
            match = _SHARD_DIR.match(entry.name)
            if match and entry.is_dir():
                found.append(range(int(match.group(1)), int(match.group(2))))
        return sorted(found, key=lambda r: (r.start, r.stop))


def table_from_columns(names: Sequence[str], data: Mapping[str, Any], *, where: str = "the output") -> Any:
    """A pyarrow Table from plain lists, types inferred per column (ints stay ints, str stays str).

    A value that already is a pyarrow array (a column a rerun carried over from the previous
    file) is used as it is.
    """
    pa, _ = require_pyarrow("building a table")
    arrays = []
    for name in names:
        values = data[name]
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            arrays.append(values)
            continue
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise GeneratorOutputError(
                f"column {name!r} of {where} cannot be stored as one Parquet column: {exc} "
                "(a generator returned values of mixed or unsupported types)"
            ) from None
    return pa.Table.from_arrays(arrays, names=list(names))


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
