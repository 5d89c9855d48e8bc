"""Helpers for the cluster tests: a call log shared by every process, and kills chosen by step.

:class:`ClusterCallLog` travels with the job to the Dask workers (it pickles without its file
descriptor and reopens the log in each process).  Every generator call appends ``column key``
to one file with ``O_APPEND``, so calls per cell can be counted across workers, restarts and
clients.  At a chosen call number of one shard attempt (the log's copy that came with the
task), the first attempt to get there (an ``O_EXCL`` marker file makes it once per test)
first writes what the output directory holds as done at that moment, then SIGKILLs a process:
its own worker, or the client whose pid it was given.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from job_support import held_cells


class ClusterCallLog:
    """Logs calls to *path*; at call *act_at* of an attempt, once per *marker*, kills *target*."""

    def __init__(
        self,
        path: Path,
        *,
        act_at: int | None = None,
        marker: Path | None = None,
        target: int | None = None,
        snapshot: Path | None = None,
        output_dir: Path | None = None,
        rows: int = 0,
        buffer: int = 0,
    ) -> None:
        self.path = str(path)
        self.act_at = act_at
        self.marker = None if marker is None else str(marker)
        self.target = target
        """Process to kill; None: the process that makes the call (a worker)."""
        self.snapshot = None if snapshot is None else str(snapshot)
        self.output_dir, self.rows, self.buffer = output_dir, rows, buffer
        self.calls = 0
        self._fd: int | None = None
        self._pid = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_fd=None, _pid=0, calls=0)
        return state

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    def record(self, column: str, key: int) -> None:
        os.write(self._descriptor(), f"{column} {key}\n".encode())
        self.calls += 1
        if self.calls == self.act_at and self._first_to_act():
            if self.snapshot is not None and self.output_dir is not None:
                held = sorted(held_cells(self.output_dir, self.rows, self.buffer))
                Path(self.snapshot).write_text(json.dumps(held))
            os.kill(self.target if self.target is not None else os.getpid(), signal.SIGKILL)

    def _first_to_act(self) -> bool:
        if self.marker is None:
            return True
        try:
            os.close(os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return False
        return True


def count_calls(path: Path) -> Counter[tuple[str, int]]:
    """Calls per task in a call log."""
    counts: Counter[tuple[str, int]] = Counter()
    for line in path.read_text().splitlines():
        column, key = line.split()
        counts[(column, int(key))] += 1
    return counts


def read_snapshot(path: Path) -> set[tuple[str, int]]:
    return {(column, int(key)) for column, key in json.loads(path.read_text())}
