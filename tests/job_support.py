"""Helpers shared by the ``Job`` tests and their subprocess worker.

``CallLog`` records every generator call (column and global row, or the row group of a
full-column call) by appending a line to a file with one ``write`` each, so the record of a
call survives a SIGKILL that comes right after it.  It can also act at a chosen call number:
kill the process (SIGKILL), or send it SIGINT / SIGTERM, so that tests choose where a run
stops by step, never by clock.
"""

from __future__ import annotations

import asyncio
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
    """Appends ``column key`` per call to *path*; acts at call number *act_at* (1-based)."""

    def __init__(self, path: str | os.PathLike[str], act_at: int | None = None, action: str = "kill") -> None:
        self.path = os.fspath(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.calls = 0
        self.act_at = act_at
        self.action = action

    def marker(self, text: str) -> None:
        os.write(self.fd, f"# {text}\n".encode())

    def record(self, column: str, key: int) -> None:
        os.write(self.fd, f"{column} {key}\n".encode())
        self.calls += 1
        if self.calls == self.act_at:
            signum = {"kill": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}[self.action]
            os.kill(os.getpid(), signum)


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
    for shard in layout.shard_ranges():
        checkpoint = latest_checkpoint(layout, shard)
        if checkpoint is None:
            continue
        tracker = CompletionTracker.from_bytes(checkpoint.tracker, build_j12_graph())
        for rg in tracker.active_row_groups():
            if rg in written:
                continue
            size = min(buffer, rows - rg * buffer)
            for name, strategy, _ in J12_COLUMNS:
                if strategy == "cell_by_cell":
                    for r in range(size):
                        if tracker.is_complete(SliceRef(name, rg, r)):
                            held.add((name, rg * buffer + r))
                elif tracker.is_complete(SliceRef(name, rg, None)):
                    held.add((name, rg))
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
