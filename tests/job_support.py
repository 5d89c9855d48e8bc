"""Helpers shared by the ``Job`` tests, their subprocess workers and the cluster tests.

``CallLog`` records every generator call (column and global row, or the row group of a
full-column call) by appending a line to a file with one ``write`` each, so the record of a
call survives a SIGKILL that comes right after it, in whichever process made the call.  It
can also act at a chosen call number: kill a process (SIGKILL), or send it SIGINT / SIGTERM,
so that tests choose where a run stops by step, never by clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from cellfrontier import CompletionTracker, SliceRef
from cellfrontier.job import OutputLayout, latest_checkpoint
from cellfrontier.testing.j12 import J12_COLUMNS, build_j12_graph, j12_generators


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


needs_pyarrow = pytest.mark.skipif(
    not _has_pyarrow(), reason="needs pyarrow: pip install 'cellfrontier[job]'"
)
"""For tests that write or read Parquet (``output_dir``, ``table()``)."""

BUFFER = 1000
CELL = {name for name, strategy, _ in J12_COLUMNS if strategy == "cell_by_cell"}


class CallLog:
    """Appends ``column key`` per generator call to *path*; at call *act_at* it acts on a process.

    One file, appended with ``O_APPEND`` by every process that holds a copy: the log pickles
    without its descriptor (a job sent to Dask workers carries it) and reopens the file in each
    process, so calls per task can be counted across kills, restarts, workers and clients.  At
    call number *act_at* of this copy (1-based) it first writes *snapshot* (what *output_dir*
    holds as done then, when both are given), then sends *action* (``kill``: SIGKILL;
    ``sigint``; ``sigterm``) to *target* (by default the process making the call).  With
    *marker*, a file created with ``O_EXCL``, only the first copy to get there acts.  *held*
    replaces :func:`held_cells` as what the snapshot reads (a rerun's view of what is done).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        act_at: int | None = None,
        action: str = "kill",
        *,
        marker: str | os.PathLike[str] | None = None,
        target: int | None = None,
        snapshot: str | os.PathLike[str] | None = None,
        output_dir: Path | None = None,
        rows: int = 0,
        buffer: int = BUFFER,
        held: Callable[[Path, int, int], set[tuple[str, int]]] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.act_at = act_at
        self.signal = {"kill": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}[action]
        self.marker = None if marker is None else os.fspath(marker)
        self.target = target
        self.snapshot = None if snapshot is None else os.fspath(snapshot)
        self.output_dir, self.rows, self.buffer = output_dir, rows, buffer
        self.held = held
        self.calls = 0
        self._fd: int | None = None
        self._pid = 0
        self._descriptor()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_fd=None, _pid=0, calls=0)
        return state

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    def note(self, text: str) -> None:
        """A ``# text`` line (``# run`` starts a run: :func:`read_calls` splits there)."""
        os.write(self._descriptor(), f"# {text}\n".encode())

    def record(self, column: str, key: int) -> None:
        os.write(self._descriptor(), f"{column} {key}\n".encode())
        self.calls += 1
        if self.calls == self.act_at and self._first_to_act():
            if self.snapshot is not None and self.output_dir is not None:
                held = sorted((self.held or held_cells)(self.output_dir, self.rows, self.buffer))
                Path(self.snapshot).write_text(json.dumps(held))
            os.kill(self.target if self.target is not None else os.getpid(), self.signal)

    def _first_to_act(self) -> bool:
        if self.marker is None:
            return True
        try:
            os.close(os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return False
        return True


class LoggedCell:
    """A plain cell generator that logs its call first."""

    def __init__(self, name: str, fn: Callable[[Mapping[str, Any]], Any], log: CallLog) -> None:
        self.name, self.fn, self.log = name, fn, log

    def __call__(self, row: Mapping[str, Any]) -> Any:
        self.log.record(self.name, row["_row"])
        return self.fn(row)


class LoggedAsyncCell(LoggedCell):
    """The same, ``async``: it yields to the loop once before answering."""

    async def __call__(self, row: Mapping[str, Any]) -> Any:  # type: ignore[override]
        self.log.record(self.name, row["_row"])
        await asyncio.sleep(0)
        return self.fn(row)


class LoggedBatch:
    """A plain full-column generator that logs its call (keyed by row group) first."""

    def __init__(
        self, name: str, fn: Callable[[Mapping[str, Any]], Any], log: CallLog, buffer: int = BUFFER
    ) -> None:
        self.name, self.fn, self.log, self.buffer = name, fn, log, buffer

    def __call__(self, batch: Mapping[str, Any]) -> Any:
        self.log.record(self.name, batch["_row"][0] // self.buffer)
        return self.fn(batch)


def logged_j12(log: Any, *, async_cells: bool = False, buffer: int = BUFFER) -> dict[str, Callable[..., Any]]:
    """J12's generators, each logging its calls to *log* (cell columns async if asked)."""
    cell_class = LoggedAsyncCell if async_cells else LoggedCell
    return {
        name: cell_class(name, fn, log) if name in CELL else LoggedBatch(name, fn, log, buffer)
        for name, fn in j12_generators().items()
    }


def read_calls(path: Path) -> list[list[tuple[str, int]]]:
    """The calls of each run, split at ``# run`` markers."""
    runs: list[list[tuple[str, int]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# run"):
            runs.append([])
        elif line and not line.startswith("#"):
            column, key = line.split()
            runs[-1].append((column, int(key)))
    return runs


def held_cells(output_dir: Path, rows: int, buffer: int = BUFFER) -> set[tuple[str, int]]:
    """Every task the output directory holds as done: written groups' cells and the checkpoints'.

    Keys are ``(column, global row)`` for cells and ``(column, row group)`` for full columns,
    like :class:`CallLog` lines.  Every shard's newest checkpoint counts.
    """
    layout = OutputLayout(output_dir)
    groups = -(-rows // buffer)
    written = layout.written_groups(0, groups)
    held: set[tuple[str, int]] = set()
    for rg in written:
        for name, strategy, _ in J12_COLUMNS:
            if strategy == "cell_by_cell":
                held.update((name, i) for i in range(rg * buffer, min(rows, (rg + 1) * buffer)))
            else:
                held.add((name, rg))
    held |= checkpointed_cells(layout, rows, buffer, skip=set(written), batch_rows=False)
    return held


def checkpointed_cells(
    layout: OutputLayout, rows: int, buffer: int, *, skip: set[int], batch_rows: bool
) -> set[tuple[str, int]]:
    """The J12 tasks the newest checkpoint of every shard of *layout* holds done, groups in *skip* aside.

    A full column's task is ``(column, row group)``, or with *batch_rows* one ``(column, row)`` per row.
    """
    held: set[tuple[str, int]] = set()
    for shard in layout.shard_ranges():
        checkpoint = latest_checkpoint(layout, shard)
        if checkpoint is None:
            continue
        tracker = CompletionTracker.from_bytes(checkpoint.tracker, build_j12_graph())
        for rg in tracker.active_row_groups():
            if rg in skip:
                continue
            size = min(buffer, rows - rg * buffer)
            for name, strategy, _ in J12_COLUMNS:
                if strategy == "cell_by_cell":
                    held.update(
                        (name, rg * buffer + r)
                        for r in range(size)
                        if tracker.is_complete(SliceRef(name, rg, r))
                    )
                elif tracker.is_complete(SliceRef(name, rg, None)):
                    held.update((name, rg * buffer + r) for r in range(size)) if batch_rows else held.add(
                        (name, rg)
                    )
    return held


def all_tasks(rows: int, buffer: int = BUFFER) -> Counter[tuple[str, int]]:
    """Every task of J12 at *rows*, once."""
    groups = -(-rows // buffer)
    tasks: Counter[tuple[str, int]] = Counter()
    for name, strategy, _ in J12_COLUMNS:
        if strategy == "cell_by_cell":
            tasks.update((name, i) for i in range(rows))
        else:
            tasks.update((name, rg) for rg in range(groups))
    return tasks
