"""Writing a shard's finished row groups to their Parquet files, off the event loop.

A write is mostly Parquet encoding and fsync, which release the GIL, so two threads overlap
one another's disk waits and the loop's computing.  A finished write wakes the loop; the
runner then collects it and only then compacts the group in the tracker and drops its
buffers, so a group leaves the checkpoint only once its file is durable: each file is fsynced
before its name appears, and the directory once before each checkpoint (:meth:`GroupWriter.sync`)
rather than once per file.  How a file is
written once, or replaced by a newer job version, is
:func:`cellfrontier.job.store.group_files.write_group_file`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cellfrontier._durable import fsync_directory
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.store.group_files import GroupStamp, write_group_file

__all__ = ["GroupWriter"]

_WRITER_THREADS = 2


class GroupWriter:
    """Writes finished groups of one shard attempt (job version *generation*, epoch *epoch*) into *layout*.

    Its interface: :meth:`submit` a finished group, ``busy`` while writes are under way or
    uncollected, :meth:`collect` the finished ones on the loop thread, :meth:`settle` them all
    when the shard stops, :meth:`close`.
    """

    def __init__(
        self,
        layout: OutputLayout,
        names: Sequence[str],
        epoch: int,
        wake: Callable[[], None],
        *,
        generation: int = 0,
    ) -> None:
        """*wake* is called from the writing thread when a write finishes (on one of two threads)."""
        self.layout = layout
        self.names = list(names)
        self.epoch = epoch
        self.tag = f"g{generation:06d}e{epoch:06d}"
        self.wake = wake
        self.writes: dict[int, concurrent.futures.Future[int]] = {}
        self.unsynced = False
        """Writes were handed over since ``data/``'s last fsync (:meth:`sync`)."""
        self.pool = concurrent.futures.ThreadPoolExecutor(
            _WRITER_THREADS, thread_name_prefix="cellfrontier-writer"
        )

    @property
    def busy(self) -> bool:
        """Writes are under way, or finished and not yet collected."""
        return bool(self.writes)

    def submit(self, stamp: GroupStamp, data: Mapping[str, Any], previous: int | None = None) -> None:
        """Start writing the group *stamp* describes (*data*: ``_row`` and every output on its live rows).

        *previous* is the job version of the file the group started from (None: none).
        """
        future = self.pool.submit(
            write_group_file,
            self.layout,
            stamp,
            self.names,
            data,
            tag=self.tag,
            previous=previous,
            sync_directory=False,
        )
        self.writes[stamp.row_group] = future
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[int]) -> None:
        self.wake()

    def collect(self, written: Callable[[int, int], None]) -> None:
        """Call ``written(row_group, rows)`` for every finished write; re-raise a write's error."""
        for rg in [rg for rg, future in self.writes.items() if future.done()]:
            rows = self.writes.pop(rg).result()
            self.unsynced = True
            written(rg, rows)

    def settle(self, written: Callable[[int, int], None]) -> None:
        """Wait for every write; call ``written(row_group, rows)`` for those that succeeded."""
        for rg, future in list(self.writes.items()):
            try:
                rows = future.result()
            except Exception:
                continue
            del self.writes[rg]
            self.unsynced = True
            written(rg, rows)

    def sync(self) -> None:
        """Make the names of the files written so far durable: one fsync of ``data/`` for them all.

        Called before each checkpoint, which may stop holding the groups written since the last.
        """
        if self.unsynced:
            self.unsynced = False
            fsync_directory(self.layout.data_dir)

    def close(self) -> None:
        """Wait for the threads to finish and stop them."""
        self.pool.shutdown(wait=True)
