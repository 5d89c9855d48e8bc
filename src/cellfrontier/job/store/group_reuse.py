"""What a rerun keeps of a written row group, decided from its file's footer alone.

For each row group whose file exists, the job version's column fingerprints are compared with
those the file records (:mod:`cellfrontier.job.store.group_files`):

- a column whose fingerprint matches is **kept**: its stored values are read back, never
  recomputed; a column that differs (or is new) is **computed** on every live row, and by the
  Merkle construction everything downstream of it differs too, so a kept column never reads a
  computed one; a column the file holds that the job no longer has is **removed**;
- a row a kept column dropped stays dropped (its failure would recur); a row that a computed
  or removed column dropped (or one whose dropper is not known) gets another chance, and so
  do the rows a grown group gained: such *new rows* are computed in every column, kept ones
  included, since the file holds no value of theirs;
- a group with nothing computed, removed or new is **settled**: its file stays as it is (it
  may be an older version's), else it is **upgraded**: recomputed where needed and written
  whole as the current version's file.

A kept column is carried to the new file as the Arrow array it was read as, unless a computed
column reads it or it has new rows to compute: only then are its values converted to Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cellfrontier.job.store.group_files import GroupStamp

__all__ = ["CurrentColumn", "GroupReuse", "plan_group_reuse"]


@dataclass(frozen=True)
class CurrentColumn:
    """One column of the current job version, as reuse decisions need it."""

    name: str
    fingerprint: str
    batch: bool
    outputs: tuple[str, ...]
    upstream: tuple[str, ...]


@dataclass(frozen=True)
class GroupReuse:
    """What a run does with one written row group (module doc)."""

    row_group: int
    size: int
    generation: int
    """The job version of the file (0: written before versions)."""
    kept: tuple[str, ...]
    """Columns whose stored values are kept (topological order)."""
    computed: tuple[str, ...]
    """Columns computed on every live row (changed or new)."""
    removed: tuple[str, ...]
    """Columns the file holds that the job no longer has."""
    stored_rows: tuple[int, ...]
    """Local rows the file holds, ascending."""
    kept_dropped: Mapping[int, str]
    """Rows that stay dropped, and the kept column that dropped them."""
    new_rows: tuple[int, ...]
    """Rows computed in every column (a grown group's, and those given another chance)."""
    as_lists: tuple[str, ...]
    """Kept columns read as Python values (a computed task reads them, or they have new rows)."""

    @property
    def settled(self) -> bool:
        """Nothing to compute or remove: the file stands as it is."""
        return not self.computed and not self.removed and not self.new_rows

    @property
    def carried(self) -> tuple[str, ...]:
        """Kept columns carried to the new file as Arrow arrays."""
        lists = set(self.as_lists)
        return tuple(name for name in self.kept if name not in lists)

    def cells_to_compute(self, columns: Sequence[CurrentColumn]) -> int:
        """Tasks this group will run: cells of computed and partly kept columns, plus batches."""
        live = self.size - len(self.kept_dropped)
        kept = set(self.kept)
        tasks = 0
        for column in columns:
            if column.name in kept:
                if self.new_rows:
                    tasks += 1 if column.batch else len(self.new_rows)
            else:
                tasks += 1 if column.batch else live
        return tasks


def plan_group_reuse(
    stamp: GroupStamp,
    columns: Sequence[CurrentColumn],
    size: int,
    *,
    legacy: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
) -> GroupReuse:
    """What to keep of the group file *stamp* describes, for the job version of *columns*.

    *columns* come in topological order; *size* is the group's size now (at least the
    file's: a smaller one is refused before any run).  *legacy* gives the columns of a file
    written before job versions (``stamp.columns`` None): version 1's.
    """
    stored = stamp.columns if stamp.columns is not None else dict(legacy or {})
    current = {column.name for column in columns}
    kept = tuple(
        c.name
        for c in columns
        if c.name in stored and stored[c.name][0] == c.fingerprint and stored[c.name][1] == c.outputs
    )
    kept_set = set(kept)
    computed = tuple(c.name for c in columns if c.name not in kept_set)
    removed = tuple(sorted(name for name in stored if name not in current))
    kept_dropped = {row: culprit for row, culprit in stamp.dropped.items() if culprit in kept_set}
    if stamp.dropped:
        stored_rows = tuple(r for r in range(stamp.size) if r not in stamp.dropped)
        stored_set = set(stored_rows)
        new_rows = tuple(r for r in range(size) if r not in stored_set and r not in kept_dropped)
    else:
        stored_rows, new_rows = tuple(range(stamp.size)), tuple(range(stamp.size, size))
    if new_rows:
        as_lists = kept
    else:
        read = {up for c in columns if c.name not in kept_set for up in c.upstream}
        as_lists = tuple(name for name in kept if name in read)
    return GroupReuse(
        row_group=stamp.row_group,
        size=size,
        generation=stamp.generation,
        kept=kept,
        computed=computed,
        removed=removed,
        stored_rows=stored_rows,
        kept_dropped=kept_dropped,
        new_rows=new_rows,
        as_lists=as_lists,
    )
